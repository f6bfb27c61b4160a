"""The doctor on LeRobot checkpoints: ACT and Diffusion trained by the real `lerobot-train` on a
dataset `vlascope data convert` wrote, loaded by LeRobot itself (processors included), healthy
and with one planted fault each:

- the unnormaliser dropped from the post-processor (actions leave in normalised units);
- action statistics from another dataset (reach-v3's) in both processors;
- statistics swapped between observation.state and action in the pre-processor;
- the environment-state input zeroed before the encoder (these datasets carry no camera);
- a constant output (the action head's, or the U-Net's final layer, zeroed).

Reports recall by check id, the healthy twins' flags and the doctor's wall time; writes
benchmarks/results/doctor_lerobot.json. Runs in the LeRobot environment (`make test-lerobot`
builds it):

    .venv-lerobot/bin/python benchmarks/doctor_lerobot.py [--steps 1000] [--demos 30] [--full]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._provenance import RESULTS, provenance  # noqa: E402
from vlascope.data import read_dataset  # noqa: E402
from vlascope.data.lerobot import write_lerobot  # noqa: E402
from vlascope.doctor import build_context, run_doctor  # noqa: E402
from vlascope.envs.collect import collect_demos  # noqa: E402

TASK = "button-press-topdown-v3"  # the button's position (object_state) fixes the goal
TRAIN = {
    "act": ["--policy.dim_model=128", "--policy.dim_feedforward=512", "--policy.n_heads=4",
            "--policy.n_encoder_layers=2", "--policy.chunk_size=16", "--policy.n_action_steps=8",
            "--policy.optimizer_lr=1e-4"],
    "diffusion": ["--policy.down_dims=[64,128]", "--policy.horizon=16", "--policy.n_action_steps=8",
                  "--policy.diffusion_step_embed_dim=64", "--policy.num_inference_steps=10",
                  "--policy.optimizer_lr=1e-4"],
}


def lerobot_train(dataset: Path, policy: str, out: Path, steps: int) -> Path:
    folder = out / "checkpoints" / f"{steps:06d}" / "pretrained_model"
    if folder.exists():
        return folder
    cmd = [sys.executable, "-m", "lerobot.scripts.lerobot_train", "--dataset.repo_id=local/data",
           f"--dataset.root={dataset}", f"--policy.type={policy}", "--policy.device=cpu",
           "--policy.push_to_hub=false", "--policy.pretrained_backbone_weights=null", *TRAIN[policy],
           "--batch_size=64", f"--steps={steps}", f"--save_freq={steps}", "--log_freq=100",
           "--wandb.enable=false", "--num_workers=0", f"--output_dir={out}"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return folder


def processor_steps(policy):
    from lerobot.processor.normalize_processor import NormalizerProcessorStep, UnnormalizerProcessorStep

    pre = next(s for s in policy.pre.steps if isinstance(s, NormalizerProcessorStep))
    post = next(s for s in policy.post.steps if isinstance(s, UnnormalizerProcessorStep))
    return pre, post


def drop_unnormaliser(policy, other):
    _, post = processor_steps(policy)
    policy.post.steps = [s for s in policy.post.steps if s is not post]


def other_action_stats(policy, other):
    for step in processor_steps(policy):
        step.stats["action"] = other
        step.to()  # rebuilds the statistics it applies from .stats


def swap_state_and_action(policy, other):
    pre, _ = processor_steps(policy)
    pre.stats["observation.state"], pre.stats["action"] = pre.stats["action"], pre.stats["observation.state"]
    pre.to()


def zero_environment_state(policy, other):
    """The input reaches the model as zeros: what a key lookup that falls back to zeros does."""
    key = "observation.environment_state"
    model = policy.policy.model if policy.config.type == "act" else policy.policy.diffusion
    if policy.config.type == "act":
        model.register_forward_pre_hook(lambda m, args: ({**args[0], key: torch.zeros_like(args[0][key])},))
    else:
        prepare = model._prepare_global_conditioning
        model._prepare_global_conditioning = lambda batch: prepare({**batch, key: torch.zeros_like(batch[key])})


def constant_output(policy, other):
    layer = policy.policy.model.action_head if policy.config.type == "act" else \
        policy.policy.diffusion.unet.final_conv[-1]
    with torch.no_grad():
        for p in layer.parameters():
            p.zero_()


FAULTS = [("unnormaliser dropped", "normalization", drop_unnormaliser),
          ("action statistics from another dataset", "normalization", other_action_stats),
          ("statistics swapped between state and action", "normalization", swap_state_and_action),
          ("environment-state input zeroed before the encoder", "conditioning", zero_environment_state),
          ("constant output", "conditioning", constant_output)]


def flags(findings) -> list[str]:
    return sorted({f"{f.id}:{f.severity}" for f in findings if f.severity in ("error", "warning")})


def diagnose(dataset: Path, checkpoint: Path, out: Path, quick: bool, plant=None, other=None):
    ctx = build_context(str(dataset), str(out), checkpoint=str(checkpoint), quick=quick)
    if plant is not None:
        plant(ctx.policy, other)
    start = time.time()
    findings = run_doctor(ctx, progress=False)
    return findings, time.time() - start


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--demos", type=int, default=30)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--full", action="store_true", help="every check (overfit included), not --quick")
    p.add_argument("--out", default="outputs/doctor_lerobot")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    hdf5, folder = out / "data.hdf5", out / "data-lerobot"
    if not folder.exists():
        collect_demos(TASK, args.demos, str(hdf5), seed=0, progress=False)
        data = read_dataset(str(hdf5))
        for e in data.episodes:  # hand and object state only: no LeRobot policy reads a goal key
            e.obs.pop("goal")
        write_lerobot(folder, data)
    other_path = out / "reach.hdf5"
    if not other_path.exists():
        collect_demos("reach-v3", 10, str(other_path), seed=1, progress=False)
    actions = np.concatenate([e.actions for e in read_dataset(str(other_path)).episodes])
    other = {"mean": actions.mean(0), "std": actions.std(0), "min": actions.min(0), "max": actions.max(0)}

    rows = []
    for policy in ("act", "diffusion"):
        start = time.time()
        checkpoint = lerobot_train(folder, policy, out / policy, args.steps)
        print(f"{policy}: lerobot-train {args.steps} steps in {time.time() - start:.0f}s", flush=True)
        healthy, seconds = diagnose(folder, checkpoint, out / f"{policy}-healthy", not args.full)
        rows.append({"policy": policy, "case": "healthy", "expected": None, "detected": None,
                     "flags": flags(healthy), "doctor_seconds": round(seconds, 1),
                     "skipped": sorted({f.id for f in healthy if f.evidence.get("skipped")})})
        print(f"  healthy: doctor {seconds:.0f}s, flags: {', '.join(rows[-1]['flags']) or 'none'}", flush=True)
        for i, (name, expected, plant) in enumerate(FAULTS):
            found, seconds = diagnose(folder, checkpoint, out / f"{policy}-fault{i}", True, plant, other)
            hits = [f for f in found if f.id == expected and f.severity in ("error", "warning")
                    and f.title not in {h.title for h in healthy}]
            rows.append({"policy": policy, "case": name, "expected": expected, "detected": bool(hits),
                         "titles": [f.title for f in hits], "flags": flags(found),
                         "doctor_seconds": round(seconds, 1)})
            print(f"  {name:50s} {expected:14s} {'found' if hits else 'MISSED'}: "
                  f"{hits[0].title if hits else ''}", flush=True)
    faults = [r for r in rows if r["expected"]]
    by_id = {}
    for r in faults:
        hit, total = by_id.get(r["expected"], (0, 0))
        by_id[r["expected"]] = (hit + r["detected"], total + 1)
    result = {**provenance(), "task": TASK, "demos": args.demos, "train_steps": args.steps,
              "mode": "full" if args.full else "quick",
              "recall": f"{sum(r['detected'] for r in faults)}/{len(faults)}",
              "recall_by_check": {k: f"{h}/{t}" for k, (h, t) in by_id.items()}, "cases": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "doctor_lerobot.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"recall {result['recall']} {result['recall_by_check']}; {RESULTS / 'doctor_lerobot.json'}")


if __name__ == "__main__":
    main()
