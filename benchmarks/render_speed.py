"""How fast MetaWorld steps with a camera rendered every step, by the number of processes and of
envs (each with its own renderer) per process: the ceiling of image collection and of image
evaluation on a machine, and where it stops scaling (the GPU's EGL contexts, or the cores).

    python benchmarks/render_speed.py [--processes 1 4 16] [--envs 1 8] [--image-size 128]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _provenance import parse_args, write_results  # noqa: E402
from eval_speed import expert_steps  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--task", default="pick-place-v3")
    p.add_argument("--processes", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--envs", type=int, nargs="+", default=[1, 8], help="envs per process")
    p.add_argument("--image-size", type=int, default=128, help="0: no camera")
    p.add_argument("--seconds", type=float, default=15.0)
    args = parse_args(p)
    rows = []
    ctx = mp.get_context("spawn")
    for n in args.processes:
        for envs in args.envs:
            jobs = [{"task": args.task, "image_size": args.image_size, "envs": envs, "worker": w,
                     "seconds": args.seconds} for w in range(n)]
            with ctx.Pool(n) as pool:
                rate = sum(pool.map(expert_steps, jobs)) / args.seconds
            rows.append({"processes": n, "envs_per_process": envs, "env_steps_per_s": rate,
                         "per_process": rate / n})
            print(f"{n:3d} processes x {envs:2d} envs, {args.image_size or 'no'} px: {rate:8.0f} env steps/s "
                  f"({rate / n:.0f} a process)", flush=True)
    write_results(f"render_speed-{args.image_size or 'no'}px" if not args.recipe else "render_speed", args,
                  {"task": args.task, "image_size": args.image_size, "rows": rows})


if __name__ == "__main__":
    main()
