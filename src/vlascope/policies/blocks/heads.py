"""Action heads: the objective that trains a chunk generator and the sampler that runs it.

All heads work on normalised action chunks (B, horizon, action_dim) given a condition vector.
`loss` returns a per-sample loss so callers can weight or inspect it; `sample(cond, noise)`
turns unit Gaussian noise of the chunk's shape into a chunk. The caller draws the noise, so a
sampler is one deterministic function (CUDA-graph capturable) and each sample's noise can come
from its own generator.

DDPM/DDIM are written here (about 40 lines) rather than taken from `diffusers`: the scheduler
math is small and stable, `diffusers` would add a large dependency for it, and the doctor needs
the noise schedule itself (alphas) to say what the loss should be at initialisation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vlascope.policies.blocks.denoisers import make_denoiser


def cosine_betas(steps: int, max_beta: float = 0.999) -> torch.Tensor:
    """The squared-cosine schedule of Nichol & Dhariwal (diffusion_policy's default)."""
    def alpha_bar(t):
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    return torch.tensor([min(1 - alpha_bar((i + 1) / steps) / alpha_bar(i / steps), max_beta)
                         for i in range(steps)], dtype=torch.float32)


class DiffusionHead(nn.Module):
    """DDPM training; deterministic DDIM sampling in few steps.

    The net predicts the noise (`prediction="epsilon"`, diffusion_policy's default) or the clean
    chunk (`"sample"`). They differ in how the loss weighs noise levels: an epsilon error is the
    chunk error scaled by sqrt(SNR), so near pure noise, the only place where the answer must come
    from the condition and not from x_t, the epsilon loss barely trains the condition's encoder;
    the sample loss weighs every level alike.
    """

    def __init__(self, net: nn.Module, train_steps: int = 100, inference_steps: int = 10,
                 clip_sample: bool = True, prediction: str = "epsilon"):
        super().__init__()
        if prediction not in ("epsilon", "sample"):
            raise ValueError(f"unknown diffusion prediction '{prediction}'; expected 'epsilon' or 'sample'")
        self.prediction = prediction
        self.net = net
        self.train_steps = train_steps
        self.inference_steps = inference_steps
        self.clip_sample = clip_sample
        alphas_cumprod = torch.cumprod(1 - cosine_betas(train_steps), dim=0)
        self.register_buffer("alphas_cumprod", alphas_cumprod, persistent=False)

    def zero_output_loss(self, x0: torch.Tensor) -> float:
        """The loss of a net that outputs zero: 1 for unit Gaussian noise, else the chunk's power."""
        return 1.0 if self.prediction == "epsilon" else float((x0.float() ** 2).mean())

    def loss(self, cond: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        b = x0.shape[0]
        t = torch.randint(0, self.train_steps, (b,), device=x0.device)
        noise = torch.randn_like(x0)
        ab = self.alphas_cumprod[t].view(b, 1, 1)
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        pred = self.net(xt, t.float(), cond)
        target = noise if self.prediction == "epsilon" else x0
        return F.mse_loss(pred.float(), target, reduction="none").mean(dim=(1, 2))

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        b, x = cond.shape[0], noise
        ratio = self.train_steps // self.inference_steps
        timesteps = list(range(0, self.train_steps, ratio))[::-1]
        for i, t in enumerate(timesteps):
            ab = self.alphas_cumprod[t]
            ab_prev = self.alphas_cumprod[timesteps[i + 1]] if i + 1 < len(timesteps) else ab.new_tensor(1.0)
            out = self.net(x, torch.full((b,), float(t), device=x.device), cond).float()
            x0 = (x - (1 - ab).sqrt() * out) / ab.sqrt() if self.prediction == "epsilon" else out
            if self.clip_sample:
                x0 = x0.clamp(-1, 1)
            eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
            x = ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps
        return x


class FlowHead(nn.Module):
    """Flow matching (rectified flow): x_t = t*x1 + (1-t)*noise, the net predicts x1 - noise.

    Sampling integrates the velocity with Euler steps from noise (t=0) to data (t=1).
    Time is drawn from a Beta(1.5, 1) skewed towards the noisy end (as pi0 does), where the
    velocity is hardest to predict; "uniform" and "logit_normal" are options.

    `prediction="sample"` (opt-in) has the net predict the clean chunk x1 and converts it to the
    velocity (x1_hat - x_t) / (1 - t); the loss stays the same velocity MSE.
    """

    time_scale = 100.0  # the net's sinusoidal time embedding sees t in [0, 100]

    def __init__(self, net: nn.Module, inference_steps: int = 10, time_sampling: str = "beta",
                 prediction: str = "velocity"):
        super().__init__()
        if time_sampling not in ("beta", "uniform", "logit_normal"):
            raise ValueError(f"unknown flow time sampling '{time_sampling}'")
        if prediction not in ("velocity", "sample"):
            raise ValueError(f"unknown flow prediction '{prediction}'; expected 'velocity' or 'sample'")
        self.net = net
        self.inference_steps = inference_steps
        self.time_sampling = time_sampling
        self.prediction = prediction

    def to_velocity(self, out: torch.Tensor, xt: torch.Tensor, t) -> torch.Tensor:
        """The net's output as a velocity; t is a float or broadcasts against xt."""
        if self.prediction == "sample":  # x_t = t*x1 + (1-t)*noise  =>  v = (x1 - x_t) / (1 - t)
            return (out - xt) / (1 - t)
        return out

    def sample_time(self, b: int, device) -> torch.Tensor:
        if self.time_sampling == "uniform":
            return torch.rand(b, device=device)
        if self.time_sampling == "logit_normal":
            return torch.sigmoid(torch.randn(b, device=device))
        # 1 - Beta(1.5, 1) puts more mass near t = 0 (pure noise). Drawn by inversion (the CDF of
        # Beta(a, 1) is x^a) on the chunk's device: a draw on the CPU, copied over, makes an eager
        # training step wait for the GPU to finish what is queued, and puts CPU work into a
        # compiled one, which CUDA graphs cannot capture.
        return 1 - torch.rand(b, device=device) ** (1 / 1.5)

    def zero_output_loss(self, x1: torch.Tensor) -> float:
        """The loss of a net that outputs zero: the velocity x1 - noise has power 1 + E[x1^2]."""
        return 1.0 + float((x1.float() ** 2).mean())

    def loss(self, cond: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        b = x1.shape[0]
        t = self.sample_time(b, x1.device).clamp(0, 0.999)
        noise = torch.randn_like(x1)
        tt = t.view(b, 1, 1)
        xt = tt * x1 + (1 - tt) * noise
        pred = self.to_velocity(self.net(xt, t * self.time_scale, cond).float(), xt, tt)
        return F.mse_loss(pred, x1 - noise, reduction="none").mean(dim=(1, 2))

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        b, x = cond.shape[0], noise
        dt = 1.0 / self.inference_steps
        for i in range(self.inference_steps):
            t = torch.full((b,), i * dt * self.time_scale, device=x.device)
            x = x + dt * self.to_velocity(self.net(x, t, cond).float(), x, i * dt)
        return x


class RegressionHead(nn.Module):
    """Direct regression of the chunk with an MSE loss: the baseline."""

    def __init__(self, cond_dim: int, horizon: int, action_dim: int, width: int = 256):
        super().__init__()
        self.shape = (horizon, action_dim)
        self.net = nn.Sequential(nn.Linear(cond_dim, width), nn.GELU(), nn.Linear(width, width),
                                 nn.GELU(), nn.Linear(width, horizon * action_dim))

    def zero_output_loss(self, x: torch.Tensor) -> float:
        return float((x.float() ** 2).mean())

    def loss(self, cond: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        pred = self.net(cond).view(-1, *self.shape)
        return F.mse_loss(pred.float(), x, reduction="none").mean(dim=(1, 2))

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.net(cond).view(-1, *self.shape).float()


def make_head(config, cond_dim: int) -> nn.Module:
    """The action head a config names (`head`, `denoiser` and their sizes), on `cond_dim` inputs."""
    if config.head == "mse":
        return RegressionHead(cond_dim, config.horizon, config.action_dim, width=config.mlp_width)
    net = make_denoiser(config.denoiser, config.action_dim, config.horizon, cond_dim,
                        unet_dims=config.unet_dims, kernel_size=config.kernel_size,
                        mlp_width=config.mlp_width, mlp_depth=config.mlp_depth)
    if config.head == "diffusion":
        return DiffusionHead(net, config.diffusion_train_steps, config.inference_steps,
                             prediction=config.prediction or "epsilon")
    if config.head == "flow":
        return FlowHead(net, config.inference_steps, config.flow_time_sampling,
                        prediction=config.prediction or "velocity")
    raise ValueError(f"unknown head '{config.head}'; expected diffusion, flow or mse")
