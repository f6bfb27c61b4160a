"""The learning-rate schedule shared by training and the doctor's short fits."""

from __future__ import annotations

import math


def warmup_cosine(warmup: int, total: int):
    """LambdaLR factor: linear warm-up over `warmup` steps, then a cosine decay to 0 at `total`."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(total - warmup, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return factor
