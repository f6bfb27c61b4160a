import numpy as np
import pytest
import torch

from tests.conftest import TINY_POLICY, needs_rendering
from vlascope.envs import episode_seed
from vlascope.errors import VlascopeError
from vlascope.evaluate.runner import evaluate, fixed_initial_state
from vlascope.policies import load_pretrained
from vlascope.policies.interface import ActionPolicy, ClosedLoop, PolicySpec


def test_closed_loop_eval_in_real_env(trained_run, tmp_path):
    policy = load_pretrained(trained_run.last_checkpoint)
    report = evaluate(policy, "reach-v3", 2, seed=0, max_steps=24, progress=False)
    assert len(report.episodes) == 2
    for i, ep in enumerate(report.episodes):
        assert ep.seed == episode_seed(0, i, "eval") and ep.seed % 2 == 1
        assert 0 < ep.length <= 24
        assert ep.reached is None and ep.grasped is None  # reach has no object to grasp
    s = report.summary
    assert s["episodes"] == 2 and 0 <= s["success_ci95"][0] <= s["success_ci95"][1] <= 1
    assert report.to_json()["episodes"][0]["initial_state"]


def test_same_seed_same_results(trained_run):
    policy = load_pretrained(trained_run.last_checkpoint)
    a = evaluate(policy, "reach-v3", 2, seed=3, max_steps=16, progress=False)
    b = evaluate(policy, "reach-v3", 2, seed=3, max_steps=16, progress=False)
    assert [e.episode_return for e in a.episodes] == [e.episode_return for e in b.episodes]


def test_fixed_init_eval_starts_where_a_fixed_init_dataset_does(trained_run):
    policy = load_pretrained(trained_run.last_checkpoint)
    report = evaluate(policy, "reach-v3", 2, seed=0, fixed_init=True, max_steps=8, progress=False)
    state = fixed_initial_state("reach-v3", 0)
    for ep in report.episodes:
        np.testing.assert_allclose(ep.initial_state, state)


@needs_rendering
def test_video_is_written(trained_run, tmp_path):

    policy = load_pretrained(trained_run.last_checkpoint)
    path = tmp_path / "eval.mp4"
    evaluate(policy, "reach-v3", 1, max_steps=8, video_path=str(path), progress=False)
    assert path.stat().st_size > 1000


def test_a_simulator_failure_fails_that_episode_and_the_run_goes_on(trained_run, monkeypatch):
    import mujoco

    from vlascope.envs import MetaWorldEnv

    policy = load_pretrained(trained_run.last_checkpoint)
    clean = evaluate(policy, "reach-v3", 3, seed=5, max_steps=16, progress=False)
    real_step, calls = MetaWorldEnv.step, {"n": 0}

    def step(self, action, render=True):  # the real simulator, failing once in the second episode
        calls["n"] += 1
        if calls["n"] == 16 + 5:
            raise mujoco.FatalError("mj_stackAlloc: insufficient memory")
        return real_step(self, action, render)

    monkeypatch.setattr(MetaWorldEnv, "step", step)
    report = evaluate(policy, "reach-v3", 3, seed=5, max_steps=16, progress=False)
    assert [e.error is not None for e in report.episodes] == [False, True, False]
    assert "FatalError: mj_stackAlloc" in report.episodes[1].error
    assert not report.episodes[1].success and report.summary["errors"] == 1
    assert report.episodes[0].episode_return == clean.episodes[0].episode_return
    assert report.episodes[2].length == 16  # a fresh env ran the next episode


@pytest.fixture(scope="module")
def mse_checkpoint(reach_dataset, tmp_path_factory):
    """A 32-wide mse policy after 20 steps: it samples no noise, so batching several envs into
    one policy call must change nothing."""
    from tests.conftest import TINY_POLICY
    from vlascope.train import TrainConfig, train

    return train([reach_dataset], "mse", tmp_path_factory.mktemp("mse"), TrainConfig(steps=20, batch_size=16),
                 dict(TINY_POLICY), progress=False).last_checkpoint


@pytest.fixture(scope="module")
def mse_in_process(mse_checkpoint):
    """The episodes the pooled runs below must reproduce, from one env in this process."""
    return evaluate(load_pretrained(mse_checkpoint), "reach-v3", 5, seed=2, max_steps=30, progress=False)


def same_episodes(a, b):
    assert [e.seed for e in b.episodes] == [e.seed for e in a.episodes]
    for x, y in zip(a.episodes, b.episodes):
        assert (x.length, x.success) == (y.length, y.success)
        assert x.episode_return == pytest.approx(y.episode_return, rel=1e-5)


def test_worker_envs_batch_inference_run_whole_segments_and_match_the_in_process_run(
        mse_checkpoint, mse_in_process, monkeypatch):
    # One pool (a start-up costs seconds a worker) answers both questions: two workers of two
    # envs each batch their envs into one policy call, which for mse changes nothing, and a
    # worker answers once per chunk (n_action_steps = 4 steps), not once per step.
    from vlascope.evaluate import pool

    policy = load_pretrained(mse_checkpoint)
    sizes = []
    real_submit = pool.WorkerEnvs.submit

    def submit(self, slot, command, *args):
        if command == "run":
            sizes.append(len(args[0]))
        return real_submit(self, slot, command, *args)

    monkeypatch.setattr(pool.WorkerEnvs, "submit", submit)
    pooled = evaluate(policy, "reach-v3", 5, seed=2, max_steps=30, progress=False, workers=2,
                      envs_per_worker=2)
    same_episodes(mse_in_process, pooled)
    assert set(sizes) == {policy.config.n_action_steps} == {4}
    assert sum(e.length for e in pooled.episodes) <= 4 * len(sizes)


def test_a_compiled_policy_gives_the_same_episodes(mse_checkpoint, mse_in_process):
    # torch.compile (CUDA graphs on a GPU) with batches padded to the env count (2 envs, and at
    # the end one episode left): the padding rows must not reach an env or shift the results.
    policy = load_pretrained(mse_checkpoint)
    compiled = evaluate(policy, "reach-v3", 5, seed=2, max_steps=30, progress=False, workers=1,
                        envs_per_worker=2, compile=True)
    same_episodes(mse_in_process, compiled)


def test_a_crashed_worker_fails_its_episodes_and_is_replaced(mse_checkpoint, monkeypatch):
    import os
    import signal

    from vlascope.evaluate import pool

    policy = load_pretrained(mse_checkpoint)
    real_submit, calls = pool.WorkerEnvs.submit, {"runs": 0, "killed": False}

    def submit(self, slot, command, *args):
        calls["runs"] += int(command == "run")
        if calls["runs"] >= 6 and slot // self.per_worker == 1 and not calls["killed"]:
            os.kill(self.procs[1].pid, signal.SIGKILL)  # worker 1 dies mid-episode
            self.procs[1].join(5)
            calls["killed"] = True
        return real_submit(self, slot, command, *args)

    monkeypatch.setattr(pool.WorkerEnvs, "submit", submit)
    report = evaluate(policy, "reach-v3", 8, seed=2, max_steps=20, progress=False, workers=2,
                      envs_per_worker=2)
    errors = [e.error for e in report.episodes]
    # Worker 1 held two envs: the episodes on both fail; a fresh worker runs the rest.
    assert 1 <= sum(e is not None for e in errors) <= 2, errors
    assert all("env worker crashed (exit code -9)" in e for e in errors if e), errors
    assert all(e.length == 20 or e.success for e, err in zip(report.episodes, errors) if err is None), \
        [(e.length, e.success, e.error) for e in report.episodes]
    assert all(r is not None for r in report.episodes)


def test_several_tasks_share_one_pool_and_each_gets_the_episodes_it_would_alone(reach_dataset, button_dataset,
                                                                                  tmp_path):
    # A policy of two tasks, told which by the instruction: one pool (two workers, each holding
    # envs of both tasks, each env used for more than one episode) must give every env the
    # instruction of its own task, and each task the episodes it gets alone. The policy samples
    # (flow): each episode draws its noise from its own generator, so which envs share a policy
    # call (asynchronous workers batch whoever is waiting) does not change what an episode samples.
    from vlascope.evaluate.runner import evaluate_tasks
    from vlascope.train import TrainConfig, train

    run = train([reach_dataset, button_dataset], "flow", tmp_path,
                TrainConfig(steps=40, batch_size=16, warmup_steps=1, ckpt_every=0),
                {**TINY_POLICY, "language": True}, progress=False)
    policy = load_pretrained(run.last_checkpoint)
    tasks = ["reach-v3", "button-press-v3"]
    assert policy.config.task_names == tasks
    together = evaluate_tasks(policy, tasks, 3, seed=1, max_steps=15, progress=False, workers=2,
                              envs_per_worker=2)
    assert list(together) == tasks
    for task in tasks:
        alone = evaluate(policy, task, 3, seed=1, max_steps=15, progress=False)
        assert [(e.seed, e.length, e.success) for e in together[task].episodes] == \
            [(e.seed, e.length, e.success) for e in alone.episodes]
        assert [e.episode_return for e in together[task].episodes] == \
            pytest.approx([e.episode_return for e in alone.episodes], rel=1e-5)


@needs_rendering
def test_a_segment_renders_only_the_frames_the_policy_reads():
    from vlascope.envs import MetaWorldEnv
    from vlascope.evaluate.pool import run_segment

    env = MetaWorldEnv("reach-v3", camera="corner2", image_size=16)
    env.reset(1)
    rendered = []
    real_render = env.render
    env.render = lambda *a, **k: rendered.append(1) or real_render(*a, **k)
    segment = run_segment(env, np.zeros((8, 4)), keep=2)
    assert segment.steps == 8 and len(rendered) == 2
    assert all(o["corner2_image"].shape == (16, 16, 3) for o in segment.observations)


class _ZeroPolicy(ActionPolicy):
    """A user's policy that reads `obs_shapes` and always stands still."""

    name = "zeros"

    def __init__(self, obs_shapes: dict):
        self.spec = PolicySpec(obs_shapes, 4, 1, 4, 4)

    def predict_chunk(self, obs, seed=0, task_index=None):
        return torch.zeros(len(obs["robot_state"]), 4, 4)


def test_a_policy_reading_what_metaworld_does_not_give_is_refused_in_one_line():
    with pytest.raises(VlascopeError, match="reads wrist_state, which MetaWorld's env does not give"):
        evaluate(ClosedLoop(_ZeroPolicy({"robot_state": (4,), "wrist_state": (3,)})), "reach-v3", 1)
    with pytest.raises(VlascopeError, match="reads 'goal' of 7 dims; MetaWorld's env gives 3"):
        evaluate(ClosedLoop(_ZeroPolicy({"robot_state": (4,), "goal": (7,)})), "reach-v3", 1)
    ran = evaluate(ClosedLoop(_ZeroPolicy({"robot_state": (4,), "goal": (3,)})), "reach-v3", 1, max_steps=4,
                   progress=False)
    assert ran.episodes[0].length == 4 and not ran.episodes[0].error
