"""A training process killed with SIGKILL, at random moments and inside a checkpoint save (one
every step): the newest complete checkpoint must always load, and --resume goes on."""

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

# The real `vlascope train`, with its third checkpoint save held open: the policy's files are in
# the save's temporary folder, train_state.pt and the rename are not done, and the marker file
# says so. A kill then lands inside a save whatever the machine's speed.
HELD_SAVE = """
import pathlib, sys, time
import vlascope.train.checkpoint as checkpoint
from vlascope.cli import main

marker, real, calls = pathlib.Path(sys.argv[1]), checkpoint.save_pretrained, []

def held(*args, **kwargs):
    real(*args, **kwargs)
    calls.append(1)
    if len(calls) == 3:
        marker.write_text("inside a save")
        time.sleep(600)

checkpoint.save_pretrained = held
sys.exit(main(sys.argv[2:]))
"""


def hidden(run):
    """A save's temporary folders (and link) under checkpoints/."""
    folder = run / "checkpoints"
    return [p for p in folder.iterdir() if p.name.startswith(".")] if folder.exists() else []


def test_killed_runs_keep_a_loadable_checkpoint_and_resume(reach_dataset, tmp_path):
    run = tmp_path / "run"
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({"policy": TINY_POLICY,
                                  "train": {"ckpt_every": 1, "log_every": 1, "batch_size": 8}}))
    rng = np.random.default_rng(0)
    # Killed inside a save, at random, inside a save again: each kind of kill on a run resumed
    # after the other kind, and the two held runs alone complete four saves.
    for attempt in range(3):
        held = attempt % 2 == 0
        marker = tmp_path / f"saving-{attempt}"
        args = (["--resume", str(run)] if attempt else
                ["--dataset", reach_dataset, "--policy", "flow", "--out", str(run), "--config", str(config)])
        earlier = set(hidden(run))
        command = ["-c", HELD_SAVE, str(marker)] if held else ["-m", "vlascope"]
        proc = subprocess.Popen([sys.executable, *command, "train", *args, "--steps", "100000"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
        deadline = time.time() + 120
        before = len(list((run / "checkpoints").glob("step_*"))) if (run / "checkpoints").exists() else 0

        def ready() -> bool:
            if held:
                return marker.exists()
            return (run / "checkpoints").exists() and len(list((run / "checkpoints").glob("step_*"))) > before

        while not ready():
            assert time.time() < deadline, "no checkpoint within 120 s"
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            time.sleep(0.05)
        if not held:
            time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if held:  # this kill left a half-written save, never renamed into place
            new = [p for p in hidden(run) if p not in earlier and p.is_dir()]
            assert new and not any((p / "train_state.pt").exists() for p in new)
        # Whatever the moment, `last` and the newest step folder load and predict.
        for folder in (run / "checkpoints" / "last", latest_checkpoint(run)):
            policy = load_pretrained(folder)
            assert policy.config.obs_dims
    steps = [int(p.name[5:]) for p in (run / "checkpoints").glob("step_*")]
    assert max(steps) > 4  # the resumed runs went on past the first one's checkpoints
