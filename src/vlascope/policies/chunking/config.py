from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ChunkingPolicyConfig:
    """An observation-window encoder and an action head that predicts a chunk of actions.

    `head` picks the objective: "diffusion" (DDPM/DDIM), "flow" (flow matching) or "mse"
    (direct regression). The three share the encoder, normaliser and chunk execution.
    """

    head: str = "diffusion"
    # What the policy sees and does; filled from the dataset at training time.
    obs_keys: list[str] = field(default_factory=lambda: ["robot_state", "object_state", "goal"])
    obs_dims: dict[str, int] = field(default_factory=dict)
    action_dim: int = 4
    task_names: list[str] = field(default_factory=list)  # more than one -> task embedding
    # Windows: To observations in, Tp actions out, Ta of them executed before replanning.
    n_obs_steps: int = 2
    horizon: int = 16
    n_action_steps: int = 8
    # Encoder.
    encoder_hidden: int = 256
    cond_dim: int = 256
    task_embed_dim: int = 32
    # Images (`<camera>_image` keys in obs_keys): one ResNet-18-style GroupNorm encoder per camera.
    image_size: int = 96  # filled from the dataset; the evaluation camera renders at this size
    vision_widths: list[int] = field(default_factory=lambda: [64, 128, 256, 512])
    vision_features: int = 64
    vision_pool: str = "spatial_softmax"  # "spatial_softmax" | "avg"
    vision_keypoints: int = 32
    crop_ratio: float = 0.9  # random crop while training, centre crop at inference
    color_jitter: float = 0.1
    # Denoiser network for the diffusion/flow heads.
    denoiser: str = "unet"  # "unet" | "mlp"
    unet_dims: list[int] = field(default_factory=lambda: [64, 128, 256])
    kernel_size: int = 5
    mlp_width: int = 256
    mlp_depth: int = 3
    # Heads.
    diffusion_train_steps: int = 100
    inference_steps: int = 10
    flow_time_sampling: str = "beta"
    # Augmentation: Gaussian noise (in normalised units) added to observations while training,
    # so the policy learns a smooth map between the few initial states it saw.
    obs_noise: float = 0.0
    # Normalisation.
    obs_norm: str = "meanstd"
    action_norm: str = "minmax"
    # A dimension whose std (or range) is below this is centred, not scaled. 1e-3 was too low:
    # reach-v3's gripper opening has std 0.0012 in the demos, was scaled x860, and the 0.07 it
    # drifts by when the hand presses on the goal became a -60 sigma input (reach-v3, mse,
    # seed 1: 31/50 successes; flow: 36/50).
    norm_floor: float = 1e-2

    def validate(self) -> None:
        if self.head not in ("diffusion", "flow", "mse"):
            raise ValueError(f"head must be diffusion, flow or mse, got '{self.head}'")
        if not 1 <= self.n_action_steps <= self.horizon:
            raise ValueError(f"n_action_steps ({self.n_action_steps}) must be in [1, horizon "
                             f"({self.horizon})]")
