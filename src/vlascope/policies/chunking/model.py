"""The chunking policy: normaliser -> state encoder -> action head -> unnormalised action chunk."""

from __future__ import annotations

import torch
from torch import nn

from vlascope.data.normalizer import Normalizer
from vlascope.policies.blocks.denoisers import make_denoiser
from vlascope.policies.blocks.encoders import ObservationEncoder, is_image_key
from vlascope.policies.blocks.heads import DiffusionHead, FlowHead, RegressionHead
from vlascope.policies.chunking.config import ChunkingPolicyConfig


class ChunkingPolicy(nn.Module):
    def __init__(self, config: ChunkingPolicyConfig, normalizer: Normalizer):
        super().__init__()
        config.validate()
        self.config = config
        self.normalizer = normalizer
        self.encoder = ObservationEncoder(
            {k: config.obs_dims[k] for k in config.obs_keys}, config.n_obs_steps,
            out_dim=config.cond_dim, hidden=config.encoder_hidden,
            num_tasks=max(len(config.task_names), 1), task_embed_dim=config.task_embed_dim,
            vision={"out_dim": config.vision_features, "widths": config.vision_widths,
                    "pool": config.vision_pool, "keypoints": config.vision_keypoints,
                    "crop_ratio": config.crop_ratio, "color_jitter": config.color_jitter})
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
        """Condition vector for raw (unnormalised) observation windows: (B, To, dim) states,
        (B, To, H, W, 3) uint8 images (scaled and augmented by their image encoder)."""
        normed = {}
        for k in self.config.obs_keys:
            if is_image_key(k):
                normed[k] = obs[k]
                continue
            x = self.normalizer.normalize(k, obs[k].float())
            if self.training and self.config.obs_noise > 0:
                x = x + self.config.obs_noise * torch.randn_like(x)
            normed[k] = x
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
