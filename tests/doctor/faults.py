"""Planted faults for the doctor: each function breaks one thing the way users break it.

Shared by the tests and benchmarks/doctor_recall.py. Data faults edit a copy of a dataset's
episodes; pipeline faults wrap a `make_policy(episodes)` function.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from vlascope.data import read_dataset
from vlascope.policies import build_for_episodes

TINY = {"encoder_hidden": 32, "cond_dim": 32, "mlp_width": 32, "mlp_depth": 1,
        "unet_dims": [16, 32], "horizon": 8, "n_action_steps": 4}
LORA_TARGETS = ["mlp.0", "mlp.2"]  # the state encoder's first two linear layers


def pipeline(policy: str = "flow", **overrides):
    def make_policy(episodes):
        return build_for_episodes(policy, overrides, episodes)
    return make_policy


def tiny_pipeline(**overrides):
    return pipeline("flow", **{**TINY, **overrides})


def edited(dataset: str, edit):
    """The dataset with `edit(episodes)` applied to a copy."""
    data = copy.deepcopy(read_dataset(dataset))
    edit(data.episodes)
    return data


# --- data faults -------------------------------------------------------------------------------

def nan_at(demo: int, key: str, step: int, dim: int):
    def edit(episodes):
        episodes[demo].obs[key][step, dim] = np.nan
    return edit


def pin_action_dim(dim: int, value: float = 0.25):
    def edit(episodes):
        for e in episodes:
            e.actions[:, dim] = value
    return edit


def repeat_demo(demo: int, times: int):
    def edit(episodes):
        episodes += [copy.deepcopy(episodes[demo]) for _ in range(times)]
    return edit


def scale_actions(demo: int, factor: float):
    def edit(episodes):
        episodes[demo].actions = episodes[demo].actions * factor
    return edit


def glitch(demo: int, key: str, step: int, dim: int, by: float):
    def edit(episodes):
        episodes[demo].obs[key][step, dim] += by
    return edit


def freeze(demo: int, key: str, start: int, stop: int):
    def edit(episodes):
        episodes[demo].obs[key][start:stop] = episodes[demo].obs[key][start]
    return edit


def start_from_the_previous_scene(keys: list[str] | None = None):
    """Each episode's first observation replaced by the previous episode's (the first by the
    last's): what a recorder reads when the simulator resets without a forward pass."""
    def edit(episodes):
        names = keys or list(episodes[0].obs)
        firsts = [{k: e.obs[k][0].copy() for k in names} for e in episodes]
        for i, e in enumerate(episodes):
            for k in names:
                e.obs[k][0] = firsts[i - 1][k]
    return edit


def clip_below(key: str, dim: int, percentile: float):
    def edit(episodes):
        limit = np.percentile(np.concatenate([e.obs[key][:, dim] for e in episodes]), percentile)
        for e in episodes:
            e.obs[key][:, dim] = np.minimum(e.obs[key][:, dim], limit)
    return edit


# --- pipeline faults ---------------------------------------------------------------------------

class UnusedAdapter(nn.Module):
    """A low-rank adapter registered on the policy and saved with it, but never called."""

    def __init__(self, width: int, rank: int = 4):
        super().__init__()
        self.down = nn.Linear(width, rank, bias=False)
        self.up = nn.Linear(rank, width, bias=False)


def with_unused_adapter(make_policy):
    def make(episodes):
        policy = make_policy(episodes)
        policy.adapter = UnusedAdapter(policy.config.cond_dim)
        return policy
    return make


def with_lora_on_a_copy(make_policy):
    """The classic bug: LoRA injected into a copy of the encoder that the forward never calls."""
    from peft import LoraConfig, inject_adapter_in_model  # seconds to import: only where used

    def make(episodes):
        policy = make_policy(episodes)
        policy.lora_encoder = inject_adapter_in_model(LoraConfig(r=4, target_modules=LORA_TARGETS),
                                                      copy.deepcopy(policy.encoder))
        return policy
    return make


def with_lora_applied(make_policy):
    """The healthy twin: LoRA injected into the encoder the forward pass uses."""
    from peft import LoraConfig, inject_adapter_in_model

    def make(episodes):
        policy = make_policy(episodes)
        inject_adapter_in_model(LoraConfig(r=4, target_modules=LORA_TARGETS), policy.encoder)
        return policy
    return make


def with_bad_init(make_policy, std: float = 10.0):
    """The head's output layer drawn with std 10 instead of starting at zero."""
    def make(episodes):
        policy = make_policy(episodes)
        with torch.no_grad():
            out = policy.head.net.out[-1]
            out.weight.normal_(0, std)
            out.bias.normal_(0, std)
        return policy
    return make


def tiny_std_normaliser(policy, key: str = "object_state", dim: int = 2, std: float = 1e-8):
    """What normalising without a floor does to a near-constant dimension."""
    norm = policy.normalizer
    with torch.no_grad():
        getattr(norm, f"{key}__std")[dim] = std
        getattr(norm, f"{key}__scale")[dim] = 1 / std
        getattr(norm, f"{key}__offset")[dim] = -getattr(norm, f"{key}__mean")[dim] / std
    return policy


class ImageStateEncoder(nn.Module):
    """A small conv net on the image plus an MLP on the state; `use_image=False` is the planted
    fault: the image features are computed and then multiplied away."""

    def __init__(self, image_key: str, state_dims: dict[str, int], n_obs_steps: int, out_dim: int,
                 use_image: bool = True):
        super().__init__()
        self.image_key, self.state_keys, self.use_image = image_key, sorted(state_dims), use_image
        self.conv = nn.Sequential(nn.Conv2d(3, 8, 5, stride=2), nn.GELU(), nn.Conv2d(8, 16, 3, stride=2),
                                  nn.GELU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.mlp = nn.Sequential(nn.Linear((sum(state_dims.values()) + 16) * n_obs_steps, 64), nn.Mish(),
                                 nn.Linear(64, out_dim))

    def forward(self, obs):
        image = obs[self.image_key].float() / 255  # (B, To, H, W, 3) uint8
        b = image.shape[0]
        features = self.conv(image.flatten(0, 1).permute(0, 3, 1, 2)).reshape(b, -1)
        if not self.use_image:
            features = features * 0
        state = torch.cat([obs[k].flatten(1) for k in self.state_keys], dim=-1)
        return self.mlp(torch.cat([state, features], dim=-1))


def image_pipeline(image_key: str, use_image: bool = True):
    def make_policy(episodes):
        keys = ["robot_state", "goal", image_key]
        policy = build_for_episodes("flow", {**TINY, "obs_keys": keys, "vision_widths": [8, 8, 8, 8]},
                                    episodes)
        cfg = policy.config
        state_dims = {k: cfg.obs_dims[k] for k in keys if k != image_key}
        policy.encoder = ImageStateEncoder(image_key, state_dims, cfg.n_obs_steps, cfg.cond_dim, use_image)
        return policy
    return make_policy


class BlindDenoiser(nn.Module):
    """A denoiser wired wrong: the condition never reaches it."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x, t, cond):
        return self.net(x, t, torch.zeros_like(cond))


def with_blind_head(make_policy):
    """The denoiser is wired without its condition: it can only learn the average chunk."""
    def make(episodes):
        policy = make_policy(episodes)
        policy.head.net = BlindDenoiser(policy.head.net)
        return policy
    return make


def vla_pipeline(backbone: str, mode: str = "lora", lora_on_a_copy: bool = False):
    """A tiny VLA on a Hugging Face backbone. `lora_on_a_copy`: the planted fault — the backbone
    stays frozen in the forward pass while peft LoRA adapters sit on a copy of it."""
    from peft import LoraConfig, get_peft_model

    from tests.conftest import TINY_VISION, TINY_VLA
    from vlascope.data import TaskSet

    def make_policy(episodes):
        # 56 px frames: four times fewer vision-tower patches than the default 112.
        over = {**TINY_VLA, **TINY_VISION, "backbone": str(backbone), "backbone_mode": mode,
                "backbone_image_size": 56, "obs_keys": ["robot_state", "goal", "corner2_image"]}
        tasks = TaskSet(["pick-place-v3"], ["pick the puck and place it at the goal"], None)
        policy = build_for_episodes("vla", over, episodes, tasks)
        if lora_on_a_copy:
            policy.backbone.adapted = get_peft_model(copy.deepcopy(policy.backbone.model),
                                                     LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
        return policy
    return make_policy


def with_constant_backbone_features(make_policy, offset: float = 100.0):
    """What a frozen VLM often does to robot frames: one shared direction swamps the per-sample
    differences of its pooled output (cosine ~0.997 between samples)."""
    def make(episodes):
        policy = make_policy(episodes)
        policy.backbone.register_forward_hook(lambda m, args, out: (out[0] + offset, out[1]))
        return policy
    return make
