"""The doctor on LeRobot checkpoints: ACT and Diffusion (and, with `--policies smolvla`, a
SmolVLA on a small SmolVLM built from a config: benchmarks/_tiny_smolvlm.py) trained by the real
`lerobot-train` on datasets `vlascope data convert` wrote, loaded by LeRobot itself (processors
included), healthy and with one planted fault each:

- the unnormaliser dropped from the post-processor (actions leave in normalised units);
- action statistics from another dataset (reach-v3's) in both processors;
- statistics swapped between observation.state and action in the pre-processor;
- the scene input zeroed before the encoder: the corner2 camera for the image policies, the
  environment state for the state-only ones;
- a constant output (the action head's, the U-Net's final layer or SmolVLA's action projection
  zeroed);
- SmolVLA alone: its frozen VLM sees every frame alike (the vision tower's last LayerNorm zeroed).

Two datasets of button-press-topdown demos: `state` (hand and object state) and `image` (the
corner2 camera at 64 px and the hand state, no object state). Reports recall by check id, the
healthy twins' flags, the doctor's wall time per run, and one full run (every check, closed-loop
evaluation included) on the ACT state checkpoint; each policy trains on the first 25 demos, so the
last 5 are held out; writes benchmarks/results/doctor_lerobot.json.
SmolVLA reads a camera, so it runs on the image dataset only. Runs in the LeRobot environment
(`make test-lerobot` builds it); results go to doctor_lerobot.json, or, for other policies than
ACT and Diffusion, doctor_lerobot-<policies>.json:

    .venv-lerobot/bin/python benchmarks/doctor_lerobot.py [--inputs state image] [--demos 30]
                                                          [--policies act diffusion smolvla]
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
from benchmarks._tiny_smolvlm import build_tiny_smolvlm, same_image_tokens, smolvla_options  # noqa: E402
from vlascope.data import read_dataset  # noqa: E402
from vlascope.data.lerobot import write_lerobot  # noqa: E402
from vlascope.doctor import build_context, run_doctor  # noqa: E402
from vlascope.doctor.data_checks import DATA_CHECKS  # noqa: E402
from vlascope.doctor.model_checks import (check_conditioning, check_image_orientation,  # noqa: E402
                                          check_normalization, check_open_loop)
from vlascope.envs import instruction_for  # noqa: E402
from vlascope.envs.collect import collect_demos  # noqa: E402

TASK = "button-press-topdown-v3"  # the button's position (object_state) fixes the goal
HELD_OUT = 5  # the dataset's last demos, never trained on: the doctor's held-out episodes
TRAIN = {
    "act": ["--policy.dim_model=128", "--policy.dim_feedforward=512", "--policy.n_heads=4",
            "--policy.n_encoder_layers=2", "--policy.chunk_size=16", "--policy.n_action_steps=8",
            "--policy.optimizer_lr=1e-4"],
    "diffusion": ["--policy.down_dims=[64,128]", "--policy.horizon=16", "--policy.n_action_steps=8",
                  "--policy.diffusion_step_embed_dim=64", "--policy.num_inference_steps=10",
                  "--policy.optimizer_lr=1e-4"],
}
# What each dataset keeps, the input its zeroing fault hides, and how long lerobot-train runs on
# it (a ResNet-18 per frame makes an image step ~20x a state step on 2 CPU cores).
INPUTS = {
    "state": {"camera": None, "drop": ("goal",), "scene": "observation.environment_state",
              "steps": 500, "batch": 64},
    "image": {"camera": "corner2", "drop": ("goal", "object_state"), "scene": "observation.images.corner2",
              "steps": 200, "batch": 32},
}


def policy_options(policy: str, out: Path) -> list[str]:
    """lerobot-train's --policy options: ACT's and Diffusion's above with their ResNet untrained
    (no weights to fetch); SmolVLA's for a small SmolVLM built into `out`."""
    if policy != "smolvla":
        return ["--policy.pretrained_backbone_weights=null", *TRAIN[policy]]
    backbone = out / "smolvlm"
    if not (backbone / "config.json").exists():
        build_tiny_smolvlm(backbone, [instruction_for(TASK)])
    return [*smolvla_options(backbone), "--policy.optimizer_lr=1e-4"]


def lerobot_train(dataset: Path, policy: str, out: Path, steps: int, batch: int, episodes: int) -> Path:
    """Train on the first `episodes` of the dataset (the rest stay held out, and the checkpoint's
    train_config.json records which), saving four checkpoints."""
    folder = out / "checkpoints" / f"{steps:06d}" / "pretrained_model"
    if folder.exists():
        return folder
    cmd = [sys.executable, "-m", "lerobot.scripts.lerobot_train", "--dataset.repo_id=local/data",
           f"--dataset.root={dataset}", f"--dataset.episodes=[{','.join(map(str, range(episodes)))}]",
           f"--policy.type={policy}", "--policy.device=cpu",
           "--policy.push_to_hub=false", *policy_options(policy, out.parent),
           f"--batch_size={batch}", f"--steps={steps}", f"--save_freq={steps // 4}", "--log_freq=100",
           "--wandb.enable=false", "--num_workers=0", f"--output_dir={out}"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"lerobot-train failed:\n{done.stderr[-3000:]}")
    return folder


def processor_steps(policy):
    from lerobot.processor.normalize_processor import NormalizerProcessorStep, UnnormalizerProcessorStep

    pre = next(s for s in policy.pre.steps if isinstance(s, NormalizerProcessorStep))
    post = next(s for s in policy.post.steps if isinstance(s, UnnormalizerProcessorStep))
    return pre, post


def drop_unnormaliser(policy, other, scene):
    _, post = processor_steps(policy)
    policy.post.steps = [s for s in policy.post.steps if s is not post]


def other_action_stats(policy, other, scene):
    for step in processor_steps(policy):
        step.stats["action"] = other
        step.to()  # rebuilds the statistics it applies from .stats


def swap_state_and_action(policy, other, scene):
    pre, _ = processor_steps(policy)
    pre.stats["observation.state"], pre.stats["action"] = pre.stats["action"], pre.stats["observation.state"]
    pre.to()


def zero_scene_input(policy, other, scene):
    """The scene input reaches the model as zeros: what a key lookup that falls back to zeros,
    or a camera renamed between training and deployment, does."""
    # LeRobot gathers the cameras under observation.images before the model sees them (ACT: a
    # list, one tensor per camera; Diffusion: one stacked tensor); this dataset has one camera.
    gathered = "observation.images" if scene.startswith("observation.images.") else scene

    def zeroed(batch):
        value = batch[gathered]
        return {**batch, gathered: [torch.zeros_like(v) for v in value] if isinstance(value, list)
                else torch.zeros_like(value)}

    if policy.config.type == "act":
        policy.policy.model.register_forward_pre_hook(lambda m, args: (zeroed(args[0]),))
    elif policy.config.type == "smolvla":  # reads each camera's own key
        prepare = policy.policy.prepare_images
        policy.policy.prepare_images = lambda batch: prepare({**batch, scene: torch.zeros_like(batch[scene])})
    else:
        model = policy.policy.diffusion
        prepare = model._prepare_global_conditioning
        model._prepare_global_conditioning = lambda batch: prepare(zeroed(batch))


def constant_output(policy, other, scene):
    layer = {"act": lambda: policy.policy.model.action_head,
             "smolvla": lambda: policy.policy.model.action_out_proj,
             "diffusion": lambda: policy.policy.diffusion.unet.final_conv[-1]}[policy.config.type]()
    with torch.no_grad():
        for p in layer.parameters():
            p.zero_()


def constant_vlm_features(policy, other, scene):
    same_image_tokens(policy.policy)


FAULTS = [("unnormaliser dropped", "normalization", drop_unnormaliser),
          ("action statistics from another dataset", "normalization", other_action_stats),
          ("statistics swapped between state and action", "normalization", swap_state_and_action),
          ("scene input (camera or environment state) zeroed before the encoder", "conditioning",
           zero_scene_input),
          ("constant output", "conditioning", constant_output)]
SMOLVLA_FAULTS = [("frozen VLM gives every frame the same features", "conditioning", constant_vlm_features)]


def faults_for(policy: str) -> list:
    return FAULTS + (SMOLVLA_FAULTS if policy == "smolvla" else [])


def runs(args):
    """(inputs, policy) pairs to run: SmolVLA needs a camera."""
    return [(inputs, policy) for inputs in args.inputs for policy in args.policies
            if f"{policy}-{inputs}" not in args.skip and (policy != "smolvla" or INPUTS[inputs]["camera"])]


def healthy_row(policy: str, inputs: str, healthy, seconds: float) -> dict:
    return {"policy": policy, "inputs": inputs, "case": "healthy", "expected": None,
            "detected": None, "flags": flags(healthy), "doctor_seconds": round(seconds, 1),
            "skipped": sorted({f.id for f in healthy if f.evidence.get("skipped")}),
            "held_out_curve": held_out_curve(healthy)}


def fault_row(policy: str, inputs: str, case: str, expected: str, found, healthy, seconds: float) -> dict:
    """Found: a finding of the expected check, an error or a warning, that the healthy twin lacks."""
    hits = [f for f in found if f.id == expected and f.severity in ("error", "warning")
            and f.title not in {h.title for h in healthy}]
    return {"policy": policy, "inputs": inputs, "case": case, "expected": expected,
            "detected": bool(hits), "titles": [f.title for f in hits],
            "flags": flags(found), "doctor_seconds": round(seconds, 1)}


def full_run(name: str, found, seconds: float) -> dict:
    return {"policy": name, "task": TASK, "seconds": round(seconds, 1), "flags": flags(found),
            "skipped": sorted({f.id for f in found if f.evidence.get("skipped")}),
            "train_eval_gap": next((f.evidence for f in found if f.id == "train-eval-gap"), None)}


def held_out_curve(findings) -> list[dict] | None:
    return next(([{k: r[k] for k in ("step", "train", "held_out")} for r in f.evidence["per_checkpoint"]]
                 for f in findings if f.id == "held-out-curve" and "per_checkpoint" in f.evidence), None)


def flags(findings) -> list[str]:
    return sorted({f"{f.id}:{f.severity}" for f in findings if f.severity in ("error", "warning")})


# A faulty twin is diagnosed by the checks that read the deployed pipeline's predictions; the
# ones that train a copy for 30 steps (init-loss, dead-parameters) see the weights, which no fault
# here changes but the constant output's, and they dominate a CPU run. The healthy twins and the
# full run go through every check.
PREDICTION_CHECKS = [check_normalization, check_conditioning, check_image_orientation, check_open_loop]


def diagnose(dataset: Path, checkpoint: Path, out: Path, quick: bool, plant=None, other=None,
             scene=None, task=None):
    ctx = build_context(str(dataset), str(out), checkpoint=str(checkpoint), quick=quick, task=task)
    if plant is not None:
        plant(ctx.policy, other, scene)
    start = time.time()
    findings = run_doctor(ctx, checks=None if plant is None else DATA_CHECKS + PREDICTION_CHECKS,
                          progress=False)
    return findings, time.time() - start


def dataset_for(inputs: str, out: Path, demos: int) -> Path:
    setup = INPUTS[inputs]
    hdf5, folder = out / f"data-{inputs}.hdf5", out / f"data-{inputs}-lerobot"
    if not folder.exists():
        if not hdf5.exists():
            collect_demos(TASK, demos, str(hdf5), seed=0, camera=setup["camera"], image_size=64,
                          progress=False)
        data = read_dataset(str(hdf5))
        for e in data.episodes:  # no LeRobot policy reads a goal key
            for key in setup["drop"]:
                e.obs.pop(key)
        write_lerobot(folder, data)
    return folder


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--demos", type=int, default=30)
    p.add_argument("--inputs", nargs="+", choices=list(INPUTS), default=list(INPUTS))
    p.add_argument("--policies", nargs="+", choices=["act", "diffusion", "smolvla"], default=["act", "diffusion"])
    p.add_argument("--skip", nargs="*", default=[], help="policy-inputs pairs to leave out, e.g. diffusion-image")
    p.add_argument("--steps", type=int, help="training steps for every policy (default: per input, above)")
    p.add_argument("--no-full", action="store_true", help="skip the full run on the ACT state checkpoint")
    p.add_argument("--out", default="outputs/doctor_lerobot")
    p.add_argument("--from-reports", action="store_true",
                   help="only rebuild the results JSON from the report folders under --out")
    args = p.parse_args()
    if args.from_reports:
        return from_reports(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    other_path = out / "reach.hdf5"
    if not other_path.exists():
        collect_demos("reach-v3", 10, str(other_path), seed=1, progress=False)
    actions = np.concatenate([e.actions for e in read_dataset(str(other_path)).episodes])
    other = {"mean": actions.mean(0), "std": actions.std(0), "min": actions.min(0), "max": actions.max(0)}

    rows, full = [], None
    for inputs, policy in runs(args):
        setup = INPUTS[inputs]
        folder = dataset_for(inputs, out, args.demos)
        name = f"{policy}-{inputs}"
        start = time.time()
        steps = args.steps or setup["steps"]
        checkpoint = lerobot_train(folder, policy, out / name, steps, setup["batch"], args.demos - HELD_OUT)
        print(f"{name}: lerobot-train {steps} steps at batch {setup['batch']} "
              f"({time.time() - start:.0f}s; 0 when reused)", flush=True)
        healthy, seconds = diagnose(folder, checkpoint, out / f"{name}-healthy", True,
                                    scene=setup["scene"])
        rows.append(healthy_row(policy, inputs, healthy, seconds))
        print(f"  healthy: doctor {seconds:.0f}s, flags: {', '.join(rows[-1]['flags']) or 'none'}", flush=True)
        for i, (case, expected, plant) in enumerate(faults_for(policy)):
            found, seconds = diagnose(folder, checkpoint, out / f"{name}-fault{i}", True, plant, other,
                                      scene=setup["scene"])
            rows.append(fault_row(policy, inputs, case, expected, found, healthy, seconds))
            print(f"  {case:50s} {expected:14s} {'found' if rows[-1]['detected'] else 'MISSED'}: "
                  f"{rows[-1]['titles'][0] if rows[-1]['detected'] else ''}", flush=True)
        if inputs == "state" and policy == "act" and not args.no_full:
            found, seconds = diagnose(folder, checkpoint, out / f"{name}-full", False,
                                      scene=setup["scene"], task=TASK)
            full = full_run(name, found, seconds)
            print(f"  full run with --task: {seconds:.0f}s, flags: {', '.join(full['flags'])}", flush=True)
        write_results(args, rows, full)
    write_results(args, rows, full, final=True)


class Reported:
    """A finding as report.json's findings.json stores it."""

    def __init__(self, d: dict):
        self.id, self.severity, self.title, self.evidence = d["id"], d["severity"], d["title"], d["evidence"]


def from_reports(args) -> None:
    """Rebuild the results from the report folders a run left (an interrupted run included)."""
    out = Path(args.out)

    def load(folder: Path):
        findings = [Reported(d) for d in json.loads((folder / "findings.json").read_text())]
        seconds = json.loads((folder / "statistics.json").read_text())["header"]["seconds"]
        return findings, seconds

    rows, full = [], None
    for inputs, policy in runs(args):
        name = f"{policy}-{inputs}"
        if not (out / f"{name}-healthy" / "findings.json").exists():
            continue
        healthy, seconds = load(out / f"{name}-healthy")
        rows.append(healthy_row(policy, inputs, healthy, seconds))
        for i, (case, expected, _) in enumerate(faults_for(policy)):
            if not (out / f"{name}-fault{i}" / "findings.json").exists():
                continue
            found, seconds = load(out / f"{name}-fault{i}")
            rows.append(fault_row(policy, inputs, case, expected, found, healthy, seconds))
        if (out / f"{name}-full" / "findings.json").exists():
            found, seconds = load(out / f"{name}-full")
            full = full_run(name, found, seconds)
    write_results(args, rows, full, final=True)


def write_results(args, rows: list, full: dict | None, final: bool = False) -> None:
    faults = [r for r in rows if r["expected"]]
    by_id = {}
    for r in faults:
        hit, total = by_id.get(r["expected"], (0, 0))
        by_id[r["expected"]] = (hit + r["detected"], total + 1)
    result = {**provenance(), "task": TASK, "demos": args.demos, "trained_on": args.demos - HELD_OUT,
              "inputs": {k: INPUTS[k] for k in args.inputs},
              "recall": f"{sum(r['detected'] for r in faults)}/{len(faults)}",
              "recall_by_check": {k: f"{h}/{t}" for k, (h, t) in by_id.items()},
              "policies": args.policies, "full_run": full, "skipped": args.skip, "complete": final,
              "cases": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "doctor_lerobot" + ("" if args.policies == ["act", "diffusion"] else "-" + "-".join(args.policies))
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    if final:
        print(f"recall {result['recall']} {result['recall_by_check']}; {RESULTS / f'{name}.json'}")


if __name__ == "__main__":
    main()
