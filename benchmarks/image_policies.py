"""Image + proprio policies, closed loop: 50 diverse demos with `corner2` images per task, each
head trained on images + hand/gripper state + the goal position, 50 evaluation episodes.

The goal is given as an input because MetaWorld does not draw it in the camera image for reach
and pick-place (without it a small CNN policy reached 6/32 on reach and 0/32 on pick-place, but
32/32 on button-press, whose target is visible).

Rendering: MUJOCO_GL=egl on the GPU machine (osmesa on CPU is ~5 frames/s: too slow for this).

    python benchmarks/image_policies.py [--tasks ...] [--heads flow diffusion] [--steps 20000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _jobs import collect, ensure_dir, run_parallel, train_and_eval  # noqa: E402

TASKS = ["pick-place-v3", "button-press-v3", "reach-v3"]
HEADS = ["flow", "diffusion"]
OBS_KEYS = ["robot_state", "goal", "corner2_image"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", nargs="+", default=TASKS)
    p.add_argument("--heads", nargs="+", default=HEADS)
    p.add_argument("--demos", type=int, default=50)
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--out", default="outputs/image_policies")
    args = p.parse_args()
    out = ensure_dir(args.out)
    t0 = time.time()
    collected = run_parallel(collect, [
        {"task": t, "episodes": args.demos, "out": str(out / f"{t}.hdf5"), "camera": "corner2",
         "image_size": args.image_size} for t in args.tasks], args.workers)
    print(f"collected in {time.time() - t0:.0f}s: " + ", ".join(
        f"{c['task']} {c['kept']}/{c['attempted']}" for c in collected), flush=True)
    jobs = [{"name": f"{t}/{h}", "datasets": [str(out / f"{t}.hdf5")], "policy": h,
             "out": str(out / "runs" / f"{t}-{h}"), "steps": args.steps, "eval_tasks": [t],
             "episodes": args.episodes, "overrides": {"obs_keys": OBS_KEYS},
             "train": {"batch_size": args.batch_size}} for t in args.tasks for h in args.heads]
    results = run_parallel(train_and_eval, jobs, args.workers)
    print(f"\n{'run':32s} {'success':>14s} {'95% CI':>12s} {'loss':>8s} {'train s':>8s} {'samples/s':>10s}")
    for r in results:
        for name, s in r["evals"].items():
            lo, hi = s["success_ci95"]
            print(f"{r['name']:32s} {s['successes']:>4d}/{s['episodes']:<3d} ({100 * s['success_rate']:3.0f}%) "
                  f"[{100 * lo:3.0f},{100 * hi:3.0f}]% {r['final_loss']:8.4f} {r['train_seconds']:8.0f} "
                  f"{r['samples_per_second']:10.0f}")
    print(f"\ntotal wall time {time.time() - t0:.0f}s")
    (out / "results.json").write_text(json.dumps({"collected": collected, "results": results,
                                                  "args": vars(args)}, indent=2))


if __name__ == "__main__":
    main()
