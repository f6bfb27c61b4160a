"""Training throughput (samples/s) and inference latency (ms per action chunk, batch 1) per head.

Measured on whatever device is present (CPU here, `--device cuda` on a GPU machine), on the
default configs and a reach-v3-shaped state input (`--image 96` adds a 96x96 corner2 camera:
the ResNet-18-style encoder). Prints a table, with peak GPU memory on CUDA.

    python benchmarks/speed.py [--device cpu] [--batch-size 256] [--steps 50] [--image 96]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from vlascope.data import Normalizer, compute_stats
from vlascope.policies import POLICY_NAMES, build_policy, make_config

OBS_DIMS = {"robot_state": 4, "object_state": 14, "goal": 3}


IMAGE_KEY = "corner2_image"


def make(name: str, device: str, image: int = 0):
    over = {"obs_dims": OBS_DIMS}
    if image:
        over = {"obs_dims": {**OBS_DIMS, IMAGE_KEY: 3}, "image_size": image,
                "obs_keys": [*OBS_DIMS, IMAGE_KEY]}
    cfg = make_config(name, over)
    rng = np.random.default_rng(0)
    stats = {k: compute_stats(rng.normal(size=(100, d))) for k, d in OBS_DIMS.items()}
    stats["action"] = compute_stats(rng.uniform(-1, 1, size=(100, 4)))
    modes = {k: "meanstd" for k in OBS_DIMS} | {"action": "minmax"}
    return build_policy(name, cfg, Normalizer(stats, modes)).to(device), cfg


def batch(b: int, cfg, device: str) -> dict:
    obs = {k: torch.randn(b, cfg.n_obs_steps, d, device=device) for k, d in OBS_DIMS.items()}
    if IMAGE_KEY in cfg.obs_keys:
        s = cfg.image_size
        obs[IMAGE_KEY] = torch.randint(0, 256, (b, cfg.n_obs_steps, s, s, 3), dtype=torch.uint8, device=device)
    return {"obs": obs, "action": torch.rand(b, cfg.horizon, 4, device=device) * 2 - 1}


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--chunks", type=int, default=50)
    p.add_argument("--image", type=int, default=0, help="add a camera of this size (pixels)")
    args = p.parse_args()
    print(f"device {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'policy':10s} {'params':>9s} {'train samples/s':>16s} {'ms/chunk (b=1)':>15s} {'peak GiB':>9s}")
    for name in POLICY_NAMES:
        cuda = args.device.startswith("cuda")
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        policy, cfg = make(name, args.device, args.image)
        opt = torch.optim.AdamW(policy.parameters(), lr=1e-4)
        data = batch(args.batch_size, cfg, args.device)
        amp = args.device.startswith("cuda")
        for i in range(args.steps + 5):
            if i == 5:
                sync(args.device)
                t0 = time.perf_counter()
            with torch.autocast("cuda" if amp else "cpu", dtype=torch.bfloat16, enabled=amp):
                loss, _ = policy.compute_loss(data)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sync(args.device)
        sps = args.steps * args.batch_size / (time.perf_counter() - t0)
        policy.eval()
        obs = batch(1, cfg, args.device)["obs"]
        for i in range(args.chunks + 3):
            if i == 3:
                sync(args.device)
                t0 = time.perf_counter()
            policy.predict_chunk(obs)
        sync(args.device)
        ms = 1000 * (time.perf_counter() - t0) / args.chunks
        n_params = sum(p.numel() for p in policy.parameters())
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
        print(f"{name:10s} {n_params:9d} {sps:16.0f} {ms:15.2f} {peak:9.2f}")


if __name__ == "__main__":
    main()
