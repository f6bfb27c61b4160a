import numpy as np

from tests.conftest import needs_rendering
from vlascope.envs import episode_seed
from vlascope.evaluate.runner import evaluate, fixed_initial_state
from vlascope.policies import load_pretrained


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

    def step(self, action):  # the real simulator, failing once in the second episode
        calls["n"] += 1
        if calls["n"] == 16 + 5:
            raise mujoco.FatalError("mj_stackAlloc: insufficient memory")
        return real_step(self, action)

    monkeypatch.setattr(MetaWorldEnv, "step", step)
    report = evaluate(policy, "reach-v3", 3, seed=5, max_steps=16, progress=False)
    assert [e.error is not None for e in report.episodes] == [False, True, False]
    assert "FatalError: mj_stackAlloc" in report.episodes[1].error
    assert not report.episodes[1].success and report.summary["errors"] == 1
    assert report.episodes[0].episode_return == clean.episodes[0].episode_return
    assert report.episodes[2].length == 16  # a fresh env ran the next episode
