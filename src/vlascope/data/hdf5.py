"""HDF5 datasets in the robomimic layout.

    data/                      attrs: env_name, task, instruction, instruction_embedding
                               (float32 vector), instruction_encoder, collection (JSON), total
    data/demo_<i>/             attrs: num_samples, seed, initial_state, success
    data/demo_<i>/actions      (T, action_dim) float32
    data/demo_<i>/rewards      (T,) float32
    data/demo_<i>/obs/<key>    (T, ...) float32, or uint8 (T, H, W, 3) for <camera>_image

Writes go to a temporary file that is renamed into place, so an interrupted collection never
leaves a half-written dataset where the old one was.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from vlascope.errors import VlascopeError
from vlascope.data.episodes import Episode, EpisodeDataset
from vlascope.data.keymap import apply_obs_map, load_key_map, read_instruction
from vlascope.fileio import atomic_path

_DEMO_RE = re.compile(r"^demo_(\d+)$")


def _attr_value(value):
    # HDF5 attributes hold scalars, strings and arrays; anything nested travels as JSON.
    if value is None or isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    return value


def _read_attr(value):
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and (value[:1] in "{[" or value == "null"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_dataset(path: str | Path, episodes: list[Episode], attrs: dict) -> None:
    import h5py

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            data = f.create_group("data")
            for k, v in attrs.items():
                data.attrs[k] = _attr_value(v)
            data.attrs["total"] = sum(len(e) for e in episodes)
            for i, ep in enumerate(episodes):
                g = data.create_group(f"demo_{i}")
                g.attrs["num_samples"] = len(ep)
                for k, v in ep.attrs.items():
                    g.attrs[k] = _attr_value(v)
                g.create_dataset("actions", data=np.asarray(ep.actions, dtype=np.float32))
                if ep.rewards is not None:
                    g.create_dataset("rewards", data=np.asarray(ep.rewards, dtype=np.float32))
                obs = g.create_group("obs")
                for k, v in ep.obs.items():
                    v = np.asarray(v)
                    if v.dtype == np.uint8:  # images: chunk per frame, compress
                        obs.create_dataset(k, data=v, chunks=(1, *v.shape[1:]), compression="gzip",
                                           compression_opts=4)
                    else:
                        obs.create_dataset(k, data=v.astype(np.float32))


def read_hdf5(path: str | Path, obs_keys: list[str] | None = None,
              key_map: str | Path | dict | None = None) -> EpisodeDataset:
    """Read a robomimic-layout HDF5 file; `obs_keys` limits which observations are loaded, and
    `key_map` (see data.keymap) maps other HDF5 layouts to vlascope's keys."""
    import h5py

    mapping = load_key_map(key_map)
    path = str(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise VlascopeError(f"{path}: not a readable HDF5 file ({exc.__class__.__name__}: "
                            f"{str(exc).splitlines()[0]})") from None
    place = [f"{path}"]  # where reading is, for an error raised deep inside h5py
    try:
        with f:
            attrs, episodes = _read_demos(f, path, obs_keys, mapping, key_map, place)
    except VlascopeError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError, TypeError, AttributeError, IndexError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise VlascopeError(f"{place[0]}: unreadable ({type(exc).__name__}: {first}); the file may "
                            "be truncated or damaged") from None
    dims = {e.actions.shape[1] for e in episodes}
    if len(dims) > 1:
        raise VlascopeError(f"{path}: demos disagree on the action dimension: {sorted(dims)}")
    return EpisodeDataset(path, episodes, attrs)


def _demo_groups(f, pattern: str) -> list[str]:
    """Group paths matching the key map's `demos` glob, in natural order (demo_2 before demo_10)."""
    import fnmatch

    if pattern in ("", "/", "."):
        return ["/"]
    names = []
    f.visit(names.append)  # datasets too: a demo that is not a group is an error, not a skip
    pattern = pattern.strip("/")
    depth = pattern.count("/")  # "*" stays within one level of the hierarchy
    hits = [n for n in names if n.count("/") == depth and fnmatch.fnmatchcase(n, pattern)]
    return sorted(hits, key=lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)])


def _read_demos(f, path: str, obs_keys, mapping: dict, key_map, place: list) -> tuple[dict, list]:
    action_key = mapping["actions"]
    pattern = mapping["demos"]
    default_layout = pattern == "data/demo_*"
    if default_layout and "data" not in f:
        raise VlascopeError(f"{path}: no 'data' group; expected the robomimic layout "
                            "data/demo_<i>/{actions,obs/<key>} (or name the layout with --key-map)")
    attrs = {k: _read_attr(v) for k, v in (f["data"].attrs if "data" in f else f.attrs).items()}
    names = _demo_groups(f, pattern)
    if default_layout:
        names = [n for n in names if _DEMO_RE.match(n.split("/")[-1])]
    if not names:
        raise VlascopeError(f"{path}: 'data' holds no demo_<i> groups" if default_layout else
                            f"{path}: no group matches the key map's demos pattern '{pattern}'")
    episodes, instructions = [], []
    for name in names:
        where = place[0] = f"{path}: {name.strip('/')}" if name != "/" else f"{path}: /"
        g = f[name]
        if not hasattr(g, "keys"):
            raise VlascopeError(f"{where}: expected a group holding '{action_key}' and 'obs', "
                                "found a dataset")
        if action_key not in g:
            raise VlascopeError(f"{where}: missing '{action_key}' dataset"
                                + ("" if key_map else "; name it with --key-map"))
        place[0] = f"{where}/{action_key}"
        actions = _numeric(g[action_key], place[0])
        if actions.ndim != 2 or len(actions) == 0:
            raise VlascopeError(f"{where}/{action_key}: expected a non-empty (T, action_dim) "
                                f"array, got shape {actions.shape}")
        if "obs" not in g and not mapping["obs"]:
            raise VlascopeError(f"{where}: missing 'obs' group")

        def read(rel: str, g=g, where=where, actions=actions):
            if rel not in g:
                return None
            place[0] = f"{where}/{rel}"
            arr = np.asarray(g[rel])
            if arr.dtype != np.uint8:
                arr = _numeric(arr, place[0])
            if arr.ndim < 2:
                raise VlascopeError(f"{place[0]}: expected (T, dim) or (T, H, W, 3) images, got "
                                    f"shape {arr.shape}")
            if len(arr) != len(actions):
                raise VlascopeError(f"{place[0]}: {len(arr)} steps but actions has "
                                    f"{len(actions)}; they must be the same length")
            return arr

        present = sorted(g["obs"]) if "obs" in g and hasattr(g["obs"], "keys") else []
        obs_map = mapping["obs"]
        # Keys the map builds come from their paths; any other key is obs/<key>. Only what is
        # asked for is read (an unrequested camera costs nothing).
        wanted = list(obs_keys) if obs_keys is not None else (
            [k for k in present if k not in obs_map] + list(obs_map))
        direct = [k for k in wanted if k not in obs_map]
        obs = {}
        for k in direct:
            arr = read(f"obs/{k}")
            if arr is None:
                raise VlascopeError(f"{where}/obs: missing key '{k}' (has: {', '.join(present)})")
            obs[k] = arr
        if obs_map:
            needed = {k: obs_map[k] for k in wanted if k in obs_map}
            obs = apply_obs_map(read, obs, needed, f"{where}/obs", present)
        rewards = _numeric(g["rewards"], f"{where}/rewards") if "rewards" in g else None
        ep_attrs = {k: _read_attr(v) for k, v in g.attrs.items()}
        instruction = read_instruction(g, mapping["instruction"], where)
        if instruction is not None:
            ep_attrs["instruction"] = instruction
            instructions.append(instruction)
        episodes.append(Episode(actions, obs, rewards, ep_attrs, name.split("/")[-1] or "demo"))
    if instructions and len(set(instructions)) == 1:
        attrs.setdefault("instruction", instructions[0])
    return attrs, episodes


def _numeric(dataset, where: str) -> np.ndarray:
    arr = np.asarray(dataset)
    if arr.dtype.kind not in "fiub":
        raise VlascopeError(f"{where}: expected numbers, found {arr.dtype} values")
    return arr.astype(np.float32)
