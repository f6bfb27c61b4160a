"""The training loop: one function you can read top to bottom.

Data: every training window of a low-dim dataset is stacked once into tensors on the training
device, and batches are drawn by random index (far faster than a DataLoader for small samples).
Optimisation: AdamW, linear warm-up then cosine decay, gradient-norm clipping (the loss itself
is never clipped: that hides the exploding gradients it is meant to prevent), EMA weights used
for evaluation, bf16 autocast on GPU.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm import tqdm

from vlascope.data import Normalizer, WindowDataset, compute_stats, read_dataset
from vlascope.errors import VlascopeError
from vlascope.fileio import atomic_path
from vlascope.policies import build_policy, make_config
from vlascope.policies.blocks.encoders import is_image_key
from vlascope.train.checkpoint import save_checkpoint


@dataclass
class TrainConfig:
    steps: int = 3000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-6
    warmup_steps: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.995
    log_every: int = 25
    ckpt_every: int = 1000  # 0: only the final checkpoint
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bf16 autocast, on CUDA only


@dataclass
class TrainResult:
    run_dir: Path
    last_checkpoint: Path
    final_loss: float
    seconds: float
    samples_per_second: float
    ema: torch.nn.Module | None = None  # the trained (EMA) policy, in memory


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_config_file(path: str | None) -> dict:
    """A YAML/JSON file with optional `train:` and `policy:` sections."""
    if path is None:
        return {}
    p = Path(path)
    if not p.exists():
        raise VlascopeError(f"{path}: no such config file")
    try:
        cfg = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise VlascopeError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(cfg, dict) or set(cfg) - {"train", "policy"}:
        raise VlascopeError(f"{path}: expected a mapping with 'train' and/or 'policy' sections")
    return cfg


def make_train_config(overrides: dict) -> TrainConfig:
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise VlascopeError(f"unknown train option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return TrainConfig(**overrides)


def lr_lambda(warmup: int, total: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(total - warmup, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return f


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, step: int, max_decay: float) -> None:
    # Warm-up the decay so early EMA weights are not dominated by the random init.
    decay = min(max_decay, (1 + step) / (10 + step))
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach(), 1 - decay)


def prepare_data(dataset_paths: list[str], obs_keys: list[str]):
    datasets = [read_dataset(p) for p in dataset_paths]
    for d in datasets:
        missing = [k for k in obs_keys if k not in d.obs_shapes]
        if missing:
            raise VlascopeError(f"{d.path}: observation key(s) {missing} not in the dataset "
                                f"(has: {', '.join(sorted(d.obs_shapes))})")
    first = datasets[0]
    for d in datasets[1:]:
        if d.action_dim != first.action_dim:
            raise VlascopeError(f"{d.path}: action dim {d.action_dim} differs from "
                                f"{first.path}'s {first.action_dim}")
    task_names = list(dict.fromkeys(d.task for d in datasets))
    episodes, task_indices = [], []
    for d in datasets:
        episodes += d.episodes
        task_indices += [task_names.index(d.task)] * len(d.episodes)
    return datasets, episodes, task_indices, task_names


def build_for_episodes(policy_name: str, overrides: dict | None, episodes: list,
                       task_names: list[str]) -> torch.nn.Module:
    """A fresh policy whose sizes and normaliser statistics come from `episodes`."""
    config = make_config(policy_name, overrides)
    first = episodes[0]
    config.obs_dims = {k: int(first.obs[k].shape[-1]) for k in config.obs_keys}
    config.action_dim = int(first.actions.shape[1])
    config.task_names = task_names if len(task_names) > 1 else []
    # Images are scaled by their encoder, not the normaliser (and their statistics would cost
    # gigabytes of float64).
    state_keys = [k for k in config.obs_keys if not is_image_key(k)]
    for k in config.obs_keys:
        if is_image_key(k):
            config.image_size = int(first.obs[k].shape[1])
    stats = {k: compute_stats(np.concatenate([e.obs[k] for e in episodes])) for k in state_keys}
    stats["action"] = compute_stats(np.concatenate([e.actions for e in episodes]))
    modes = {k: config.obs_norm for k in state_keys} | {"action": config.action_norm}
    return build_policy(policy_name, config, Normalizer(stats, modes, config.norm_floor))


def make_windows(policy, episodes: list, task_indices: list[int] | None, device) -> dict:
    cfg = policy.config
    windows = WindowDataset(episodes, cfg.obs_keys, cfg.n_obs_steps, cfg.horizon,
                            task_indices).all_windows()
    return {"obs": {k: v.to(device) for k, v in windows["obs"].items()},
            "action": windows["action"].to(device),
            "task_index": windows["task_index"].to(device)}


def train(dataset_paths: list[str], policy_name: str, out_dir: str | Path,
          train_config: TrainConfig | None = None, policy_overrides: dict | None = None,
          progress: bool = True) -> TrainResult:
    cfg = train_config or TrainConfig()
    config = make_config(policy_name, policy_overrides)
    datasets, episodes, task_indices, task_names = prepare_data(dataset_paths, config.obs_keys)
    torch.manual_seed(cfg.seed)
    policy = build_for_episodes(policy_name, policy_overrides, episodes, task_names)
    extra = {"data": {"paths": [str(p) for p in dataset_paths], "tasks": task_names,
                      "num_demos": len(episodes)}}
    return fit(policy, policy_name, episodes, task_indices, out_dir, cfg, extra, progress)


def fit(policy: torch.nn.Module, policy_name: str, episodes: list, task_indices: list[int] | None,
        out_dir: str | Path, cfg: TrainConfig, extra: dict | None = None,
        progress: bool = True) -> TrainResult:
    """Train `policy` on every window of `episodes`; logs and checkpoints go to `out_dir`."""
    run_dir = Path(out_dir)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    policy = policy.to(device)
    ema = copy.deepcopy(policy).eval().requires_grad_(False)
    windows = make_windows(policy, episodes, task_indices, device)
    n = len(windows["action"])

    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg.warmup_steps, cfg.steps))
    amp = cfg.amp and device.type == "cuda"

    run_dir.mkdir(parents=True, exist_ok=True)
    extra = {"train": dataclasses.asdict(cfg), **(extra or {})}
    extra.setdefault("data", {})["num_windows"] = n
    with atomic_path(run_dir / "config.yaml") as tmp:
        tmp.write_text(yaml.safe_dump({"policy_name": policy_name,
                                       "policy": dataclasses.asdict(policy.config), **extra}))
    log_file = open(run_dir / "loss.csv", "w", newline="")
    log = csv.writer(log_file)
    log.writerow(["step", "loss", "grad_norm", "lr", "samples_per_s"])

    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    start = time.time()
    last_log = (start, 0)
    running = None
    bar = tqdm(range(cfg.steps), desc=f"train {policy_name}", disable=not progress,
               mininterval=0.5)
    policy.train()
    for step in bar:
        idx = torch.randint(0, n, (cfg.batch_size,), device=device, generator=generator)
        batch = {"obs": {k: v[idx] for k, v in windows["obs"].items()},
                 "action": windows["action"][idx], "task_index": windows["task_index"][idx]}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss, _ = policy.compute_loss(batch)
        if not torch.isfinite(loss):
            raise VlascopeError(f"training diverged: loss is {loss.item()} at step {step}; "
                                "run `vlascope doctor` on the dataset")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        ema_update(ema, policy, step, cfg.ema_decay)

        value = loss.item()
        running = value if running is None else 0.95 * running + 0.05 * value
        done = step + 1
        # Step 1 is always logged: the doctor compares it with the objective's expected start.
        if done == 1 or done % cfg.log_every == 0 or done == cfg.steps:
            now = time.time()
            sps = (done - last_log[1]) * cfg.batch_size / max(now - last_log[0], 1e-9)
            last_log = (now, done)
            log.writerow([done, f"{value:.6f}", f"{float(grad_norm):.4f}",
                          f"{scheduler.get_last_lr()[0]:.3e}", f"{sps:.1f}"])
            log_file.flush()
            bar.set_postfix(loss=f"{running:.4f}", samples_s=f"{sps:.0f}")
        if (cfg.ckpt_every and done % cfg.ckpt_every == 0) or done == cfg.steps:
            save_checkpoint(run_dir, done, policy, ema, policy_name, optimizer, scheduler,
                                   {**extra, "train_loss": running})
    bar.close()
    log_file.close()
    seconds = time.time() - start
    return TrainResult(run_dir, run_dir / "checkpoints" / "last", float(running), seconds,
                       cfg.steps * cfg.batch_size / seconds, ema)
