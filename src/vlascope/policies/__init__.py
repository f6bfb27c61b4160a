"""Policies: shared building blocks, one folder per policy family, and the name -> class factory."""

from vlascope.policies.factory import (
    FORMAT_VERSION,
    POLICY_NAMES,
    build_for_episodes,
    build_policy,
    check_fits,
    load_pretrained,
    make_config,
    save_pretrained,
)

__all__ = [
    "FORMAT_VERSION",
    "POLICY_NAMES",
    "build_for_episodes",
    "build_policy",
    "check_fits",
    "load_pretrained",
    "make_config",
    "save_pretrained",
]
