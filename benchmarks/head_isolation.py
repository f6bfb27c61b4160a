"""Head isolation on a VLA-sized synthetic problem: 100 random 512-dim conditions -> random
(16, 7) = 112-dim chunks, a flow head with our MLP denoiser, batch 100, 3000 steps.

A published VLA pipeline's head-isolation check reaches flow loss 0.36 on this problem; the
same recipe with our MLP (lr 3e-4 constant, uniform t, velocity target) is the reference row.
Every other row changes one factor of our recommended configuration ("ours") at a time.

Two loss columns, because the training loss is an average over the run's own time distribution
and non-uniform samplers spend less of it on the hard t -> 1 end: "train loss" is the mean over
the last 100 steps; "uniform-t loss" re-evaluates the final net on every condition under
uniform t (20 noise draws each), the same yardstick for every row. "rel err" is the mean
|sample - target| / target std of one 10-step Euler sample per condition.

    python benchmarks/head_isolation.py [--workers 2] [--only reference ours "width 512"]

The figures, with their commands and machine: benchmarks/README.md, "Head isolation".
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _provenance import parse_args, write_results  # noqa: E402
from _jobs import run_parallel  # noqa: E402

COND_DIM, CHUNK = 512, (16, 7)
OURS = {"time": "uniform", "lr": 1e-3, "schedule": "cosine", "width": 256, "depth": 3,
        "prediction": "velocity", "steps": 3000, "seed": 0}
ROWS = {  # name -> what changes relative to OURS
    "reference": {"lr": 3e-4, "schedule": "constant"},
    "ours": {},
    "ours, seed 1": {"seed": 1},
    "ours, seed 2": {"seed": 2},
    "constant lr": {"schedule": "constant"},
    "lr 3e-4": {"lr": 3e-4},
    "lr 3e-3": {"lr": 3e-3},
    "t ~ beta": {"time": "beta"},
    "t ~ logit-normal": {"time": "logit_normal"},
    "width 128": {"width": 128},
    "depth 1": {"depth": 1},
    "predict x1": {"prediction": "sample"},
    "1500 steps": {"steps": 1500},
    # Slow (about x3 and x2 the time of "ours"), so only with --only.
    "width 512": {"width": 512},
    "depth 6": {"depth": 6},
}
DEFAULT_ROWS = [n for n in ROWS if n not in ("width 512", "depth 6")]


def run(job: dict) -> dict:
    import torch

    from vlascope.doctor.head_isolation import fit_synthetic, synthetic_pairs
    from vlascope.policies.blocks.denoisers import MLPDenoiser
    from vlascope.policies.blocks.heads import FlowHead

    c = job["config"]
    torch.manual_seed(c["seed"])
    head = FlowHead(MLPDenoiser(CHUNK[1], CHUNK[0], COND_DIM, c["width"], c["depth"]), 10, c["time"],
                    prediction=c["prediction"])
    r = fit_synthetic(head, COND_DIM, CHUNK, steps=c["steps"], batch_size=100, lr=c["lr"], warmup=100,
                      seed=c["seed"], schedule=c["schedule"])
    cond, target = synthetic_pairs(COND_DIM, CHUNK, seed=c["seed"])
    head.time_sampling = "uniform"
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(1)
        uniform = torch.stack([head.loss(cond, target) for _ in range(20)]).mean().item()
    return {"name": job["name"], "params": sum(p.numel() for p in head.parameters()),
            "uniform_loss": uniform, **{k: v for k, v in r.items() if k != "loss_curve"}}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--only", nargs="+", default=DEFAULT_ROWS, choices=list(ROWS))
    p.add_argument("--steps", type=int, default=None, help="override every row's steps (smoke test)")
    args = parse_args(p)
    jobs = [{"name": n, "config": OURS | ROWS[n] | ({"steps": args.steps} if args.steps else {})}
            for n in args.only]
    t0 = time.time()
    results = run_parallel(run, jobs, args.workers)
    print(f"{'row':16s} {'time':>12s} {'lr':>6s} {'sched':>8s} {'w x d':>7s} {'pred':>8s} {'steps':>5s} "
          f"{'params':>8s} {'first':>7s} {'train loss':>10s} {'uniform-t loss':>14s} {'rel err':>7s} {'s':>4s}")
    for job, r in zip(jobs, results):
        c = job["config"]
        print(f"{r['name']:16s} {c['time']:>12s} {c['lr']:6.0e} {c['schedule']:>8s} {c['width']:>3d} x "
              f"{c['depth']:d} {c['prediction']:>8s} {c['steps']:5d} {r['params']:8d} {r['first_loss']:7.3f} "
              f"{r['final_loss']:10.4f} {r['uniform_loss']:14.4f} {r['relative_error']:7.4f} {r['seconds']:4.0f}")
    print(f"total {time.time() - t0:.0f} s")
    write_results("head_isolation", args, {"rows": [{**job["config"], **r} for job, r in zip(jobs, results)]})


if __name__ == "__main__":
    main()
