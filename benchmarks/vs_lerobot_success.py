"""Closed-loop success of vlascope's diffusion policy or ACT against LeRobot's DiffusionPolicy or
ACTPolicy (`--policy`), both trained on the same exported dataset with the same steps and batch, each with its own library's
defaults (learning rate, schedule, normalisation), and evaluated by vlascope's runner on the
same MetaWorld seeds. LeRobot reads the exported LeRobot folder, vlascope the HDF5 file it was
written from (the same frames; vlascope keeps object and goal as the env's separate keys). The speed comparison (`vs_lerobot.py`) means little unless the faster
policy also succeeds as often.

LeRobot runs in its own Python (`--lerobot-python`, which needs `metaworld` installed too); its
trained policy enters `evaluate()` through a small adapter that feeds it the observation window
and the episode's noise and reads back its chunk.

    python benchmarks/vs_lerobot_success.py --lerobot-python lr/bin/python [--policy act] \
        [--task reach-v3] [--demos 20] [--steps 2000] [--batch-size 64] [--episodes 50]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _provenance import parse_args, write_results  # noqa: E402
from vs_lerobot import ACTION, ENV, STATE, export_reach, lerobot_dataset  # noqa: E402


class LeRobotForEval(torch.nn.Module):
    """What `evaluate()` asks of a policy, answered by a trained LeRobot DiffusionPolicy or
    ACTPolicy (the runner executes the first n_action_steps of what this returns)."""

    def __init__(self, policy, preprocessor, postprocessor):
        super().__init__()
        self.policy, self.pre, self.post = policy, preprocessor, postprocessor
        cfg = policy.config
        self.act = cfg.type == "act"
        self.config = SimpleNamespace(obs_keys=["robot_state", "object_state", "goal"], image_keys=[],
                                      n_obs_steps=cfg.n_obs_steps, n_action_steps=cfg.n_action_steps,
                                      temporal_ensemble=None, task_names=[], image_size=0)
        self.chunk_shape = (cfg.chunk_size if self.act else cfg.horizon, ACTION)

    @torch.no_grad()
    def predict_chunk(self, obs: dict, task_index=None, generator=None, noise=None) -> torch.Tensor:
        state, env = obs["robot_state"], torch.cat([obs["object_state"], obs["goal"]], -1)  # the export's layout
        if self.act:  # ACT reads the current frame, without a time axis
            batch = self.pre({"observation.state": state[:, -1], "observation.environment_state": env[:, -1]})
            return self.post(self.policy.predict_action_chunk(batch))
        batch = self.pre({"observation.state": state, "observation.environment_state": env})
        return self.post(self.policy.diffusion.generate_actions(batch, noise=noise))  # the executed part


def lerobot_side(args) -> dict:
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
    from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy
    from lerobot.policies.factory import make_pre_post_processors

    from vlascope.evaluate.runner import evaluate

    torch.manual_seed(0)
    features = dict(
        input_features={"observation.state": PolicyFeature(FeatureType.STATE, (STATE,)),
                        "observation.environment_state": PolicyFeature(FeatureType.ENV, (ENV,))},
        output_features={"action": PolicyFeature(FeatureType.ACTION, (ACTION,))}, device="cpu")
    if args.policy == "act":  # sizes and chunking as vs_lerobot.py matches them to ours
        cfg = ACTConfig(**features, dim_model=256, dim_feedforward=1024, chunk_size=16, n_action_steps=8,
                        pretrained_backbone_weights=None)
        policy = ACTPolicy(cfg)
    else:
        cfg = DiffusionConfig(**features, down_dims=(64, 128, 256), num_inference_steps=10)
        policy = DiffusionPolicy(cfg)
    if args.lr:
        cfg.optimizer_lr = args.lr
    data = lerobot_dataset(args.dataset, cfg)
    pre, post = make_pre_post_processors(cfg, dataset_stats=data.meta.stats)
    preset = cfg.get_optimizer_preset()
    optimizer = preset.build(policy.parameters())
    schedule = cfg.get_scheduler_preset()  # ACT's preset is a constant learning rate: None
    scheduler = schedule.build(optimizer, num_training_steps=args.steps) if schedule else None
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch_size, shuffle=True, drop_last=True,
                                         generator=torch.Generator().manual_seed(0))
    start, step = time.time(), 0
    policy.train()
    while step < args.steps:  # LeRobot's training step: preprocess, forward, clip, step
        for batch in loader:
            loss, _ = policy.forward(pre(batch))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), preset.grad_clip_norm)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            step += 1
            if step == args.steps:
                break
    train_s = time.time() - start
    policy.eval()
    report = evaluate(LeRobotForEval(policy, pre, post), args.task, args.episodes,
                      seed=args.seed, progress=False)
    return {"final_loss": loss.item(), "train_seconds": train_s, "summary": report.summary,
            "params": sum(p.numel() for p in policy.parameters())}


def vlascope_side(args) -> dict:
    from vlascope.evaluate.runner import evaluate
    from vlascope.policies import load_pretrained
    from vlascope.train import TrainConfig, train

    # The HDF5 file the export was written from: the same demos under the env's own keys
    # (object and goal apart), which is what evaluation feeds a vlascope policy.
    sized = {"cond_dim": 2 * (STATE + ENV), "encoder_hidden": 128} if args.policy == "diffusion" else {}
    result = train([str(Path(args.dataset).with_suffix(".hdf5"))], args.policy, Path(args.out) / "vlascope",
                   TrainConfig(steps=args.steps, batch_size=args.batch_size, ckpt_every=0,
                               **({"lr": args.lr} if args.lr else {})),
                   sized, progress=False)
    policy = load_pretrained(result.last_checkpoint)
    report = evaluate(policy, args.task, args.episodes, seed=args.seed, progress=False)
    return {"final_loss": result.final_loss, "train_seconds": result.seconds, "summary": report.summary,
            "params": sum(p.numel() for p in policy.parameters())}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--lerobot-python", required=True)
    p.add_argument("--policy", choices=["diffusion", "act"], default="diffusion")
    p.add_argument("--lr", type=float, default=None,
                   help="one learning rate for both sides (default: each library's own: ours 1e-3; "
                        "LeRobot's diffusion 1e-4, ACT 1e-5)")
    p.add_argument("--task", default="reach-v3", choices=["reach-v3"],
                   help="the exported layout (object + goal as environment state) is reach's")
    p.add_argument("--demos", type=int, default=20)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs/vs_lerobot_success")
    p.add_argument("--dataset", help=argparse.SUPPRESS)
    p.add_argument("--side", choices=["both", "lerobot"], default="both", help=argparse.SUPPRESS)
    args = parse_args(p)
    if args.side == "lerobot":
        print(json.dumps(lerobot_side(args)))
        return
    torch.set_num_threads(1)  # the two trainings run side by side, one core each
    args.dataset = str(export_reach(Path(args.out) / "data", args.demos))
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    theirs_proc = subprocess.Popen([args.lerobot_python, __file__, "--side", "lerobot",
                                    "--dataset", args.dataset, *sys.argv[1:]],
                                   stdout=subprocess.PIPE, text=True, env=env)
    ours = vlascope_side(args)
    out, _ = theirs_proc.communicate()
    if theirs_proc.returncode != 0:
        sys.exit(f"lerobot side failed (exit code {theirs_proc.returncode}); its output is above")
    theirs = json.loads(out.strip().splitlines()[-1])
    print(f"{args.task}: {args.demos} demos, {args.steps} steps at batch {args.batch_size}, "
          f"{args.episodes} episodes on the same seeds")
    print(f"{'policy':22s} {'params':>8s} {'success':>14s} {'95% CI':>12s} {'final loss':>11s} {'train s':>8s}")
    names = {"diffusion": ("vlascope diffusion", "LeRobot DiffusionPolicy"),
             "act": ("vlascope act", "LeRobot ACTPolicy")}[args.policy]
    for name, r in zip(names, (ours, theirs)):
        s = r["summary"]
        lo, hi = s["success_ci95"]
        print(f"{name:22s} {r['params'] / 1e6:7.2f}M {s['successes']:>4d}/{s['episodes']:<3d} "
              f"({100 * s['success_rate']:3.0f}%) [{100 * lo:3.0f},{100 * hi:3.0f}]% "
              f"{r['final_loss']:11.4f} {r['train_seconds']:8.0f}")
    result = {"vlascope": ours, "lerobot": theirs, "args": vars(args)}
    Path(args.out, "results.json").write_text(json.dumps(result, indent=2))
    if args.side == "vlascope":
        write_results(f"vs_lerobot_success-{args.policy}", args, result)


if __name__ == "__main__":
    main()
