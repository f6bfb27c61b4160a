"""Map a policy name to its class and config, and save/load self-describing policy folders.

A policy folder (every checkpoint is one) holds:
  config.json             format version, policy name and config, normaliser modes, extras
  model.safetensors       weights (the EMA weights when `ema` is also present)
  ema.safetensors         optional: exponential moving average of the weights
  normalizer.safetensors  dataset statistics and the affine maps
Nothing here unpickles: weights come from safetensors, everything else from JSON.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from vlascope.configs import build_config
from vlascope.data import TaskSet
from vlascope.data.normalizer import Normalizer, compute_stats
from vlascope.errors import VlascopeError
from vlascope.policies.act import ActConfig, ActPolicy
from vlascope.policies.blocks.encoders import is_image_key
from vlascope.policies.chunking import ChunkingPolicy, ChunkingPolicyConfig
from vlascope.policies.presets import POLICY_NAMES, PRESETS
from vlascope.policies.vla import VlaConfig, VlaPolicy

FORMAT_VERSION = 1

FAMILIES = {"chunking": (ChunkingPolicy, ChunkingPolicyConfig), "act": (ActPolicy, ActConfig),
            "vla": (VlaPolicy, VlaConfig)}
# name -> (policy class, config class, preset overrides).
REGISTRY = {name: (*FAMILIES[family], preset) for name, (family, preset) in PRESETS.items()}


def _entry(name: str):
    if name not in REGISTRY:
        raise VlascopeError(f"unknown policy '{name}'; expected one of {', '.join(POLICY_NAMES)}")
    return REGISTRY[name]


def make_config(name: str, overrides: dict | None = None):
    _, config_cls, preset = _entry(name)
    return build_config(config_cls, {**preset, **(overrides or {})}, f"{name} policy")


def build_policy(name: str, config, normalizer: Normalizer) -> torch.nn.Module:
    policy_cls, _, _ = _entry(name)
    try:
        return policy_cls(config, normalizer)
    except ValueError as exc:
        raise VlascopeError(f"invalid {name} policy config: {exc}") from None


def instruction_embeddings(tasks: TaskSet | None) -> np.ndarray:
    """Each task's instruction embedding: as its dataset caches it (vlascope's collection), else
    computed from its instruction text (a dataset recorded elsewhere, such as a LeRobot folder,
    holds the text alone)."""
    if tasks is not None and tasks.embeddings is not None:
        return tasks.embeddings
    if tasks is None or not all(tasks.instructions):
        raise VlascopeError("language conditioning needs each dataset's instruction: "
                            f"{'no task' if tasks is None else 'a dataset without one'} "
                            "(data attribute 'instruction', or 'instruction_embedding')")
    from vlascope.data.language import embed_instructions

    return embed_instructions(tasks.instructions)


def build_for_episodes(policy_name: str, overrides: dict | None, episodes: list,
                       tasks: TaskSet | None = None) -> torch.nn.Module:
    """A fresh policy whose sizes, normaliser statistics and task conditioning come from
    `episodes` and the tasks they belong to."""
    config = make_config(policy_name, overrides)
    first = episodes[0]
    config.obs_dims = {k: int(first.obs[k].shape[-1]) for k in config.data_keys}
    config.action_dim = int(first.actions.shape[1])
    names = tasks.names if tasks is not None else []
    config.task_names = names if len(names) > 1 else []
    if hasattr(config, "instructions") and tasks is not None:
        config.instructions = tasks.instructions[:config.num_tasks]
    embeddings = None
    if config.language:
        embeddings = instruction_embeddings(tasks)
        config.language_dim = int(embeddings.shape[1])
    # Images are scaled by their encoder, not the normaliser (and their statistics would cost
    # gigabytes of float64).
    state_keys = [k for k in config.data_keys if not is_image_key(k)]
    for k in config.obs_keys:
        if is_image_key(k):
            config.image_size = int(first.obs[k].shape[1])
            if tasks is not None and tasks.camera_view:
                config.camera_view = tasks.camera_view
    stats = {k: compute_stats(np.concatenate([e.obs[k] for e in episodes])) for k in state_keys}
    stats["action"] = compute_stats(np.concatenate([e.actions for e in episodes]))
    modes = {k: config.obs_norm for k in state_keys} | {"action": config.action_norm}
    policy = build_policy(policy_name, config, Normalizer(stats, modes, config.norm_floor))
    if config.language:
        policy.set_instruction_embeddings(embeddings[:config.num_tasks])
    return policy


def _external(module: torch.nn.Module) -> set[str]:
    """Weights a policy reloads from their source rather than its checkpoint (a frozen
    pretrained backbone: gigabytes that never change)."""
    external = getattr(module, "external_weights", None)
    return set(external()) if external else set()


def _weights_without_normalizer(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    skip = _external(module)
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()
            if not k.startswith("normalizer.") and k not in skip}


def save_pretrained(policy: torch.nn.Module, name: str, folder: str | Path,
                    ema: torch.nn.Module | None = None, extra: dict | None = None) -> None:
    """Write a policy folder into `folder` (which must exist; callers make it atomic)."""
    folder = Path(folder)
    norm = policy.normalizer
    config = {
        "format_version": FORMAT_VERSION,
        "policy": name,
        "policy_config": dataclasses.asdict(policy.config),
        "normalizer": {"modes": norm.modes, "floor": norm.floor},
        **(extra or {}),
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    save_file(_weights_without_normalizer(policy), folder / "model.safetensors")
    if ema is not None:
        save_file(_weights_without_normalizer(ema), folder / "ema.safetensors")
    save_file({k: v.contiguous() for k, v in norm.state_dict().items()},
              folder / "normalizer.safetensors")


def read_config(folder: str | Path) -> dict:
    folder = Path(folder)
    path = folder / "config.json"
    if not folder.is_dir():
        raise VlascopeError(f"{folder}: no such checkpoint folder")
    if not path.exists():
        raise VlascopeError(f"{folder}: not a checkpoint (no config.json)")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise VlascopeError(f"{path}: invalid JSON ({exc})") from None
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise VlascopeError(f"{path}: checkpoint format_version {version!r} is newer than this "
                            f"vlascope reads ({FORMAT_VERSION}); upgrade vlascope")
    return config


def load_pretrained(folder: str | Path, weights: str = "ema", device: str | torch.device = "cpu"):
    """Load a policy folder; `weights` is "ema" (default, when present) or "model"."""
    folder = Path(folder)
    config = read_config(folder)
    name = config.get("policy")
    try:
        policy_config = make_config(name, config["policy_config"])
        norm_spec = config["normalizer"]
    except KeyError as exc:
        raise VlascopeError(f"{folder / 'config.json'}: missing key {exc}") from None
    normalizer = Normalizer.from_state_dict(load_file(folder / "normalizer.safetensors"),
                                            norm_spec["modes"], norm_spec["floor"])
    policy = build_policy(name, policy_config, normalizer)
    load_weights(policy, folder, weights)
    policy.to(device).eval()
    policy.checkpoint_config = config
    return policy


def load_weights(policy, folder: str | Path, weights: str = "ema") -> None:
    """Load a checkpoint folder's "ema" or "model" weights into a policy built from its config
    (weights kept outside the checkpoint, e.g. a frozen backbone, stay as they are)."""
    folder = Path(folder)
    weight_file = folder / ("ema.safetensors" if weights == "ema" else "model.safetensors")
    if not weight_file.exists():
        weight_file = folder / "model.safetensors"
    state = load_file(weight_file)
    missing, unexpected = policy.load_state_dict(state, strict=False)
    external = _external(policy)
    missing = [k for k in missing if not k.startswith("normalizer.") and k not in external]
    if missing or unexpected:
        raise VlascopeError(f"{weight_file}: weights do not match the config "
                            f"(missing {missing[:3]}, unexpected {unexpected[:3]})")


def check_fits(config, obs_shapes: dict, action_dim: int, where: str) -> None:
    """A policy config's input and output sizes against a dataset's (`where` names it)."""
    for k in config.obs_keys:
        if k not in obs_shapes:
            raise VlascopeError(f"{where}: the checkpoint's observation key '{k}' is not in the "
                                f"dataset (has: {', '.join(sorted(obs_shapes))}); map it with --key-map")
        if is_image_key(k):
            continue
        have, want = obs_shapes[k][-1], config.obs_dims.get(k)
        if want is not None and have != want:
            raise VlascopeError(f"{where}: obs '{k}' has {have} dims in the dataset but the "
                                f"checkpoint expects {want}")
    if action_dim != config.action_dim:
        raise VlascopeError(f"{where}: actions have {action_dim} dims in the dataset but the "
                            f"checkpoint predicts {config.action_dim}")
