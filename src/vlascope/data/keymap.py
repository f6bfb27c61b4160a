"""Key maps: read datasets whose keys are named differently from vlascope's.

A key map is a YAML (or JSON) file:

    actions: action                 # the per-demo dataset holding actions (default "actions")
    obs:                            # vlascope key: the file's obs key, or a list concatenated
      robot_state: [robot0_eef_pos, robot0_gripper_qpos]
      object_state: object

Observation keys the map does not name keep their own names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from vlascope.errors import VlascopeError


def load_key_map(source: str | Path | dict | None) -> dict:
    if source is None:
        return {"actions": "actions", "obs": {}}
    if isinstance(source, dict):
        spec, where = source, "key map"
    else:
        where = str(source)
        if not Path(source).exists():
            raise VlascopeError(f"{where}: no such key-map file")
        try:
            spec = yaml.safe_load(Path(source).read_text()) or {}
        except yaml.YAMLError as exc:
            raise VlascopeError(f"{where}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(spec, dict) or set(spec) - {"actions", "obs"}:
        raise VlascopeError(f"{where}: expected a mapping with 'actions' and/or 'obs' keys")
    obs = spec.get("obs") or {}
    if not isinstance(obs, dict):
        raise VlascopeError(f"{where}: 'obs' must map vlascope keys to the file's keys")
    for ours, theirs in obs.items():
        names = [theirs] if isinstance(theirs, str) else theirs
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise VlascopeError(f"{where}: obs key '{ours}' must map to a key name or a list of names")
    actions = spec.get("actions", "actions")
    if not isinstance(actions, str):
        raise VlascopeError(f"{where}: 'actions' must be the name of a dataset")
    return {"actions": actions,
            "obs": {k: [v] if isinstance(v, str) else list(v) for k, v in obs.items()}}


def apply_obs_map(obs: dict[str, np.ndarray], obs_map: dict[str, list[str]], where: str) -> dict:
    out = dict(obs)
    for ours, names in obs_map.items():
        missing = [n for n in names if n not in obs]
        if missing:
            raise VlascopeError(f"{where}/obs: the key map names {missing} for '{ours}', not in the "
                                f"file (has: {', '.join(sorted(obs))})")
        parts = [obs[n].reshape(len(obs[n]), -1) if obs[n].dtype != np.uint8 else obs[n] for n in names]
        out[ours] = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)
    return out
