"""Shared helpers for the benchmark scripts: run (train, evaluate) jobs in parallel processes."""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def train_and_eval(job: dict) -> dict:
    """job: datasets, policy, out, steps, eval_tasks, episodes, seed, fixed_init, overrides."""
    from vlascope.evaluate.runner import evaluate
    from vlascope.policies import load_pretrained
    from vlascope.train.loop import TrainConfig, resolve_device, train

    t0 = time.time()
    result = train(job["datasets"], job["policy"], job["out"],
                   TrainConfig(steps=job["steps"], ckpt_every=0, **job.get("train", {})),
                   job.get("overrides"), progress=False)
    policy = load_pretrained(result.last_checkpoint, device=resolve_device("auto"))
    evals = {}
    for task in job["eval_tasks"]:
        for fixed in job.get("fixed_init", [False]):
            report = evaluate(policy, task, job["episodes"], seed=job.get("seed", 0),
                              fixed_init=fixed, progress=False)
            evals[f"{task}{' (fixed init)' if fixed else ''}"] = report.summary
    return {"name": job["name"], "train_seconds": result.seconds, "final_loss": result.final_loss,
            "samples_per_second": result.samples_per_second, "evals": evals,
            "seconds": time.time() - t0}


def collect(job: dict) -> dict:
    from vlascope.envs.collect import collect_demos, expert_success

    report = collect_demos(job["task"], job["episodes"], job["out"], seed=job.get("seed", 0),
                           fixed_init=job.get("fixed_init", False), camera=job.get("camera"),
                           image_size=job.get("image_size", 96), progress=False)
    out = {"task": job["task"], "path": job["out"], "kept": report.kept,
           "attempted": report.attempted, "seconds": report.seconds}
    if job.get("expert_episodes"):
        out["expert_eval_success"] = expert_success(job["task"], job["expert_episodes"],
                                                    seed=job.get("seed", 0))
    return out


def run_parallel(fn, jobs: list[dict], workers: int | None = None) -> list[dict]:
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    threads = max(1, (os.cpu_count() or 1) // workers)
    if workers == 1:
        _init_worker(threads)
        return [fn(j) for j in jobs]
    import multiprocessing as mp

    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                             initializer=_init_worker, initargs=(threads,)) as pool:
        return list(pool.map(fn, jobs))


def ensure_dir(path: str | Path) -> Path:
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    return p
