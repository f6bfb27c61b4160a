"""Per-dimension normalisation with statistics computed from the dataset.

Modes: "meanstd" maps to zero mean and unit std, "minmax" maps [min, max] to [-1, 1],
"identity" leaves values alone (images are scaled by their encoder). A dimension whose std
(or range) is below `floor` is only centred, never scaled: dividing a near-constant dimension
by a tiny std turns float noise into huge inputs and targets.

The normaliser is an nn.Module whose buffers hold both the raw statistics (for the doctor) and
the affine map, so it is saved inside the checkpoint and travels with the policy.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

STAT_NAMES = ("mean", "std", "min", "max", "scale", "offset")
MODES = ("meanstd", "minmax", "identity")


def compute_stats(x: np.ndarray) -> dict[str, np.ndarray]:
    """Statistics over all leading axes of `x` (..., dim)."""
    flat = np.asarray(x, dtype=np.float64).reshape(-1, x.shape[-1])
    return {
        "mean": flat.mean(0),
        "std": flat.std(0),
        "min": flat.min(0),
        "max": flat.max(0),
    }


def affine_from_stats(stats: dict[str, np.ndarray], mode: str, floor: float) -> tuple[np.ndarray, np.ndarray]:
    if mode not in MODES:
        raise ValueError(f"unknown normalisation mode '{mode}'; expected one of {MODES}")
    dim = np.asarray(stats["mean"]).shape
    if mode == "identity":
        return np.ones(dim), np.zeros(dim)
    if mode == "meanstd":
        centre, spread, target = stats["mean"], stats["std"], 1.0
    else:
        centre = (stats["max"] + stats["min"]) / 2
        spread, target = stats["max"] - stats["min"], 2.0
    ok = spread >= floor
    scale = np.where(ok, target / np.where(ok, spread, 1.0), 1.0)
    return scale, -centre * scale


class Normalizer(nn.Module):
    def __init__(self, stats: dict[str, dict[str, np.ndarray]], modes: dict[str, str],
                 floor: float = 1e-2):
        super().__init__()
        self.keys = sorted(stats)
        self.modes = dict(modes)
        self.floor = floor
        for key in self.keys:
            s = {k: np.asarray(v, dtype=np.float64) for k, v in stats[key].items()}
            if "scale" not in s:
                s["scale"], s["offset"] = affine_from_stats(s, modes.get(key, "meanstd"), floor)
            for name in STAT_NAMES:
                self.register_buffer(f"{key}__{name}", torch.as_tensor(s[name], dtype=torch.float32))

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor], modes: dict[str, str],
                        floor: float) -> "Normalizer":
        stats: dict[str, dict[str, np.ndarray]] = {}
        for name, value in state.items():
            key, stat = name.rsplit("__", 1)
            stats.setdefault(key, {})[stat] = value.cpu().numpy()
        return cls(stats, modes, floor)

    def stat(self, key: str, name: str) -> torch.Tensor:
        return getattr(self, f"{key}__{name}")

    def normalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        return x * self.stat(key, "scale") + self.stat(key, "offset")

    def unnormalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        return (x - self.stat(key, "offset")) / self.stat(key, "scale")
