"""What every check reads: the dataset, the policy under diagnosis (through the one interface,
policies.interface.ActionPolicy), how to build an untrained one, and where the report's plots and
arrays go."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from vlascope.data import Episode, EpisodeDataset
from vlascope.policies.interface import ActionPolicy, NotProvided


def float_obs_keys(episodes: list[Episode]) -> list[str]:
    """Low-dimensional observation keys (images and other uint8 arrays excluded)."""
    first = episodes[0]
    return sorted(k for k, v in first.obs.items() if v.dtype != np.uint8 and v.ndim == 2)


def camera_keys(episodes: list[Episode]) -> list[str]:
    """Camera keys: uint8 frames, colour (T, H, W, C) or greyscale (T, H, W)."""
    first = episodes[0]
    return sorted(k for k, v in first.obs.items() if v.dtype == np.uint8 and v.ndim in (3, 4))


def state_mirroring_actions(episodes: list[Episode]) -> str | None:
    """The state key laid out like the action (same width: xyz + gripper, or joint targets and
    joint positions), if there is one."""
    width = episodes[0].actions.shape[1]
    for key in ("robot_state", "state", *float_obs_keys(episodes)):
        if key in episodes[0].obs and episodes[0].obs[key].ndim == 2 and episodes[0].obs[key].shape[1] == width:
            return key
    return None


def finite_episode(ep: Episode) -> bool:
    return ep.first_non_finite() is None


@dataclass
class DoctorContext:
    dataset: EpisodeDataset
    out_dir: Path
    # Builds an untrained policy for a list of episodes: the pipeline under test. None: the
    # trained policy's own `fresh`. The CLI builds it from the checkpoint's config (or the
    # default flow policy); tests plant faults here.
    make_policy: Callable[[list[Episode]], ActionPolicy] | None = None
    policy_name: str = "flow"
    inputs: list[str] | None = None  # the policy's observation keys; None: the policy's
    policy: ActionPolicy | None = None  # the trained policy, when a checkpoint was given
    checkpoint: Path | None = None
    run_dir: Path | None = None  # the checkpoint's training run (loss.csv, sweep.json)
    task: str | None = None
    quick: bool = False
    seed: int = 0
    eval_episodes: int = 20
    overfit_demos: int = 5
    # Step budgets of the two checks that train: None is the device's default (model_checks).
    overfit_steps: int | None = None
    head_isolation_steps: int | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # -> predictions.npz
    statistics: dict = field(default_factory=dict)  # -> statistics.json
    cache: dict = field(default_factory=dict)  # results one check computes for another

    @property
    def episodes(self) -> list[Episode]:
        """The demos with finite values: what the model checks train and predict on."""
        if "finite_episodes" not in self.cache:
            self.cache["finite_episodes"] = [e for e in self.dataset.episodes if finite_episode(e)]
        return self.cache["finite_episodes"]

    @property
    def obs_keys(self) -> list[str]:
        if self.inputs:
            return list(self.inputs)
        if self.policy is not None:
            return self.policy.spec.obs_keys
        return float_obs_keys(self.episodes)

    @property
    def plot_dir(self) -> Path:
        path = self.out_dir / "plots"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def save_plot(self, name: str, fig) -> str:
        """Write a matplotlib figure as plots/<name>.png; returns the path relative to the report."""
        import matplotlib

        from vlascope.doctor.plots import DPI

        fig.tight_layout()
        bbox = "tight"
        if fig.dpi == DPI:
            # The box savefig's "tight" crops to, measured on the renderer tight_layout has just
            # measured the figure with: "tight" would first draw the whole figure once more.
            bbox = fig.get_tightbbox(fig.canvas.get_renderer()).padded(
                matplotlib.rcParams["savefig.pad_inches"])
        fig.savefig(self.plot_dir / f"{name}.png", dpi=DPI, bbox_inches=bbox)
        if fig.canvas.manager is not None:  # a pyplot figure: pyplot keeps it until closed
            import matplotlib.pyplot as plt

            plt.close(fig)
        return f"plots/{name}.png"

    def fresh_policy(self, episodes: list[Episode] | None = None) -> ActionPolicy:
        """An untrained policy of the pipeline, its statistics fitted to `episodes`."""
        torch.manual_seed(self.seed)
        episodes = episodes or self.episodes
        if self.make_policy is not None:
            policy = self.make_policy(episodes)
        elif self.policy is not None:
            policy = self.policy.fresh(episodes)
        else:
            raise NotProvided("no policy and no pipeline to build one from")
        policy.module().to(self.device)
        return policy

