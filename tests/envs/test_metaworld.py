import os

import numpy as np
import pytest

from tests.conftest import needs_rendering
from vlascope.envs import MetaWorldEnv, check_task, episode_seed, instruction_for, make_expert, task_names
from vlascope.envs.metaworld import egl_device_for_cuda, shadow_map_size, spread_rendering
from vlascope.errors import VlascopeError


def test_collection_and_evaluation_seeds_never_meet():
    collect = {episode_seed(s, i, "collect") for s in range(3) for i in range(500)}
    evaluate = {episode_seed(s, i, "eval") for s in range(3) for i in range(500)}
    assert len(collect) == 1500 and len(evaluate) == 1500
    assert not collect & evaluate


def test_seeded_reset_draws_distinct_reproducible_initial_states():
    env = MetaWorldEnv("pick-place-v3")
    obs_a = env.reset(10)
    state_a = env.initial_state.copy()
    env.reset(12)
    state_b = env.initial_state.copy()
    obs_a2 = env.reset(10)
    assert not np.allclose(state_a, state_b)
    np.testing.assert_allclose(env.initial_state, state_a)
    for key in ("robot_state", "object_state", "goal"):
        np.testing.assert_allclose(obs_a[key], obs_a2[key])
    # The goal in the observation is the one drawn for this episode.
    np.testing.assert_allclose(obs_a["goal"], state_a[3:], atol=1e-6)
    assert obs_a["robot_state"].shape == (4,) and obs_a["object_state"].shape == (14,)


@needs_rendering
def test_the_first_observation_shows_this_episode_not_the_last():
    # window-close moves its window by the model's body position: without forward kinematics
    # after the reset, the first frame and object state are the previous episode's placement.
    after_another = MetaWorldEnv("window-close-v3", camera="corner2", image_size=32)
    after_another.reset(1)
    first = after_another.reset(2)
    fresh = MetaWorldEnv("window-close-v3", camera="corner2", image_size=32).reset(2)
    for key in ("robot_state", "object_state", "corner2_image"):
        np.testing.assert_array_equal(first[key], fresh[key])
    # The window handle read at the reset is where the first step finds it (the hand has not
    # touched it yet).
    stepped, _, _ = after_another.step(np.zeros(4))
    np.testing.assert_allclose(first["object_state"][:3], stepped["object_state"][:3], atol=1e-3)


def test_reset_to_explicit_initial_state():
    env = MetaWorldEnv("reach-v3")
    env.reset(4)
    state = env.initial_state.copy()
    env.reset(6)
    env.reset(999, initial_state=state)
    np.testing.assert_allclose(env.initial_state, state)


def test_expert_step_signals():
    env = MetaWorldEnv("pick-place-v3")
    expert = make_expert("pick-place-v3")
    env.reset(0)
    infos = []
    for _ in range(200):
        _, info, over = env.step(expert.get_action(env.last_flat_obs))
        infos.append(info)
        if info.success or over:
            break
    assert infos[-1].success
    assert any(i.reached for i in infos) and any(i.grasped for i in infos)
    assert infos[-1].object_to_goal < 0.07


def test_unknown_task_suggests_close_names():
    with pytest.raises(VlascopeError, match="did you mean pick-place-v3"):
        check_task("pick-plce-v3")


def test_every_task_has_the_instruction_and_difficulty_lerobot_gives_it():
    from vlascope.envs.metaworld import DIFFICULTY_SPLITS, difficulty_of

    assert instruction_for("pick-place-v3") == "Pick and place a puck to a goal"
    assert all(instruction_for(t) != t.removesuffix("-v3").replace("-", " ") for t in task_names())
    assert {split: len(tasks) for split, tasks in DIFFICULTY_SPLITS.items()} == \
        {"easy": 28, "medium": 11, "hard": 6, "very_hard": 5}
    assert sorted(t for tasks in DIFFICULTY_SPLITS.values() for t in tasks) == task_names()
    assert difficulty_of("hammer-v3") == "medium"


@needs_rendering
def test_several_cameras_render_their_own_views():
    env = MetaWorldEnv("pick-place-v3", camera=["corner2", "gripperPOV"], image_size=24)
    obs = env.reset(1)
    assert obs["corner2_image"].shape == obs["gripperPOV_image"].shape == (24, 24, 3)
    assert not np.array_equal(obs["corner2_image"], obs["gripperPOV_image"])
    single = MetaWorldEnv("pick-place-v3", camera="corner2", image_size=24)
    assert np.array_equal(single.reset(1)["corner2_image"], obs["corner2_image"])
    with pytest.raises(VlascopeError, match="no camera 'nope'"):
        MetaWorldEnv("pick-place-v3", camera=["corner2", "nope"], image_size=24)


@needs_rendering
def test_envs_sharing_a_process_each_render_their_own_scene():
    # An evaluation worker holds several envs, each with its own GL context; MuJoCo draws in
    # whichever context is current. Rendering one env after another was created must still draw
    # its own meshes and textures: frames as a lone env of that task draws them.
    tasks = ["plate-slide-back-side-v3", "push-back-v3", "push-wall-v3"]
    envs = [MetaWorldEnv(t, camera="corner2", image_size=32) for t in tasks]
    first = [e.reset(1)["corner2_image"] for e in envs]  # each context made at its first render
    again = [e.render() for e in envs]  # now each renders after the others' contexts were made
    for task, a, b in zip(tasks, first, again):
        alone = MetaWorldEnv(task, camera="corner2", image_size=32)
        np.testing.assert_array_equal(alone.reset(1)["corner2_image"], a, err_msg=task)
        np.testing.assert_array_equal(b, a, err_msg=task)
        alone.close()


def test_shadow_map_scales_with_the_frame():
    assert shadow_map_size(32) == 1024 and shadow_map_size(128) == 1024
    assert shadow_map_size(224) == 2048 and shadow_map_size(480) == 4096


@needs_rendering
def test_a_smaller_shadow_map_draws_the_same_picture():
    # MetaWorld's own 4096 px map against the default for 32 px frames, on the same state.
    frames = {}
    for shadow_size in (None, 4096):
        env = MetaWorldEnv("pick-place-v3", camera="corner2", image_size=32, shadow_size=shadow_size)
        frames[env.shadow_size] = env.reset(episode_seed(0, 0, "eval"))["corner2_image"].astype(int)
        env.close()
    assert set(frames) == {1024, 4096}
    assert np.abs(frames[1024] - frames[4096]).mean() < 1.0


@pytest.mark.parametrize("task", ["hammer-v3", "bin-picking-v3"])
def test_grasp_signal_on_tasks_whose_object_lookup_metaworld_breaks(task):
    # hammer-v3 names its object through mujoco-py's geom_name2id, which the mujoco bindings
    # lack; bin-picking-v3 names a geom its model does not have. Both must step, and the grasp
    # signal is a bool or missing, never an exception.
    env = MetaWorldEnv(task)
    env.reset(episode_seed(0, 0, "collect"))
    expert = make_expert(task)
    signals = set()
    for _ in range(60):
        _, info, over = env.step(expert.get_action(env.last_flat_obs))
        signals.add(info.grasped)
    assert signals <= {True, False, None} and signals != set()
    env.close()


def test_rendering_goes_to_the_egl_device_the_driver_names_for_the_cuda_device():
    # EGL lists a software device first and the two GPUs in the other order than CUDA does.
    listed = [None, 1, 0]
    assert egl_device_for_cuda(listed, 0) == 2 and egl_device_for_cuda(listed, 1) == 1
    # No device named (no NVIDIA extension), or one named twice: no choice is made from it.
    assert egl_device_for_cuda([None, None], 0) is None
    assert egl_device_for_cuda([0, 0], 0) is None


def test_spreading_leaves_a_cpu_renderer_and_an_explicit_device_alone(monkeypatch):
    monkeypatch.delenv("MUJOCO_EGL_DEVICE_ID", raising=False)
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    spread_rendering(3)
    assert "MUJOCO_EGL_DEVICE_ID" not in os.environ
    monkeypatch.setenv("MUJOCO_GL", "egl")
    monkeypatch.setenv("MUJOCO_EGL_DEVICE_ID", "1")
    spread_rendering(3)
    assert os.environ["MUJOCO_EGL_DEVICE_ID"] == "1"


@needs_rendering
def test_the_goal_marker_is_measured_in_the_frame_and_left_as_it_was():
    env = MetaWorldEnv("reach-v3", camera="corner2", image_size=64)
    env.reset(0)
    before = env.render()
    covered = env.goal_marker_pixels()
    # reach's goal is a red sphere: some pixels of a 64 px frame, far from all of them.
    assert 0 < covered < 64 * 64 // 100
    np.testing.assert_array_equal(env.render(), before)  # the marker drawn again
    env.close()
    # button-press's goal is the button itself: no marker to measure.
    button = MetaWorldEnv("button-press-v3", camera="corner2", image_size=64)
    button.reset(0)
    assert button.goal_marker_pixels() == 0
    button.close()
