"""Key maps: read HDF5 files of other layouts as vlascope datasets.

A key map is a JSON (or YAML) file. Every field is optional:

    {
      "demos": "data/demo_*",              # where the demos are: a glob over group paths
      "actions": "actions",                # the actions' path inside a demo group
      "obs": {                             # vlascope key: path(s) inside the demo, concatenated
        "robot_state": ["obs/robot0_eef_pos", "obs/robot0_gripper_qpos"],
        "agentview_image": "obs/agentview_image"
      },
      "instruction": "@ep_meta.lang"       # a demo attribute (JSON fields after the dot), or a
    }                                      # path to a string dataset in the demo

A bare name (no "/") in `obs` means "obs/<name>", as in robomimic; observation keys the map
does not name keep their own names. Maps for the robomimic and RoboCasa/Cosmos-Policy layouts
ship in configs/key_mappings/.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from vlascope.errors import VlascopeError

DEFAULT = {"demos": "data/demo_*", "actions": "actions", "obs": {}, "instruction": None}
FIELDS = set(DEFAULT)


def load_key_map(source: str | Path | dict | None) -> dict:
    if source is None:
        return dict(DEFAULT)
    if isinstance(source, dict):
        spec, where = source, "key map"
    else:
        where = str(source)
        if not Path(source).exists():
            raise VlascopeError(f"{where}: no such key-map file")
        try:
            spec = yaml.safe_load(Path(source).read_text()) or {}  # JSON is YAML
        except yaml.YAMLError as exc:
            raise VlascopeError(f"{where}: not valid JSON/YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(spec, dict) or set(spec) - FIELDS:
        raise VlascopeError(f"{where}: expected a mapping with keys among {', '.join(sorted(FIELDS))}")
    obs = spec.get("obs") or {}
    if not isinstance(obs, dict):
        raise VlascopeError(f"{where}: 'obs' must map vlascope keys to the file's keys")
    for ours, theirs in obs.items():
        names = [theirs] if isinstance(theirs, str) else theirs
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise VlascopeError(f"{where}: obs key '{ours}' must map to a key name or a list of names")
    for field in ("demos", "actions", "instruction"):
        value = spec.get(field, DEFAULT[field])
        if value is not None and not isinstance(value, str):
            raise VlascopeError(f"{where}: '{field}' must be a path string, got {value!r}")
    return {"demos": spec.get("demos", DEFAULT["demos"]), "actions": spec.get("actions", "actions"),
            "obs": {k: [v] if isinstance(v, str) else list(v) for k, v in obs.items()},
            "instruction": spec.get("instruction")}


def obs_path(name: str) -> str:
    return name if "/" in name else f"obs/{name}"


def apply_obs_map(read, obs: dict[str, np.ndarray], obs_map: dict[str, list[str]], where: str,
                  present: list[str] = ()) -> dict:
    """Add each mapped key to `obs`, concatenating its paths; `read(path)` returns an array or
    None when the demo has no such path (`present`: the demo's obs keys, for the message)."""
    out = dict(obs)
    for ours, paths in obs_map.items():
        parts = {p: read(obs_path(p)) for p in paths}
        missing = [p for p, v in parts.items() if v is None]
        if missing:
            raise VlascopeError(f"{where}: the key map names {missing} for '{ours}', not in the "
                                f"file (has: {', '.join(sorted(present)) or 'no obs'})")
        arrays = [v.reshape(len(v), -1) if v.dtype != np.uint8 else v for v in parts.values()]
        out[ours] = arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=-1)
    return out


def read_instruction(group, spec: str | None, where: str) -> str | None:
    """The instruction a key map points to in a demo group: '@attr[.json.path]' or a dataset path."""
    if spec is None:
        return None
    if spec.startswith("@"):
        name, *fields = spec[1:].split(".")
        if name not in group.attrs:
            raise VlascopeError(f"{where}: no attribute '{name}' for the instruction")
        value = group.attrs[name]
        value = value.decode() if isinstance(value, bytes) else value
        for field in fields:
            try:
                value = (json.loads(value) if isinstance(value, str) else value)[field]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise VlascopeError(f"{where}: attribute '{name}' has no JSON field '{field}' for "
                                    "the instruction") from None
        return str(value)
    if spec not in group:
        raise VlascopeError(f"{where}: no '{spec}' for the instruction")
    value = np.asarray(group[spec]).reshape(-1)[0]
    return value.decode() if isinstance(value, bytes) else str(value)
