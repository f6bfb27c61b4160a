"""The benchmarks' one way of timing: a call's mean wall time after a warm-up, with the device
synchronised at both ends, and a training run's steady rate from its loss.csv."""

from __future__ import annotations

import csv
import statistics
import time
from pathlib import Path


def sync(device) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def seconds_per_call(fn, calls: int, device="cpu", warmup: int = 3) -> float:
    """Mean wall time of fn() over `calls` calls, after `warmup` calls that are not timed
    (compilation, CUDA graph capture, allocator growth)."""
    for _ in range(warmup):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    sync(device)
    return (time.perf_counter() - start) / calls


def steady_samples_per_second(run_dir: str | Path) -> float:
    """The median logged rate over the second half of a run (start-up and compilation excluded)."""
    with open(Path(run_dir) / "loss.csv", newline="") as f:
        rates = [float(r["samples_per_s"]) for r in csv.DictReader(f)]
    return statistics.median(rates[len(rates) // 2:])
