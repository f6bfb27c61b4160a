"""LeRobot datasets (the v3.0 layout), read and written without the `lerobot` package.

    meta/info.json                              fps, features (dtype, shape, names), paths
    meta/stats.json                             per-feature min/max/mean/std/count
    meta/tasks.parquet                          task text (index) -> task_index
    meta/episodes/chunk-000/file-000.parquet    per episode: length, tasks, where its rows and
                                                video segment live
    data/chunk-000/file-000.parquet             one row per frame: action, observation.*,
                                                timestamp, frame_index, episode_index, index,
                                                task_index
    videos/<image key>/chunk-000/file-000.mp4   each camera's episodes, one after another

Keys: vlascope's `robot_state` is `observation.state`, `object_state` is
`observation.environment_state` (LeRobot's ACT and Diffusion need it or an image), `<camera>_image` is
`observation.images.<camera>`, any other state key `<k>` is `observation.<k>`; the task text
is the instruction. Parquet goes through pyarrow; video through imageio's ffmpeg (H.264,
yuv420p, the encoding every LeRobot decoder reads: lossy, so images come back within a few
grey levels, not bit for bit).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vlascope.data.episodes import Episode, EpisodeDataset
from vlascope.data.normalizer import compute_stats
from vlascope.errors import VlascopeError
from vlascope.fileio import atomic_dir

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"


def feature_name(key: str) -> str:
    if key == "robot_state":
        return "observation.state"
    if key == "object_state":  # what LeRobot's policies read as the environment state
        return "observation.environment_state"
    if key.endswith("_image"):
        return f"observation.images.{key.removesuffix('_image')}"
    return f"observation.{key}"


def vlascope_key(feature: str) -> str | None:
    if feature == "observation.state":
        return "robot_state"
    if feature == "observation.environment_state":
        return "object_state"
    if feature.startswith("observation.images."):
        return feature.removeprefix("observation.images.") + "_image"
    if feature.startswith("observation.image"):  # single-camera datasets (pusht): observation.image
        return "image"
    if feature.startswith("observation."):
        return feature.removeprefix("observation.")
    return None


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise VlascopeError("LeRobot datasets need pyarrow (pip install pyarrow)") from None
    return pa, pq


def _stats(x: np.ndarray) -> dict:
    """LeRobot's stats.json entry: the normaliser's statistics as lists, and the frame count."""
    stats = compute_stats(x.reshape(len(x), -1))
    return {k: v.tolist() for k, v in stats.items()} | {"count": [len(x)]}


def write_lerobot(folder: str | Path, dataset: EpisodeDataset, fps: int = 80,
                  robot_type: str = "sawyer") -> Path:
    """Export `dataset` as a LeRobot v3.0 folder (written beside, renamed into place)."""
    pa, pq = _pyarrow()
    import imageio.v2 as imageio

    episodes = dataset.episodes
    first = episodes[0]
    image_keys = [k for k, v in first.obs.items() if v.dtype == np.uint8 and v.ndim == 4]
    state_keys = [k for k in first.obs if k not in image_keys]
    task = str(dataset.attrs.get("instruction") or dataset.task or "")
    # Each episode's task text: its own instruction where it records one (episodes of several
    # tasks in one dataset), else the dataset's.
    texts = [str(ep.attrs.get("instruction") or task) for ep in episodes]
    tasks = list(dict.fromkeys(texts))
    folder = Path(folder)
    with atomic_dir(folder) as tmp:
        columns: dict[str, list] = {"action": [], "timestamp": [], "frame_index": [],
                                    "episode_index": [], "index": [], "task_index": []}
        columns |= {feature_name(k): [] for k in state_keys}
        ep_rows, start = [], 0
        writers = {}
        for k in image_keys:
            path = tmp / VIDEO_PATH.format(video_key=feature_name(k), chunk_index=0, file_index=0)
            path.parent.mkdir(parents=True, exist_ok=True)
            writers[k] = imageio.get_writer(path, fps=fps, codec="libx264", format="FFMPEG",
                                            pixelformat="yuv420p", macro_block_size=1,
                                            output_params=["-crf", "10"])
        for e, ep in enumerate(episodes):
            n = len(ep)
            columns["action"] += list(ep.actions.astype(np.float32))
            for k in state_keys:
                columns[feature_name(k)] += list(ep.obs[k].astype(np.float32))
            columns["timestamp"] += list(np.arange(n, dtype=np.float32) / fps)
            columns["frame_index"] += list(range(n))
            columns["episode_index"] += [e] * n
            columns["index"] += list(range(start, start + n))
            columns["task_index"] += [tasks.index(texts[e])] * n
            row = {"episode_index": e, "tasks": [texts[e]], "length": n,
                   "data/chunk_index": 0, "data/file_index": 0,
                   "dataset_from_index": start, "dataset_to_index": start + n,
                   "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}
            for k in image_keys:
                for frame in ep.obs[k]:
                    writers[k].append_data(frame)
                name = feature_name(k)
                row |= {f"videos/{name}/chunk_index": 0, f"videos/{name}/file_index": 0,
                        f"videos/{name}/from_timestamp": start / fps,
                        f"videos/{name}/to_timestamp": (start + n) / fps}
            ep_rows.append(row)
            start += n
        for w in writers.values():
            w.close()
        table = pa.table({k: (pa.array([list(map(float, v)) for v in vals], pa.list_(pa.float32()))
                              if k in ("action",) or k.startswith("observation.") else pa.array(vals))
                          for k, vals in columns.items()})
        data_path = tmp / DATA_PATH.format(chunk_index=0, file_index=0)
        data_path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, data_path)
        (tmp / EPISODES_PATH).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(ep_rows), tmp / EPISODES_PATH)
        pq.write_table(_tasks_table(pa, tasks), tmp / "meta/tasks.parquet")

        features = {"action": {"dtype": "float32", "shape": [first.actions.shape[1]], "names": None}}
        for k in state_keys:
            features[feature_name(k)] = {"dtype": "float32", "shape": [first.obs[k].shape[1]], "names": None}
        for k in image_keys:
            h, w, c = first.obs[k].shape[1:]
            features[feature_name(k)] = {
                "dtype": "video", "shape": [h, w, c], "names": ["height", "width", "channels"],
                "info": {"video.height": h, "video.width": w, "video.codec": "h264",
                         "video.pix_fmt": "yuv420p", "video.is_depth_map": False,
                         "video.fps": fps, "video.channels": c, "has_audio": False}}
        for k, dtype in (("timestamp", "float32"), ("frame_index", "int64"), ("episode_index", "int64"),
                         ("index", "int64"), ("task_index", "int64")):
            features[k] = {"dtype": dtype, "shape": [1], "names": None}
        info = {"codebase_version": CODEBASE_VERSION, "robot_type": robot_type,
                "total_episodes": len(episodes), "total_frames": start, "total_tasks": len(tasks),
                "chunks_size": 1000, "data_files_size_in_mb": 100, "video_files_size_in_mb": 500,
                "fps": fps, "splits": {"train": f"0:{len(episodes)}"}, "data_path": DATA_PATH,
                "video_path": VIDEO_PATH if image_keys else None, "features": features,
                # Per-episode attributes (the simulator's initial state among them) travel here:
                # LeRobot ignores keys it does not know, and the doctor's train-eval-gap needs them.
                "vlascope": {"task": dataset.task, "attrs": _jsonable(dataset.attrs),
                             "episode_attrs": [_jsonable(e.attrs) for e in episodes]}}
        (tmp / "meta").mkdir(exist_ok=True)
        (tmp / "meta/info.json").write_text(json.dumps(info, indent=2) + "\n")
        stats = {"action": _stats(np.concatenate([e.actions for e in episodes]))}
        stats |= {feature_name(k): _stats(np.concatenate([e.obs[k] for e in episodes])) for k in state_keys}
        for k in image_keys:  # per channel, in [0, 1], as LeRobot keeps them
            pixels = np.concatenate([e.obs[k][::10] for e in episodes]).reshape(-1, 3) / 255.0
            s = _stats(pixels)
            stats[feature_name(k)] = {m: [[[v]] for v in s[m]] if m != "count" else s[m] for m in s}
        (tmp / "meta/stats.json").write_text(json.dumps(stats) + "\n")
    return folder


def _tasks_table(pa, tasks: list[str]):
    """meta/tasks.parquet as LeRobot writes it: a pandas frame whose index is the task text."""
    pandas_meta = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode",
                            "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
        "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
                     "numpy_type": "int64", "metadata": None},
                    {"name": None, "field_name": "__index_level_0__", "pandas_type": "unicode",
                     "numpy_type": "object", "metadata": None}],
        "attributes": {}, "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0"}
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()),
                      "__index_level_0__": pa.array(tasks, pa.string())})
    return table.replace_schema_metadata({"pandas": json.dumps(pandas_meta)})


def _jsonable(attrs: dict) -> dict:
    out = {}
    for k, v in attrs.items():
        if isinstance(v, np.ndarray):
            v = v.tolist()
        try:
            json.dumps(v)
        except TypeError:
            continue
        out[k] = v
    return out


def is_lerobot(path: str | Path) -> bool:
    return (Path(path) / "meta" / "info.json").exists()


def read_lerobot(folder: str | Path, obs_keys: list[str] | None = None, task: str | None = None,
                 instruction: str | None = None) -> EpisodeDataset:
    """Read a LeRobot v3.0 folder as episodes with vlascope's keys.

    A folder of several tasks (LeRobot's MetaWorld MT50 dataset) read for one `task` keeps the
    episodes whose task text is `instruction` (the text the task is recorded under) or `task`
    itself, and names the dataset's task `task`; read without one, it holds every episode.

    What makes the folder unreadable (a missing or truncated file, an episode whose rows or frames
    are not there, metadata naming columns the data lacks) is a one-line error naming the file
    and key. Metadata that disagrees with the data but can be read past (totals, timestamps,
    meta/stats.json) goes into the dataset's `problems`, which the doctor reports.
    """
    pa, pq = _pyarrow()
    folder = Path(folder)
    where = str(folder)
    problems: list[str] = []
    info_path = folder / "meta/info.json"
    try:
        info = json.loads(info_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VlascopeError(f"{info_path}: unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(info, dict):
        raise VlascopeError(f"{info_path}: expected a JSON object, got {type(info).__name__}")
    version = str(info.get("codebase_version", ""))
    if not version.startswith("v3"):
        raise VlascopeError(f"{info_path}: codebase_version {version!r}; vlascope reads "
                            "LeRobot v3.x datasets (convert older ones with lerobot's converter)")
    features = info.get("features")
    if not isinstance(features, dict) or not all(isinstance(v, dict) and "dtype" in v for v in features.values()):
        raise VlascopeError(f"{info_path}: 'features' must map each feature to an object with a 'dtype'")
    if "action" not in features:
        raise VlascopeError(f"{info_path}: no 'action' feature")
    try:
        fps = float(info["fps"])
        assert fps > 0
    except (KeyError, TypeError, ValueError, AssertionError):
        raise VlascopeError(f"{info_path}: 'fps' must be a positive number, got {info.get('fps')!r}") from None
    keys = {f: vlascope_key(f) for f in features if vlascope_key(f)}
    if obs_keys is not None:
        keys = {f: k for f, k in keys.items() if k in obs_keys}
        missing = sorted(set(obs_keys) - set(keys.values()))
        if missing:
            raise VlascopeError(f"{where}: observation key(s) {missing} not among its features "
                                f"({', '.join(sorted(features))})")
    episodes_meta = _parquet(pa, pq, folder / "meta/episodes").to_pylist()
    data = _parquet(pa, pq, folder / "data").to_pydict()
    tasks = _parquet(pa, pq, folder / "meta/tasks.parquet").to_pydict()
    data_where = f"{folder / 'data'}"
    for name in ("index", "action", *[f for f in keys if features[f]["dtype"] != "video"]):
        if name not in data:
            raise VlascopeError(f"{data_where}: no column '{name}' (meta/info.json lists it as a feature)")
    need = ("episode_index", "dataset_from_index", "dataset_to_index")
    for ep in episodes_meta:
        if any(ep.get(k) is None for k in need):
            raise VlascopeError(f"{folder / 'meta/episodes'}: an episode row lacks one of {need}")
    task_text = tasks.get("task") or tasks.get("__index_level_0__") or [""]
    order = np.argsort(np.asarray(data["index"]))
    column = {name: np.asarray(data[name], dtype=object)[order] for name in data}
    rows = len(order)
    _check_totals(info, rows, len(episodes_meta), problems, info_path)
    saved = info.get("vlascope") if isinstance(info.get("vlascope"), dict) else {}
    saved_attrs = saved.get("episode_attrs") if isinstance(saved.get("episode_attrs"), list) else []
    present = list(dict.fromkeys(_task_text(ep) for ep in episodes_meta))
    chosen = _episodes_of_task(folder, episodes_meta, present, task, instruction)
    videos: dict[Path, np.ndarray] = {}  # each video file decoded once
    out = []
    for ep in sorted(chosen or episodes_meta, key=lambda r: r["episode_index"]):
        index = int(ep["episode_index"])
        lo, hi = int(ep["dataset_from_index"]), int(ep["dataset_to_index"])
        if not 0 <= lo < hi <= rows:
            raise VlascopeError(f"{folder / 'meta/episodes'}: episode {index} spans rows {lo}-{hi}, "
                                f"but {data_where} has {rows} rows")
        if ep.get("length") is not None and int(ep["length"]) != hi - lo:
            problems.append(f"meta/episodes: episode {index} has length {ep['length']} but spans "
                            f"{hi - lo} rows")
        _check_timing(column, lo, hi, index, fps, problems)
        actions = _stack(column["action"][lo:hi], "action", features, data_where, index)
        obs = {}
        for f, k in keys.items():
            if features[f]["dtype"] == "video":
                obs[k] = _episode_frames(folder, info, f, ep, hi - lo, fps, videos)
            else:
                obs[k] = _stack(column[f][lo:hi], f, features, data_where, index)
        written = saved_attrs[index] if index < len(saved_attrs) and isinstance(saved_attrs[index], dict) else {}
        out.append(Episode(actions, obs, None, {**written, "episode_index": index,
                                                "instruction": _task_text(ep)},
                           f"episode_{index}"))
    if not out:
        raise VlascopeError(f"{folder / 'meta/episodes'}: no episodes")
    if chosen is None:  # meta/stats.json describes every task's episodes, not one task's
        _check_stats(folder, out, keys, problems)
    attrs = {**saved.get("attrs", {}), "task": saved.get("task") or (task_text[0] if task_text else ""),
             "instruction": task_text[0] if task_text else ""}
    if len(present) > 1:
        attrs["folder_tasks"] = present
    if chosen is not None:
        attrs |= {"task": task, "instruction": out[0].attrs["instruction"]}
    if "attrs" not in saved:  # recorded by LeRobot: its MetaWorld environment's camera view
        attrs["collection"] = {"camera_view": "lerobot"}
    return EpisodeDataset(where, out, attrs, problems)


def task_texts(folder: str | Path) -> list[str]:
    """A LeRobot folder's task texts in the order of their `task_index` (meta/tasks.parquet: the
    text is the pandas index LeRobot writes, or a `task` column)."""
    pa, pq = _pyarrow()
    path = Path(folder) / "meta/tasks.parquet"
    tasks = _parquet(pa, pq, path).to_pydict()
    texts = tasks.get("task") or tasks.get("__index_level_0__")
    if texts is None or "task_index" not in tasks:
        raise VlascopeError(f"{path}: expected the columns task_index and the task text "
                            f"(`task` or the pandas index), got {sorted(tasks)}")
    order = np.argsort(np.asarray(tasks["task_index"]))
    return [str(texts[i]) for i in order]


def _task_text(episode_row: dict) -> str:
    """The text an episode row of meta/episodes is recorded under (its first task)."""
    return (episode_row.get("tasks") or [""])[0]


def _episodes_of_task(folder: Path, episodes_meta: list[dict], present: list[str], task: str | None,
                      instruction: str | None) -> list[dict] | None:
    """The episode rows of `task` where the folder holds several tasks (`present`, their texts);
    None to keep them all."""
    if task is None or len(present) < 2:
        return None
    wanted = {task, instruction} - {None}
    chosen = [ep for ep in episodes_meta if _task_text(ep) in wanted]
    if not chosen:
        named = ", ".join(repr(t) for t in present[:5]) + (f" and {len(present) - 5} more" if len(present) > 5 else "")
        raise VlascopeError(f"{folder / 'meta/episodes'}: no episode of task '{task}'"
                            + (f" (recorded as {instruction!r})" if instruction and instruction != task else "")
                            + f"; its {len(present)} tasks are {named}")
    return chosen


def _parquet(pa, pq, path: Path):
    if not path.exists():
        raise VlascopeError(f"{path}: missing")
    if path.is_dir() and not any(path.rglob("*.parquet")):
        raise VlascopeError(f"{path}: no parquet files")
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise VlascopeError(f"{path}: unreadable parquet ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


def _stack(values, feature: str, features: dict, where: str, episode: int) -> np.ndarray:
    """One episode's rows of a numeric feature as (T, D) float32, its width checked against
    meta/info.json's shape."""
    try:
        x = np.stack([np.asarray(v, dtype=np.float32).reshape(-1) for v in values])
    except (TypeError, ValueError):
        raise VlascopeError(f"{where}: column '{feature}' of episode {episode} is not numbers of one "
                            "length per row") from None
    shape = features.get(feature, {}).get("shape")
    if isinstance(shape, list) and shape and int(np.prod(shape)) != x.shape[1]:
        raise VlascopeError(f"{where}: column '{feature}' has {x.shape[1]} values per row, "
                            f"meta/info.json says shape {shape}")
    return x


def _check_totals(info: dict, rows: int, episodes: int, problems: list, info_path: Path) -> None:
    for key, actual in (("total_frames", rows), ("total_episodes", episodes)):
        stated = info.get(key)
        if stated is not None and stated != actual:
            problems.append(f"{info_path.parent.name}/info.json: {key} is {stated}, the data has {actual}")


def _check_timing(column: dict, lo: int, hi: int, episode: int, fps: float, problems: list) -> None:
    """Timestamps LeRobot's loader uses to find video frames: frame_index / fps, from 0."""
    if "frame_index" in column:
        frames = np.asarray(column["frame_index"][lo:hi], dtype=np.int64)
        if not np.array_equal(frames, np.arange(hi - lo)):
            problems.append(f"data: frame_index of episode {episode} does not run 0..{hi - lo - 1}")
            return
    if "timestamp" in column:
        stamps = np.asarray(column["timestamp"][lo:hi], dtype=np.float64)
        off = np.abs(stamps - np.arange(hi - lo) / fps)
        if off.max() > 0.5 / fps:
            t = int(off.argmax())
            problems.append(f"data: timestamp of episode {episode} frame {t} is {stamps[t]:.4f}s, "
                            f"frame_index / fps gives {t / fps:.4f}s (fps {fps:g} in meta/info.json)")


def _check_stats(folder: Path, episodes: list, keys: dict, problems: list) -> None:
    """meta/stats.json against the data: normalisation statistics read from it must describe it."""
    path = folder / "meta/stats.json"
    if not path.exists():
        problems.append("meta/stats.json: missing (LeRobot's policies normalise with it)")
        return
    try:
        stats = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(f"meta/stats.json: unreadable ({type(exc).__name__})")
        return
    for feature, key in {"action": "action", **keys}.items():
        entry = stats.get(feature) if isinstance(stats, dict) else None
        values = (np.concatenate([e.actions for e in episodes]) if key == "action"
                  else np.concatenate([e.obs[key] for e in episodes]))
        if values.dtype == np.uint8 or not isinstance(entry, dict):
            continue
        try:
            mean, std = (np.asarray(entry[s], dtype=np.float64).reshape(-1) for s in ("mean", "std"))
        except (KeyError, TypeError, ValueError):
            problems.append(f"meta/stats.json: '{feature}' lacks numeric mean and std")
            continue
        true_mean, true_std = values.mean(0), values.std(0)
        if mean.shape != true_mean.shape:
            problems.append(f"meta/stats.json: '{feature}' has {mean.size} values, the data {true_mean.size}")
            continue
        off = np.abs(mean - true_mean) > 0.1 * true_std + 1e-4
        spread = (std > 1.5 * true_std + 1e-4) | (std < true_std / 1.5 - 1e-4)
        if off.any() or spread.any():
            dims = sorted(set(np.flatnonzero(off | spread).tolist()))
            problems.append(f"meta/stats.json: '{feature}' mean/std do not describe the data in dims "
                            f"{dims[:8]} (e.g. mean {mean[dims[0]]:.4g} vs {true_mean[dims[0]]:.4g}, "
                            f"std {std[dims[0]]:.4g} vs {true_std[dims[0]]:.4g})")


def _episode_frames(folder: Path, info: dict, feature: str, ep: dict, length: int, fps: float,
                    decoded: dict) -> np.ndarray:
    """The episode's frames of one camera: its video file (chunk and file index from the episode
    row) from its from_timestamp on."""
    template = info.get("video_path")
    if not isinstance(template, str):
        raise VlascopeError(f"{folder / 'meta/info.json'}: feature {feature} is a video but 'video_path' is missing")
    chunk = int(ep.get(f"videos/{feature}/chunk_index") or 0)
    file = int(ep.get(f"videos/{feature}/file_index") or 0)
    path = folder / template.format(video_key=feature, chunk_index=chunk, file_index=file)
    if path not in decoded:
        decoded[path] = _decode(path)
    first = int(round(float(ep.get(f"videos/{feature}/from_timestamp") or 0.0) * fps))
    frames = decoded[path][first:first + length]
    if len(frames) != length:
        raise VlascopeError(f"{path}: episode {ep['episode_index']} needs frames {first}-{first + length - 1} "
                            f"of {feature}, the video has {len(decoded[path])}")
    return frames


def _decode(path: Path) -> np.ndarray:
    import imageio.v2 as imageio

    if not path.exists():
        raise VlascopeError(f"{path}: missing video file")
    try:
        reader = imageio.get_reader(path, format="FFMPEG")
        try:
            frames = [np.asarray(f) for f in reader]
        finally:
            reader.close()
    except (OSError, RuntimeError, ValueError) as exc:  # imageio's ffmpeg: truncated or not a video
        raise VlascopeError(f"{path}: unreadable video ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not frames:
        raise VlascopeError(f"{path}: the video has no frames")
    return np.stack(frames)
