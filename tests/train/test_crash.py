"""A training process killed with SIGKILL, at random moments and inside a checkpoint save (one
every step): the newest complete checkpoint must always load, and --resume goes on."""

import json
import multiprocessing
import os
import time

import numpy as np

from tests.conftest import TINY_POLICY
from vlascope.policies import load_pretrained
from vlascope.train.checkpoint import latest_checkpoint

# What `vlascope train` imports before its first step, loaded once in a fork server: each run
# is a process forked from it, killed as any run is, without an interpreter's start-up each.
PRELOAD = ["torch", "torch._dynamo", "vlascope.cli", "vlascope.train", "vlascope.policies"]


def train(argv: list[str], marker: str | None, log: str) -> None:
    """`vlascope train argv` (the entry point's main()), stderr to `log`. With a `marker`, its
    third checkpoint save is held open: the policy's files are in the save's temporary folder,
    train_state.pt and the rename are not done, and the marker file says so. A kill then lands
    inside a save whatever the machine's speed."""
    import pathlib
    import sys

    import torch

    import vlascope.train.checkpoint as checkpoint
    from vlascope.cli import main

    os.dup2(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    torch.set_num_threads(1)
    if marker is not None:
        real, calls = checkpoint.save_pretrained, []

        def held(*args, **kwargs):
            real(*args, **kwargs)
            calls.append(1)
            if len(calls) == 3:
                pathlib.Path(marker).write_text("inside a save")
                time.sleep(600)

        checkpoint.save_pretrained = held
    sys.exit(main(argv))


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
    processes = multiprocessing.get_context("forkserver")
    processes.set_forkserver_preload(PRELOAD)
    # Killed inside a save, at random, inside a save again: each kind of kill on a run resumed
    # after the other kind, and the two held runs alone complete four saves.
    for attempt in range(3):
        held = attempt % 2 == 0
        marker = tmp_path / f"saving-{attempt}"
        log = tmp_path / f"stderr-{attempt}"
        args = (["--resume", str(run)] if attempt else
                ["--dataset", reach_dataset, "--policy", "flow", "--out", str(run), "--config", str(config)])
        earlier = set(hidden(run))
        proc = processes.Process(target=train, args=(["train", *args, "--steps", "100000"],
                                                     str(marker) if held else None, str(log)))
        proc.start()
        deadline = time.time() + 120
        before = len(list((run / "checkpoints").glob("step_*"))) if (run / "checkpoints").exists() else 0

        def ready() -> bool:
            if held:
                return marker.exists()
            return (run / "checkpoints").exists() and len(list((run / "checkpoints").glob("step_*"))) > before

        while not ready():
            assert time.time() < deadline, "no checkpoint within 120 s"
            assert proc.is_alive(), log.read_text()[-2000:] if log.exists() else proc.exitcode
            time.sleep(0.05)
        if not held:
            time.sleep(rng.uniform(0.05, 0.6))
        proc.kill()  # SIGKILL
        proc.join()
        if held:  # this kill left a half-written save, never renamed into place
            new = [p for p in hidden(run) if p not in earlier and p.is_dir()]
            assert new and not any((p / "train_state.pt").exists() for p in new)
        # Whatever the moment, `last` and the newest step folder load and predict.
        for folder in (run / "checkpoints" / "last", latest_checkpoint(run)):
            policy = load_pretrained(folder)
            assert policy.config.obs_dims
    steps = [int(p.name[5:]) for p in (run / "checkpoints").glob("step_*")]
    assert max(steps) > 4  # the resumed runs went on past the first one's checkpoints
