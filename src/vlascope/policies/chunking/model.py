"""The chunking policy: observation encoder -> one condition vector -> action head (diffusion,
flow matching or regression) -> action chunk."""

from __future__ import annotations

import torch

from vlascope.data.normalizer import Normalizer
from vlascope.policies.base import HeadPolicy
from vlascope.policies.blocks.encoders import ObservationEncoder
from vlascope.policies.blocks.heads import make_head
from vlascope.policies.chunking.config import ChunkingPolicyConfig


class ChunkingPolicy(HeadPolicy):
    def __init__(self, config: ChunkingPolicyConfig, normalizer: Normalizer):
        super().__init__(config, normalizer)
        self.encoder = ObservationEncoder(
            {k: config.obs_dims[k] for k in config.obs_keys}, config.n_obs_steps,
            out_dim=config.cond_dim, hidden=config.encoder_hidden, num_tasks=config.num_tasks,
            task_embed_dim=config.task_embed_dim, vision=config.vision,
            language_dim=config.language_dim if config.language else 0)
        self.head = make_head(config, config.cond_dim)
        self.build_aux_head(config.cond_dim)

    def condition(self, inputs: dict) -> torch.Tensor:
        return self.encoder(inputs)
