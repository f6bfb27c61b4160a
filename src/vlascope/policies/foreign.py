"""Policies trained elsewhere, behind the ActionPolicy interface: a LeRobot pretrained_model
folder (loaded by lerobot itself, processors included) or a user's own policy through an adapter
(`package.module:factory`). The doctor diagnoses them and the evaluator runs them closed loop."""

from __future__ import annotations

import importlib
import os
import sys

from vlascope.errors import VlascopeError
from vlascope.policies.interface import ActionPolicy
from vlascope.policies.lerobot_checkpoint import LeRobotPolicy, is_lerobot_checkpoint


def is_foreign(checkpoint: str | None, adapter: str | None) -> bool:
    """Whether `checkpoint` (with `adapter`) is loaded here rather than as a vlascope checkpoint."""
    return adapter is not None or (checkpoint is not None and is_lerobot_checkpoint(checkpoint))


def load_foreign_policy(checkpoint: str | None, device, adapter: str | None = None) -> ActionPolicy:
    """The policy in `checkpoint`: through `adapter` when given, else a LeRobot folder."""
    if adapter is not None:
        return load_adapter(adapter, checkpoint, device)
    return LeRobotPolicy(checkpoint, device)


def load_adapter(spec: str, checkpoint: str | None, device) -> ActionPolicy:
    """`package.module:factory` -> factory(checkpoint=..., device=...), an ActionPolicy."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise VlascopeError(f"--adapter {spec}: expected package.module:factory")
    if os.getcwd() not in sys.path:  # `mypkg.adapter:load` from the folder it lives in, as python -m does
        sys.path.insert(0, os.getcwd())
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise VlascopeError(f"--adapter {spec}: cannot import it ({type(exc).__name__}: {exc})") from None
    try:
        policy = factory(checkpoint=checkpoint, device=str(device))
    except VlascopeError:
        raise
    except Exception as exc:  # the user's loader failed on its input: one line, not a traceback
        raise VlascopeError(f"--adapter {spec}: the factory failed on checkpoint {checkpoint} "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(policy, ActionPolicy):  # the boundary, not the policy's internals
        raise VlascopeError(f"--adapter {spec}: the factory returned {type(policy).__name__}, not a "
                            "vlascope.policies.interface.ActionPolicy")
    return policy
