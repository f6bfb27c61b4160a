"""Two training processes through `accelerate launch`, on CPU (gloo): the same script a
multi-GPU machine runs."""

import json
import math
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
    config.write_text(json.dumps({"policy": TINY_POLICY,
                                  "train": {"log_every": 1, "lr": 1e-3, "lr_scaling": "sqrt"}}))

    def launch(*train_args: str) -> subprocess.CompletedProcess:
        """`vlascope train` on two CPU processes through accelerate's launcher; it must succeed."""
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
             "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "vlascope",
             "train", *train_args],
            capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert proc.returncode == 0, proc.stderr[-8000:]  # the ranks' own errors precede the launcher's
        return proc

    proc = launch("--dataset", reach_dataset, "--policy", "flow", "--out", str(tmp_path / "run"),
                  "--steps", "6", "--batch-size", "16", "--device", "cpu", "--config", str(config))
    assert proc.stdout.count("trained flow") == 1  # one report, from process 0
    cfg = json.loads((tmp_path / "run" / "checkpoints" / "last" / "config.json").read_text())
    # Each process drew its own batches and noise (their generators ended apart); DDP averaged
    # the gradients, so the weights agree.
    assert cfg["distributed"] == {"world_size": 2, "lr": math.sqrt(2) * 1e-3, "draws": "own",
                                  "replicas_in_sync": True}
    assert cfg["step"] == 6
    # Two processes at lr_scaling sqrt: the optimiser ran at sqrt(2) times the configured rate.
    import torch

    state = torch.load(tmp_path / "run" / "checkpoints" / "last" / "train_state.pt", weights_only=False)
    assert state["optimizer"]["param_groups"][0]["initial_lr"] == math.sqrt(2) * 1e-3

    # Resumed on two processes (each seeds its draws again from step 6): the replicas still agree.
    launch("--resume", str(tmp_path / "run"), "--steps", "8")
    cfg = json.loads((tmp_path / "run" / "checkpoints" / "last" / "config.json").read_text())
    assert cfg["step"] == 8 and cfg["distributed"]["replicas_in_sync"] is True
    assert cfg["distributed"]["draws"] == "own"


def _averaging_worker(rank: int, store: str, out: str) -> None:
    import torch
    import torch.distributed as dist

    from vlascope.train.loop import average_per_bucket

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    inputs = [torch.randn(5, 3, generator=torch.Generator().manual_seed(r)) for r in range(2)]
    # Each process's own gradient, computed here for both, without DDP: the expected mean.
    local = []
    for x in inputs:
        net.zero_grad()
        net(x).square().sum().backward()
        local.append([p.grad.clone() for p in net.parameters()])
    net.zero_grad(set_to_none=True)
    model = torch.nn.parallel.DistributedDataParallel(net, gradient_as_bucket_view=True)
    average_per_bucket(model)
    model(inputs[rank]).square().sum().backward()  # after it the gradients view their buckets
    model.zero_grad(set_to_none=False)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        model(inputs[rank]).square().sum().backward()
    mean = all(torch.allclose(p.grad, (a + b) / 2, atol=1e-6) for p, a, b in zip(net.parameters(), *local))
    # One division for the model's one bucket; DDP alone divides each of the 4 gradients.
    divisions = sum(e.count for e in prof.key_averages() if e.key in ("aten::div_", "aten::mul_out"))
    Path(out, f"rank{rank}").write_text(f"{mean} {divisions}")
    dist.destroy_process_group()


def test_averaging_per_bucket_divides_once_a_bucket_and_gives_the_mean(tmp_path):
    import torch.multiprocessing as mp

    # Imported once, here, for both forked processes (DDP's constructor imports dynamo: 4 s each).
    import torch._dynamo  # noqa: F401

    import vlascope.train.loop  # noqa: F401

    # The two processes meet through a file, not through a port found free and then released,
    # which another process (gloo listens on ephemeral ports) may take in between.
    store = tmp_path / "store"
    # Forked from this process (already importing torch and vlascope) rather than spawned.
    mp.start_processes(_averaging_worker, args=(str(store), str(tmp_path)), nprocs=2, start_method="fork")
    assert [(tmp_path / f"rank{r}").read_text() for r in range(2)] == ["True 1", "True 1"]


def test_each_process_draws_its_own_noise_and_a_resumed_process_draws_the_same_again():
    import torch

    from vlascope.train.loop import seed_process

    def draws(rank: int, step: int) -> tuple:
        with torch.random.fork_rng(devices=[]):  # this test process's own generator is left as it was
            batches = torch.Generator()
            seed_process(0, rank, step, batches)
            return torch.randn(16), torch.randint(0, 10_000, (16,), generator=batches)

    first, second = draws(0, 0), draws(1, 0)
    # Two processes at one step: other flow noise and other batches.
    assert not torch.equal(first[0], second[0]) and not torch.equal(first[1], second[1])
    # A process resumed at a step repeats its draws from there; another step gives others.
    assert all(torch.equal(a, b) for a, b in zip(draws(1, 500), draws(1, 500)))
    assert not torch.equal(draws(1, 500)[0], second[0])
