from __future__ import annotations

from dataclasses import dataclass, field

from vlascope.policies.base import ActionHeadConfig


@dataclass
class VlaConfig(ActionHeadConfig):
    """backbone -> projector -> action expert -> flow-matching head.

    `backbone` is "small" (our ResNet-GN image tokens plus the cached instruction embedding,
    trained from scratch) or the local path of a Hugging Face vision-language model (the
    Qwen2-VL / Qwen2.5-VL family), which reads the latest frame of each camera and the
    tokenised instruction. `backbone_mode` says what of a Hugging Face backbone trains:
    "frozen", "lora" (peft adapters on `lora_targets`) or "full".
    """

    backbone: str = "small"
    backbone_mode: str = "lora"
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_targets: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    # Qwen2-VL reads images in 28-px cells (14-px patches merged 2x2): frames are resized to
    # this side, a multiple of 28, on the device.
    backbone_image_size: int = 112
    instructions: list[str] = field(default_factory=list)  # per task, filled from the dataset
    # Action expert: `queries` learned tokens cross-attend to the projected backbone tokens and
    # a proprio token; their outputs become the flow head's condition vector.
    dim: int = 256
    heads: int = 8
    expert_layers: int = 4
    queries: int = 4
    dropout: float = 0.0
    mlp_width: int = 512

    def validate(self) -> None:
        super().validate()
        if self.backbone_mode not in ("frozen", "lora", "full"):
            raise ValueError(f"backbone_mode must be frozen, lora or full, got '{self.backbone_mode}'")
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by heads ({self.heads})")
        if self.backbone != "small" and self.backbone_image_size % 28:
            raise ValueError(f"backbone_image_size must be a multiple of 28, got {self.backbone_image_size}")
