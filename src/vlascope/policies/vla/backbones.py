"""VLA backbones: what turns the camera frames and the instruction into tokens.

`SmallBackbone` is ours (ResNet-GN feature-map tokens + a projection of the cached sentence
embedding), trained from scratch. `HFVisionLanguageBackbone` loads a Hugging Face
vision-language model from a local folder (nothing is downloaded) and returns its last hidden
states; it can be frozen, full-trained, or adapted with peft LoRA.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vlascope.errors import VlascopeError
from vlascope.policies.blocks.encoders import ObservationTokens


class SmallBackbone(nn.Module):
    def __init__(self, config):
        super().__init__()
        image_dims = {k: config.obs_dims[k] for k in config.image_keys}
        self.tokens = ObservationTokens(image_dims, config.n_obs_steps, config.dim, config.image_size,
                                        config.num_tasks, config.vision,
                                        config.language_dim if config.language else 0,
                                        config.vision_token_stages, config.vision_tokens)
        self.width = config.dim

    def forward(self, inputs: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.tokens(inputs), None


def patchify(images: torch.Tensor, size: int, mean, std, patch: int, merge: int,
             temporal: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (N, H, W, 3) -> Qwen2-VL `pixel_values` (N * cells, 3 * temporal * patch^2) and
    `image_grid_thw` (N, 3), computed on the images' device.

    The Hugging Face image processor does this in numpy on the CPU, one image at a time: too
    slow for a training batch. The order of the flattening follows it exactly (tested against
    Qwen2VLImageProcessor on the same frames).
    """
    n = images.shape[0]
    x = images.permute(0, 3, 1, 2).float() / 255.0
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    x = (x - x.new_tensor(mean)[:, None, None]) / x.new_tensor(std)[:, None, None]
    x = x[:, None].expand(n, temporal, 3, size, size)  # a still frame fills the temporal patch
    g = size // patch
    x = x.reshape(n, temporal, 3, g // merge, merge, patch, g // merge, merge, patch)
    x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    pixel_values = x.reshape(n * g * g, 3 * temporal * patch * patch)
    grid = torch.tensor([[1, g, g]], device=images.device).expand(n, 3)
    return pixel_values, grid


class HFVisionLanguageBackbone(nn.Module):
    def __init__(self, config):
        super().__init__()
        from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

        path = Path(config.backbone)
        if not (path / "config.json").exists():
            raise VlascopeError(f"{path}: not a Hugging Face model folder (no config.json); "
                                "backbone must be 'small' or a local model path")
        model = AutoModelForImageTextToText.from_pretrained(path)
        self.model = model.model  # the base model: hidden states, no LM head
        hf = self.model.config
        processor = AutoImageProcessor.from_pretrained(path)
        self.pixel_spec = dict(size=config.backbone_image_size, mean=list(processor.image_mean),
                               std=list(processor.image_std), patch=processor.patch_size,
                               merge=processor.merge_size, temporal=processor.temporal_patch_size)
        cells = (config.backbone_image_size // processor.patch_size) ** 2
        self.tokens_per_image = cells // processor.merge_size ** 2
        self.special = (hf.vision_start_token_id, hf.image_token_id, hf.vision_end_token_id)
        self.cameras = config.image_keys
        tokenizer = AutoTokenizer.from_pretrained(path)
        texts = config.instructions or [""] * config.num_tasks
        ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        length = max(1, max(len(i) for i in ids))
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.register_buffer("instruction_ids", torch.tensor(
            [i + [pad] * (length - len(i)) for i in ids], dtype=torch.long), persistent=False)
        self.register_buffer("instruction_mask", torch.tensor(
            [[1] * len(i) + [0] * (length - len(i)) for i in ids], dtype=torch.long), persistent=False)
        self.width = hf.text_config.hidden_size if hasattr(hf, "text_config") else hf.hidden_size

        if config.backbone_mode == "frozen":
            self.model.requires_grad_(False)
        elif config.backbone_mode == "lora":
            from peft import LoraConfig, get_peft_model

            self.model = get_peft_model(self.model, LoraConfig(
                r=config.lora_rank, lora_alpha=config.lora_alpha,
                target_modules=list(config.lora_targets), lora_dropout=0.0))

    def forward(self, inputs: dict) -> tuple[torch.Tensor, torch.Tensor]:
        task_index = inputs["task_index"]
        b = task_index.shape[0]
        device = task_index.device
        frames = torch.stack([inputs[k][:, -1] for k in self.cameras], dim=1)  # latest frame
        pixel_values, grid = patchify(frames.flatten(0, 1), **self.pixel_spec)
        start, image, end = self.special
        n = self.tokens_per_image
        image_ids = torch.tensor([start] + [image] * n + [end], device=device)
        image_ids = image_ids.repeat(len(self.cameras))
        text_ids = self.instruction_ids[task_index]
        text_mask = self.instruction_mask[task_index]
        input_ids = torch.cat([image_ids.expand(b, -1), text_ids], dim=1)
        attention = torch.cat([torch.ones(b, len(image_ids), dtype=torch.long, device=device),
                               text_mask], dim=1)
        mm_types = (input_ids == image).int()
        out = self.model(input_ids=input_ids, attention_mask=attention,
                         pixel_values=pixel_values.to(self.model.dtype), image_grid_thw=grid,
                         mm_token_type_ids=mm_types)
        return out.last_hidden_state, attention == 0


def make_backbone(config) -> nn.Module:
    if config.backbone == "small":
        return SmallBackbone(config)
    return HFVisionLanguageBackbone(config)
