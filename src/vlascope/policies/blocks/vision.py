"""Image encoders in plain torch (no torchvision): a ResNet-18-style trunk with GroupNorm,
spatial-softmax or average pooling, and the train-time augmentation that goes with it.

GroupNorm rather than BatchNorm, as diffusion_policy does: BatchNorm's running statistics
interact badly with EMA weights and with the small, highly correlated batches of robot data.
Trained from scratch: nothing is downloaded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _groups(channels: int) -> int:
    return max(1, min(8, channels // 4))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut. With `film_dim`, a condition vector sets a
    per-channel scale and bias on the second convolution's output before the shortcut is added
    (FiLM, as RT-1 conditions its EfficientNet on the instruction); the projection starts at
    zero, so a fresh block is the unconditioned one."""

    def __init__(self, cin: int, cout: int, stride: int, film_dim: int = 0):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.norm1 = nn.GroupNorm(_groups(cout), cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.norm2 = nn.GroupNorm(_groups(cout), cout)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.GroupNorm(_groups(cout), cout))
        self.film = nn.Linear(film_dim, 2 * cout) if film_dim else None
        if self.film is not None:
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        h = F.relu(self.norm1(self.conv1(x)))
        h = self.norm2(self.conv2(h))
        if self.film is not None:
            scale, bias = self.film(condition)[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + scale) + bias
        return F.relu(h + self.shortcut(x))


class ResNetGN(nn.Module):
    """ResNet-18 layout (four stages of two basic blocks) with configurable widths; with
    `film_dim`, every block is FiLM-conditioned on a vector of that size."""

    def __init__(self, widths=(64, 128, 256, 512), blocks_per_stage: int = 2, film_dim: int = 0):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 7, 2, 3, bias=False),
                                  nn.GroupNorm(_groups(widths[0]), widths[0]), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        stages, cin = [], widths[0]
        for i, w in enumerate(widths):
            for j in range(blocks_per_stage):
                stages.append(BasicBlock(cin, w, 2 if (j == 0 and i > 0) else 1, film_dim))
                cin = w
        self.stages = nn.Sequential(*stages)
        self.out_channels = widths[-1]

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        x = self.stem(x)
        for block in self.stages:
            x = block(x, condition)
        return x


class SpatialSoftmax(nn.Module):
    """Expected (x, y) image position of each of `keypoints` learned feature maps."""

    def __init__(self, channels: int, keypoints: int):
        super().__init__()
        self.project = nn.Conv2d(channels, keypoints, 1)
        self.keypoints = keypoints

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.project(x)
        b, k, height, width = h.shape
        attention = h.flatten(2).softmax(-1)  # (B, K, H*W)
        ys = torch.linspace(-1, 1, height, device=x.device, dtype=attention.dtype)
        xs = torch.linspace(-1, 1, width, device=x.device, dtype=attention.dtype)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        ex = (attention * grid_x.flatten()).sum(-1)
        ey = (attention * grid_y.flatten()).sum(-1)
        return torch.cat([ex, ey], dim=-1)  # (B, 2K)


class ImageAugment(nn.Module):
    """Random crop and colour jitter while training; a centre crop of the same size at eval.

    The crop keeps `crop_ratio` of each side (robomimic and diffusion_policy use ~0.9): the
    policy cannot key on exact pixel positions, which is most of what helps with 50 demos.
    """

    def __init__(self, crop_ratio: float = 0.9, color_jitter: float = 0.1):
        super().__init__()
        self.crop_ratio = crop_ratio
        self.color_jitter = color_jitter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 3, H, W) in [0, 1]."""
        n, _, h, w = x.shape
        ch, cw = max(1, round(h * self.crop_ratio)), max(1, round(w * self.crop_ratio))
        if self.training and (ch < h or cw < w):
            top = torch.randint(0, h - ch + 1, (n,), device=x.device)
            left = torch.randint(0, w - cw + 1, (n,), device=x.device)
            rows = (top[:, None] + torch.arange(ch, device=x.device))[:, None, :, None]
            cols = (left[:, None] + torch.arange(cw, device=x.device))[:, None, None, :]
            x = x[torch.arange(n, device=x.device)[:, None, None, None],
                  torch.arange(3, device=x.device)[None, :, None, None], rows, cols]
        else:
            top, left = (h - ch) // 2, (w - cw) // 2
            x = x[:, :, top:top + ch, left:left + cw]
        if self.training and self.color_jitter > 0:
            j = self.color_jitter
            brightness = 1 + (torch.rand(n, 1, 1, 1, device=x.device) * 2 - 1) * j
            contrast = 1 + (torch.rand(n, 1, 1, 1, device=x.device) * 2 - 1) * j
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = ((x - mean) * contrast + mean) * brightness
            x = x.clamp(0, 1)
        return x


class ImageEncoder(nn.Module):
    """uint8 (N, H, W, 3) images -> (N, out_dim) features; with pool="none" only the trunk's
    feature map is used (token-based policies read it cell by cell). With `film_dim`, the trunk
    reads each image with a (N, film_dim) condition (the task), so what it extracts can depend
    on what is asked: two tasks in one scene need different things from the same pixels."""

    def __init__(self, out_dim: int = 64, widths=(64, 128, 256, 512), pool: str = "spatial_softmax",
                 keypoints: int = 32, crop_ratio: float = 0.9, color_jitter: float = 0.1,
                 film_dim: int = 0):
        super().__init__()
        if pool not in ("spatial_softmax", "avg", "none"):
            raise ValueError(f"unknown image pooling '{pool}'; expected spatial_softmax, avg or none")
        self.augment = ImageAugment(crop_ratio, color_jitter)
        self.trunk = ResNetGN(tuple(widths), film_dim=film_dim)
        self.film_dim = film_dim
        c = self.trunk.out_channels
        if pool != "none":
            self.pool = SpatialSoftmax(c, keypoints) if pool == "spatial_softmax" else nn.Sequential(
                nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.out = nn.Linear(2 * keypoints if pool == "spatial_softmax" else c, out_dim)

    def feature_map(self, images: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 (N, H, W, 3) -> the trunk's (N, C, h, w) features, augmented while training."""
        x = images.permute(0, 3, 1, 2).float() / 255.0
        x = self.augment(x)
        # ImageNet-like centring: the trunk trains from scratch, but zero-mean inputs train faster.
        x = (x - 0.5) / 0.25
        return self.trunk(x, condition)

    def feature_cells(self, image_size: int) -> int:
        """h * w of the feature map for square `image_size` inputs (after the crop)."""
        crop = max(1, round(image_size * self.augment.crop_ratio))
        with torch.no_grad():
            condition = torch.zeros(1, self.film_dim) if self.film_dim else None
            return int(self.trunk(torch.zeros(1, 3, crop, crop), condition).shape[-2:].numel())

    def forward(self, images: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        return self.out(self.pool(self.feature_map(images, condition)))
