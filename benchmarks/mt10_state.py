"""One state policy over MetaWorld's MT10 tasks, conditioned on a learned task embedding.

50 expert demos per task, 50 evaluation episodes per task from unseen initial states; the
expert's own success on those same seeds is reported beside ours.

    python benchmarks/mt10_state.py [--policy flow] [--steps 30000] [--out outputs/mt10_state]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _jobs import collect, ensure_dir, run_parallel, train_and_eval  # noqa: E402

from vlascope.envs.metaworld import MT10_TASKS  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--policy", default="flow")
    p.add_argument("--demos", type=int, default=50)
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--steps", type=int, default=30000)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--out", default="outputs/mt10_state")
    args = p.parse_args()
    out = ensure_dir(args.out)
    t0 = time.time()
    collected = run_parallel(collect, [
        {"task": t, "episodes": args.demos, "out": str(out / f"{t}.hdf5"),
         "expert_episodes": args.episodes} for t in MT10_TASKS], args.workers)
    t_collect = time.time() - t0
    expert = {c["task"]: c["expert_eval_success"] for c in collected}

    # One training job; evaluation of the ten tasks is spread over processes afterwards.
    [trained] = run_parallel(train_and_eval, [{
        "name": f"mt10/{args.policy}", "datasets": [str(out / f"{t}.hdf5") for t in MT10_TASKS],
        "policy": args.policy, "out": str(out / "run"), "steps": args.steps, "eval_tasks": [],
        "episodes": args.episodes, "train": {"batch_size": args.batch_size}}], 1)
    t_train = time.time() - t0 - t_collect
    evals = run_parallel(_eval_task, [{"task": t, "ckpt": str(out / "run" / "checkpoints" / "last"),
                                        "episodes": args.episodes} for t in MT10_TASKS], args.workers)
    t_eval = time.time() - t0 - t_collect - t_train

    print(f"\n{'task':26s} {'ours':>14s} {'expert':>8s}")
    ours_all, expert_all = [], []
    for e in evals:
        s = e["summary"]
        ours_all.append(s["success_rate"])
        expert_all.append(expert[e["task"]])
        print(f"{e['task']:26s} {s['successes']:>4d}/{s['episodes']:<3d} ({100 * s['success_rate']:3.0f}%) "
              f"{100 * expert[e['task']]:7.0f}%")
    avg, avg_expert = sum(ours_all) / len(ours_all), sum(expert_all) / len(expert_all)
    print(f"{'average':26s} {100 * avg:13.1f}% {100 * avg_expert:7.1f}%")
    print(f"\nwall time: collect {t_collect:.0f}s, train {t_train:.0f}s "
          f"({trained['samples_per_second']:.0f} samples/s), eval {t_eval:.0f}s, "
          f"total {time.time() - t0:.0f}s")
    (out / "results.json").write_text(json.dumps({"collected": collected, "train": trained,
                                                  "evals": evals, "average": avg,
                                                  "expert_average": avg_expert,
                                                  "args": vars(args)}, indent=2))


def _eval_task(job: dict) -> dict:
    from vlascope.evaluate.runner import evaluate
    from vlascope.policies import load_pretrained

    policy = load_pretrained(job["ckpt"])
    report = evaluate(policy, job["task"], job["episodes"], progress=False)
    return {"task": job["task"], "summary": report.summary}


if __name__ == "__main__":
    main()
