"""The one interface through which the doctor sees a policy, wherever it was trained.

A policy under diagnosis is an `ActionPolicy`: it predicts action chunks in the dataset's units
from raw observation windows, and may offer more (its loss, its nn.Module, the condition vector
its head reads, the normalisation its deployed pipeline applies, an untrained twin built from
data). A capability it does not offer raises `NotProvided`; the doctor then reports each check
that needed it as skipped, with that reason, and runs the others.

Batches use the dataset's keys (vlascope's names: `robot_state`, `goal`, `corner2_image`, ...):

    obs            {key: (B, n_obs_steps, *frame_shape)} raw values, uint8 images; the inputs,
                   then the loss's auxiliary targets (`PolicySpec.targets`) where the data has them
    action         (B, horizon, action_dim) raw actions
    action_is_pad  (B, horizon) True where the chunk runs past the episode's end
    task_index     (B,) long

Three things implement it: `VlascopePolicy` (below) for our own checkpoints and pipelines, the
LeRobot loader (vlascope.policies.lerobot_checkpoint), and a user's own adapter (examples/).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vlascope.errors import VlascopeError
from vlascope.policies.base import check_execution, check_execution_settings


class NotProvided(Exception):
    """The policy does not offer this capability; the message says what is missing."""


@dataclass(frozen=True)
class PolicySpec:
    """What a policy reads and writes, in the dataset's keys and units."""

    obs_shapes: dict[str, tuple[int, ...]]  # input key -> shape of one frame
    action_dim: int
    n_obs_steps: int
    horizon: int
    n_action_steps: int  # actions executed before the next chunk is asked for
    # The action targets its loss reads: (first frame relative to the current one, length).
    # None: the predicted chunk itself, (0, horizon).
    loss_actions: tuple[int, int] | None = None
    # Dataset keys the training loss reads besides the inputs: auxiliary targets, which a
    # read-out head learns to predict and the predicted chunk never sees.
    targets: tuple[str, ...] = ()

    @property
    def obs_keys(self) -> list[str]:
        return list(self.obs_shapes)

    @property
    def action_window(self) -> tuple[int, int]:
        return self.loss_actions or (0, self.horizon)

    def predicted_span(self, actions: torch.Tensor) -> torch.Tensor:
        """The part of a batch's (B, T, A) action window that a predicted chunk covers."""
        first = -self.action_window[0]
        return actions[:, first:first + self.horizon]


@dataclass(frozen=True)
class FeatureNormalization:
    """How the pipeline the user deploys maps one feature: `mode` with `stats` (numpy arrays,
    e.g. mean/std or min/max) on the way in (inputs) or out (the action)."""

    key: str  # a dataset key, or "action"
    mode: str  # "meanstd" | "minmax" | "identity" | another named mode
    stats: dict[str, np.ndarray]
    applied: bool = True  # False: the statistics exist but the deployed pipeline skips them
    trained_mode: str | None = None  # the mode the weights were trained with, where recorded

    @property
    def scale(self) -> np.ndarray:
        """How much the mapping multiplies a difference in raw units, per dimension."""
        s = self.stats
        if "scale" in s:
            return np.asarray(s["scale"], dtype=np.float64)
        centre_spread = self.centre_spread()
        if centre_spread is None:
            return np.ones_like(np.asarray(next(iter(s.values())), dtype=np.float64))
        return 1.0 / np.maximum(centre_spread[1], 1e-12)

    def centre_spread(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(centre, spread): the raw values that map to 0 and to +1 away from it."""
        s = self.stats
        bounds = {"minmax": ("min", "max"), "quantiles": ("q01", "q99"), "quantile10": ("q10", "q90")}
        if self.mode in bounds and all(b in s for b in bounds[self.mode]):
            lo_key, hi_key = bounds[self.mode]
            lo, hi = np.asarray(s[lo_key], np.float64), np.asarray(s[hi_key], np.float64)
            return (hi + lo) / 2, (hi - lo) / 2
        if self.mode == "minmax" and "min" in s and "max" in s:
            lo, hi = np.asarray(s["min"], np.float64), np.asarray(s["max"], np.float64)
            return (hi + lo) / 2, (hi - lo) / 2
        if "mean" in s and "std" in s:
            return np.asarray(s["mean"], np.float64), np.asarray(s["std"], np.float64)
        return None


class ActionPolicy:
    """Base class: `spec`, `name` and `predict_chunk` are required; everything else is optional
    and raises NotProvided until an implementation offers it."""

    spec: PolicySpec
    name: str = "policy"
    origin: str = "python"  # where it was trained: "vlascope", "lerobot", "adapter"

    # --- required ---------------------------------------------------------------------------
    def predict_chunk(self, obs: dict[str, torch.Tensor], seed: int = 0,
                      task_index: torch.Tensor | None = None) -> torch.Tensor:
        """(B, horizon, action_dim) in the dataset's action units, deterministic for a seed."""
        raise NotImplementedError

    # --- optional ---------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        try:
            return next(self.module().parameters()).device
        except (NotProvided, StopIteration):
            return torch.device("cpu")

    def module(self) -> nn.Module:
        """The nn.Module whose parameters make the predictions (gradients, perturbations)."""
        raise NotProvided("the adapter exposes no nn.Module")

    def loss(self, batch: dict) -> torch.Tensor:
        """The training loss on a batch (scalar, differentiable), in training mode."""
        raise NotProvided("the adapter offers no training loss")

    def optimizer(self, parameters: list[nn.Parameter], steps: int) -> tuple:
        """(optimiser, scheduler or None) as the policy is trained; AdamW at 1e-4 by default."""
        return torch.optim.AdamW(parameters, lr=1e-4, weight_decay=1e-6), None

    def zero_output_loss(self, batch: dict) -> float:
        """What the loss is for an output of zero: where a well-initialised net starts."""
        raise NotProvided("the adapter does not say what its objective gives for a zero output")

    def condition(self, obs: dict[str, torch.Tensor], task_index: torch.Tensor | None = None) -> torch.Tensor:
        """(B, ...) the vector the action head reads."""
        raise NotProvided("the adapter exposes no condition vector")

    def normalization(self) -> list[FeatureNormalization]:
        """The normalisation the deployed pipeline applies, feature by feature."""
        raise NotProvided("the adapter does not expose its normalisation statistics")

    def fresh(self, episodes: list) -> "ActionPolicy":
        """An untrained twin of this policy, its statistics fitted to `episodes`."""
        raise NotProvided("the adapter cannot build an untrained twin")

    def action_head(self) -> tuple[nn.Module, int]:
        """(head, cond_dim): a head with loss(cond, target) and sample(cond, noise)."""
        raise NotProvided("the policy has no separable action head")

    def backbone_features(self, obs: dict[str, torch.Tensor],
                          task_index: torch.Tensor | None = None) -> tuple[torch.Tensor, bool]:
        """((B, dim) the backbone's output pooled over its tokens, whether it is frozen)."""
        raise NotProvided("the policy has no vision-language backbone")

    def training_info(self) -> dict:
        """What the checkpoint records of its training: train_loss, task_names, the dataset
        episodes it trained on (`episodes`, None for all), ..."""
        return {}

    def run_checkpoints(self) -> list[tuple[int, Callable[[], "ActionPolicy"]]]:
        """Every checkpoint the run that saved this one wrote, as (step, load) in step order:
        the doctor compares their held-out error."""
        raise NotProvided("the policy does not say where the other checkpoints of its run are")

    def closed_loop_policy(self) -> nn.Module:
        """What vlascope's closed-loop evaluator (evaluate.runner) runs: by default this policy's
        predict_chunk, executed n_action_steps at a time, fed with the simulator's observations
        under the dataset's keys (which is why it only makes sense when those keys are
        MetaWorld's: `robot_state`, `object_state`, `goal`, `<camera>_image`)."""
        return ClosedLoop(self)

    def train(self, mode: bool = True) -> "ActionPolicy":
        try:
            self.module().train(mode)
        except NotProvided:
            pass
        return self

    def eval(self) -> "ActionPolicy":
        return self.train(False)


class VlascopePolicy(ActionPolicy):
    """A vlascope policy (policies.base.Policy) behind the interface. `make` builds an untrained
    one for a list of episodes (the pipeline under test)."""

    origin = "vlascope"

    def __init__(self, policy: nn.Module, name: str, make=None, path: str | Path | None = None):
        self.policy, self.name, self.make = policy, name, make
        self.path = Path(path) if path is not None else None  # the checkpoint folder, if loaded
        cfg = policy.config
        shapes = {k: ((cfg.image_size, cfg.image_size, 3) if k in cfg.image_keys else (cfg.obs_dims[k],))
                  for k in cfg.obs_keys}
        self.spec = PolicySpec(shapes, cfg.action_dim, cfg.n_obs_steps, cfg.horizon, cfg.n_action_steps,
                               targets=tuple(k for k in cfg.data_keys if k not in cfg.obs_keys))
        self.config = cfg

    def predict_chunk(self, obs, seed=0, task_index=None):
        generator = torch.Generator(device=self.device).manual_seed(seed)
        return self.policy.predict_chunk(obs, task_index, generator)

    def module(self):
        return self.policy

    def loss(self, batch):
        return self.policy.compute_loss(batch)[0]

    def optimizer(self, parameters, steps):
        from vlascope.optim import adamw, warmup_cosine

        # vlascope's recipe (train.TrainConfig's defaults), its warm-up shortened for short fits.
        opt = adamw(parameters, lr=1e-3, weight_decay=1e-6)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(min(50, max(steps // 3, 1)), steps))

    def zero_output_loss(self, batch):
        target = self.policy.normalizer.normalize("action", batch["action"]).float()
        # The auxiliary targets' term too, where the batch holds them, as the loss has it.
        inputs = self.policy.inputs(batch["obs"], batch.get("task_index"))
        return self.policy.zero_output_loss(target) + self.policy.zero_output_aux(inputs)

    def condition(self, obs, task_index=None):
        encode = getattr(self.policy, "encode", None)
        if encode is None:
            raise NotProvided(f"{self.name}'s decoder reads the encoder's tokens directly: "
                              "there is no single condition vector")
        return encode(obs, task_index)

    def normalization(self):
        norm = self.policy.normalizer
        out = []
        for key in norm.keys:
            stats = {s: norm.stat(key, s).cpu().numpy().astype(np.float64) for s in ("mean", "std", "min", "max")}
            mode = norm.modes.get(key, "meanstd")
            out.append(FeatureNormalization(key, mode, stats | {
                "scale": norm.stat(key, "scale").cpu().numpy().astype(np.float64)}, True, mode))
        return out

    def fresh(self, episodes):
        if self.make is None:
            raise NotProvided("no pipeline to build an untrained policy from")
        return VlascopePolicy(self.make(episodes), self.name, self.make)

    def action_head(self):
        head = getattr(self.policy, "head", None)
        cond_dim = getattr(self.config, "cond_dim", None)
        if head is None or cond_dim is None:
            raise NotProvided(f"{type(self.policy).__name__} has no separable action head (its "
                              "decoder reads the encoder's tokens directly)")
        return head, cond_dim

    def backbone_features(self, obs, task_index=None):
        backbone = getattr(self.policy, "backbone", None)
        if backbone is None:
            raise NotProvided("the policy has no vision-language backbone")
        tokens, padding = backbone(self.policy.inputs(obs, task_index))
        if tokens.shape[1] == 0:
            raise NotProvided("the backbone gives no tokens for these inputs")
        keep = torch.ones(tokens.shape[:2], device=tokens.device) if padding is None else (~padding).float()
        pooled = (tokens.float() * keep[..., None]).sum(1) / keep.sum(1, keepdim=True).clamp(min=1)
        return pooled, not any(p.requires_grad for p in backbone.parameters())

    def training_info(self):
        return {**(getattr(self.policy, "checkpoint_config", None) or {}),
                "task_names": list(self.config.task_names)}

    def run_checkpoints(self):
        if self.path is None or self.path.parent.name != "checkpoints":
            raise NotProvided("the policy was not loaded from a training run's checkpoints folder")
        from vlascope.policies import load_pretrained  # the registry imports this module

        steps = sorted(self.path.parent.glob("step_*"))
        device = self.device
        return [(int(p.name.removeprefix("step_")),
                 lambda p=p: VlascopePolicy(load_pretrained(p, device=device), self.name, self.make, p))
                for p in steps if p.name.removeprefix("step_").isdigit()]

    def closed_loop_policy(self):
        return self.policy

    def train(self, mode=True):
        self.policy.train(mode)
        return self


def vlascope_pipeline(build, name: str):
    """`build(episodes) -> Policy` (a vlascope pipeline) as a builder of ActionPolicy twins."""
    def make(episodes):
        return VlascopePolicy(build(episodes), name, build)
    return make


def task_names(policy: ActionPolicy) -> list[str]:
    """The tasks `policy` was trained on, in the order its task index numbers them; empty for a
    policy of one task (or one that does not say)."""
    return list(policy.training_info().get("task_names") or [])


def task_index(names: list[str], task: str, instruction: str | None = None) -> int | None:
    """Where `task` sits among a policy's training tasks `names`: by its name, else by the
    instruction text it is recorded under (a policy trained on a LeRobot folder of several tasks
    names each task by its text, as the folder does). None when `names` holds neither."""
    for key in (task, instruction):
        if key and key in names:
            return names.index(key)
    return None


def check_inputs(policy: ActionPolicy, obs_shapes: dict, action_dim: int, where: str) -> None:
    """The features, shapes, cameras and image size a policy expects against a dataset's: one
    line naming every mismatch."""
    problems = []
    for key, shape in policy.spec.obs_shapes.items():
        if key not in obs_shapes:
            problems.append(f"'{key}' is missing")
        elif tuple(obs_shapes[key][-len(shape):]) != tuple(shape):
            problems.append(f"'{key}' is {tuple(obs_shapes[key][-len(shape):])} in the dataset, the "
                            f"policy expects {tuple(shape)}")
    if action_dim != policy.spec.action_dim:
        problems.append(f"actions have {action_dim} dims, the policy predicts {policy.spec.action_dim}")
    if problems:
        raise VlascopeError(f"{where}: the policy's inputs do not match the dataset: {'; '.join(problems)} "
                            f"(dataset has: {', '.join(sorted(obs_shapes))})")


@dataclass(frozen=True)
class ClosedLoopConfig:
    """The fields of a policy config that the closed-loop evaluator reads."""

    obs_keys: list[str]
    n_obs_steps: int
    n_action_steps: int
    image_keys: list[str]
    image_size: int
    task_names: list[str]
    temporal_ensemble: float | None = None
    camera_view: str = "lerobot"
    horizon: int = 1  # the predicted chunk's length: n_action_steps may not pass it
    obs_dims: dict[str, int] = field(default_factory=dict)  # each vector input's size

    def with_execution(self, **settings) -> "ClosedLoopConfig":
        """A copy executing the same predictions differently (n_action_steps, temporal_ensemble),
        validated as a vlascope policy's config is (ValueError)."""
        check_execution_settings(settings)
        config = replace(self, **settings)
        check_execution(config.n_action_steps, config.horizon, config.temporal_ensemble)
        return config


class ClosedLoop(nn.Module):
    """Any ActionPolicy in the shape evaluate.runner drives: a config, a chunk shape and
    predict_chunk(batch, task_index, noise). The runner draws each episode's noise from that
    episode's own seeded generator; a policy that samples from a seed instead gets one derived
    from that noise, so every episode stays reproducible. That seed is one a call: where the
    evaluator batches several envs into a call, their rows share it, so a sampling policy's
    episodes depend on the batching (a deterministic one's do not); calling row by row would
    give up the batching that makes evaluation fast."""

    def __init__(self, policy: ActionPolicy):
        super().__init__()
        self.policy = policy
        spec = policy.spec
        image_keys = [k for k, shape in spec.obs_shapes.items() if len(shape) == 3]
        sides = {s for k in image_keys for s in spec.obs_shapes[k][:2]}
        if len(sides) > 1:
            raise NotProvided(f"the policy reads non-square or differently sized images "
                              f"{[spec.obs_shapes[k] for k in image_keys]}; the simulator renders "
                              "one square size")
        info = policy.training_info()
        # A foreign policy saw LeRobot's MetaWorld frames unless its training says otherwise.
        self.config = ClosedLoopConfig(spec.obs_keys, spec.n_obs_steps, spec.n_action_steps,
                                       image_keys, sides.pop() if sides else 0,
                                       task_names(policy),
                                       camera_view=str(info.get("camera_view") or "lerobot"),
                                       horizon=spec.horizon,
                                       obs_dims={k: shape[-1] for k, shape in spec.obs_shapes.items()
                                                 if len(shape) == 1})
        self.chunk_shape = (spec.horizon, spec.action_dim)

    def parameters(self, recurse: bool = True):
        try:
            yield from self.policy.module().parameters(recurse)
        except NotProvided:
            yield torch.zeros(0)

    @torch.no_grad()
    def predict_chunk(self, obs: dict[str, torch.Tensor], task_index: torch.Tensor | None = None,
                      noise: torch.Tensor | None = None) -> torch.Tensor:
        seed = 0
        if noise is not None:
            seed = int(noise.reshape(len(noise), -1)[:, :8].double().abs().sum().item() * 1e6) % 2 ** 31
        return self.policy.predict_chunk(obs, seed=seed, task_index=task_index)
