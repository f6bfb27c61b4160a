"""One policy over MetaWorld's MT10 tasks: 50 expert demos per task, 50 evaluation episodes per
task from unseen initial states, the expert's own success on those seeds beside ours.

`--obs state` (default): object/goal state and a learned task embedding.
`--obs image`: a 96x96 corner2 camera + hand/gripper state + goal position, conditioned on each
task's instruction through its cached sentence embedding (all-MiniLM-L6-v2, stored in the
datasets at collection): one language-conditioned image policy.

    python benchmarks/mt10.py [--obs image] [--policy flow] [--steps 20000] [--out outputs/mt10]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _provenance import parse_args, write_results  # noqa: E402
from _jobs import add_common_args, collect, ensure_dir, eval_checkpoint, run_parallel, train_and_eval  # noqa: E402

from vlascope.envs.metaworld import MT10_TASKS  # noqa: E402

IMAGE_KEYS = ["robot_state", "goal", "corner2_image"]
RECIPES = {"gpu-state": ["--steps", "30000", "--workers", "10"],
           "gpu-image": ["--obs", "image", "--steps", "15000", "--batch-size", "256", "--workers", "10"]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--policy", default="flow")
    p.add_argument("--obs", choices=["state", "image"], default="state")
    p.add_argument("--image-size", type=int, default=96)
    add_common_args(p, steps=30000, batch_size=512, out="outputs/mt10")
    args = parse_args(p, RECIPES)
    out = ensure_dir(args.out)
    image = args.obs == "image"
    t0 = time.time()
    collected = run_parallel(collect, [
        {"task": t, "episodes": args.demos, "out": str(out / f"{t}.hdf5"),
         "expert_episodes": args.episodes, "camera": "corner2" if image else None,
         "image_size": args.image_size} for t in MT10_TASKS], args.workers)
    t_collect = time.time() - t0
    expert = {c["task"]: c["expert_eval_success"] for c in collected}
    print(f"collected in {t_collect:.0f}s", flush=True)

    # One training job; evaluation of the ten tasks is spread over processes afterwards.
    overrides = {"obs_keys": IMAGE_KEYS, "language": True} if image else {}
    [trained] = run_parallel(train_and_eval, [{
        "name": f"mt10/{args.policy}", "datasets": [str(out / f"{t}.hdf5") for t in MT10_TASKS],
        "policy": args.policy, "out": str(out / "run"), "steps": args.steps, "eval_tasks": [],
        "episodes": args.episodes, "overrides": overrides,
        "train": {"batch_size": args.batch_size}}], 1)
    t_train = time.time() - t0 - t_collect
    print(f"trained in {t_train:.0f}s ({trained['samples_per_second']:.0f} samples/s)", flush=True)
    evals = run_parallel(eval_checkpoint, [{"task": t, "ckpt": str(out / "run" / "checkpoints" / "last"),
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
    result = {"collected": collected, "train": trained, "evals": evals, "average": avg,
              "expert_average": avg_expert, "args": vars(args)}
    (out / "results.json").write_text(json.dumps(result, indent=2))
    write_results("mt10", args, result)


if __name__ == "__main__":
    main()
