"""The episode schema every reader returns and every consumer reads: one demonstration
(actions, observations under vlascope's keys, attributes) and a dataset of them.

Observation keys: `robot_state` (hand xyz + gripper), `object_state`, `goal`, `<camera>_image`
(uint8, (T, H, W, 3)); other readers map their names onto these (data.keymap, data.lerobot).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vlascope.errors import VlascopeError


@dataclass
class Episode:
    actions: np.ndarray  # (T, action_dim)
    obs: dict[str, np.ndarray]  # key -> (T, ...)
    rewards: np.ndarray | None = None
    attrs: dict = field(default_factory=dict)
    name: str = ""

    def __len__(self) -> int:
        return len(self.actions)

    def first_non_finite(self, keys: list[str] | None = None) -> str | None:
        """'obs/<key>: nan at step s, dim d' for the first NaN/inf among the actions and the
        observations `keys` (default: every non-image one); None when all are finite."""
        keys = [k for k in (self.obs if keys is None else keys) if self.obs[k].dtype != np.uint8]
        for name, arr in {"actions": self.actions, **{f"obs/{k}": self.obs[k] for k in keys}}.items():
            flat = arr.reshape(len(arr), -1)
            bad = ~np.isfinite(flat)
            if bad.any():
                step, dim = map(int, np.argwhere(bad)[0])
                return f"{name}: {flat[step, dim]} at step {step}, dim {dim}"
        return None


@dataclass
class EpisodeDataset:
    path: str
    episodes: list[Episode]
    attrs: dict
    # What the reader found wrong but could read past (metadata that disagrees with the data),
    # one line each naming the file and key; the doctor reports them.
    problems: list[str] = field(default_factory=list)

    @property
    def task(self) -> str:
        return self.attrs.get("task", "")

    @property
    def obs_shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: tuple(v.shape[1:]) for k, v in self.episodes[0].obs.items()}

    @property
    def action_dim(self) -> int:
        return int(self.episodes[0].actions.shape[1])

    @property
    def num_frames(self) -> int:
        return sum(len(e) for e in self.episodes)

    @property
    def instruction_embedding(self) -> np.ndarray | None:
        value = self.attrs.get("instruction_embedding")
        return None if value is None else np.asarray(value, dtype=np.float32)

    @property
    def camera_view(self) -> str:
        """How its camera frames were rendered (envs.metaworld.CAMERA_VIEWS), as collection
        recorded it; vlascope datasets from before that record have MetaWorld's own view."""
        return str((self.attrs.get("collection") or {}).get("camera_view") or "metaworld")

    def initial_states(self) -> np.ndarray | None:
        states = [e.attrs.get("initial_state") for e in self.episodes]
        if any(s is None for s in states):
            return None
        return np.stack([np.asarray(s, dtype=np.float64) for s in states])


def by_task(dataset: EpisodeDataset) -> list[EpisodeDataset]:
    """A dataset of several tasks (a LeRobot folder holding each episode under its task's text)
    as one dataset per task, each named by its text as the folder names it; any other dataset
    as itself."""
    groups: dict[str, list[Episode]] = {}
    for ep in dataset.episodes:
        groups.setdefault(str(ep.attrs.get("instruction", "")), []).append(ep)
    if len(dataset.attrs.get("folder_tasks") or []) < 2 or len(groups) < 2:
        return [dataset]
    # What the folder says of all its tasks at once stays; its one task and embedding do not.
    shared = {k: v for k, v in dataset.attrs.items()
              if k not in ("folder_tasks", "task", "instruction", "instruction_embedding")}
    return [EpisodeDataset(dataset.path, episodes, {**shared, "task": text, "instruction": text},
                           dataset.problems) for text, episodes in groups.items()]


@dataclass
class TaskSet:
    """The tasks a set of datasets covers, in order: their names, instructions and cached
    instruction embeddings (None when any dataset lacks one), and the camera view their frames
    share (None without frames)."""

    names: list[str]
    instructions: list[str]
    embeddings: np.ndarray | None
    camera_view: str | None = None

    @classmethod
    def of(cls, datasets: list[EpisodeDataset]) -> "TaskSet":
        first = {}
        for d in datasets:
            first.setdefault(d.task, d)
        names = list(first)
        embeddings = [first[n].instruction_embedding for n in names]
        views = {d.camera_view: d.path for d in datasets
                 if any(v.dtype == np.uint8 for v in d.episodes[0].obs.values())}
        if len(views) > 1:
            raise VlascopeError("datasets rendered from different camera views cannot train one policy: "
                                + ", ".join(f"{path} ({view})" for view, path in views.items()))
        return cls(names, [str(first[n].attrs.get("instruction", "")) for n in names],
                   None if any(e is None for e in embeddings) else np.stack(embeddings),
                   next(iter(views), None))
