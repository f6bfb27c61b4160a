"""The optimiser and learning-rate schedule shared by training and the doctor's short fits."""

from __future__ import annotations

import math

import torch

# Devices with a fused AdamW kernel in every torch this package supports (>= 2.4).
FUSED_ADAMW_DEVICES = ("cpu", "cuda")


def adamw(parameters, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW, fused where the parameters' device has the kernel: one kernel updates every tensor
    instead of a Python loop of several ops per tensor, which is a quarter of a small policy's
    training step on a CPU. Same update rule, same results up to float rounding."""
    parameters = list(parameters)
    fused = all(p.device.type in FUSED_ADAMW_DEVICES and p.is_floating_point() for p in parameters)
    return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay, fused=fused)


def warmup_cosine(warmup: int, total: int):
    """LambdaLR factor: linear warm-up over `warmup` steps, then a cosine decay to 0 at `total`."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(total - warmup, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return factor
