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
from _provenance import parse_args, write_results  # noqa: E402
from _jobs import add_common_args, collect, ensure_dir, print_results, run_parallel, train_and_eval  # noqa: E402

TASKS = ["reach-v3", "button-press-v3", "pick-place-v3"]
HEADS = ["diffusion", "flow", "mse"]
# The GPU machine's run: ten trainings share the GPU.
RECIPES = {"gpu": ["--steps", "20000", "--workers", "10"]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", nargs="+", default=TASKS)
    p.add_argument("--heads", nargs="+", default=HEADS)
    p.add_argument("--gap-head", default="flow")
    add_common_args(p, steps=20000, batch_size=256, out="outputs/closed_loop")
    args = parse_args(p, RECIPES)
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
             "episodes": args.episodes, "eval_workers": args.eval_workers,
             "train": {"batch_size": args.batch_size}} for t in args.tasks for h in args.heads]
    jobs.append({"name": f"{gap_task}/{args.gap_head} trained on one initial state",
                 "datasets": [str(out / f"{gap_task}-fixed.hdf5")], "policy": args.gap_head,
                 "out": str(out / "runs" / f"{gap_task}-fixed-{args.gap_head}"),
                 "steps": args.steps, "eval_tasks": [gap_task], "episodes": args.episodes,
                 "eval_workers": args.eval_workers, "train": {"batch_size": args.batch_size},
                 "fixed_init": [True, False]})
    results = run_parallel(train_and_eval, jobs, args.workers)

    print_results(results, expert)
    print(f"\ntotal wall time {time.time() - t0:.0f}s")
    result = {"collected": collected, "results": results, "args": vars(args)}
    (out / "results.json").write_text(json.dumps(result, indent=2))
    write_results("closed_loop", args, result)


if __name__ == "__main__":
    main()
