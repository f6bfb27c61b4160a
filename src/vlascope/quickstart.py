"""`vlascope quickstart` (what `make demo` runs): collect diverse demos, train, evaluate, diagnose."""

from __future__ import annotations

import time
from pathlib import Path

from vlascope.envs.collect import collect_demos
from vlascope.evaluate.metrics import format_summary_table
from vlascope.evaluate.runner import evaluate
from vlascope.fileio import write_json
from vlascope.policies import load_pretrained
from vlascope.train.loop import TrainConfig, train

# Tuned on 2 CPU cores: the whole loop takes a few minutes and solves reach-v3.
QUICKSTART_STEPS = {"flow": 3000, "mse": 3000, "diffusion": 3000}


def run_quickstart(out: str | Path, task: str = "reach-v3", policy: str = "flow", demos: int = 50,
                   steps: int | None = None, episodes: int = 50, doctor: str = "full") -> dict:
    out = Path(out)
    t0 = time.time()
    print(f"[1/4] collecting {demos} expert demos of {task}, each from its own initial state")
    data = out / f"{task}.hdf5"
    collected = collect_demos(task, demos, str(data), seed=0)
    print(f"      {collected.kept} demos kept, {len(collected.dropped_seeds)} dropped, "
          f"{collected.seconds:.0f}s")

    steps = steps or QUICKSTART_STEPS.get(policy, 3000)
    print(f"[2/4] training a state-based {policy} policy for {steps} steps")
    result = train([str(data)], policy, out / "run", TrainConfig(steps=steps, ckpt_every=0))
    print(f"      final loss {result.final_loss:.4f}, {result.seconds:.0f}s "
          f"({result.samples_per_second:.0f} samples/s)")

    print(f"[3/4] evaluating {episodes} episodes from unseen initial states")
    model = load_pretrained(result.last_checkpoint)
    report = evaluate(model, task, episodes, seed=0)
    write_json(out / "eval.json", report.to_json())
    total = time.time() - t0
    print()
    print(format_summary_table([(f"{task} / {policy}", report.summary)]))
    print(f"\nwhole loop: {total:.0f}s (collect {collected.seconds:.0f}s, train "
          f"{result.seconds:.0f}s, eval {report.seconds:.0f}s); outputs in {out}/")
    summary = {"task": task, "policy": policy, "eval": report.summary, "seconds": total,
               "train_seconds": result.seconds, "eval_seconds": report.seconds,
               "collect_seconds": collected.seconds}
    if doctor != "off":
        from vlascope.doctor import build_context, run_doctor

        print(f"\n[4/4] the doctor ({doctor}): every check on the dataset, the checkpoint and {task}")
        start = time.time()
        ctx = build_context(str(data), str(out / "doctor"), checkpoint=str(result.last_checkpoint),
                            task=task, quick=doctor == "quick")
        findings = run_doctor(ctx)
        summary["doctor_seconds"] = time.time() - start
        summary["doctor_problems"] = sorted({f.id for f in findings if f.severity in ("error", "warning")})
    write_json(out / "summary.json", summary)
    return summary
