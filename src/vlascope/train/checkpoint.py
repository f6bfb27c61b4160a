"""Checkpoints: a policy folder (see policies.factory) plus the optimiser/scheduler/RNG state.

Every checkpoint is written into a temporary folder and renamed into place, so a run killed
mid-save keeps its previous checkpoints loadable. `checkpoints/last` is a symbolic link to the
newest, swapped atomically (a rename), so it always names a complete checkpoint.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from vlascope.errors import VlascopeError
from vlascope.fileio import atomic_dir
from vlascope.policies import save_pretrained


def save_checkpoint(run_dir: str | Path, step: int, policy, ema, name: str, optimizer,
                    scheduler, extra: dict, batch_rng: torch.Tensor | None = None) -> Path:
    ckpt_root = Path(run_dir) / "checkpoints"
    folder = ckpt_root / f"step_{step:07d}"
    with atomic_dir(folder) as tmp:
        save_pretrained(policy, name, tmp, ema=ema, extra={**extra, "step": step})
        state = {"step": step, "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "torch_rng": torch.get_rng_state()}
        if torch.cuda.is_available() and next(policy.parameters()).is_cuda:
            state["cuda_rng"] = torch.cuda.get_rng_state(next(policy.parameters()).device)
        if batch_rng is not None:
            state["batch_rng"] = batch_rng.cpu()
        torch.save(state, tmp / "train_state.pt")
    point_last_at(ckpt_root, folder)
    return folder


def point_last_at(ckpt_root: Path, folder: Path) -> None:
    last = ckpt_root / "last"
    if last.exists() and not last.is_symlink():  # a run written before `last` was a link
        shutil.rmtree(last)
    link = ckpt_root / f".last.{os.getpid()}.tmp"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(folder.name)
    os.replace(link, last)


def latest_checkpoint(run_dir: str | Path) -> Path:
    """The newest complete step checkpoint of a run."""
    for folder in reversed(list_checkpoints(run_dir)):
        if (folder / "config.json").exists() and (folder / "train_state.pt").exists():
            return folder
    raise VlascopeError(f"{run_dir}: no complete checkpoint to resume from (checkpoints/step_*)")


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Step checkpoints of a run, oldest first."""
    return sorted(p for p in (Path(run_dir) / "checkpoints").glob("step_*") if p.is_dir())
