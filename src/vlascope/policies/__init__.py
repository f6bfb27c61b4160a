"""Policies: shared building blocks, one folder per policy family, and the name -> class factory."""

from __future__ import annotations

import importlib

from vlascope.policies.presets import POLICY_NAMES

# The factory (and with it torch and every policy family) is loaded on first use: the command
# line lists POLICY_NAMES for every command, most of which never build a policy.
_FACTORY = ("FORMAT_VERSION", "build_for_episodes", "build_policy", "check_fits", "load_pretrained",
            "make_config", "save_pretrained")

__all__ = ["FORMAT_VERSION", "POLICY_NAMES", "build_for_episodes", "build_policy", "check_fits",
           "load_pretrained", "make_config", "save_pretrained"]


def __getattr__(name: str):
    if name in _FACTORY:
        return getattr(importlib.import_module("vlascope.policies.factory"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
