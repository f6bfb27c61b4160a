"""Collect demonstrations with MetaWorld's scripted experts and store them as HDF5."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from vlascope.data.episodes import Episode
from vlascope.data.hdf5 import write_dataset
from vlascope.data.language import ENCODER_NAME, embed_instructions
from vlascope.envs.metaworld import MetaWorldEnv, episode_seed, instruction_for, make_expert
from vlascope.errors import VlascopeError


@dataclass
class CollectReport:
    path: str
    kept: int
    attempted: int
    dropped_seeds: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def expert_success_rate(self) -> float:
        return self.kept / max(self.attempted, 1)


# Steps recorded after the expert first succeeds. Without them a demo ends at the edge of the
# success region, a policy never sees what to do just inside it, and it stalls a few
# millimetres short.
SETTLE_STEPS = 10


def run_expert_episode(env: MetaWorldEnv, expert, seed: int,
                       initial_state: np.ndarray | None = None,
                       settle_steps: int = SETTLE_STEPS) -> tuple[Episode, bool]:
    """Roll the expert out from one initial state until `settle_steps` after success, or the limit."""
    obs = env.reset(seed, initial_state)
    init = env.initial_state.copy()
    frames: dict[str, list] = {k: [] for k in obs}
    actions, rewards = [], []
    success = False
    remaining = settle_steps
    for _ in range(env.max_steps):
        action = np.clip(expert.get_action(env.last_flat_obs), -1.0, 1.0).astype(np.float32)
        for k, v in obs.items():
            frames[k].append(v)
        actions.append(action)
        obs, info, over = env.step(action)
        rewards.append(info.reward)
        success = success or info.success
        if success:
            remaining -= 1
        if over or remaining < 0:
            break
    episode = Episode(
        actions=np.stack(actions),
        obs={k: np.stack(v) for k, v in frames.items()},
        rewards=np.asarray(rewards, dtype=np.float32),
        attrs={"seed": seed, "initial_state": init, "success": success},
    )
    return episode, success


def collect_demos(task: str, episodes: int, out: str, seed: int = 0, fixed_init: bool = False,
                  camera: str | list[str] | None = None, image_size: int = 96, max_steps: int | None = None,
                  max_attempts: int | None = None, progress: bool = True,
                  camera_view: str = "lerobot") -> CollectReport:
    """Collect `episodes` successful expert demos of `task`; failed expert episodes are dropped.

    By default every episode starts from its own seeded initial state. With `fixed_init` all of
    them start from the first seed's state: the classic "memorised one scene" dataset.
    """
    if episodes < 1:
        raise VlascopeError(f"--episodes must be at least 1, got {episodes}")
    env = MetaWorldEnv(task, camera=camera, image_size=image_size, max_steps=max_steps, camera_view=camera_view)
    expert = make_expert(task)
    max_attempts = max_attempts or 2 * episodes + 10
    kept: list[Episode] = []
    dropped: list[int] = []
    fixed_state = None
    start = time.time()
    bar = tqdm(total=episodes, desc=f"collect {task}", unit="demo", disable=not progress)
    attempt = 0
    while len(kept) < episodes and attempt < max_attempts:
        seed_i = episode_seed(seed, attempt, "collect")
        attempt += 1
        episode, ok = run_expert_episode(env, expert, seed_i, fixed_state)
        if ok:
            kept.append(episode)
            if fixed_init and fixed_state is None:
                fixed_state = episode.attrs["initial_state"]
            bar.update(1)
        else:
            dropped.append(seed_i)
        bar.set_postfix(dropped=len(dropped))
    bar.close()
    env.close()
    if not kept:
        raise VlascopeError(f"the {task} expert succeeded in none of {attempt} episodes; nothing written")
    instruction = instruction_for(task)
    attrs = {
        "env_name": "Meta-World/MT1",
        "task": task,
        "instruction": instruction,
        # Cached once here so training and evaluation never need the text model.
        "instruction_embedding": embed_instructions([instruction])[0],
        "instruction_encoder": ENCODER_NAME,
        "collection": {
            "source": "metaworld.policies scripted expert",
            "seed": seed,
            "fixed_init": fixed_init,
            "cameras": env.cameras,
            "image_size": image_size if camera else None,
            "camera_view": camera_view if camera else None,
            "shadow_size": env.shadow_size,
            "max_steps": env.max_steps,
            "settle_steps_after_success": SETTLE_STEPS,
            "attempted": attempt,
            "kept": len(kept),
            "dropped_seeds": dropped,
        },
    }
    write_dataset(out, kept, attrs)
    return CollectReport(out, len(kept), attempt, dropped, time.time() - start)


def expert_success(task: str, episodes: int, seed: int = 0, max_steps: int | None = None) -> float:
    """The scripted expert's success rate on the evaluation seeds: the ceiling for a policy."""
    env = MetaWorldEnv(task, max_steps=max_steps)
    expert = make_expert(task)
    wins = sum(run_expert_episode(env, expert, episode_seed(seed, i, "eval"))[1] for i in range(episodes))
    env.close()
    return wins / episodes
