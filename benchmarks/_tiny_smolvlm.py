"""A SmolVLM small enough for a CPU, saved as the folder SmolVLA loads its backbone from by name
(`--policy.vlm_model_name=<folder>`), built from a config offline: the real SmolVLM2's config
and processor come from the Hub even when its weights are not loaded. Two text layers, one vision
layer over 64 px frames, and a word-level tokenizer over the words of `texts`. Used by the LeRobot
tier's SmolVLA tests and by doctor_lerobot.py; runs in the LeRobot environment."""

from __future__ import annotations

from pathlib import Path

import torch

IMAGE_SIDE = 64  # the vision tower's input: SmolVLA pads and resizes frames to it


def build_tiny_smolvlm(folder: Path, texts: list[str]) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (PreTrainedTokenizerFast, SmolVLMConfig, SmolVLMImageProcessor,
                              SmolVLMProcessor, SmolVLMVideoProcessor)

    specials = ["<pad>", "<unk>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>",
                "<image>", "<global-img>"]
    words = sorted({w for t in texts for w in t.split()})
    vocab = {token: i for i, token in enumerate(specials + words)}
    text = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    text.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=text, pad_token="<pad>", unk_token="<unk>", bos_token="<|im_start|>",
        eos_token="<end_of_utterance>",
        # SmolVLA reads the ids of the image tokens from the tokenizer.
        extra_special_tokens={"fake_image_token": "<fake_token_around_image>", "image_token": "<image>",
                              "global_image_token": "<global-img>",
                              "end_of_utterance_token": "<end_of_utterance>"})
    side = {"longest_edge": IMAGE_SIDE}
    images = SmolVLMImageProcessor(do_image_splitting=False, size=side, max_image_size=side)
    SmolVLMProcessor(image_processor=images, tokenizer=tokenizer, video_processor=SmolVLMVideoProcessor(),
                     image_seq_len=4).save_pretrained(folder)
    SmolVLMConfig(vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                                 "num_attention_heads": 2, "image_size": IMAGE_SIDE, "patch_size": 16},
                  text_config={"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                               "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
                               "vocab_size": len(vocab)},
                  scale_factor=2, image_token_id=vocab["<image>"], vocab_size=len(vocab)).save_pretrained(folder)
    return folder


def smolvla_options(backbone: Path) -> list[str]:
    """lerobot-train's --policy options for a SmolVLA on that backbone, its VLM trained from scratch
    (no weights to load) and frozen, as SmolVLA's default `train_expert_only` keeps it."""
    return [f"--policy.vlm_model_name={backbone}", "--policy.load_vlm_weights=false",
            f"--policy.resize_imgs_with_padding=[{IMAGE_SIDE},{IMAGE_SIDE}]", "--policy.num_vlm_layers=2",
            "--policy.tokenizer_max_length=16", "--policy.chunk_size=8", "--policy.n_action_steps=8",
            "--policy.num_steps=2"]


def same_image_tokens(smolvla) -> None:
    """A planted fault: `smolvla` (LeRobot's SmolVLAPolicy) gets the same image tokens for every
    frame from its frozen VLM, the vision tower's last LayerNorm zeroed."""
    vision = smolvla.model.vlm_with_expert.get_vlm_model().vision_model
    with torch.no_grad():
        vision.post_layernorm.weight.zero_()
        vision.post_layernorm.bias.zero_()
