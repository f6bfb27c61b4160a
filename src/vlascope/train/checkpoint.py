"""Checkpoints: a policy folder (see policies.factory) plus the optimiser/scheduler/RNG state.

Every checkpoint is written into a temporary folder and renamed into place, so a run killed
mid-save keeps its previous checkpoints loadable. `checkpoints/last` is a copy of the newest.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from vlascope.fileio import atomic_dir
from vlascope.policies import save_pretrained


def save_checkpoint(run_dir: str | Path, step: int, policy, ema, name: str, optimizer,
                    scheduler, extra: dict) -> Path:
    ckpt_root = Path(run_dir) / "checkpoints"
    folder = ckpt_root / f"step_{step:07d}"
    with atomic_dir(folder) as tmp:
        save_pretrained(policy, name, tmp, ema=ema, extra={**extra, "step": step})
        torch.save({
            "step": step,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }, tmp / "train_state.pt")
    with atomic_dir(ckpt_root / "last") as tmp:
        shutil.copytree(folder, tmp, dirs_exist_ok=True)
    return folder


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Step checkpoints of a run, oldest first."""
    return sorted(p for p in (Path(run_dir) / "checkpoints").glob("step_*") if p.is_dir())
