"""The VLA: a vision-language backbone's tokens, projected, read by an action expert whose
learned queries cross-attend to them and to a proprio token; the expert's outputs condition a
flow-matching head that produces the action chunk.

    images, instruction --backbone--> tokens --projector--> memory (+ proprio token)
    queries --expert (self-attn, cross-attn to memory)--> cond --flow head--> chunk

The expert runs once per chunk, not once per denoising step: sampling 10 flow steps costs ten
small MLP calls on top of one backbone pass.
"""

from __future__ import annotations

import torch
from torch import nn

from vlascope.data.normalizer import Normalizer
from vlascope.policies.base import HeadPolicy
from vlascope.policies.blocks.heads import make_head
from vlascope.policies.vla.backbones import make_backbone
from vlascope.policies.vla.config import VlaConfig


class VlaPolicy(HeadPolicy):
    def __init__(self, config: VlaConfig, normalizer: Normalizer):
        super().__init__(config, normalizer)
        d = config.dim
        self.backbone = make_backbone(config)
        self.projector = nn.Sequential(nn.LayerNorm(self.backbone.width),
                                       nn.Linear(self.backbone.width, d), nn.GELU(), nn.Linear(d, d))
        proprio_dim = sum(config.state_dims.values()) * config.n_obs_steps
        self.proprio = nn.Sequential(nn.Linear(proprio_dim, d), nn.GELU(), nn.Linear(d, d)) \
            if proprio_dim else None
        self.queries = nn.Parameter(torch.randn(1, config.queries, d) * 0.02)
        layer = nn.TransformerDecoderLayer(d, config.heads, 4 * d, config.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.expert = nn.TransformerDecoder(layer, config.expert_layers, norm=nn.LayerNorm(d))
        self.to_cond = nn.Linear(config.queries * d, config.cond_dim)
        self.head = make_head(config, config.cond_dim)
        self.build_aux_head(config.cond_dim)

    def external_weights(self) -> list[str]:
        """A Hugging Face backbone's frozen weights (all of them when frozen, the base model
        under LoRA) come back from `config.backbone` at load time, not from the checkpoint."""
        if self.config.backbone == "small" or self.config.backbone_mode == "full":
            return []
        trainable = {n for n, p in self.named_parameters() if p.requires_grad}
        return [k for k in self.state_dict() if k.startswith("backbone.model.") and k not in trainable]

    def condition(self, inputs: dict) -> torch.Tensor:
        tokens, padding = self.backbone(inputs)
        memory = self.projector(tokens)
        if self.proprio is not None:
            keys = sorted(self.config.state_dims)
            proprio = torch.cat([inputs[k].flatten(1) for k in keys], dim=-1)
            memory = torch.cat([memory, self.proprio(proprio)[:, None]], dim=1)
            if padding is not None:
                padding = torch.cat([padding, padding.new_zeros(len(padding), 1)], dim=1)
        queries = self.queries.expand(memory.shape[0], -1, -1)
        out = self.expert(queries, memory, memory_key_padding_mask=padding)
        return self.to_cond(out.flatten(1))
