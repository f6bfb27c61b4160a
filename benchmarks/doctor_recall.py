"""Does the doctor find planted faults, and keep quiet on their healthy twins?

Each case plants one fault (tests/doctor/faults.py) into real MetaWorld pick-place demos or into
the default flow pipeline, runs the doctor's checks on the faulty version and on its healthy
twin, and counts: recall (the fault's check id reported as warning or error) and false alarms
(any warning or error on the healthy twin). Then it times `vlascope doctor` on a 50-demo dataset,
--quick and full (with a trained checkpoint and --task).

    python benchmarks/doctor_recall.py [--demos 20] [--out outputs/doctor_recall] [--no-timing]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _provenance import parse_args, write_results  # noqa: E402
from tests.doctor import faults  # noqa: E402
from vlascope.data import read_dataset  # noqa: E402
from vlascope.doctor import DoctorContext, run_checks  # noqa: E402
from vlascope.doctor.data_checks import DATA_CHECKS  # noqa: E402
from vlascope.doctor.model_checks import (check_conditioning, check_dead_parameters,  # noqa: E402
                                          check_init_loss, check_normalization, sample_batch,
                                          warm_up)
from vlascope.doctor.rollout_checks import check_eval_coverage  # noqa: E402
from vlascope.envs.collect import collect_demos  # noqa: E402
from vlascope.policies.interface import VlascopePolicy, vlascope_pipeline  # noqa: E402

# Every cheap check runs on every case, so a false alarm from any check counts.
CHECKS = [*DATA_CHECKS, check_eval_coverage, check_normalization, check_init_loss,
          check_dead_parameters, check_conditioning]
TASK = "pick-place-v3"


def run(dataset, out: Path, make_policy, policy_fn=None) -> list:
    """The checks on a vlascope pipeline `make_policy(episodes) -> Policy`, and on a checkpoint
    `policy_fn(fresh policy)` when given, both seen through the policy interface."""
    data = read_dataset(dataset) if isinstance(dataset, str) else dataset
    ctx = DoctorContext(dataset=data, out_dir=out, make_policy=vlascope_pipeline(make_policy, "flow"),
                        task=TASK, quick=True)
    if policy_fn is not None:
        # A checkpoint moved by 30 training steps: a freshly built one has zero output layers, so
        # its actions do not depend on the observation at all (which `conditioning` reports).
        trained = ctx.fresh_policy()
        warm_up(trained, sample_batch(ctx, trained, ctx.episodes, 256, ctx.seed))
        ctx.policy = VlascopePolicy(policy_fn(trained.module()), "flow", make_policy)
    return run_checks(ctx, CHECKS, progress=False)


def problems(findings) -> list[str]:
    return sorted({f"{f.id}:{f.severity}" for f in findings if f.severity in ("error", "warning")})


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--demos", type=int, default=20)
    p.add_argument("--out", default="outputs/doctor_recall")
    p.add_argument("--no-timing", action="store_true")
    args = parse_args(p)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    diverse, fixed, images = out / "diverse.hdf5", out / "fixed.hdf5", out / "images.hdf5"
    collect_demos(TASK, args.demos, str(diverse), seed=0, progress=False)
    collect_demos(TASK, args.demos, str(fixed), seed=0, fixed_init=True, progress=False)
    collect_demos(TASK, 6, str(images), seed=0, camera="corner2", image_size=48, progress=False)
    flow = faults.pipeline("flow")
    d = str(diverse)

    # (name, expected id, faulty case, healthy twin); a case is (dataset, make_policy, policy_fn).
    cases = [
        ("demos from one initial state", "initial-state-diversity", (str(fixed), flow, None), (d, flow, None)),
        ("eval states the demos never covered", "eval-coverage", (str(fixed), flow, None), (d, flow, None)),
        ("action dim pinned to a constant", "near-constant-action-dim",
         (faults.edited(d, faults.pin_action_dim(1)), flow, None), (d, flow, None)),
        ("NaN at one step of one demo", "nan-in-data",
         (faults.edited(d, faults.nan_at(3, "object_state", 10, 2)), flow, None), (d, flow, None)),
        ("adapter registered, never called", "dead-parameters",
         (d, faults.with_unused_adapter(flow), None), (d, faults.with_lora_applied(flow), None)),
        ("PEFT LoRA injected into an unused copy", "dead-parameters",
         (d, faults.with_lora_on_a_copy(flow), None), (d, faults.with_lora_applied(flow), None)),
        ("normaliser with a 1e-8 std", "normalization",
         (d, flow, faults.tiny_std_normaliser), (d, flow, lambda policy: policy)),
        ("loss explodes from a bad init", "init-loss", (d, faults.with_bad_init(flow), None), (d, flow, None)),
        ("encoder ignores the image", "conditioning",
         (str(images), faults.image_pipeline("corner2_image", use_image=False), None),
         (str(images), faults.image_pipeline("corner2_image"), None)),
    ]
    rows, found, alarms = [], 0, 0
    for i, (name, expected, faulty, healthy) in enumerate(cases):
        bad = run(faulty[0], out / f"case{i}_fault", faulty[1], faulty[2])
        good = run(healthy[0], out / f"case{i}_healthy", healthy[1], healthy[2])
        hit = any(f.id == expected and f.severity in ("error", "warning") for f in bad)
        false = problems(good)
        found += hit
        alarms += bool(false)
        rows.append({"fault": name, "expected": expected, "detected": hit, "fault_run_flags": problems(bad),
                     "healthy_twin_flags": false})
        print(f"{name:42s} {expected:26s} {'found' if hit else 'MISSED':7s} "
              f"healthy twin: {', '.join(false) or 'no alarm'}", flush=True)
    print(f"\nrecall {found}/{len(cases)}; healthy twins with a false alarm: {alarms}/{len(cases)}")
    result = {"cases": rows, "recall": f"{found}/{len(cases)}", "false_alarms": alarms,
              "seconds": round(time.time() - t0, 1)}

    if not args.no_timing:
        result["timing"] = time_doctor(out)
    (out / "results.json").write_text(json.dumps(result, indent=2))
    write_results("doctor_recall", args, result)
    print(f"total {time.time() - t0:.0f}s; {out / 'results.json'}")


def time_doctor(out: Path) -> dict:
    """Wall time of `vlascope doctor` on a 50-demo state dataset, as a user runs it."""
    import subprocess

    data = out / "fifty.hdf5"
    collect_demos(TASK, 50, str(data), seed=1, progress=False)
    run_dir = out / "run"
    subprocess.run([sys.executable, "-m", "vlascope", "train", "--dataset", str(data), "--policy", "flow",
                    "--out", str(run_dir), "--steps", "3000"], check=True, capture_output=True)
    timing = {}
    for label, extra in (("quick", ["--quick"]), ("full", ["--checkpoint", str(run_dir / "checkpoints/last"),
                                                            "--task", TASK])):
        start = time.time()
        proc = subprocess.run([sys.executable, "-m", "vlascope", "doctor", "--dataset", str(data),
                               "--out", str(out / f"report_{label}"), *extra], capture_output=True, text=True)
        timing[label] = round(time.time() - start, 1)
        summary = [line for line in proc.stdout.splitlines() if line.startswith("doctor:")]
        print(f"vlascope doctor {label}: {timing[label]:.0f}s, exit {proc.returncode}; {summary[-1] if summary else ''}")
        findings = json.loads((out / f"report_{label}" / "findings.json").read_text())
        timing[f"{label}_flags"] = problems_json(findings)
    return timing


def problems_json(findings: list[dict]) -> list[str]:
    return sorted({f"{f['id']}:{f['severity']}" for f in findings if f["severity"] in ("error", "warning")})


if __name__ == "__main__":
    main()
