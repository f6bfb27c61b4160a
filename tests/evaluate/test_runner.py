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
