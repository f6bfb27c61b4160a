"""Train the TinyVLA example on a robomimic-layout HDF5 file, with its own data code and loop.

    python -m examples.tinyvla.train --dataset data/pick-place-images.hdf5 --out tinyvla.pt
        [--steps 2000] [--lora-unhooked] [--mask-first-joint] [--no-goal]
"""

from __future__ import annotations

import argparse

import h5py
import numpy as np
import torch

from examples.tinyvla.model import TinyVLA, TinyVLAConfig


def read_demos(path: str, image_key: str) -> list[dict]:
    with h5py.File(path, "r") as f:
        return [{"image": f[f"data/{name}/obs/{image_key}"][()], "state": f[f"data/{name}/obs/robot_state"][()],
                 "goal": f[f"data/{name}/obs/goal"][()], "actions": f[f"data/{name}/actions"][()]}
                for name in sorted(f["data"], key=lambda n: int(n.split("_")[-1]))]


def statistics(demos: list[dict]) -> dict[str, np.ndarray]:
    stats = {}
    for name, key in (("state", "state"), ("goal", "goal"), ("action", "actions")):
        x = np.concatenate([d[key] for d in demos]).astype(np.float64)
        stats[f"{name}_mean"], stats[f"{name}_std"] = x.mean(0), np.maximum(x.std(0), 1e-2)
    return stats


def windows(demos: list[dict], horizon: int) -> dict[str, torch.Tensor]:
    """Every frame with the next `horizon` actions (the last one repeated past the end)."""
    out = {"image": [], "state": [], "goal": [], "actions": []}
    for d in demos:
        n = len(d["actions"])
        index = np.minimum(np.arange(n)[:, None] + np.arange(horizon)[None], n - 1)
        out["image"].append(d["image"])
        out["state"].append(d["state"])
        out["goal"].append(d["goal"])
        out["actions"].append(d["actions"][index])
    return {k: torch.from_numpy(np.concatenate(v)) for k, v in out.items()}


def build(config: TinyVLAConfig, demos: list[dict]) -> TinyVLA:
    return TinyVLA(config, {k: torch.as_tensor(v) for k, v in statistics(demos).items()})


def make_optimizer(model: TinyVLA, steps: int):
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3, weight_decay=1e-4)
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))


def train(model: TinyVLA, demos: list[dict], steps: int, batch_size: int = 64, seed: int = 0) -> list[float]:
    torch.manual_seed(seed)
    data = windows(demos, model.config.horizon)
    opt, sched = make_optimizer(model, steps)
    losses = []
    model.train()
    for _ in range(steps):
        idx = torch.randint(len(data["actions"]), (batch_size,))
        loss = model.loss(data["image"][idx], data["state"][idx].float(), data["goal"][idx].float(),
                          data["actions"][idx].float())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    return losses


def save(model: TinyVLA, path: str) -> None:
    torch.save({"config": model.config.to_dict(), "state_dict": model.state_dict()}, path)


def load(path: str, device: str = "cpu") -> TinyVLA:
    blob = torch.load(path, map_location=device, weights_only=True)
    config = TinyVLAConfig(**blob["config"])
    stats = {k: v for k, v in blob["state_dict"].items() if k.endswith(("_mean", "_std"))}
    model = TinyVLA(config, stats)
    model.load_state_dict(blob["state_dict"])
    return model.to(device).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--lora-unhooked", action="store_true")
    parser.add_argument("--mask-first-joint", action="store_true")
    parser.add_argument("--no-goal", action="store_true")
    args = parser.parse_args()
    demos = read_demos(args.dataset, "corner2_image")
    config = TinyVLAConfig(image_size=demos[0]["image"].shape[1], lora_unhooked=args.lora_unhooked,
                           mask_first_joint=args.mask_first_joint, use_goal=not args.no_goal)
    model = build(config, demos)
    losses = train(model, demos, args.steps)
    save(model, args.out)
    print(f"trained {args.steps} steps, final loss {np.mean(losses[-50:]):.4f}: {args.out}")


if __name__ == "__main__":
    main()
