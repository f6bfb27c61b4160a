"""MT50 trainings side by side, from the results JSONs `mt50.py` wrote: how far trainings of one
recipe (other seeds) land apart, and where other runs lie against them.

An episode interval counts the noise of the episodes alone. Two trainings of one recipe differ by
more than that: their initial weights and batch order change which tasks the policy solves. So
"another run has the same success" is judged here three ways, each printed:
- within the first reference training's 95% interval (what a single training offers);
- within the range of the reference trainings;
- by a two-sided Fisher test on the episodes against each reference training.
The between-training spread is measured as well: per task, the variance of the success rate
across the reference trainings against the binomial variance its episodes alone would give
(1 where trainings differ by their episodes only).

    python benchmarks/mt50_compare.py    (the one-GPU seeds against the multi-GPU runs)
    python benchmarks/mt50_compare.py --reference gpu gpu-seed1 gpu-seed2 --runs gpu-2gpus-lr \\
                                      [--episodes 50]
A name stands for benchmarks/results/mt50-NAME.json (first where VLASCOPE_RESULTS_DIR points);
a path ending in .json for itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _provenance import RESULTS, ROOT, parse_args, write_results  # noqa: E402

from vlascope.evaluate.metrics import fisher_two_sided, format_table, pool_runs, wilson_interval  # noqa: E402

REFERENCE = ["gpu", "gpu-seed1", "gpu-seed2"]
# A name ending in -shared-draws is its recipe trained before each process drew its own noise.
RUNS = ["gpu-2gpus", "gpu-2gpus-seed1", "gpu-2gpus-lr-shared-draws", "gpu-2gpus-lr", "gpu-2gpus-15k",
        "gpu-4gpus-lr-shared-draws", "gpu-4gpus-lr", "gpu-4gpus-b64-shared-draws", "gpu-4gpus-b64",
        "gpu-4gpus-7500", "gpu-4gpus-graphs"]


def load_run(parser: argparse.ArgumentParser, name: str, episodes: str) -> dict:
    """One run's per-task successes at `episodes` episodes a task, with its name and commit."""
    # Where results are written this time (VLASCOPE_RESULTS_DIR), else the results page's own.
    found = [folder / f"mt50-{name}.json" for folder in (RESULTS, ROOT / "benchmarks" / "results")]
    path = Path(name) if name.endswith(".json") else next((f for f in found if f.exists()), found[-1])
    if not path.exists():
        parser.error(f"{path}: no such results file (run benchmarks/mt50.py with --recipe {name})")
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        parser.error(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})")
    tasks = (record.get("eval") or {}).get(episodes, {}).get("tasks")
    if not tasks:
        parser.error(f"{path}: no eval.{episodes}.tasks (an evaluation at {episodes} episodes a task)")
    # How it trained: GPUs, and on several whether each process drew its own noise (a training
    # from before that was recorded shared them).
    trained = (record.get("train") or [{}])[-1]
    gpus = trained.get("gpus", 1)
    how = f"{gpus} ({trained.get('draws', 'shared')} draws)" if gpus > 1 else str(gpus)
    return {"name": name, "commit": record.get("commit"), "gpus": how,
            "tasks": {t: (r["successes"], r["episodes"]) for t, r in tasks.items()}}


def total(run: dict) -> tuple[int, int]:
    return (sum(k for k, _ in run["tasks"].values()), sum(n for _, n in run["tasks"].values()))


def between_training_spread(reference: list[dict]) -> dict:
    """Per task, the variance of the success rate across the reference trainings, summed over
    the tasks, against the sum of the binomial variances each training's episodes would give; and
    the standard deviation those episodes alone would give the average over the tasks (beside
    pool_runs' run_sd, the one measured)."""
    tasks = sorted(set.intersection(*(set(r["tasks"]) for r in reference)))
    observed = expected = expected_average = 0.0
    for t in tasks:
        rates = [r["tasks"][t][0] / r["tasks"][t][1] for r in reference]
        n = sum(r["tasks"][t][1] for r in reference) / len(reference)
        mean = sum(rates) / len(rates)
        observed += sum((x - mean) ** 2 for x in rates) / (len(rates) - 1)
        expected += mean * (1 - mean) / n
        expected_average += mean * (1 - mean) / n / len(tasks) ** 2
    return {"tasks": len(tasks), "trainings": len(reference),
            "task_variance_ratio": observed / expected if expected else None,
            "average_sd_from_episodes": expected_average ** 0.5}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", nargs="+", default=REFERENCE,
                   help="trainings of one recipe (at least two): the success other runs are held against")
    p.add_argument("--runs", nargs="*", default=RUNS, help="the runs held against them")
    p.add_argument("--episodes", default="50", help="the evaluation compared: episodes a task")
    args = parse_args(p)
    if len(args.reference) < 2:
        p.error("--reference: expected at least two trainings of one recipe, "
                f"got {len(args.reference)}")
    reference = [load_run(p, name, args.episodes) for name in args.reference]
    runs = [load_run(p, name, args.episodes) for name in args.runs]

    summaries = []
    for run in reference:
        k, n = total(run)
        summaries.append({"successes": k, "episodes": n, "success_rate": k / n})
    pooled = pool_runs(summaries)
    spread = between_training_spread(reference)
    lo0, hi0 = wilson_interval(*total(reference[0]))
    low, high = pooled["run_min"], pooled["run_max"]

    def row(run: dict) -> list[str]:
        k, n = total(run)
        lo, hi = wilson_interval(k, n)
        rate = k / n
        return [run["name"], run["gpus"], f"{k}/{n} ({100 * rate:.1f}%)", f"[{100 * lo:.1f}, {100 * hi:.1f}]",
                *[f"{fisher_two_sided(k, n, *total(r)):.3f}" for r in reference],
                "yes" if lo0 <= rate <= hi0 else ("above" if rate > hi0 else "below"),
                "yes" if low <= rate <= high else ("above" if rate > high else "below")]

    header = ["run", "GPUs", f"success ({args.episodes} ep. a task)", "95% interval",
              *[f"p vs {r['name']}" for r in reference], f"in {reference[0]['name']}'s interval",
              "in the references' range"]
    rows = [row(r) for r in reference] + [row(r) for r in runs]
    print(format_table(header, rows))
    print(f"\nreference trainings: mean {100 * sum(pooled['run_rates']) / len(pooled['run_rates']):.1f}%, "
          f"sd {100 * pooled['run_sd']:.2f} points between trainings against "
          f"{100 * spread['average_sd_from_episodes']:.2f} from the episodes alone; per task, "
          f"{spread['task_variance_ratio']:.1f} times the variance the episodes alone give "
          f"({spread['tasks']} tasks, {spread['trainings']} trainings)")
    result = {"episodes_per_task": int(args.episodes), "reference": pooled, "spread": spread,
              "runs": [dict(zip(header, r)) | {"commit": run["commit"]}
                       for r, run in zip(rows, reference + runs)]}
    write_results("mt50_compare", args, result)


if __name__ == "__main__":
    main()
