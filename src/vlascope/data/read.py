"""One entry point for every dataset on disk: a robomimic-layout HDF5 file or a LeRobot v3.0
folder, both read into the same episode schema (data.episodes), and one for writing either."""

from __future__ import annotations

from pathlib import Path

from vlascope.data.episodes import EpisodeDataset
from vlascope.data.hdf5 import read_hdf5, write_dataset
from vlascope.data.lerobot import is_lerobot, read_lerobot, write_lerobot
from vlascope.errors import VlascopeError


def read_dataset(path: str | Path, obs_keys: list[str] | None = None,
                 key_map: str | Path | dict | None = None, task: str | None = None,
                 instruction: str | None = None) -> EpisodeDataset:
    """Read a dataset file or folder; `obs_keys` limits which observations are loaded, and
    `key_map` (see data.keymap) maps other HDF5 layouts to vlascope's keys. A LeRobot folder of
    several tasks read for one `task` holds that task's episodes (see read_lerobot); an HDF5
    file holds one task."""
    if not Path(path).exists():
        raise VlascopeError(f"{path}: no such dataset file")
    if Path(path).is_dir():
        if not is_lerobot(path):
            raise VlascopeError(f"{path}: a folder but not a LeRobot dataset (no meta/info.json)")
        return read_lerobot(path, obs_keys, task, instruction)
    return read_hdf5(path, obs_keys, key_map)


def convert_dataset(source: str | Path, dest: str | Path, key_map: str | Path | dict | None = None,
                    fps: int | None = None) -> tuple[EpisodeDataset, str]:
    """Write `source` as HDF5 (dest ends in .hdf5/.h5) or as a LeRobot v3.0 folder; returns what
    was read and the format written."""
    data = read_dataset(source, key_map=key_map)
    if Path(dest).suffix in (".hdf5", ".h5"):
        write_dataset(dest, data.episodes, data.attrs)
        return data, "HDF5"
    write_lerobot(dest, data, **({} if fps is None else {"fps": fps}))
    return data, "LeRobot v3.0"
