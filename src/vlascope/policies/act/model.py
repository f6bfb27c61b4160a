"""ACT: action chunking with transformers, on the shared observation tokens.

training:  [CLS, proprio, a_1..a_H] --CVAE encoder--> (mu, logvar) -> z ~ N(mu, sigma)
           [z, observation tokens] --encoder--> memory; H learned queries --decoder--> chunk
           loss = L1(chunk, target) + kl_weight * KL(N(mu, sigma) || N(0, 1))
inference: z = 0 (the prior's mean); temporal ensembling is the executor's job (PolicyConfig).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vlascope.data.normalizer import Normalizer
from vlascope.policies.act.config import ActConfig
from vlascope.policies.base import Policy
from vlascope.policies.blocks.encoders import ObservationTokens


def transformer_encoder(cfg: ActConfig, layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(cfg.dim, cfg.heads, cfg.ff_dim, cfg.dropout,
                                       activation="gelu", batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(cfg.dim),
                                 enable_nested_tensor=False)


class ActPolicy(Policy):
    def __init__(self, config: ActConfig, normalizer: Normalizer):
        super().__init__(config, normalizer)
        d = config.dim
        self.tokens = ObservationTokens(
            {k: config.obs_dims[k] for k in config.obs_keys}, config.n_obs_steps, d,
            config.image_size, config.num_tasks, config.vision,
            config.language_dim if config.language else 0, config.vision_token_stages,
            config.vision_tokens)
        self.from_latent = nn.Linear(config.latent_dim, d)
        if config.use_vae:
            self._build_cvae(config)
        self.encoder = transformer_encoder(config, config.encoder_layers)
        layer = nn.TransformerDecoderLayer(d, config.heads, config.ff_dim, config.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, config.decoder_layers, norm=nn.LayerNorm(d))
        self.queries = nn.Parameter(torch.randn(1, config.horizon, d) * 0.02)
        self.action_out = nn.Linear(d, config.action_dim)
        self.build_aux_head(d)  # reads the mean memory, or the mean decoder output (aux_reads)

    def _build_cvae(self, config: ActConfig) -> None:
        """The CVAE encoder: only used in training, to compress the true chunk into z."""
        d = config.dim
        proprio_dim = sum(config.state_dims.values())
        self.cvae_cls = nn.Parameter(torch.zeros(1, 1, d))
        self.cvae_proprio = nn.Linear(proprio_dim, d) if proprio_dim else None
        self.cvae_action = nn.Linear(config.action_dim, d)
        self.cvae_pos = nn.Parameter(torch.randn(1, 2 + config.horizon, d) * 0.02)
        self.cvae = transformer_encoder(config, config.cvae_layers)
        self.to_latent = nn.Linear(d, 2 * config.latent_dim)
        # Start at the prior (mu = 0, log sigma^2 = 0): a random projection starts the KL term
        # near 10 nats per sample, x kl_weight, and swamps the L1 term for the first steps.
        nn.init.zeros_(self.to_latent.weight)
        nn.init.zeros_(self.to_latent.bias)

    def _proprio(self, inputs: dict) -> torch.Tensor | None:
        keys = sorted(self.config.state_dims)
        return torch.cat([inputs[k][:, -1] for k in keys], dim=-1) if keys else None

    def posterior(self, inputs: dict, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = target.shape[0]
        proprio = self._proprio(inputs)
        seq = [self.cvae_cls.expand(b, -1, -1)]
        seq.append(self.cvae_proprio(proprio)[:, None] if proprio is not None
                   else torch.zeros_like(seq[0]))
        seq.append(self.cvae_action(target))
        h = self.cvae(torch.cat(seq, dim=1) + self.cvae_pos)
        # In float32: under bf16 autocast the KL below came out negative (-0.005 per sample on
        # pick-place images), so it no longer kept z from carrying the answer to the decoder.
        mu, logvar = self.to_latent(h[:, 0]).float().chunk(2, dim=-1)
        return mu, logvar.clamp(-10, 10)

    def memory(self, inputs: dict, z: torch.Tensor) -> torch.Tensor:
        obs_tokens = self.tokens(inputs)
        return self.encoder(torch.cat([self.from_latent(z)[:, None], obs_tokens], dim=1))

    def decode(self, memory: torch.Tensor) -> torch.Tensor:
        """The decoder's (B, horizon, dim) outputs: one per action of the chunk."""
        return self.decoder(self.queries.expand(memory.shape[0], -1, -1), memory)

    def chunk_terms(self, memory: torch.Tensor, inputs: dict, target: torch.Tensor) -> dict[str, torch.Tensor]:
        decoded = self.decode(memory)
        aux = memory if self.config.aux_reads == "memory" else decoded
        return {"action": F.l1_loss(self.action_out(decoded).float(), target.float()),
                **self.aux_terms(aux.mean(1), inputs)}

    def prior_z(self, inputs: dict) -> torch.Tensor:
        return torch.zeros(len(inputs["task_index"]), self.config.latent_dim,
                           device=inputs["task_index"].device)

    def encode(self, obs: dict[str, torch.Tensor], task_index: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder's memory at z = 0, flattened: what the action queries read."""
        inputs = self.inputs(obs, task_index)
        return self.memory(inputs, self.prior_z(inputs)).flatten(1)

    def zero_output_loss(self, target: torch.Tensor) -> float:
        return float(target.float().abs().mean())  # L1; the KL term starts at zero

    def loss_terms(self, inputs: dict, target: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self.config.use_vae:
            return self.chunk_terms(self.memory(inputs, self.prior_z(inputs)), inputs, target)
        mu, logvar = self.posterior(inputs, target)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp())).sum(-1).mean()
        return {**self.chunk_terms(self.memory(inputs, z.to(mu.dtype)), inputs, target),
                "kl": self.config.kl_weight * kl}

    def sample(self, inputs: dict, noise: torch.Tensor) -> torch.Tensor:
        return self.action_out(self.decode(self.memory(inputs, self.prior_z(inputs)))).float()
