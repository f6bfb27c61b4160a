"""A tiny, randomly initialised Qwen2-VL saved as a Hugging Face folder (model, tokenizer,
image processor), built from a config: the VLA's real loading code runs on it, offline."""

from __future__ import annotations

from pathlib import Path

INSTRUCTION_WORDS = ("pick the puck and place it at goal press button top down reach to "
                     "push open close door drawer window peg insert side").split()
SPECIAL = ["<pad>", "<unk>", "<|vision_start|>", "<|image_pad|>", "<|vision_end|>"]


def build_tiny_qwen2_vl(folder: str | Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (PreTrainedTokenizerFast, Qwen2VLConfig,
                              Qwen2VLForConditionalGeneration, Qwen2VLImageProcessor)

    folder = Path(folder)
    vocab = {t: i for i, t in enumerate(SPECIAL + INSTRUCTION_WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>")
    config = Qwen2VLConfig(
        text_config=dict(vocab_size=64, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                          "mrope_section": [2, 3, 3]},
                         bos_token_id=None, eos_token_id=None, pad_token_id=0),
        vision_config=dict(depth=2, embed_dim=32, hidden_size=64, num_heads=2, mlp_ratio=2,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2),
        vision_start_token_id=vocab["<|vision_start|>"], image_token_id=vocab["<|image_pad|>"],
        vision_end_token_id=vocab["<|vision_end|>"], video_token_id=1)
    model = Qwen2VLForConditionalGeneration(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    Qwen2VLImageProcessor(min_pixels=28 * 28, max_pixels=224 * 224).save_pretrained(folder)
    return folder
