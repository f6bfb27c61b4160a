"""What every policy shares: the data-derived part of its config, and the normaliser-owning
module that turns raw observations into normalised inputs and normalised actions back into
the dataset's units.

A policy subclasses `Policy` and writes three things: its layers, `loss(inputs, target)`
(normalised targets) and `sample(inputs, generator)` (a normalised chunk). Everything about
units, augmentation and task/instruction conditioning lives here once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import nn

from vlascope.data.normalizer import Normalizer
from vlascope.policies.blocks.encoders import is_image_key

VISION_TOKENS = ("grid", "keypoints", "grid+keypoints")
LANGUAGE_KEY = "language"  # (B, language_dim) instruction embedding, looked up per task
# Fields that change how a trained policy runs, not what it computed: a checkpoint may be
# evaluated under other values of these (replanned, ensembled) with the same weights.
EXECUTION_FIELDS = ("n_action_steps", "temporal_ensemble")


def check_execution_settings(settings: dict) -> None:
    """ValueError naming any setting that is not an execution field: any other field would no
    longer describe the trained weights."""
    other = sorted(set(settings) - set(EXECUTION_FIELDS))
    if other:
        raise ValueError(f"{', '.join(other)} cannot change after training; execution settings "
                         f"are {', '.join(EXECUTION_FIELDS)}")


def check_execution(n_action_steps: int, horizon: int, temporal_ensemble: float | None) -> None:
    """ValueError unless a chunk of `horizon` actions can be executed this way."""
    if not 1 <= n_action_steps <= horizon:
        raise ValueError(f"n_action_steps ({n_action_steps}) must be in [1, horizon ({horizon})]")
    if temporal_ensemble is not None and temporal_ensemble < 0:
        raise ValueError(f"temporal_ensemble must be >= 0 or None, got {temporal_ensemble}")


@dataclass
class PolicyConfig:
    """Fields every policy has. The data-derived ones are filled at training time."""

    obs_keys: list[str] = field(default_factory=lambda: ["robot_state", "object_state", "goal"])
    obs_dims: dict[str, int] = field(default_factory=dict)
    action_dim: int = 4
    task_names: list[str] = field(default_factory=list)  # more than one -> task conditioning
    # Condition on each task's cached instruction embedding (data/language.py) instead of a
    # learned per-task vector: the policy then reads "what to do" from the sentence.
    language: bool = False
    language_dim: int = 0  # filled from the dataset's cached embeddings
    # Centre instruction embeddings on the training tasks' mean and scale them to unit variance
    # (one scale for all dimensions, which keeps the embedding's geometry), as states are
    # normalised. A sentence encoder puts related instructions ("slide a plate into a cabinet" /
    # "... from the side") close together; unscaled, the tasks' vectors differ by far less than
    # their shared component, and the policy starts unable to tell them apart.
    language_norm: bool = False
    # Windows: To observations in, Tp actions out, Ta of them executed before replanning.
    n_obs_steps: int = 2
    horizon: int = 16
    n_action_steps: int = 8
    # ACT-style temporal ensembling at execution: replan every n_action_steps steps and average
    # every live chunk's action for the current step with weights exp(-coeff * age). None: off.
    temporal_ensemble: float | None = None
    # Images (`<camera>_image` keys in obs_keys): one ResNet-18-style GroupNorm trunk per camera.
    image_size: int = 96  # filled from the dataset; the evaluation camera renders at this size
    # Filled from the dataset (envs.metaworld.CAMERA_VIEWS); the evaluation camera renders from
    # this view. Checkpoints from before the field saw MetaWorld's own.
    camera_view: str = "metaworld"
    vision_widths: list[int] = field(default_factory=lambda: [64, 128, 256, 512])
    # Token-reading policies (act, vla's small backbone) take the feature map after this many
    # stages: 3 gives stride 16, a 6x6 grid of tokens from a 96-px frame (4 stages: 3x3, too
    # coarse to place an object).
    vision_token_stages: int = 3
    # What of each frame becomes tokens: "grid" (one per feature-map cell), "keypoints" (one
    # token from spatial-softmax keypoints: the image feature the head policies condition on),
    # or "grid+keypoints". On pick-place images neither alternative did better than the grid.
    vision_tokens: str = "grid"
    vision_features: int = 64
    vision_pool: str = "spatial_softmax"  # "spatial_softmax" | "avg"
    vision_keypoints: int = 32
    crop_ratio: float = 0.9  # random crop while training, centre crop at inference
    color_jitter: float = 0.1
    task_embed_dim: int = 32
    # FiLM: the task vector also sets a per-channel scale and bias in every block of each image
    # trunk, so what is read from a scene shared by several tasks depends on the task asked.
    task_film: bool = False
    # Augmentation: Gaussian noise (in normalised units) added to state observations and to
    # the target actions while training.
    obs_noise: float = 0.0
    action_noise: float = 0.0
    # The state keys obs_noise is added to; empty: every state input. The goal is read for
    # placing, so noise on it costs precision that noise on the hand state does not.
    obs_noise_keys: list[str] = field(default_factory=list)
    # Privileged auxiliary targets: recorded state keys (not inputs) that the policy learns to
    # predict, at the current frame, from what it read of its inputs; needed in training only.
    # With `object_state`, an image policy must localise the object in its camera rather than
    # key on which demo it is in (each demo's goal and hand path are unique to it).
    aux_keys: list[str] = field(default_factory=list)
    aux_weight: float = 1.0
    # Normalisation.
    obs_norm: str = "meanstd"
    action_norm: str = "minmax"
    # A dimension whose std (or range) is below this is centred, not scaled: a nearly constant
    # input (reach-v3's gripper opening) would otherwise turn a small drift at deployment into
    # a many-sigma input.
    norm_floor: float = 1e-2

    @property
    def state_dims(self) -> dict[str, int]:
        return {k: self.obs_dims[k] for k in self.obs_keys if not is_image_key(k)}

    @property
    def image_keys(self) -> list[str]:
        return [k for k in self.obs_keys if is_image_key(k)]

    @property
    def data_keys(self) -> list[str]:
        """What training reads from the dataset: the inputs, then the auxiliary targets."""
        return list(self.obs_keys) + [k for k in self.aux_keys if k not in self.obs_keys]

    @property
    def num_tasks(self) -> int:
        return max(len(self.task_names), 1)

    @property
    def vision(self) -> dict:
        return {"out_dim": self.vision_features, "widths": self.vision_widths,
                "pool": self.vision_pool, "keypoints": self.vision_keypoints,
                "crop_ratio": self.crop_ratio, "color_jitter": self.color_jitter,
                "film": self.task_film}

    def with_execution(self, **settings) -> "PolicyConfig":
        """A copy that runs the same weights differently; only EXECUTION_FIELDS may change.
        Validated (ValueError)."""
        check_execution_settings(settings)
        config = replace(self, **settings)
        config.validate()
        return config

    def validate(self) -> None:
        check_execution(self.n_action_steps, self.horizon, self.temporal_ensemble)
        if self.language and self.language_dim < 1:
            raise ValueError("language conditioning needs language_dim (set from the dataset)")
        if self.language_norm and not self.language:
            raise ValueError("language_norm needs language conditioning (language: true)")
        if self.task_film and not (self.image_keys and (self.language or self.num_tasks > 1)):
            raise ValueError("task_film needs a camera input and a task vector (language: true or "
                             "several tasks)")
        if self.vision_tokens not in VISION_TOKENS:
            raise ValueError(f"vision_tokens must be one of {', '.join(VISION_TOKENS)}, "
                             f"got '{self.vision_tokens}'")
        for k in self.obs_noise_keys:
            if k not in self.obs_keys or is_image_key(k):
                raise ValueError(f"obs_noise key '{k}' must be a state input "
                                 f"(inputs: {', '.join(self.obs_keys)})")
        for k in self.aux_keys:
            if k in self.obs_keys or is_image_key(k):
                raise ValueError(f"aux key '{k}' must be a recorded state key that is not an input "
                                 f"(inputs: {', '.join(self.obs_keys)})")


@dataclass
class ActionHeadConfig(PolicyConfig):
    """A policy config whose chunk comes from one of the shared heads (blocks.heads.make_head)
    reading a `cond_dim` condition vector."""

    head: str = "flow"  # "diffusion" | "flow" | "mse"
    cond_dim: int = 256
    # Denoiser network for the diffusion/flow heads.
    denoiser: str = "mlp"  # "unet" | "mlp"
    unet_dims: list[int] = field(default_factory=lambda: [64, 128, 256])
    kernel_size: int = 5
    mlp_width: int = 256
    mlp_depth: int = 3
    diffusion_train_steps: int = 100
    inference_steps: int = 10
    flow_time_sampling: str = "beta"
    # What the denoiser outputs: diffusion "epsilon" (default) | "sample"; flow "velocity"
    # (default) | "sample". None takes the head's default.
    prediction: str | None = None

    def validate(self) -> None:
        super().validate()
        if self.head not in ("diffusion", "flow", "mse"):
            raise ValueError(f"head must be diffusion, flow or mse, got '{self.head}'")
        allowed = {"diffusion": ("epsilon", "sample"), "flow": ("velocity", "sample"), "mse": ()}[self.head]
        if self.prediction is not None and self.prediction not in allowed:
            raise ValueError(f"prediction '{self.prediction}' is not one the {self.head} head makes"
                             + (f" (expected {' or '.join(allowed)})" if allowed else ""))


class Policy(nn.Module):
    """Owns the normaliser; subclasses map normalised inputs to normalised action chunks."""

    def __init__(self, config: PolicyConfig, normalizer: Normalizer):
        super().__init__()
        config.validate()
        self.config = config
        self.normalizer = normalizer
        if config.language:
            # Filled by the trainer from the dataset; saved with the weights, so evaluation
            # needs no text model.
            self.register_buffer("instruction_embeddings",
                                 torch.zeros(config.num_tasks, config.language_dim))
            if config.language_norm:
                self.register_buffer("language_mean", torch.zeros(config.language_dim))
                self.register_buffer("language_scale", torch.ones(()))

    @property
    def chunk_shape(self) -> tuple[int, int]:
        return (self.config.horizon, self.config.action_dim)

    def build_aux_head(self, feature_dim: int) -> None:
        """A linear read-out of the auxiliary targets from a `feature_dim` summary of the inputs
        (what the action head reads): the targets can only be predicted if it holds them."""
        self.aux_head = nn.Linear(feature_dim, sum(self.config.obs_dims[k] for k in self.config.aux_keys)) \
            if self.config.aux_keys else None

    def aux_terms(self, features: torch.Tensor, inputs: dict) -> dict[str, torch.Tensor]:
        """{"aux": aux_weight x MSE of the auxiliary targets (normalised)}; empty without them
        (at inference the observations hold no targets)."""
        target = inputs.get("aux_target")
        if target is None or self.aux_head is None:
            return {}
        pred = self.aux_head(features).float()
        return {"aux": self.config.aux_weight * torch.nn.functional.mse_loss(pred, target)}

    def zero_output_aux(self, inputs: dict) -> float:
        """What aux_terms gives for a read-out that outputs zero: aux_weight x the normalised
        targets' mean square; 0 without them."""
        target = inputs.get("aux_target")
        if target is None or self.aux_head is None:
            return 0.0
        return self.config.aux_weight * float(target.float().pow(2).mean())

    def set_instruction_embeddings(self, embeddings: torch.Tensor) -> None:
        """The training tasks' instruction embeddings (num_tasks, language_dim), and with
        language_norm the centring and scale derived from them."""
        embeddings = torch.as_tensor(embeddings, dtype=torch.float32)
        self.instruction_embeddings.copy_(embeddings)
        if self.config.language_norm:
            mean = embeddings.mean(0)
            self.language_mean.copy_(mean)
            # One task: nothing to tell apart; the floor keeps the centred zero vector finite.
            self.language_scale.copy_((embeddings - mean).pow(2).mean().sqrt().clamp(min=1e-6))

    def inputs(self, obs: dict[str, torch.Tensor], task_index: torch.Tensor | None) -> dict:
        """Normalised model inputs: (B, To, dim) states, raw uint8 (B, To, H, W, 3) images (their
        encoders scale and augment them), `task_index`, and the instruction embedding."""
        out = {}
        for k in self.config.obs_keys:
            if is_image_key(k):
                out[k] = obs[k]
                continue
            x = self.normalizer.normalize(k, obs[k].float())
            if self.training and self.config.obs_noise > 0 and \
                    (not self.config.obs_noise_keys or k in self.config.obs_noise_keys):
                x = x + self.config.obs_noise * torch.randn_like(x)
            out[k] = x
        b = next(iter(obs.values())).shape[0]
        device = next(iter(obs.values())).device
        if task_index is None:
            task_index = torch.zeros(b, dtype=torch.long, device=device)
        out["task_index"] = task_index
        if self.config.language:
            given = obs.get(LANGUAGE_KEY)
            language = given.float() if given is not None else self.instruction_embeddings[task_index]
            if self.config.language_norm:
                language = (language - self.language_mean) / self.language_scale
            out[LANGUAGE_KEY] = language
        if self.config.aux_keys and all(k in obs for k in self.config.aux_keys):
            out["aux_target"] = torch.cat([self.normalizer.normalize(k, obs[k][:, -1].float())
                                           for k in self.config.aux_keys], dim=-1)
        return out

    def loss_terms(self, inputs: dict, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """The named terms the training loss sums: "action" (the objective on the chunk), and
        where the policy has them "aux" (auxiliary targets) or "kl" (a latent's prior)."""
        raise NotImplementedError

    def zero_output_loss(self, target: torch.Tensor) -> float:
        """What the training loss gives for a net whose output is zero, on normalised `target`
        chunks."""
        raise NotImplementedError

    def sample(self, inputs: dict, noise: torch.Tensor) -> torch.Tensor:
        """A normalised chunk from unit Gaussian `noise` of the chunk's shape (which a
        deterministic policy ignores)."""
        raise NotImplementedError

    def compute_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        inputs = self.inputs(batch["obs"], batch.get("task_index"))
        target = self.normalizer.normalize("action", batch["action"])
        if self.training and self.config.action_noise > 0:
            target = target + self.config.action_noise * torch.randn_like(target)
        terms = self.loss_terms(inputs, target)
        loss = sum(terms.values())
        # Each term beside the total where there are several: a flow or diffusion objective is
        # not an action error, and an auxiliary target's share of the total is not the action's.
        parts = {f"loss_{name}": term.detach().float() for name, term in terms.items()} if len(terms) > 1 else {}
        return loss, {"loss": loss.detach(), **parts}

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        # The training step goes through forward() so DistributedDataParallel sees it.
        return self.compute_loss(batch)

    @torch.no_grad()
    def predict_chunk(self, obs: dict[str, torch.Tensor], task_index: torch.Tensor | None = None,
                      generator: torch.Generator | None = None,
                      noise: torch.Tensor | None = None) -> torch.Tensor:
        """Action chunk (B, horizon, action_dim) in the dataset's action units, from `noise`
        (B, horizon, action_dim) when given, else from noise drawn with `generator`."""
        if noise is None:
            b = len(next(iter(obs.values())))
            noise = torch.randn((b, *self.chunk_shape), generator=generator,
                                device=next(self.parameters()).device)
        chunk = self.sample(self.inputs(obs, task_index), noise)
        return self.normalizer.unnormalize("action", chunk)


class HeadPolicy(Policy):
    """A policy whose chunk comes from `self.head` (blocks.heads) reading one condition vector;
    a subclass writes `condition(inputs)` and gets the loss, the sampler and `encode` (the
    vector the doctor's conditioning check shuffles inputs against)."""

    def condition(self, inputs: dict) -> torch.Tensor:
        raise NotImplementedError

    def encode(self, obs: dict[str, torch.Tensor], task_index: torch.Tensor | None = None) -> torch.Tensor:
        """Condition vector for raw (unnormalised) observation windows."""
        return self.condition(self.inputs(obs, task_index))

    def zero_output_loss(self, target: torch.Tensor) -> float:
        return self.head.zero_output_loss(target)

    def loss_terms(self, inputs: dict, target: torch.Tensor) -> dict[str, torch.Tensor]:
        cond = self.condition(inputs)
        return {"action": self.head.loss(cond, target).mean(), **self.aux_terms(cond, inputs)}

    def sample(self, inputs: dict, noise: torch.Tensor) -> torch.Tensor:
        return self.head.sample(self.condition(inputs), noise)
