"""A training process killed with SIGKILL at random moments, many of them inside a checkpoint
save (one every step): the newest complete checkpoint must always load, and --resume goes on."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from tests.conftest import TINY_POLICY
from vlascope.policies import load_pretrained
from vlascope.train.checkpoint import latest_checkpoint


def test_killed_runs_keep_a_loadable_checkpoint_and_resume(reach_dataset, tmp_path):
    run = tmp_path / "run"
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({"policy": TINY_POLICY,
                                  "train": {"ckpt_every": 1, "log_every": 1, "batch_size": 8}}))
    rng = np.random.default_rng(0)
    killed_mid_save = 0
    for attempt in range(4):
        args = (["--resume", str(run)] if attempt else
                ["--dataset", reach_dataset, "--policy", "flow", "--out", str(run), "--config", str(config)])
        proc = subprocess.Popen([sys.executable, "-m", "vlascope", "train", *args, "--steps", "100000"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
        deadline = time.time() + 120
        before = len(list((run / "checkpoints").glob("step_*"))) if (run / "checkpoints").exists() else 0
        while time.time() < deadline:  # wait until this process has written a checkpoint
            if (run / "checkpoints").exists() and len(list((run / "checkpoints").glob("step_*"))) > before:
                break
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            time.sleep(0.05)
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        leftovers = [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
        killed_mid_save += bool(leftovers)
        # Whatever the moment, `last` and the newest step folder load and predict.
        for folder in (run / "checkpoints" / "last", latest_checkpoint(run)):
            policy = load_pretrained(folder)
            assert policy.config.obs_dims
    print(f"{killed_mid_save} of 4 kills landed inside a checkpoint save")
    steps = [int(p.name[5:]) for p in (run / "checkpoints").glob("step_*")]
    assert max(steps) > 4  # the resumed runs went on past the first one's checkpoints
