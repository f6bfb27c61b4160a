"""Training throughput (samples/s) and inference latency (ms per action chunk, batch 1) per policy.

Measured on whatever device is present (CPU here, CUDA on a GPU machine), on the default
configs and a reach-v3-shaped state input; `--image 96` adds a 96x96 corner2 camera. Policies:
the chunking heads (diffusion, flow, mse), act, vla (the small backbone: our image tokens) and
vla-qwen2vl (a randomly initialised Qwen2-VL of 512 wide, 4 layers, built from a config: the
Hugging Face path with LoRA, timed without a download). Prints a table with peak GPU memory.

    python benchmarks/speed.py [--device cpu] [--batch-size 256] [--steps 50] [--image 96]
                               [--policies flow act ...] [--compile]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from _provenance import parse_args, write_results
from _timing import seconds_per_call, sync

# The GPU machine's compiled-inference run on the image policies.
RECIPES = {"gpu-compiled": ["--image", "96", "--policies", "diffusion", "act", "mse", "--steps", "30",
                            "--chunks", "30", "--compile-inference"]}

from vlascope.data import Normalizer, compute_stats
from vlascope.policies import POLICY_NAMES, build_policy, make_config

OBS_DIMS = {"robot_state": 4, "object_state": 14, "goal": 3}
IMAGE_KEY = "corner2_image"
VARIANTS = [*POLICY_NAMES, "vla-qwen2vl"]


def make(variant: str, device: str, image: int = 0, backbone_dir: str | None = None):
    name = variant.split("-")[0]
    over = {"obs_dims": OBS_DIMS}
    if image:
        over = {"obs_dims": {**OBS_DIMS, IMAGE_KEY: 3}, "image_size": image,
                "obs_keys": [*OBS_DIMS, IMAGE_KEY]}
    if variant == "vla-qwen2vl":
        from vlascope.policies.vla.random_backbone import build_random_qwen2_vl

        build_random_qwen2_vl(backbone_dir, hidden=512, layers=4, heads=8, vision_width=256,
                              vision_depth=4)
        over |= {"backbone": backbone_dir, "backbone_mode": "lora",
                 "instructions": ["pick the puck and place it at the goal"]}
    cfg = make_config(name, over)
    rng = np.random.default_rng(0)
    stats = {k: compute_stats(rng.normal(size=(100, d))) for k, d in OBS_DIMS.items()}
    stats["action"] = compute_stats(rng.uniform(-1, 1, size=(100, 4)))
    modes = {k: "meanstd" for k in OBS_DIMS} | {"action": cfg.action_norm}
    return build_policy(name, cfg, Normalizer(stats, modes)).to(device), cfg


def batch(b: int, cfg, device: str) -> dict:
    obs = {k: torch.randn(b, cfg.n_obs_steps, d, device=device) for k, d in OBS_DIMS.items()}
    if IMAGE_KEY in cfg.obs_keys:
        s = cfg.image_size
        obs[IMAGE_KEY] = torch.randint(0, 256, (b, cfg.n_obs_steps, s, s, 3), dtype=torch.uint8, device=device)
    return {"obs": obs, "action": torch.rand(b, cfg.horizon, 4, device=device) * 2 - 1}


def seconds_per_chunk(fn, obs: dict, calls: int, device: str, warmup: int = 3) -> float:
    """fn(obs)'s mean wall time under the training run's autocast."""
    with torch.no_grad(), torch.autocast("cuda" if device.startswith("cuda") else "cpu",
                                         dtype=torch.bfloat16, enabled=device.startswith("cuda")):
        return seconds_per_call(lambda: fn(obs), calls, device, warmup)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--chunks", type=int, default=50)
    p.add_argument("--image", type=int, default=0, help="add a camera of this size (pixels)")
    p.add_argument("--policies", nargs="+", default=VARIANTS, choices=VARIANTS)
    p.add_argument("--compile", action="store_true", help="torch.compile the training step")
    p.add_argument("--compile-inference", action="store_true",
                   help="also time inference through torch.compile(mode='reduce-overhead'), "
                        "which captures the whole sampling loop in CUDA graphs")
    args = parse_args(p, RECIPES)
    print(f"device {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"image {args.image or 'none'}, batch {args.batch_size}, compile {args.compile}")
    print(f"{'policy':12s} {'params':>11s} {'trainable':>11s} {'train samples/s':>16s} "
          f"{'ms/chunk (b=1)':>15s} {'chunks/s (b=256)':>17s} {'peak GiB':>9s}"
          + (f" {'compiled ms (b=1)':>18s} {'compiled chunks/s':>18s}" if args.compile_inference else ""))
    cuda = args.device.startswith("cuda")
    rows = []
    for variant in args.policies:
        if variant.startswith("vla") and not args.image:
            continue  # a VLA without a camera is not what it is for
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        with tempfile.TemporaryDirectory() as tmp:
            policy, cfg = make(variant, args.device, args.image, tmp)
        trainable = [q for q in policy.parameters() if q.requires_grad]
        opt = torch.optim.AdamW(trainable, lr=1e-4)
        step = torch.compile(policy) if args.compile else policy
        data = batch(args.batch_size, cfg, args.device)
        warmup = 20 if args.compile else 5
        for i in range(args.steps + warmup):
            if i == warmup:
                sync(args.device)
                t0 = time.perf_counter()
            with torch.autocast("cuda" if cuda else "cpu", dtype=torch.bfloat16, enabled=cuda):
                loss, _ = step(data)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sync(args.device)
        sps = args.steps * args.batch_size / (time.perf_counter() - t0)
        policy.eval()
        one, many = batch(1, cfg, args.device)["obs"], batch(256, cfg, args.device)["obs"]
        ms = 1000 * seconds_per_chunk(policy.predict_chunk, one, args.chunks, args.device)
        per_s = 256 / seconds_per_chunk(policy.predict_chunk, many, 10, args.device)
        n_params = sum(q.numel() for q in policy.parameters())
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
        row = {"policy": variant, "params": n_params, "trainable": sum(q.numel() for q in trainable),
               "train_samples_per_s": sps, "ms_per_chunk": ms, "chunks_per_s_b256": per_s,
               "peak_gib": None if not cuda else peak}
        line = (f"{variant:12s} {n_params:11d} {sum(q.numel() for q in trainable):11d} {sps:16.0f} "
                f"{ms:15.2f} {per_s:17.0f} {peak:9.2f}")
        if args.compile_inference:
            fast = torch.compile(policy.predict_chunk, mode="reduce-overhead", dynamic=False)
            ms_c = 1000 * seconds_per_chunk(fast, one, args.chunks, args.device, warmup=10)
            per_s_c = 256 / seconds_per_chunk(fast, many, 10, args.device, warmup=10)
            line += f" {ms_c:18.2f} {per_s_c:18.0f}"
            row.update(compiled_ms_per_chunk=ms_c, compiled_chunks_per_s_b256=per_s_c)
        print(line, flush=True)
        rows.append(row)
        del policy, opt, step, data
    write_results("speed", args, {"device": args.device, "image": args.image, "batch_size": args.batch_size,
                                  "rows": rows})


if __name__ == "__main__":
    main()
