"""How fast MetaWorld steps with a camera rendered every step, by the number of processes and of
envs (each with its own renderer) per process: the ceiling of image collection and of image
evaluation on a machine, and where it stops scaling (the GPU's EGL contexts, or the cores).

`--shadow-sizes` compares shadow map sizes (0: the default for the frame size,
`shadow_map_size`; 4096: MetaWorld's own): speed, and how far each one's frames are from
MetaWorld's on the same states (mean and 99th percentile of the absolute difference, grey levels).

    python benchmarks/render_speed.py [--processes 1 4 16] [--envs 1 8] [--image-size 128]
                                      [--shadow-sizes 0 4096]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _provenance import parse_args, write_results  # noqa: E402
from eval_speed import expert_steps  # noqa: E402


def expert_frames(job: dict):
    """Every 6th frame of the first 60 expert steps of one seeded episode."""
    import numpy as np

    from vlascope.envs import MetaWorldEnv, episode_seed, make_expert

    env = MetaWorldEnv(job["task"], camera="corner2", image_size=job["image_size"], shadow_size=job["shadow_size"])
    env.reset(episode_seed(0, 0, "eval"))
    expert = make_expert(job["task"])
    frames = []
    for i in range(60):
        obs, _, _ = env.step(np.clip(expert.get_action(env.last_flat_obs), -1, 1), render=i % 6 == 0)
        if i % 6 == 0:
            frames.append(obs["corner2_image"])
    return env.shadow_size, np.stack(frames).astype(np.float32)


def main() -> None:
    import numpy as np

    p = argparse.ArgumentParser()
    p.add_argument("--task", default="pick-place-v3")
    p.add_argument("--processes", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--envs", type=int, nargs="+", default=[1, 8], help="envs per process")
    p.add_argument("--image-size", type=int, default=128, help="0: no camera")
    p.add_argument("--shadow-sizes", type=int, nargs="+", default=[0],
                   help="shadow map sizes in px (0: the default for the frame size)")
    p.add_argument("--seconds", type=float, default=15.0)
    args = parse_args(p)
    rows = []
    ctx = mp.get_context("spawn")
    reference = None
    for shadow in args.shadow_sizes if args.image_size else [0]:
        difference = {}
        if args.image_size:
            # Rendered in a fresh process each: MuJoCo makes its GL context once per process.
            with ctx.Pool(1) as pool:
                if reference is None:
                    reference = pool.map(expert_frames, [{"task": args.task, "image_size": args.image_size,
                                                          "shadow_size": 4096}])[0][1]
                shadow_px, frames = pool.map(expert_frames, [{"task": args.task, "image_size": args.image_size,
                                                              "shadow_size": shadow or None}])[0]
            gap = np.abs(frames - reference)
            difference = {"shadow_size": shadow_px, "frame_difference_mean": float(gap.mean()),
                          "frame_difference_p99": float(np.percentile(gap, 99))}
            print(f"shadow map {shadow_px} px: frames differ from MetaWorld's (4096) by "
                  f"{gap.mean():.3f} grey levels on average (99th percentile {np.percentile(gap, 99):.0f})",
                  flush=True)
        for n in args.processes:
            for envs in args.envs:
                jobs = [{"task": args.task, "image_size": args.image_size, "envs": envs, "worker": w,
                         "seconds": args.seconds, "shadow_size": shadow or None} for w in range(n)]
                with ctx.Pool(n) as pool:
                    rate = sum(pool.map(expert_steps, jobs)) / args.seconds
                rows.append({**difference, "processes": n, "envs_per_process": envs, "env_steps_per_s": rate,
                             "per_process": rate / n})
                print(f"{n:3d} processes x {envs:2d} envs, {args.image_size or 'no'} px: {rate:8.0f} env steps/s "
                      f"({rate / n:.0f} a process)", flush=True)
    write_results(f"render_speed-{args.image_size or 'no'}px" if not args.recipe else "render_speed", args,
                  {"task": args.task, "image_size": args.image_size, "rows": rows})


if __name__ == "__main__":
    main()
