"""The chunking policy: normaliser -> state encoder -> action head -> unnormalised action chunk."""

from __future__ import annotations

import torch
from torch import nn

from vlascope.data.normalizer import Normalizer
from vlascope.policies.blocks.denoisers import make_denoiser
from vlascope.policies.blocks.encoders import StateEncoder
from vlascope.policies.blocks.heads import DiffusionHead, FlowHead, RegressionHead
from vlascope.policies.chunking.config import ChunkingPolicyConfig


class ChunkingPolicy(nn.Module):
    def __init__(self, config: ChunkingPolicyConfig, normalizer: Normalizer):
        super().__init__()
        config.validate()
        self.config = config
        self.normalizer = normalizer
        self.encoder = StateEncoder(
            {k: config.obs_dims[k] for k in config.obs_keys}, config.n_obs_steps,
            out_dim=config.cond_dim, hidden=config.encoder_hidden,
            num_tasks=max(len(config.task_names), 1), task_embed_dim=config.task_embed_dim)
        if config.head == "mse":
            self.head = RegressionHead(config.cond_dim, config.horizon, config.action_dim,
                                       width=config.mlp_width)
        else:
            net = make_denoiser(config.denoiser, config.action_dim, config.horizon,
                                config.cond_dim, unet_dims=config.unet_dims,
                                kernel_size=config.kernel_size, mlp_width=config.mlp_width,
                                mlp_depth=config.mlp_depth)
            if config.head == "diffusion":
                self.head = DiffusionHead(net, config.diffusion_train_steps, config.inference_steps)
            else:
                self.head = FlowHead(net, config.inference_steps, config.flow_time_sampling)

    @property
    def chunk_shape(self) -> tuple[int, int]:
        return (self.config.horizon, self.config.action_dim)

    def encode(self, obs: dict[str, torch.Tensor], task_index: torch.Tensor | None = None) -> torch.Tensor:
        """Condition vector for raw (unnormalised) observation windows (B, To, dim)."""
        normed = {k: self.normalizer.normalize(k, obs[k].float()) for k in self.config.obs_keys}
        if self.training and self.config.obs_noise > 0:
            normed = {k: v + self.config.obs_noise * torch.randn_like(v) for k, v in normed.items()}
        return self.encoder(normed, task_index)

    def compute_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        cond = self.encode(batch["obs"], batch.get("task_index"))
        target = self.normalizer.normalize("action", batch["action"])
        per_sample = self.head.loss(cond, target)
        loss = per_sample.mean()
        return loss, {"loss": loss.detach()}

    @torch.no_grad()
    def predict_chunk(self, obs: dict[str, torch.Tensor], task_index: torch.Tensor | None = None,
                      generator: torch.Generator | None = None) -> torch.Tensor:
        """Action chunk (B, horizon, action_dim) in the dataset's action units."""
        cond = self.encode(obs, task_index)
        chunk = self.head.sample(cond, self.chunk_shape, generator)
        return self.normalizer.unnormalize("action", chunk)
