"""Data checks on real pick-place demos, each with one planted fault and its healthy twin."""

import copy

import numpy as np
import pytest

from tests.conftest import needs_rendering
from tests.doctor.conftest import make_ctx, severities
from tests.doctor.faults import (clip_below, edited, freeze, glitch, nan_at, pin_action_dim,
                                 repeat_demo, scale_actions, start_from_the_previous_scene, tiny_pipeline)
from vlascope.doctor.data_checks import (check_action_scale_imbalance, check_initial_state_diversity,
                                         check_observability, per_dimension_statistics,
                                         check_nan_in_data, check_near_constant_action_dim)
from vlascope.doctor.rollout_checks import check_eval_coverage
from vlascope.data import read_dataset
from vlascope.envs import MetaWorldEnv


def test_nan_is_located_by_demo_step_and_dimension(pick_place, tmp_path):
    found = check_nan_in_data(make_ctx(edited(pick_place, nan_at(1, "object_state", 5, 2)), tmp_path))
    assert [f.severity for f in found] == ["error"]
    loc = found[0].evidence["locations"][0]
    assert (loc["demo"], loc["key"], loc["step"], loc["dim"]) == ("demo_1", "obs/object_state", 5, 2)
    assert check_nan_in_data(make_ctx(pick_place, tmp_path))[0].severity == "ok"


def test_statistics_leave_out_non_finite_values(pick_place):
    from vlascope.data import read_dataset

    episodes = read_dataset(pick_place).episodes
    clean = per_dimension_statistics(episodes)
    episodes[2].actions[4, 1] = np.nan
    episodes[3].actions[0, 1] = np.inf
    broken = per_dimension_statistics(episodes)
    column = np.concatenate([e.actions for e in episodes])[:, 1].astype(np.float64)
    finite = column[np.isfinite(column)]
    assert len(finite) == len(column) - 2
    assert broken["action"]["mean"][1] == pytest.approx(finite.mean(), abs=1e-6)
    assert broken["action"]["std"][1] == pytest.approx(finite.std(), abs=1e-6)
    assert broken["action"]["max"][1] == finite.max()
    np.testing.assert_allclose(broken["action"]["mean"][[0, 2, 3]], clean["action"]["mean"][[0, 2, 3]])
    assert set(clean) == {"action", *[k for k, v in episodes[0].obs.items() if v.dtype != np.uint8]}


def test_model_checks_see_only_the_finite_demos(pick_place, tmp_path):
    def plant(episodes):
        episodes[0].actions[3, 1] = np.inf
    ctx = make_ctx(edited(pick_place, plant), tmp_path)
    assert [e.name for e in ctx.episodes] == [f"demo_{i}" for i in range(1, 6)]


def test_one_initial_state_is_an_error_and_diverse_demos_pass(pick_place, pick_place_fixed, tmp_path):
    fixed = check_initial_state_diversity(make_ctx(pick_place_fixed, tmp_path))
    assert fixed[0].severity == "error"
    assert fixed[0].evidence["distinct_initial_states_at_1mm"] == 1
    assert fixed[0].evidence["collected_with_fixed_init"] is True
    assert (tmp_path / fixed[0].plots[0]).exists()
    diverse = check_initial_state_diversity(make_ctx(pick_place, tmp_path))
    assert diverse[0].severity == "ok"
    assert diverse[0].evidence["distinct_initial_states_at_1mm"] == 6


@needs_rendering
def test_scenes_that_differ_only_in_the_camera_are_diverse(pick_place_images, tmp_path):
    data = read_dataset(pick_place_images)
    for e in data.episodes:  # the hand always starts in one place; the object only in the image
        for key in ("object_state", "goal"):
            e.obs.pop(key)
    camera_only = check_initial_state_diversity(make_ctx(data, tmp_path))
    assert camera_only[0].severity == "ok", camera_only[0].title
    assert camera_only[0].evidence["first_frame_values_ranging_over_0.1"]["corner2_image"] >= 3
    for e in data.episodes:  # a greyscale camera (T, H, W) shows the scenes as well
        e.obs["corner2_image"] = e.obs["corner2_image"].mean(-1).astype(np.uint8)
    grey = check_initial_state_diversity(make_ctx(data, tmp_path))
    assert grey[0].severity == "ok", grey[0].title
    data.episodes = [data.episodes[0], copy.deepcopy(data.episodes[0])]  # one scene, twice
    one_scene = check_initial_state_diversity(make_ctx(data, tmp_path))
    assert one_scene[0].severity == "error" and "camera frame" in one_scene[0].title


def test_eval_coverage_flags_a_fixed_init_dataset(pick_place, pick_place_fixed, tmp_path):
    fixed = check_eval_coverage(make_ctx(pick_place_fixed, tmp_path, task="pick-place-v3"))
    assert fixed[0].severity == "error"
    assert fixed[0].evidence["fraction_of_eval_states_farther_than_3x_spacing"] > 0.9
    diverse = check_eval_coverage(make_ctx(pick_place, tmp_path, task="pick-place-v3"))
    assert diverse[0].severity == "ok"
    assert check_eval_coverage(make_ctx(pick_place, tmp_path))[0].severity == "info"  # no --task


def test_pinned_action_dim_is_named(pick_place, tmp_path):
    found = check_near_constant_action_dim(make_ctx(edited(pick_place, pin_action_dim(1)), tmp_path))
    assert [f.evidence["dim"] for f in found] == [1]
    assert check_near_constant_action_dim(make_ctx(pick_place, tmp_path))[0].severity == "ok"


def test_scale_imbalance_counts_what_the_loss_sees(pick_place, tmp_path):
    def shrink(episodes):
        for e in episodes:
            e.actions[:, 0] *= 0.02  # range 0.04: above the normaliser floor
    # Per-dimension normalisation removes the imbalance...
    assert severities(check_action_scale_imbalance(make_ctx(edited(pick_place, shrink), tmp_path)),
                      "action-scale-imbalance") == {"ok"}
    # ...an identity action normaliser (raw MSE) leaves it.
    found = check_action_scale_imbalance(make_ctx(edited(pick_place, shrink), tmp_path,
                                                  tiny_pipeline(action_norm="identity")))
    assert found[0].severity == "warning" and found[0].evidence["normalised_std_ratio"] > 10


def test_observability_flags_a_hidden_goal_and_names_the_missing_key(pick_place_12, tmp_path):
    hidden = check_observability(make_ctx(pick_place_12, tmp_path, inputs=["robot_state", "object_state"]))
    assert [f.severity for f in hidden] == ["error"]
    assert hidden[0].evidence["missing_input"] == "goal"
    given = check_observability(make_ctx(pick_place_12, tmp_path,
                                         inputs=["robot_state", "object_state", "goal"]))
    assert [f.severity for f in given] == ["ok"]
    assert given[0].evidence["unexplained_share"] < hidden[0].evidence["unexplained_share"] / 2


EPISODE_FAULTS = {  # fault -> (edit, the check that must name it, the culprit episode)
    "demo 1 recorded three more times": (repeat_demo(1, 3), "duplicate-episodes", "demo_1"),
    "demo 2's actions x100": (scale_actions(2, 100.0), "outlier-episodes", "demo_2"),
    "a one-frame glitch in demo 3": (glitch(3, "robot_state", 20, 0, 0.5), "action-jumps", "demo_3"),
    "demo 4's hand state frozen": (freeze(4, "robot_state", 10, 40), "frozen-signals", "demo_4"),
    "hand x clipped": (clip_below("robot_state", 0, 80), "clipped-values", None),
    "each demo starts in the previous one's scene": (start_from_the_previous_scene(), "stale-first-observation",
                                                      "demo_0"),
}


@pytest.mark.parametrize("fault", sorted(EPISODE_FAULTS))
def test_episode_faults_are_named_with_their_episode(fault, pick_place, tmp_path):
    from vlascope.doctor.episode_checks import EPISODE_CHECKS

    edit, check_id, culprit = EPISODE_FAULTS[fault]
    ctx = make_ctx(edited(pick_place, edit), tmp_path)
    flagged = [f for check in EPISODE_CHECKS for f in check(ctx) if f.severity == "warning"]
    named = [f for f in flagged if f.id == check_id]
    assert named, [f.title for f in flagged]
    if culprit is not None:
        assert culprit in named[0].evidence["culprits"] and culprit in named[0].title


def test_healthy_expert_demos_raise_no_episode_warning(pick_place, tmp_path):
    from vlascope.doctor.episode_checks import EPISODE_CHECKS

    found = [f for check in EPISODE_CHECKS for f in check(make_ctx(pick_place, tmp_path))]
    assert {f.severity for f in found} == {"ok"}, [f.title for f in found if f.severity != "ok"]


def test_a_noisy_copy_is_a_duplicate_and_a_rollout_from_a_nearby_scene_is_not(tmp_path):
    # window-close draws its window along one axis: two seeds can place it micrometres apart.
    # Real rollouts from eight scenes, one more from the first scene moved by 1 um, and the
    # second scene's demo re-exported with rounding noise.
    from vlascope.data.episodes import EpisodeDataset
    from vlascope.doctor.episode_checks import check_duplicate_episodes
    from vlascope.envs import make_expert
    from vlascope.envs.collect import run_expert_episode

    env, expert = MetaWorldEnv("window-close-v3"), make_expert("window-close-v3")
    episodes = [run_expert_episode(env, expert, seed)[0] for seed in range(1, 9)]
    nearby = episodes[0].attrs["initial_state"] + np.array([0.0, 1e-6, 0.0])
    episodes.append(run_expert_episode(env, expert, 9, nearby)[0])
    rng = np.random.default_rng(0)
    noisy = copy.deepcopy(episodes[1])
    noisy.actions = noisy.actions + rng.normal(0, 1e-7, noisy.actions.shape).astype(np.float32)
    noisy.obs = {k: v + rng.normal(0, 1e-8, v.shape).astype(v.dtype) for k, v in noisy.obs.items()}
    episodes.append(noisy)
    for i, e in enumerate(episodes):
        e.name = f"demo_{i}"
    found = check_duplicate_episodes(make_ctx(EpisodeDataset("window-close.hdf5", episodes, {}), tmp_path))
    assert [(f.severity, f.evidence.get("culprits")) for f in found if f.severity != "info"] == \
        [("warning", ["demo_1", "demo_9"])]
    [note] = [f for f in found if f.severity == "info"]
    assert "demo_0 ~ demo_8" in note.title and "not copies" in note.title


@needs_rendering
def test_a_stale_first_frame_is_found_in_the_camera_alone(tmp_path):
    # Two short window-close episodes rendered for real (reset, then the hand held still): the
    # window is placed at the reset. With each first frame swapped for the other episode's, the
    # camera is the only key that shows it.
    from vlascope.data.episodes import Episode, EpisodeDataset
    from vlascope.doctor.episode_checks import check_stale_first_observation

    env = MetaWorldEnv("window-close-v3", camera="corner2", image_size=32)
    episodes = []
    for seed in (1, 2):
        frames = [env.reset(seed)]
        frames += [env.step(np.zeros(4))[0] for _ in range(9)]
        episodes.append(Episode(actions=np.zeros((10, 4), np.float32), name=f"demo_{seed}",
                                obs={k: np.stack([f[k] for f in frames]) for k in ("robot_state", "corner2_image")}))
    healthy = EpisodeDataset("window-close.hdf5", episodes, {})
    [found] = check_stale_first_observation(make_ctx(healthy, tmp_path))
    assert found.severity == "ok", found.title
    stale = copy.deepcopy(healthy)
    start_from_the_previous_scene(["corner2_image"])(stale.episodes)
    [found] = check_stale_first_observation(make_ctx(stale, tmp_path))
    assert found.severity == "warning" and found.title.startswith("the first observation of 2 of 2")
    assert [row["key"] for row in found.evidence["stale"]] == ["corner2_image"]
    for e in stale.episodes:  # the same frames from a greyscale camera
        e.obs["corner2_image"] = e.obs["corner2_image"].mean(-1).astype(np.uint8)
    [found] = check_stale_first_observation(make_ctx(stale, tmp_path))
    assert [row["key"] for row in found.evidence["stale"]] == ["corner2_image"]


def test_a_lost_command_warns_and_an_unused_gripper_is_a_note(pick_place, reach_dataset, tmp_path):
    # pick-place's z command zeroed while the hand still goes down and up: the recording lost it.
    [lost] = check_near_constant_action_dim(make_ctx(edited(pick_place, pin_action_dim(2, 0.0)), tmp_path))
    assert lost.severity == "warning" and "robot_state dim 2" in lost.title
    # reach never uses the gripper: its command is constant and the gripper does not move.
    unused = check_near_constant_action_dim(make_ctx(reach_dataset, tmp_path))
    assert [(f.severity, f.evidence["dim"]) for f in unused] == [("info", 3)]


@needs_rendering
def test_the_goal_marker_is_measured_where_the_policy_reads_a_camera(pick_place_images, tmp_path):
    from vlascope.doctor.data_checks import _goal_marker_words, goal_visibility

    ctx = make_ctx(pick_place_images, tmp_path, inputs=["robot_state", "corner2_image"])
    marker = goal_visibility(ctx, "corner2_image")
    # pick-place's goal is a sphere drawn in the scene of each demo: a few of a 32 px frame's
    # pixels, more at 224 px.
    assert marker["task"] == "pick-place-v3" and marker["demos"] == 2
    small, large = marker["median_pixels"][32], marker["median_pixels"][224]
    assert 0 < small < 32 * 32 // 20 and large > small
    seen, fix, caveat = _goal_marker_words(marker)
    assert f"covers {small} of the 1024 pixels of the 32 px corner2 frames" in seen
    assert f"{large} at 224 px" in fix and "16x16" in caveat
    # A goal the camera does not show is named so, and its fix is another camera.
    seen, fix, caveat = _goal_marker_words({**marker, "median_pixels": {32: 0, 224: 0}})
    assert "the goal is not drawn in the 32 px corner2 frames" in seen and "camera that shows" in fix
    # Without a MetaWorld task there is nothing to draw.
    ctx.dataset.attrs["task"] = "a task of another simulator"
    assert goal_visibility(ctx, "corner2_image") is None
