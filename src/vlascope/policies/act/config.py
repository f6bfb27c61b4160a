from __future__ import annotations

from dataclasses import dataclass

from vlascope.policies.base import PolicyConfig


@dataclass
class ActConfig(PolicyConfig):
    """ACT (Zhao et al. 2023): a transformer encoder over observation tokens and a style latent
    z, a decoder whose `horizon` learned queries read it out as an action chunk, trained with
    L1 + a KL term through a CVAE encoder that sees the true chunk. z = 0 at inference.

    Defaults are sized for MetaWorld (chunks of 16 at 80 Hz-ish control, 100-500 step episodes)
    rather than ALOHA's 100-step chunks.
    """

    n_obs_steps: int = 1
    dim: int = 256
    heads: int = 8
    ff_dim: int = 1024
    encoder_layers: int = 4
    decoder_layers: int = 1  # the reference implementation effectively uses one decoder layer
    cvae_layers: int = 4
    dropout: float = 0.1
    latent_dim: int = 32
    kl_weight: float = 10.0
    # False drops the CVAE (z = 0 in training too, no KL), as LeRobot's `use_vae` does: a plain
    # L1 chunk regressor. Demos from scripted experts have one mode per state, so the latent has
    # no style to explain, and whatever it learns to carry is missing at inference (z = 0).
    use_vae: bool = True
    action_norm: str = "meanstd"  # as ACT does: L1 on standardised actions
    # What the auxiliary read-out (aux_keys) reads: "memory" (mean encoder output) or "queries"
    # (mean decoder output, which the actions are read from). Pooled over training seeds on
    # pick-place images, "queries" did no better than "memory".
    aux_reads: str = "memory"

    def validate(self) -> None:
        super().validate()
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by heads ({self.heads})")
        if self.aux_reads not in ("memory", "queries"):
            raise ValueError(f"aux_reads must be memory or queries, got '{self.aux_reads}'")
