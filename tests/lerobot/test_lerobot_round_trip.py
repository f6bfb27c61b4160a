"""vlascope's LeRobot v3.0 export read by the real `lerobot` package, and a dataset lerobot writes
itself read by vlascope, frame for frame (benchmarks/lerobot_roundtrip.py). Runs in the LeRobot
tier (`make test-lerobot`); the main suite skips it where lerobot is not importable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lerobot", reason="the LeRobot tier runs with `make test-lerobot`")


def test_round_trip_with_the_real_lerobot(reach_dataset, tmp_path):
    script = Path(__file__).parents[2] / "benchmarks" / "lerobot_roundtrip.py"
    proc = subprocess.run([sys.executable, str(script), "--dataset", reach_dataset, "--work",
                           str(tmp_path / "rt"), "--lerobot-python", sys.executable],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "VLASCOPE_RESULTS_DIR": str(tmp_path / "results")})
    assert proc.returncode == 0 and "round trip: OK" in proc.stdout, proc.stdout + proc.stderr[-2000:]


def test_the_real_lerobot_reads_each_episode_of_a_folder_of_several_tasks_under_its_task(
        reach_dataset, button_dataset, tmp_path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from tests.conftest import two_task_lerobot_folder

    folder = two_task_lerobot_folder(reach_dataset, button_dataset, tmp_path / "two")
    ds = LeRobotDataset("vlascope/two", root=folder)
    assert ds.meta.total_tasks == 2
    first_of_each = [int(ds.meta.episodes[e]["dataset_from_index"]) for e in range(ds.meta.total_episodes)]
    tasks = [ds[i]["task"] for i in first_of_each]
    assert tasks == ["Reach a goal position"] * (len(tasks) - 1) + ["Press a button"]


def test_a_folder_of_several_tasks_written_by_the_real_lerobot_trains_one_policy(reach_dataset, button_dataset,
                                                                                  tmp_path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from tests.conftest import TINY_POLICY
    from vlascope.data import read_dataset
    from vlascope.evaluate.runner import policy_task_index
    from vlascope.policies import load_pretrained
    from vlascope.train import TrainConfig, train

    features = {"action": {"dtype": "float32", "shape": (4,), "names": None},
                "observation.state": {"dtype": "float32", "shape": (4,), "names": None}}
    written = LeRobotDataset.create("vlascope/two", fps=80, features=features, root=tmp_path / "two",
                                    use_videos=False)
    for source in (reach_dataset, button_dataset):
        data = read_dataset(source)
        for ep in data.episodes:
            for action, state in zip(ep.actions, ep.obs["robot_state"]):
                written.add_frame({"action": action, "observation.state": state,
                                   "task": data.attrs["instruction"]})
            written.save_episode()
    written.finalize()

    result = train([str(tmp_path / "two")], "flow", tmp_path / "run",
                   TrainConfig(steps=2, batch_size=8, warmup_steps=1, log_every=1, ckpt_every=0),
                   {**TINY_POLICY, "obs_keys": ["robot_state"], "language": True}, progress=False)
    policy = load_pretrained(result.run_dir / "checkpoints" / "last")
    assert policy.config.task_names == ["Reach a goal position", "Press a button"]
    assert [policy_task_index(policy, t) for t in ("reach-v3", "button-press-v3")] == [0, 1]
