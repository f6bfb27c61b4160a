"""Simulated environments (MetaWorld) and scripted-expert demonstration collection."""

from vlascope.envs.metaworld import (
    OBS_KEYS,
    MetaWorldEnv,
    check_task,
    episode_seed,
    instruction_for,
    make_expert,
    task_names,
)

__all__ = [
    "OBS_KEYS",
    "MetaWorldEnv",
    "check_task",
    "episode_seed",
    "instruction_for",
    "make_expert",
    "task_names",
]
