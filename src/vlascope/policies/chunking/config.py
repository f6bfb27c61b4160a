from __future__ import annotations

from dataclasses import dataclass

from vlascope.policies.base import ActionHeadConfig


@dataclass
class ChunkingPolicyConfig(ActionHeadConfig):
    """An observation-window encoder (an MLP over states and per-camera image features) and an
    action head that predicts a chunk of actions.

    `head` picks the objective: "diffusion" (DDPM/DDIM), "flow" (flow matching) or "mse"
    (direct regression). The three share the encoder, normaliser and chunk execution.
    """

    head: str = "diffusion"
    denoiser: str = "unet"
    encoder_hidden: int = 256
