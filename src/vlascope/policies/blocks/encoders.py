"""Observation encoders: turn a normalised observation window into one condition vector."""

from __future__ import annotations

import torch
from torch import nn

from vlascope.policies.blocks.vision import ImageEncoder


def is_image_key(key: str) -> bool:
    return key.endswith("_image")


class ObservationEncoder(nn.Module):
    """An MLP over the observation history: low-dim states flattened, each camera's images
    through its own ImageEncoder, plus an optional learned task embedding.

    The task embedding lets one policy serve several tasks (MT10): the task index picks a vector
    that is concatenated to the observation features before the MLP.
    """

    def __init__(self, obs_dims: dict[str, int], n_obs_steps: int, out_dim: int = 256,
                 hidden: int = 256, num_tasks: int = 1, task_embed_dim: int = 32,
                 vision: dict | None = None):
        super().__init__()
        self.keys = sorted(k for k in obs_dims if not is_image_key(k))
        self.image_keys = sorted(k for k in obs_dims if is_image_key(k))
        in_dim = sum(obs_dims[k] for k in self.keys) * n_obs_steps
        if self.image_keys:
            vision = vision or {}
            self.cameras = nn.ModuleDict({k: ImageEncoder(**vision) for k in self.image_keys})
            in_dim += len(self.image_keys) * n_obs_steps * vision.get("out_dim", 64)
        self.task_embedding = nn.Embedding(num_tasks, task_embed_dim) if num_tasks > 1 else None
        if self.task_embedding is not None:
            in_dim += task_embed_dim
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.Mish(), nn.Linear(hidden, hidden),
                                 nn.Mish(), nn.Linear(hidden, out_dim))
        self.out_dim = out_dim

    def forward(self, obs: dict[str, torch.Tensor], task_index: torch.Tensor | None = None) -> torch.Tensor:
        parts = [obs[k].flatten(1) for k in self.keys]
        for k in self.image_keys:
            images = obs[k]  # (B, To, H, W, 3) uint8
            b = images.shape[0]
            parts.append(self.cameras[k](images.flatten(0, 1)).reshape(b, -1))
        x = torch.cat(parts, dim=-1)
        if self.task_embedding is not None:
            if task_index is None:
                raise ValueError("a multi-task encoder needs task_index")
            x = torch.cat([x, self.task_embedding(task_index)], dim=-1)
        return self.mlp(x)
