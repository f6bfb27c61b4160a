"""Closed-loop evaluation in the simulator, metrics with confidence intervals, videos."""

from __future__ import annotations

import importlib

# Loaded on first use: every env worker that evaluation spawns imports vlascope.evaluate.pool,
# and importing this package must not bring torch and the policies into those processes (seconds
# of each worker's start-up, for processes that only step MetaWorld).
_SUBMODULE = {"EpisodeResult": "runner", "EvalReport": "runner", "evaluate": "runner",
              "summarize": "metrics", "wilson_interval": "metrics"}

__all__ = ["EpisodeResult", "EvalReport", "evaluate", "summarize", "wilson_interval"]


def __getattr__(name: str):
    if name in _SUBMODULE:
        return getattr(importlib.import_module(f"vlascope.evaluate.{_SUBMODULE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
