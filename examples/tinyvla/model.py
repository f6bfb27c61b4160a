"""A TinyVLA-style policy in plain PyTorch: a small conv encoder on the camera frame, an MLP on
the proprio state (and the goal), and a diffusion head that denoises an action chunk. Nothing
here comes from vlascope; it is the kind of model people write in their own repository.

Three switches reproduce failures from our users' write-ups, each the bug as it is written:
- `lora_unhooked`: a LoRA adapter is created for the state encoder (and trained and saved) but
  wraps a copy of the layer, so the forward pass never calls it;
- `mask_first_joint`: a padding mask meant for the time axis is applied to the action axis, so
  joint 0's prediction is multiplied away and it comes out as a constant;
- `use_goal=False`: the goal never reaches the model.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class TinyVLAConfig:
    image_key: str = "corner2_image"
    image_size: int = 32
    state_dim: int = 4
    goal_dim: int = 3
    action_dim: int = 4
    horizon: int = 8
    width: int = 128
    diffusion_steps: int = 50
    sample_steps: int = 10
    use_goal: bool = True
    lora_unhooked: bool = False
    mask_first_joint: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


class LoRALinear(nn.Module):
    """y = W x + B A x, with B starting at zero (Hu et al., 2021)."""

    def __init__(self, base: nn.Linear, rank: int = 4):
        super().__init__()
        self.base = base
        self.down = nn.Linear(base.in_features, rank, bias=False)
        self.up = nn.Linear(rank, base.out_features, bias=False)
        nn.init.zeros_(self.up.weight)

    def forward(self, x):
        return self.base(x) + self.up(self.down(x))


class TinyVLA(nn.Module):
    def __init__(self, config: TinyVLAConfig, stats: dict[str, torch.Tensor]):
        super().__init__()
        self.config = c = config
        for name, value in stats.items():  # mean/std per input and for the actions
            self.register_buffer(name, torch.as_tensor(value, dtype=torch.float32))
        self.vision = nn.Sequential(nn.Conv2d(3, 16, 5, stride=2, padding=2), nn.GELU(),
                                    nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.GELU(),
                                    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, c.width))
        state_in = c.state_dim + (c.goal_dim if c.use_goal else 0)
        self.state_proj = nn.Linear(state_in, c.width)
        if c.lora_unhooked:  # the bug: LoRA wraps a copy; forward still calls self.state_proj
            self.state_lora = LoRALinear(copy.deepcopy(self.state_proj))
        else:
            self.state_proj = LoRALinear(self.state_proj)
        chunk = c.horizon * c.action_dim
        self.time_embed = nn.Linear(32, c.width)
        self.denoiser = nn.Sequential(nn.Linear(chunk + 3 * c.width, 2 * c.width), nn.GELU(),
                                      nn.Linear(2 * c.width, 2 * c.width), nn.GELU(),
                                      nn.Linear(2 * c.width, chunk))
        nn.init.zeros_(self.denoiser[-1].weight)
        nn.init.zeros_(self.denoiser[-1].bias)
        betas = torch.linspace(1e-4, 0.02, c.diffusion_steps)
        self.register_buffer("alpha_bar", torch.cumprod(1 - betas, 0))

    # Normalisation: this model's own, with the statistics saved in its checkpoint.
    def normalise(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return (x - getattr(self, f"{name}_mean")) / getattr(self, f"{name}_std")

    def unnormalise(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return x * getattr(self, f"{name}_std") + getattr(self, f"{name}_mean")

    def condition(self, image: torch.Tensor, state: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """image (B, H, W, 3) uint8, state (B, state_dim), goal (B, goal_dim), raw units."""
        pixels = image.permute(0, 3, 1, 2).float() / 255 - 0.5
        proprio = self.normalise("state", state)
        if self.config.use_goal:
            proprio = torch.cat([proprio, self.normalise("goal", goal)], dim=-1)
        return torch.cat([self.vision(pixels), self.state_proj(proprio)], dim=-1)

    def denoise(self, noisy: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The clean chunk predicted from a noisy one at diffusion step t."""
        freqs = torch.exp(-math.log(1000) * torch.arange(16, device=t.device) / 16)
        angle = t.float()[:, None] * freqs[None]
        temb = self.time_embed(torch.cat([angle.sin(), angle.cos()], dim=-1))
        out = self.denoiser(torch.cat([noisy.flatten(1), cond, temb], dim=-1)).view_as(noisy)
        if self.config.mask_first_joint:  # the bug: a time-padding mask applied on the action axis
            mask = torch.ones(noisy.shape[-1], device=out.device)
            mask[0] = 0
            out = out * mask
        return out

    def loss(self, image, state, goal, actions) -> torch.Tensor:
        """Clean-chunk prediction (diffusion_policy's prediction_type="sample") under DDPM noise."""
        x0 = self.normalise("action", actions)
        cond = self.condition(image, state, goal)
        t = torch.randint(0, self.config.diffusion_steps, (len(x0),), device=x0.device)
        ab = self.alpha_bar[t][:, None, None]
        noise = torch.randn_like(x0)
        noisy = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        return nn.functional.mse_loss(self.denoise(noisy, t, cond), x0)

    @torch.no_grad()
    def sample(self, image, state, goal, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, horizon, action_dim) actions in raw units, by deterministic DDIM from noise."""
        c = self.config
        cond = self.condition(image, state, goal)
        x = torch.randn((len(cond), c.horizon, c.action_dim), generator=generator, device=cond.device)
        steps = torch.linspace(c.diffusion_steps - 1, 0, c.sample_steps).long().tolist()
        for i, t in enumerate(steps):
            ab = self.alpha_bar[t]
            x0 = self.denoise(x, torch.full((len(x),), t, device=x.device), cond)
            if i + 1 == len(steps):
                x = x0
                break
            eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
            ab_next = self.alpha_bar[steps[i + 1]]
            x = ab_next.sqrt() * x0 + (1 - ab_next).sqrt() * eps
        return self.unnormalise("action", x)
