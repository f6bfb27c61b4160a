"""vlascope against LeRobot's DiffusionPolicy and ACT: training samples/s and inference ms per
action chunk, same input shapes, matched sizes, same batch, same hardware, one invocation.

LeRobot runs in its own Python (it needs torchvision; `python -m venv lr && lr/bin/pip install
lerobot`), in a subprocess of this script, one after the other with vlascope's timings, on the
same device. Both train on batches from the same exported dataset: reach-v3 demos from the
scripted expert written as a LeRobot v3.0 folder (observation.state: hand + gripper, 4 dims;
observation.environment_state: object + goal, 17), each library drawing a batch through its own
data pipeline (`--dataset` takes such a folder; by default 10 demos are collected). Training is
timed twice: on one fixed batch (the model step alone) and with each library's data pipeline
drawing every batch (LeRobot's DataLoader with its train script's 4 workers; our device-resident
batch source), which is what a user's training run costs. With
`--image`, the inputs are synthetic tensors of the same shapes plus a camera. LeRobot's models
are sized like ours (U-Net 64/128/256 and kernel 5; ACT 256 wide, 4+1 layers, feed-forward
1024, chunks of 16).

    python benchmarks/vs_lerobot.py --lerobot-python lr/bin/python [--device cuda] [--image 96]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _provenance import parse_args, write_results  # noqa: E402
from _timing import seconds_per_call  # noqa: E402

# The GPU machine's runs. Compiling the image models' training step takes longer than a call
# allows, so the image recipe trains eagerly.
RECIPES = {"gpu-state": ["--device", "cuda", "--batch-size", "64", "--steps", "30", "--chunks", "30",
                         "--compile-inference", "--compile-train"],
           "gpu-image": ["--device", "cuda", "--image", "96", "--batch-size", "64", "--steps", "20",
                         "--chunks", "20", "--compile-inference"]}
STATE, ENV, ACTION = 4, 17, 4


def export_reach(folder: Path, demos: int) -> Path:
    """Expert reach demos as a LeRobot v3.0 folder in the layout LeRobot's policies read."""
    import numpy as np

    from vlascope.data import read_dataset
    from vlascope.data.lerobot import write_lerobot
    from vlascope.envs.collect import collect_demos

    folder.parent.mkdir(parents=True, exist_ok=True)
    h5 = folder.with_suffix(".hdf5")
    collect_demos("reach-v3", demos, str(h5), progress=False)
    data = read_dataset(str(h5))
    for e in data.episodes:
        e.obs = {"robot_state": e.obs["robot_state"],
                 "environment_state": np.concatenate([e.obs["object_state"], e.obs["goal"]], -1)}
    return write_lerobot(folder, data)


def lerobot_dataset(folder: str, cfg):
    """The export through LeRobot's own dataset class, windowed by the policy's delta indices."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata

    fps = LeRobotDatasetMetadata("local/vs_lerobot", root=folder).fps
    delta = {"action": [i / fps for i in cfg.action_delta_indices]}
    if cfg.observation_delta_indices is not None:  # ACT reads the current frame only
        delta |= {k: [i / fps for i in cfg.observation_delta_indices]
                  for k in ("observation.state", "observation.environment_state")}
    return LeRobotDataset("local/vs_lerobot", root=folder, delta_timestamps=delta)


def lerobot_batches(folder: str, cfg, b: int, device):
    """Batches through LeRobot's own data pipeline, as its train script draws them (DataLoader
    with 4 workers, shuffled, pinned on CUDA), moved to `device`: a callable, endless."""
    loader = torch.utils.data.DataLoader(lerobot_dataset(folder, cfg), batch_size=b, shuffle=True,
                                         num_workers=4, pin_memory=device.type == "cuda",
                                         drop_last=True, persistent_workers=True,
                                         generator=torch.Generator().manual_seed(0))
    it = iter(loader)

    def next_batch() -> dict:
        nonlocal it
        try:
            raw = next(it)
        except StopIteration:
            it = iter(loader)
            raw = next(it)
        return {k: v.to(device, non_blocking=True) for k, v in raw.items() if isinstance(v, torch.Tensor)}

    return next_batch


def vlascope_batches(folder: str, policy_name: str, over: dict, b: int, device):
    """A policy built from the dataset (sizes, normaliser) and batches through vlascope's
    training data path (windows -> device-resident batch source): a callable, endless."""
    from vlascope.data.dataset import WindowDataset
    from vlascope.policies import build_for_episodes
    from vlascope.train.loop import BatchSource, prepare_data

    _, episodes, task_indices, tasks = prepare_data([folder], over["obs_keys"])
    policy = build_for_episodes(policy_name, over, episodes, tasks).to(device)
    cfg = policy.config
    tables = WindowDataset(episodes, cfg.obs_keys, cfg.n_obs_steps, cfg.horizon, task_indices).tables()
    return policy, BatchSource(tables, b, device, seed=0).sample


def seconds_per_train_step(policy, next_batch, device, steps: int, fused: bool = False,
                           compile: bool = False) -> float:
    """AdamW steps (bf16 autocast on CUDA) on the batches `next_batch()` returns: one fixed batch
    times the model alone, a data pipeline's batches time training as a user runs it. Both
    libraries' policies return (loss, extra) from forward(). `fused` and `compile` are what
    `vlascope train` does on a GPU (fused AdamW always, torch.compile with --compile);
    LeRobot's side runs without them."""
    opt = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-4, fused=fused)
    policy.train()
    forward = torch.compile(policy) if compile else policy

    def step():
        batch = next_batch()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss, _ = forward(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return seconds_per_call(step, steps, device)


def lerobot_side(args) -> dict:
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
    from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy

    device, b = torch.device(args.device), args.batch_size
    inputs = {"observation.state": PolicyFeature(FeatureType.STATE, (STATE,)),
              "observation.environment_state": PolicyFeature(FeatureType.ENV, (ENV,))}
    if args.image:
        inputs["observation.images.corner2"] = PolicyFeature(FeatureType.VISUAL, (3, args.image, args.image))
    outputs = {"action": PolicyFeature(FeatureType.ACTION, (ACTION,))}
    out = {}
    for name in ("diffusion", "act"):
        if name == "diffusion":
            cfg = DiffusionConfig(input_features=inputs, output_features=outputs, down_dims=(64, 128, 256),
                                  crop_shape=(round(0.9 * args.image),) * 2 if args.image else None,
                                  num_inference_steps=10, device=args.device)
            policy, to = DiffusionPolicy(cfg), cfg.n_obs_steps
        else:
            cfg = ACTConfig(input_features=inputs, output_features=outputs, dim_model=256, dim_feedforward=1024,
                            chunk_size=16, n_action_steps=8, pretrained_backbone_weights=None, device=args.device)
            policy, to = ACTPolicy(cfg), 1
        policy.to(device)

        def obs(n):
            shape = (n, to) if name == "diffusion" else (n,)
            o = {"observation.state": torch.randn(*shape, STATE, device=device),
                 "observation.environment_state": torch.randn(*shape, ENV, device=device)}
            if args.image:
                o["observation.images.corner2"] = torch.rand(*shape, 3, args.image, args.image, device=device)
            return o

        horizon = cfg.horizon if name == "diffusion" else cfg.chunk_size
        out[name] = {}
        if args.dataset:
            pipeline = lerobot_batches(args.dataset, cfg, b, device)
            batch = pipeline()
            out[name]["samples_per_s_with_data"] = b / seconds_per_train_step(
                policy, pipeline, device, args.steps)
        else:
            batch = {**obs(b), "action": torch.rand(b, horizon, ACTION, device=device) * 2 - 1,
                     "action_is_pad": torch.zeros(b, horizon, dtype=torch.bool, device=device)}
        train_s = seconds_per_train_step(policy, lambda: batch, device, args.steps)
        policy.eval()
        one = {k: v[:1] for k, v in batch.items() if k.startswith("observation.")}
        if name == "diffusion":
            one["observation.images"] = torch.stack([one[k] for k in cfg.image_features], dim=-4) \
                if args.image else None
            one = {k: v for k, v in one.items() if v is not None}
            infer = lambda: policy.diffusion.generate_actions(one)  # noqa: E731
        else:
            infer = lambda: policy.predict_action_chunk(one)  # noqa: E731
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            chunk_s = seconds_per_call(infer, args.chunks, device)
        out[name] |= {"params": sum(p.numel() for p in policy.parameters()),
                      "samples_per_s": b / train_s, "ms_per_chunk": 1000 * chunk_s}
        progress("lerobot", name, out[name])
    return out


def progress(side: str, name: str, figures: dict) -> None:
    """Each policy's figures as soon as they exist (on stderr), so a run cut short keeps them."""
    print(f"{side} {name}: " + json.dumps({k: round(v, 3) for k, v in figures.items()}),
          file=sys.stderr, flush=True)


def vlascope_side(args) -> dict:
    from vlascope.data import Normalizer, compute_stats
    from vlascope.policies import build_policy, make_config

    device, b = torch.device(args.device), args.batch_size
    dims = {"robot_state": STATE, "env_state": ENV}
    keys = list(dims) + (["corner2_image"] if args.image else [])
    out = {}
    for name in ("diffusion", "act"):
        # LeRobot conditions its U-Net on the raw state window (2 x 21 numbers); a condition that
        # wide, from a narrower encoder, matches its size (4.6 M parameters each).
        sized = {"cond_dim": 2 * (STATE + ENV), "encoder_hidden": 128} \
            if name == "diffusion" and not args.image else {}
        out[name], pipeline = {}, None
        if args.dataset:  # environment_state comes back as vlascope's object_state
            policy, pipeline = vlascope_batches(args.dataset, name, {"obs_keys": ["robot_state", "object_state"],
                                                                      **sized}, b, device)
            batch = pipeline()
        else:
            cfg = make_config(name, {"obs_keys": keys, "obs_dims": {**dims, "corner2_image": 3},
                                     "image_size": args.image or 96, "action_dim": ACTION, **sized})
            stats = {k: compute_stats(torch.randn(100, d).numpy()) for k, d in dims.items()}
            stats["action"] = compute_stats((torch.rand(100, ACTION) * 2 - 1).numpy())
            policy = build_policy(name, cfg, Normalizer(stats, {**{k: "meanstd" for k in dims},
                                                                "action": cfg.action_norm})).to(device)
            obs = {k: torch.randn(b, cfg.n_obs_steps, d, device=device) for k, d in dims.items()}
            if args.image:
                obs["corner2_image"] = torch.randint(0, 256, (b, cfg.n_obs_steps, args.image, args.image, 3),
                                                     dtype=torch.uint8, device=device)
            batch = {"obs": obs, "action": torch.rand(b, cfg.horizon, ACTION, device=device) * 2 - 1}
        cuda = device.type == "cuda"
        train_s = seconds_per_train_step(policy, lambda: batch, device, args.steps, fused=cuda)
        out[name] |= {"params": sum(p.numel() for p in policy.parameters()), "samples_per_s": b / train_s}
        if pipeline is not None:
            out[name]["samples_per_s_with_data"] = b / seconds_per_train_step(
                policy, pipeline, device, args.steps, fused=cuda)
        if args.compile_train:
            out[name]["samples_per_s_compiled"] = b / seconds_per_train_step(
                policy, lambda: batch, device, args.steps, fused=cuda, compile=True)
            if pipeline is not None:
                out[name]["samples_per_s_with_data_compiled"] = b / seconds_per_train_step(
                    policy, pipeline, device, args.steps, fused=cuda, compile=True)
        policy.eval()
        one = {k: v[:1] for k, v in batch["obs"].items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out[name]["ms_per_chunk"] = 1000 * seconds_per_call(lambda: policy.predict_chunk(one), args.chunks,
                                                                device)
        if args.compile_inference:  # what `vlascope eval --compile` runs
            fast = torch.compile(policy.predict_chunk, mode="reduce-overhead", dynamic=False)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                out[name]["ms_per_chunk_compiled"] = 1000 * seconds_per_call(lambda: fast(one), args.chunks,
                                                                         device, warmup=10)
        progress("vlascope", name, out[name])
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--lerobot-python", required=True)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--chunks", type=int, default=10)
    p.add_argument("--image", type=int, default=0)
    p.add_argument("--dataset", help="a LeRobot v3.0 folder laid out as export_reach writes it "
                   "(default: collect --demos reach demos into outputs/vs_lerobot_data)")
    p.add_argument("--demos", type=int, default=10)
    p.add_argument("--compile-train", action="store_true",
                   help="also time vlascope's training step through torch.compile (train --compile)")
    p.add_argument("--compile-inference", action="store_true",
                   help="also time vlascope's inference through torch.compile (CUDA graphs)")
    p.add_argument("--side", choices=["vlascope", "lerobot"], default="vlascope", help=argparse.SUPPRESS)
    args = parse_args(p, RECIPES)
    if args.side == "lerobot":
        print(json.dumps(lerobot_side(args)))
        return
    argv = sys.argv[1:]
    if not args.image and not args.dataset:
        args.dataset = str(export_reach(Path("outputs") / "vs_lerobot_data", args.demos))
        argv += ["--dataset", args.dataset]
    ours = vlascope_side(args)
    cmd = [args.lerobot_python, __file__, "--side", "lerobot", *argv]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)  # its stderr shows as it goes
    if proc.returncode != 0:
        sys.exit(f"lerobot side failed (exit code {proc.returncode}); its output is above")
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"device {args.device}, batch {args.batch_size}, image {args.image or 'none'}")
    print(f"{'policy':10s} {'params ours/lerobot':>22s} {'train samples/s ours/lerobot':>30s} {'ratio':>6s} "
          f"{'ms/chunk ours/lerobot':>22s} {'speed-up':>8s}")
    for name in ("diffusion", "act"):
        o, t = ours[name], theirs[name]
        print(f"{name:10s} {o['params'] / 1e6:9.2f}M / {t['params'] / 1e6:6.2f}M "
              f"{o['samples_per_s']:14.0f} / {t['samples_per_s']:8.0f} {o['samples_per_s'] / t['samples_per_s']:6.2f} "
              f"{o['ms_per_chunk']:10.2f} / {t['ms_per_chunk']:8.2f} {t['ms_per_chunk'] / o['ms_per_chunk']:8.2f}")
        if "samples_per_s_compiled" in o:
            c = o["samples_per_s_compiled"]
            print(f"{name + ' (ours, train --compile)':>40s} {c:14.0f} / {t['samples_per_s']:8.0f} "
                  f"{c / t['samples_per_s']:6.2f}")
        for key, label in (("samples_per_s_with_data", "with its data pipeline"),
                           ("samples_per_s_with_data_compiled", "with data, ours --compile")):
            if key in o and "samples_per_s_with_data" in t:
                c, their = o[key], t["samples_per_s_with_data"]
                print(f"{name + ' (' + label + ')':>40s} {c:14.0f} / {their:8.0f} {c / their:6.2f}")
        if "ms_per_chunk_compiled" in o:
            c = o["ms_per_chunk_compiled"]
            print(f"{name + ' (ours compiled)':>62s} {c:10.2f} / {t['ms_per_chunk']:8.2f} "
                  f"{t['ms_per_chunk'] / c:8.2f}")
    write_results("vs_lerobot", args, {"ours": ours, "lerobot": theirs, "args": vars(args)})


if __name__ == "__main__":
    main()
