"""Observation encoders: turn a normalised observation window into one condition vector."""

from __future__ import annotations

import torch
from torch import nn


class StateEncoder(nn.Module):
    """MLP over the flattened low-dim observation history, plus an optional learned task embedding.

    The task embedding lets one policy serve several tasks (MT10): the task index picks a vector
    that is concatenated to the state features before the MLP.
    """

    def __init__(self, obs_dims: dict[str, int], n_obs_steps: int, out_dim: int = 256,
                 hidden: int = 256, num_tasks: int = 1, task_embed_dim: int = 32):
        super().__init__()
        self.keys = sorted(obs_dims)
        in_dim = sum(obs_dims.values()) * n_obs_steps
        self.task_embedding = nn.Embedding(num_tasks, task_embed_dim) if num_tasks > 1 else None
        if self.task_embedding is not None:
            in_dim += task_embed_dim
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.Mish(), nn.Linear(hidden, hidden),
                                 nn.Mish(), nn.Linear(hidden, out_dim))
        self.out_dim = out_dim

    def forward(self, obs: dict[str, torch.Tensor], task_index: torch.Tensor | None = None) -> torch.Tensor:
        x = torch.cat([obs[k].flatten(1) for k in self.keys], dim=-1)
        if self.task_embedding is not None:
            if task_index is None:
                raise ValueError("a multi-task encoder needs task_index")
            x = torch.cat([x, self.task_embedding(task_index)], dim=-1)
        return self.mlp(x)
