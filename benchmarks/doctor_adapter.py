"""The doctor on a policy written outside vlascope: the plain-PyTorch TinyVLA example
(examples/tinyvla), trained by its own script, seen through its adapter. Three planted faults,
each beside the healthy twin: a LoRA created but never in the forward pass, a joint masked to a
constant, the goal left out of the inputs. Reports recall by check id, the healthy twin's flags
and the doctor's wall time, and writes benchmarks/results/doctor_adapter.json.

    python benchmarks/doctor_adapter.py [--demos 12] [--steps 1500] [--out outputs/doctor_adapter]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._provenance import RESULTS, provenance  # noqa: E402
from examples.tinyvla.model import TinyVLAConfig  # noqa: E402
from examples.tinyvla.train import build, read_demos, save, train  # noqa: E402
from vlascope.doctor import build_context, run_doctor  # noqa: E402
from vlascope.envs.collect import collect_demos  # noqa: E402

# name -> (config switches, the check id that must report it)
CASES = {"healthy": ({}, None),
         "LoRA created but never in the forward pass": ({"lora_unhooked": True}, "dead-parameters"),
         "joint 0 masked to a constant": ({"mask_first_joint": True}, "mode-collapse"),
         "goal not among the inputs": ({"use_goal": False}, "observability")}


def flags(findings) -> list[str]:
    return sorted({f"{f.id}:{f.severity}" for f in findings if f.severity in ("error", "warning")})


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--demos", type=int, default=12)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--out", default="outputs/doctor_adapter")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "pick-place-images.hdf5"
    if not data.exists():
        collect_demos("pick-place-v3", args.demos, str(data), seed=0, camera="corner2", image_size=32,
                      progress=False)
    demos = read_demos(str(data), "corner2_image")
    rows = []
    for name, (switches, expected) in CASES.items():
        start = time.time()
        model = build(TinyVLAConfig(image_size=demos[0]["image"].shape[1], **switches), demos)
        losses = train(model, demos, args.steps)
        checkpoint = out / f"{len(rows)}.pt"
        save(model, str(checkpoint))
        trained = time.time() - start
        start = time.time()
        ctx = build_context(str(data), str(out / f"report{len(rows)}"), checkpoint=str(checkpoint),
                            adapter="examples.tinyvla.adapter:load")
        findings = run_doctor(ctx, progress=False)
        seconds = time.time() - start
        found = [f for f in findings if f.id == expected and f.severity in ("error", "warning")]
        rows.append({"case": name, "expected": expected, "detected": bool(found) if expected else None,
                     "title": found[0].title if found else None, "flags": flags(findings),
                     "skipped": sorted({f.id for f in findings if f.evidence.get("skipped")}),
                     "final_loss": round(sum(losses[-50:]) / 50, 4), "train_seconds": round(trained, 1),
                     "doctor_seconds": round(seconds, 1)})
        print(f"{name:44s} {expected or '-':16s} "
              f"{'-' if expected is None else 'found' if found else 'MISSED':7s} doctor {seconds:.0f}s; "
              f"flags: {', '.join(rows[-1]['flags']) or 'none'}", flush=True)
    faults = [r for r in rows if r["expected"]]
    result = {**provenance(), "demos": args.demos, "train_steps": args.steps,
              "recall": f"{sum(r['detected'] for r in faults)}/{len(faults)}", "cases": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "doctor_adapter.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"recall {result['recall']}; healthy flags: {', '.join(rows[0]['flags']) or 'none'}; "
          f"{RESULTS / 'doctor_adapter.json'}")


if __name__ == "__main__":
    main()
