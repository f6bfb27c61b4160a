"""Closed-loop evaluation: the policy drives a real MetaWorld env with receding-horizon chunks.

Each replanning step feeds the last `n_obs_steps` observations, samples a chunk of `horizon`
actions and executes the first `n_action_steps` of them. Episodes end at success or the step
limit. Evaluation seeds are odd and collection seeds even (see envs.episode_seed), so a policy
is never scored on an initial state it was trained on, unless asked to (`fixed_init`).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from vlascope.envs import MetaWorldEnv, episode_seed
from vlascope.errors import VlascopeError
from vlascope.evaluate.metrics import summarize
from vlascope.policies.blocks.execution import ChunkExecutor


@dataclass
class EpisodeResult:
    seed: int
    success: bool
    length: int
    episode_return: float
    reached: bool | None
    grasped: bool | None
    final_object_to_goal: float
    initial_state: list[float] = field(default_factory=list)
    error: str | None = None


@dataclass
class EvalReport:
    task: str
    episodes: list[EpisodeResult]
    summary: dict
    seconds: float
    env_steps_per_second: float

    def to_json(self) -> dict:
        return {"task": self.task, "summary": self.summary, "seconds": self.seconds,
                "env_steps_per_second": self.env_steps_per_second,
                "episodes": [asdict(e) for e in self.episodes]}


def policy_task_index(policy, task: str) -> int:
    names = policy.config.task_names
    if not names:
        return 0
    if task not in names:
        raise VlascopeError(f"the policy was trained on tasks {names}, not '{task}'")
    return names.index(task)


class SimulatorError(RuntimeError):
    """The environment, not the policy, failed during an episode."""


def _simulate(call, *args):
    try:
        return call(*args)
    except Exception as exc:  # MuJoCo / renderer failures surface as many exception types
        raise SimulatorError(f"{type(exc).__name__}: {exc}") from exc


def run_episode(policy, env: MetaWorldEnv, seed: int, task_index: int, device,
                initial_state: np.ndarray | None = None, frames: list | None = None,
                generator: torch.Generator | None = None) -> EpisodeResult:
    cfg = policy.config
    obs = _simulate(env.reset, seed, initial_state)
    history = deque([obs] * cfg.n_obs_steps, maxlen=cfg.n_obs_steps)
    task_tensor = torch.tensor([task_index], device=device)
    total, length, success = 0.0, 0, False
    reached, grasped = [], []
    last = None
    over = False
    executor = ChunkExecutor(cfg.n_action_steps, getattr(cfg, "temporal_ensemble", None))
    while not over and not success:
        if executor.needs_chunk():
            window = {k: torch.from_numpy(np.stack([h[k] for h in history]))[None].to(device)
                      for k in cfg.obs_keys}
            executor.push(policy.predict_chunk(window, task_tensor, generator)[0].float().cpu().numpy())
        obs, last, over = _simulate(env.step, executor.pop())
        history.append(obs)
        if frames is not None:
            frames.append(env.render())
        total += last.reward
        length += 1
        reached.append(last.reached)
        grasped.append(last.grasped)
        success = success or last.success
    return EpisodeResult(
        seed=seed, success=success, length=length, episode_return=total,
        reached=None if reached[0] is None else any(reached),
        grasped=None if grasped[0] is None else any(grasped),
        final_object_to_goal=last.object_to_goal,
        initial_state=env.initial_state.tolist(),
        error="simulator became unstable" if last.unstable else None,
    )


def fixed_initial_state(task: str, seed: int) -> np.ndarray:
    """The state a `collect --fixed-init --seed seed` dataset starts every demo from."""
    env = MetaWorldEnv(task)
    env.reset(episode_seed(seed, 0, "collect"))
    state = env.initial_state.copy()
    env.close()
    return state


def evaluate(policy, task: str, episodes: int, seed: int = 0, fixed_init: bool = False,
             max_steps: int | None = None, video_path: str | None = None,
             video_episodes: int = 3, camera: str = "corner2", progress: bool = True,
             initial_states: list[np.ndarray] | None = None) -> EvalReport:
    """Run `episodes` closed-loop episodes from unseen seeds, from the one state a --fixed-init
    dataset uses (`fixed_init`), or from `initial_states` in turn (e.g. a dataset's own)."""
    if episodes < 1:
        raise VlascopeError(f"--episodes must be at least 1, got {episodes}")
    task_index = policy_task_index(policy, task)
    device = next(policy.parameters()).device
    cameras = [k.removesuffix("_image") for k in policy.config.obs_keys if k.endswith("_image")]

    def make_env() -> MetaWorldEnv:
        if cameras:  # an image policy sees what it was trained on; the video its first camera
            return MetaWorldEnv(task, camera=cameras, image_size=policy.config.image_size,
                                max_steps=max_steps, image_obs=True)
        return MetaWorldEnv(task, camera=camera if video_path else None, image_size=256,
                            max_steps=max_steps, image_obs=False)

    env = make_env()
    if fixed_init:
        initial_states = [fixed_initial_state(task, seed)]
    generator = torch.Generator(device=device).manual_seed(seed)
    frames: list = []
    results = []
    start = time.time()
    bar = tqdm(range(episodes), desc=f"eval {task}", unit="ep", disable=not progress)
    for i in bar:
        record = frames if video_path and i < video_episodes else None
        state = initial_states[i % len(initial_states)] if initial_states else None
        episode_seed_i = episode_seed(seed, i, "eval")
        try:
            results.append(run_episode(policy, env, episode_seed_i, task_index, device, state,
                                       record, generator))
        except SimulatorError as exc:
            # Recorded as a failure with its reason; a fresh env serves the next episode.
            results.append(EpisodeResult(seed=episode_seed_i, success=False, length=0,
                                         episode_return=0.0, reached=None, grasped=None,
                                         final_object_to_goal=float("nan"), error=str(exc)))
            env.close()
            env = make_env()
        bar.set_postfix(success=f"{sum(r.success for r in results)}/{len(results)}")
    bar.close()
    env.close()
    seconds = time.time() - start
    if video_path and frames:
        write_video(video_path, frames)
    steps = sum(r.length for r in results)
    return EvalReport(task, results, summarize(results), seconds, steps / max(seconds, 1e-9))


def write_video(path: str, frames: list, fps: int = 30) -> None:
    import imageio.v2 as imageio

    from vlascope.fileio import atomic_path

    with atomic_path(path) as tmp:
        imageio.mimsave(tmp, frames, fps=fps, format="FFMPEG", codec="libx264",
                        macro_block_size=1)
