"""Closed-loop success of each head on reach, button-press and pick-place (state observations).

For each task: collect 50 diverse expert demos, train each head, evaluate 50 episodes from
unseen initial states, and report the expert's own success on those same seeds beside ours.
Then the memorisation gap: the same pick-place policy trained on a --fixed-init dataset,
evaluated on its training state and on random states.

    python benchmarks/closed_loop.py [--steps 20000] [--workers 8] [--out outputs/closed_loop]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _jobs import collect, ensure_dir, run_parallel, train_and_eval  # noqa: E402

TASKS = ["reach-v3", "button-press-v3", "pick-place-v3"]
HEADS = ["diffusion", "flow", "mse"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", nargs="+", default=TASKS)
    p.add_argument("--heads", nargs="+", default=HEADS)
    p.add_argument("--demos", type=int, default=50)
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--gap-head", default="flow")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--out", default="outputs/closed_loop")
    args = p.parse_args()
    out = ensure_dir(args.out)
    t0 = time.time()

    collect_jobs = [{"task": t, "episodes": args.demos, "out": str(out / f"{t}.hdf5"),
                     "expert_episodes": args.episodes} for t in args.tasks]
    gap_task = "pick-place-v3"
    collect_jobs.append({"task": gap_task, "episodes": args.demos, "fixed_init": True,
                         "out": str(out / f"{gap_task}-fixed.hdf5")})
    collected = run_parallel(collect, collect_jobs, args.workers)
    expert = {c["task"]: c["expert_eval_success"] for c in collected if "expert_eval_success" in c}

    jobs = [{"name": f"{t}/{h}", "datasets": [str(out / f"{t}.hdf5")], "policy": h,
             "out": str(out / "runs" / f"{t}-{h}"), "steps": args.steps, "eval_tasks": [t],
             "episodes": args.episodes} for t in args.tasks for h in args.heads]
    jobs.append({"name": f"{gap_task}/{args.gap_head} trained on one initial state",
                 "datasets": [str(out / f"{gap_task}-fixed.hdf5")], "policy": args.gap_head,
                 "out": str(out / "runs" / f"{gap_task}-fixed-{args.gap_head}"),
                 "steps": args.steps, "eval_tasks": [gap_task], "episodes": args.episodes,
                 "fixed_init": [True, False]})
    results = run_parallel(train_and_eval, jobs, args.workers)

    print(f"\n{'run':58s} {'success':>14s} {'95% CI':>12s} {'expert':>8s} {'loss':>8s} {'train s':>8s}")
    for r in results:
        for name, s in r["evals"].items():
            task = name.split(" ")[0]
            lo, hi = s["success_ci95"]
            label = r["name"] + ("" if name == task else name[len(task):])
            print(f"{label:58s} {s['successes']:>4d}/{s['episodes']:<3d} ({100 * s['success_rate']:3.0f}%) "
                  f"[{100 * lo:3.0f},{100 * hi:3.0f}]% {100 * expert.get(task, float('nan')):7.0f}% "
                  f"{r['final_loss']:8.4f} {r['train_seconds']:8.0f}")
    print(f"\ntotal wall time {time.time() - t0:.0f}s")
    (out / "results.json").write_text(json.dumps({"collected": collected, "results": results,
                                                  "args": vars(args)}, indent=2))


if __name__ == "__main__":
    main()
