"""Networks that map (noisy action chunk, time, condition) -> chunk-shaped output.

Both the diffusion and the flow head use them; which one is a config choice:
`unet` is diffusion_policy's 1-D temporal conv U-Net with FiLM conditioning, `mlp` a residual
MLP over the flattened chunk (much faster on CPU for short chunks of low-dim actions).
The output layer starts at zero, so a fresh model predicts 0: for unit-noise prediction the
initial loss is then ~1, whatever the data, which the doctor's init-loss check relies on.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class SinusoidalTimeEmbedding(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device) / (half - 1))
        args = t.float()[:, None] * freqs[None]
        return torch.cat([args.sin(), args.cos()], dim=-1)


def time_mlp(dim: int) -> nn.Sequential:
    return nn.Sequential(SinusoidalTimeEmbedding(dim), nn.Linear(dim, dim * 4), nn.Mish(),
                         nn.Linear(dim * 4, dim))


class Conv1dBlock(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, groups: int):
        super().__init__(nn.Conv1d(cin, cout, kernel, padding=kernel // 2),
                         nn.GroupNorm(groups, cout), nn.Mish())


class ConditionalResBlock1D(nn.Module):
    """Two conv blocks; the condition sets a per-channel scale and bias (FiLM) between them."""

    def __init__(self, cin: int, cout: int, cond_dim: int, kernel: int, groups: int):
        super().__init__()
        self.block1 = Conv1dBlock(cin, cout, kernel, groups)
        self.block2 = Conv1dBlock(cout, cout, kernel, groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, cout * 2))
        self.residual = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.block1(x)
        scale, bias = self.film(cond)[..., None].chunk(2, dim=1)
        h = self.block2(h * (1 + scale) + bias)
        return h + self.residual(x)


class ConditionalUnet1D(nn.Module):
    def __init__(self, action_dim: int, cond_dim: int, dims=(64, 128, 256), kernel: int = 5,
                 groups: int = 8, time_dim: int = 128):
        super().__init__()
        self.time_mlp = time_mlp(time_dim)
        c = time_dim + cond_dim
        widths = [action_dim, *dims]
        self.down = nn.ModuleList()
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            last = i == len(dims) - 1
            self.down.append(nn.ModuleList([
                ConditionalResBlock1D(a, b, c, kernel, groups),
                ConditionalResBlock1D(b, b, c, kernel, groups),
                nn.Identity() if last else nn.Conv1d(b, b, 3, stride=2, padding=1),
            ]))
        self.mid = nn.ModuleList([ConditionalResBlock1D(dims[-1], dims[-1], c, kernel, groups)
                                  for _ in range(2)])
        self.up = nn.ModuleList()
        for a, b in zip(reversed(dims[1:]), reversed(dims[:-1])):
            self.up.append(nn.ModuleList([
                ConditionalResBlock1D(a * 2, b, c, kernel, groups),
                ConditionalResBlock1D(b, b, c, kernel, groups),
                nn.ConvTranspose1d(b, b, 4, stride=2, padding=1),
            ]))
        self.out = nn.Sequential(Conv1dBlock(dims[0], dims[0], kernel, groups),
                                 nn.Conv1d(dims[0], action_dim, 1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)
        self.downsamples = len(dims) - 1

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if x.shape[1] % (2 ** self.downsamples):
            raise ValueError(f"U-Net horizon must be divisible by {2 ** self.downsamples}, "
                             f"got {x.shape[1]}")
        c = torch.cat([self.time_mlp(t), cond], dim=-1)
        h = x.transpose(1, 2)  # (B, A, T): convolve over time
        skips = []
        for res1, res2, down in self.down:
            h = res2(res1(h, c), c)
            skips.append(h)
            h = down(h)
        for block in self.mid:
            h = block(h, c)
        for res1, res2, up in self.up:
            h = torch.cat([h, skips.pop()], dim=1)
            h = up(res2(res1(h, c), c))
        return self.out(h).transpose(1, 2)


class ResidualMLPBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width * 2), nn.GELU(),
                                 nn.Linear(width * 2, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class MLPDenoiser(nn.Module):
    def __init__(self, action_dim: int, horizon: int, cond_dim: int, width: int = 256,
                 depth: int = 3, time_dim: int = 128):
        super().__init__()
        self.shape = (horizon, action_dim)
        self.time_mlp = time_mlp(time_dim)
        self.inp = nn.Linear(horizon * action_dim + time_dim + cond_dim, width)
        self.blocks = nn.Sequential(*[ResidualMLPBlock(width) for _ in range(depth)])
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, horizon * action_dim))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.inp(torch.cat([x.flatten(1), self.time_mlp(t), cond], dim=-1))
        return self.out(self.blocks(h)).view(-1, *self.shape)


def make_denoiser(kind: str, action_dim: int, horizon: int, cond_dim: int, *, unet_dims,
                  kernel_size: int, mlp_width: int, mlp_depth: int) -> nn.Module:
    if kind == "unet":
        return ConditionalUnet1D(action_dim, cond_dim, tuple(unet_dims), kernel_size)
    if kind == "mlp":
        return MLPDenoiser(action_dim, horizon, cond_dim, mlp_width, mlp_depth)
    raise ValueError(f"unknown denoiser '{kind}'; expected 'unet' or 'mlp'")
