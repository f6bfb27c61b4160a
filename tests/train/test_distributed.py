"""Two training processes through `accelerate launch`, on CPU (gloo): the same script a
multi-GPU machine runs."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY_POLICY


@pytest.mark.skipif(shutil.which("accelerate", path=str(Path(sys.executable).parent)) is None,
                    reason="accelerate's launcher is not installed")
def test_two_processes_train_in_sync(reach_dataset, tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(json.dumps({"policy": TINY_POLICY, "train": {"log_every": 1}}))
    launcher = Path(sys.executable).parent / "accelerate"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "vlascope", "train",
         "--dataset", reach_dataset, "--policy", "flow", "--out", str(tmp_path / "run"),
         "--steps", "6", "--batch-size", "16", "--device", "cpu", "--config", str(config)],
        capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("trained flow") == 1  # one report, from process 0
    cfg = json.loads((tmp_path / "run" / "checkpoints" / "last" / "config.json").read_text())
    # Each process drew its own batches; DDP averaged the gradients, so the weights agree.
    assert cfg["distributed"] == {"world_size": 2, "replicas_in_sync": True}
    assert cfg["step"] == 6
