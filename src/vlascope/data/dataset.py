"""Training windows: an observation history of `n_obs_steps` and an action chunk of `horizon`.

Window t of an episode holds observations t-To+1 .. t and actions t .. t+Tp-1. At the start of
an episode the history is padded by repeating the first observation; at the end the chunk is
padded by repeating the last action (the robot holds its last command), as diffusion_policy does.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from vlascope.data.episodes import Episode


class WindowDataset(Dataset):
    def __init__(self, episodes: list[Episode], obs_keys: list[str], n_obs_steps: int,
                 horizon: int, task_indices: list[int] | None = None, action_offset: int = 0):
        if n_obs_steps < 1 or horizon < 1:
            raise ValueError("n_obs_steps and horizon must be >= 1")
        self.episodes = episodes
        self.obs_keys = list(obs_keys)
        self.n_obs_steps = n_obs_steps
        self.horizon = horizon
        self.task_indices = task_indices or [0] * len(episodes)
        # The chunk starts this many frames after the window's current frame: 0 for vlascope's
        # policies; 1 - n_obs_steps for LeRobot's diffusion, whose loss also covers the past.
        self.action_offset = action_offset
        self.index = np.array([(e, t) for e, ep in enumerate(episodes) for t in range(len(ep))],
                              dtype=np.int64).reshape(-1, 2)

    def __len__(self) -> int:
        return len(self.index)

    def window_indices(self, t: int, length: int) -> tuple[np.ndarray, np.ndarray]:
        obs_idx = np.clip(np.arange(t - self.n_obs_steps + 1, t + 1), 0, length - 1)
        act_idx = np.clip(np.arange(t, t + self.horizon) + self.action_offset, 0, length - 1)
        return obs_idx, act_idx

    def __getitem__(self, i: int) -> dict:
        e, t = self.index[i]
        ep = self.episodes[e]
        obs_idx, act_idx = self.window_indices(int(t), len(ep))
        obs = {}
        for k in self.obs_keys:
            x = torch.from_numpy(np.ascontiguousarray(ep.obs[k][obs_idx]))
            obs[k] = x if x.dtype == torch.uint8 else x.float()
        return {
            "obs": obs,
            "action": torch.from_numpy(ep.actions[act_idx]).float(),
            "task_index": torch.tensor(self.task_indices[e], dtype=torch.long),
        }

    def tables(self) -> dict:
        """Every frame once, and each window as rows of frame indices into it.

        `frames[k]` is (N_frames, ...) over all episodes, `obs_index` (n, To) and
        `action_index` (n, Tp) pick a window's frames: a batch is `frames[k][obs_index[i]]`.
        Images are stored once rather than To times, which is what lets an image dataset
        live on the GPU.
        """
        obs_index, action_index, tasks, pads = [], [], [], []
        offset = 0
        for e, ep in enumerate(self.episodes):
            length = len(ep)
            ts = np.arange(length)
            obs_index.append(offset + np.clip(ts[:, None] + np.arange(-self.n_obs_steps + 1, 1)[None], 0, length - 1))
            steps = ts[:, None] + np.arange(self.horizon)[None] + self.action_offset
            action_index.append(offset + np.clip(steps, 0, length - 1))
            tasks.append(np.full(length, self.task_indices[e]))
            pads.append((steps < 0) | (steps >= length))
            offset += length
        frames = {}
        for k in self.obs_keys:
            x = torch.from_numpy(np.concatenate([ep.obs[k] for ep in self.episodes]))
            frames[k] = x if x.dtype == torch.uint8 else x.float()
        return {
            "frames": frames,
            "actions": torch.from_numpy(np.concatenate([ep.actions for ep in self.episodes])).float(),
            "obs_index": torch.from_numpy(np.concatenate(obs_index)).long(),
            "action_index": torch.from_numpy(np.concatenate(action_index)).long(),
            "task_index": torch.from_numpy(np.concatenate(tasks)).long(),
            "action_is_pad": torch.from_numpy(np.concatenate(pads)),
        }

    def all_windows(self, device: str | torch.device = "cpu") -> dict:
        """Every window stacked into tensors on `device` (for small datasets and analysis)."""
        t = self.tables()
        return {"obs": {k: v[t["obs_index"]].to(device) for k, v in t["frames"].items()},
                "action": t["actions"][t["action_index"]].to(device),
                "action_is_pad": t["action_is_pad"].to(device), "task_index": t["task_index"].to(device)}
