"""Observation encoders: turn normalised policy inputs into what a head or transformer reads.

`ObservationEncoder` makes one condition vector (the chunking policies); `ObservationTokens`
makes a sequence of tokens (ACT and the VLA's default backbone). Both take the dict a
`Policy.inputs` builds: (B, To, dim) states, uint8 (B, To, H, W, 3) images, `task_index`, and
the instruction embedding under "language" when the policy is language-conditioned.
With `film` in the vision options, the task vector also conditions every image trunk (FiLM).
"""

from __future__ import annotations

import torch
from torch import nn

from vlascope.policies.blocks.vision import ImageEncoder, SpatialSoftmax


def is_image_key(key: str) -> bool:
    return key.endswith("_image")


class TaskConditioning(nn.Module):
    """A vector saying which task: a learned per-task embedding, or a projection of the task's
    instruction embedding (so tasks with similar instructions start close). None when a
    single-task policy has no instruction to read."""

    def __init__(self, num_tasks: int, dim: int, language_dim: int = 0):
        super().__init__()
        self.language = language_dim > 0
        self.project = nn.Linear(language_dim, dim) if self.language else None
        self.embedding = nn.Embedding(num_tasks, dim) if num_tasks > 1 and not self.language else None
        self.enabled = self.exists(num_tasks, language_dim)
        self.dim = dim

    @staticmethod
    def exists(num_tasks: int, language_dim: int) -> bool:
        """Whether a policy with these tasks and instruction size has a task vector at all."""
        return language_dim > 0 or num_tasks > 1

    def forward(self, inputs: dict) -> torch.Tensor:
        if self.language:
            return self.project(inputs["language"])
        return self.embedding(inputs["task_index"])


def camera_encoders(image_keys: list[str], vision: dict, task_dim: int) -> nn.ModuleDict:
    """One ImageEncoder per camera; FiLM-conditioned on the `task_dim` task vector when
    `vision["film"]` (task_dim 0: the policy has none)."""
    vision = dict(vision)
    film = vision.pop("film", False)
    if film and not task_dim:
        raise ValueError("FiLM image conditioning needs a task vector (several tasks or an instruction)")
    film_dim = task_dim if film else 0
    return nn.ModuleDict({k: ImageEncoder(**vision, film_dim=film_dim) for k in image_keys})


def per_frame(task_vector: torch.Tensor | None, frames: int) -> torch.Tensor | None:
    """(B, d) -> (B * frames, d): the task vector of each image in a flattened window."""
    return None if task_vector is None else task_vector.repeat_interleave(frames, dim=0)


class ObservationEncoder(nn.Module):
    """An MLP over the observation history: low-dim states flattened, each camera's images
    through its own ImageEncoder, plus the task vector when there is one."""

    def __init__(self, obs_dims: dict[str, int], n_obs_steps: int, out_dim: int = 256,
                 hidden: int = 256, num_tasks: int = 1, task_embed_dim: int = 32,
                 vision: dict | None = None, language_dim: int = 0):
        super().__init__()
        self.keys = sorted(k for k in obs_dims if not is_image_key(k))
        self.image_keys = sorted(k for k in obs_dims if is_image_key(k))
        in_dim = sum(obs_dims[k] for k in self.keys) * n_obs_steps
        task_dim = task_embed_dim if TaskConditioning.exists(num_tasks, language_dim) else 0
        if self.image_keys:
            vision = vision or {}
            self.cameras = camera_encoders(self.image_keys, vision, task_dim)
            in_dim += len(self.image_keys) * n_obs_steps * vision.get("out_dim", 64)
        task = TaskConditioning(num_tasks, task_embed_dim, language_dim)
        self.task = task if task.enabled else None
        in_dim += task_dim
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.Mish(), nn.Linear(hidden, hidden),
                                 nn.Mish(), nn.Linear(hidden, out_dim))
        self.out_dim = out_dim

    def forward(self, inputs: dict) -> torch.Tensor:
        parts = [inputs[k].flatten(1) for k in self.keys]
        task = self.task(inputs) if self.task is not None else None
        for k in self.image_keys:
            images = inputs[k]  # (B, To, H, W, 3) uint8
            b, to = images.shape[:2]
            film = per_frame(task, to) if self.cameras[k].film_dim else None
            parts.append(self.cameras[k](images.flatten(0, 1), film).reshape(b, -1))
        if task is not None:
            parts.append(task)
        return self.mlp(torch.cat(parts, dim=-1))


class ObservationTokens(nn.Module):
    """Observations as a token sequence of width `dim`: each camera frame's trunk feature map
    (one token per cell, learned position embedding) and/or one token of its spatial-softmax
    keypoints (`image_tokens`), one token per state key and history step, and one
    task/instruction token. Every token carries a learned type/step embedding so the
    transformer can tell them apart."""

    def __init__(self, obs_dims: dict[str, int], n_obs_steps: int, dim: int, image_size: int,
                 num_tasks: int = 1, vision: dict | None = None, language_dim: int = 0,
                 token_stages: int | None = None, image_tokens: str = "grid"):
        super().__init__()
        self.keys = sorted(k for k in obs_dims if not is_image_key(k))
        self.image_keys = sorted(k for k in obs_dims if is_image_key(k))
        self.state_in = nn.ModuleDict({k: nn.Linear(obs_dims[k], dim) for k in self.keys})
        self.state_pos = nn.Parameter(torch.zeros(len(self.keys), n_obs_steps, dim)) \
            if self.keys else None
        vision = {**(vision or {}), "pool": "none"}
        if token_stages:
            vision["widths"] = list(vision.get("widths", [64, 128, 256, 512]))[:token_stages]
        self.grid = "grid" in image_tokens.split("+")
        self.keypoints = "keypoints" in image_tokens.split("+")
        if self.image_keys:
            task_dim = dim if TaskConditioning.exists(num_tasks, language_dim) else 0
            self.cameras = camera_encoders(self.image_keys, vision, task_dim)
            trunk = self.cameras[self.image_keys[0]]
            channels, cams = trunk.trunk.out_channels, len(self.image_keys)
            if self.grid:
                self.image_in = nn.ModuleDict({k: nn.Conv2d(channels, dim, 1)
                                               for k in self.image_keys})
                self.image_pos = nn.Parameter(
                    torch.zeros(cams, n_obs_steps, trunk.feature_cells(image_size), dim))
            if self.keypoints:
                n = vision.get("keypoints", 32)
                self.keypoint_in = nn.ModuleDict({k: nn.Sequential(
                    SpatialSoftmax(channels, n), nn.Linear(2 * n, dim)) for k in self.image_keys})
                self.keypoint_pos = nn.Parameter(torch.zeros(cams, n_obs_steps, dim))
        task = TaskConditioning(num_tasks, dim, language_dim)
        self.task = task if task.enabled else None
        for name in ("state_pos", "image_pos", "keypoint_pos"):
            p = getattr(self, name, None)
            if p is not None:
                nn.init.normal_(p, std=0.02)
        self.dim = dim

    def forward(self, inputs: dict) -> torch.Tensor:
        tokens = []
        task = self.task(inputs) if self.task is not None else None
        for i, k in enumerate(self.keys):
            tokens.append(self.state_in[k](inputs[k]) + self.state_pos[i])  # (B, To, dim)
        for i, k in enumerate(self.image_keys):
            images = inputs[k]
            b, to = images.shape[:2]
            film = per_frame(task, to) if self.cameras[k].film_dim else None
            fmap = self.cameras[k].feature_map(images.flatten(0, 1), film)
            if self.grid:
                cells = self.image_in[k](fmap).flatten(2).transpose(1, 2).reshape(b, to, -1, self.dim)
                tokens.append((cells + self.image_pos[i]).flatten(1, 2))
            if self.keypoints:
                tokens.append(self.keypoint_in[k](fmap).reshape(b, to, self.dim) + self.keypoint_pos[i])
        if task is not None:
            tokens.append(task[:, None])
        if not tokens:  # nothing to tokenise (a VLA backbone with no camera and no instruction)
            return inputs["task_index"].new_zeros(len(inputs["task_index"]), 0, self.dim).float()
        return torch.cat(tokens, dim=1)
