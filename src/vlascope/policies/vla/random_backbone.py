"""A randomly initialised Qwen2-VL saved as a Hugging Face folder (model, tokenizer, image
processor), built from a config: the VLA's real loading code runs on it offline (tests use a
64-wide one; benchmarks time a larger one). Nothing is downloaded; the tokenizer is a word-level
one over MetaWorld's instruction vocabulary."""

from __future__ import annotations

from pathlib import Path

INSTRUCTION_WORDS = ("pick the puck and place it at goal press button top down reach to "
                     "push open close door drawer window peg insert side").split()
SPECIAL = ["<pad>", "<unk>", "<|vision_start|>", "<|image_pad|>", "<|vision_end|>"]


def build_random_qwen2_vl(folder: str | Path, hidden: int = 64, layers: int = 2, heads: int = 4,
                          vision_width: int = 32, vision_depth: int = 2) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (PreTrainedTokenizerFast, Qwen2VLConfig,
                              Qwen2VLForConditionalGeneration, Qwen2VLImageProcessor)

    folder = Path(folder)
    vocab = {t: i for i, t in enumerate(SPECIAL + INSTRUCTION_WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>")
    config = Qwen2VLConfig(
        text_config=dict(vocab_size=64, hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=heads,
                         num_key_value_heads=max(1, heads // 2),
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                          "mrope_section": _mrope_section(hidden // heads)},
                         bos_token_id=None, eos_token_id=None, pad_token_id=0),
        vision_config=dict(depth=vision_depth, embed_dim=vision_width, hidden_size=hidden,
                           num_heads=max(1, vision_width // 16), mlp_ratio=2,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2),
        vision_start_token_id=vocab["<|vision_start|>"], image_token_id=vocab["<|image_pad|>"],
        vision_end_token_id=vocab["<|vision_end|>"], video_token_id=1)
    model = Qwen2VLForConditionalGeneration(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    Qwen2VLImageProcessor(min_pixels=28 * 28, max_pixels=224 * 224).save_pretrained(folder)
    return folder


def _mrope_section(head_dim: int) -> list[int]:
    """Qwen2-VL splits each head's rotary half into (time, height, width) sections."""
    half = head_dim // 2
    return [half - 2 * (3 * half // 8), 3 * half // 8, 3 * half // 8]
