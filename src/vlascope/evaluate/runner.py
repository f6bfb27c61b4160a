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
from vlascope.evaluate.pool import InProcessEnvs, SlotError, WorkerEnvs
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


class Episode:
    """One episode's bookkeeping: observation history, chunk execution and the running totals.
    The env lives elsewhere (this process or a worker); it feeds `record` with each step."""

    def __init__(self, index: int, seed: int, cfg, obs: dict, initial_state: np.ndarray):
        self.index, self.seed = index, seed
        self.obs_keys = cfg.obs_keys
        self.history = deque([obs] * cfg.n_obs_steps, maxlen=cfg.n_obs_steps)
        self.executor = ChunkExecutor(cfg.n_action_steps, cfg.temporal_ensemble)
        self.initial_state = initial_state
        self.total, self.length, self.success = 0.0, 0, False
        self.reached, self.grasped, self.last = [], [], None

    def window(self) -> dict[str, np.ndarray]:
        return {k: np.stack([h[k] for h in self.history]) for k in self.obs_keys}

    def record(self, obs: dict, info, over: bool) -> bool:
        """Take one step's result; True when the episode has ended."""
        self.history.append(obs)
        self.total += info.reward
        self.length += 1
        self.reached.append(info.reached)
        self.grasped.append(info.grasped)
        self.success = self.success or info.success
        self.last = info
        return self.success or over

    def result(self, error: str | None = None) -> EpisodeResult:
        last = self.last
        if error is None and last is not None and last.unstable:
            error = "simulator became unstable"
        return EpisodeResult(
            seed=self.seed, success=self.success, length=self.length,
            episode_return=self.total,
            reached=None if not self.reached or self.reached[0] is None else any(self.reached),
            grasped=None if not self.grasped or self.grasped[0] is None else any(self.grasped),
            final_object_to_goal=last.object_to_goal if last is not None else float("nan"),
            initial_state=np.asarray(self.initial_state).tolist(), error=error)


def failed(seed: int, reason: str) -> EpisodeResult:
    return EpisodeResult(seed=seed, success=False, length=0, episode_return=0.0, reached=None,
                         grasped=None, final_object_to_goal=float("nan"), error=reason)


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
             initial_states: list[np.ndarray] | None = None, workers: int = 0) -> EvalReport:
    """Run `episodes` closed-loop episodes from unseen seeds, from the one state a --fixed-init
    dataset uses (`fixed_init`), or from `initial_states` in turn (e.g. a dataset's own).

    `workers` > 0 runs that many envs in worker processes, stepping in parallel, with one
    batched policy call for every env that needs a chunk; 0 runs one env in this process
    (and is what `video_path` uses). Results are in episode order; with the same `seed` and
    the same `workers` they are the same run to run.
    """
    if episodes < 1:
        raise VlascopeError(f"--episodes must be at least 1, got {episodes}")
    task_index = policy_task_index(policy, task)
    device = next(policy.parameters()).device
    cfg = policy.config
    cameras = [k.removesuffix("_image") for k in cfg.image_keys]
    if cameras:  # an image policy sees what it was trained on; the video its first camera
        spec = dict(task=task, camera=cameras, image_size=cfg.image_size, max_steps=max_steps,
                    image_obs=True)
    else:
        spec = dict(task=task, camera=camera if video_path else None, image_size=256,
                    max_steps=max_steps, image_obs=False)
    if video_path:
        workers = 0
    slots = min(workers, episodes) if workers > 0 else 1
    envs = WorkerEnvs(spec, slots) if workers > 0 else InProcessEnvs(spec)
    if fixed_init:
        initial_states = [fixed_initial_state(task, seed)]
    generator = torch.Generator(device=device).manual_seed(seed)
    frames: list = []
    results: list[EpisodeResult | None] = [None] * episodes
    pending = deque(range(episodes))
    active: dict[int, Episode] = {}
    start = time.time()
    bar = tqdm(total=episodes, desc=f"eval {task}", unit="ep", disable=not progress)

    def finish(slot: int, result: EpisodeResult) -> None:
        results[active.pop(slot).index] = result
        bar.update(1)
        bar.set_postfix(success=f"{sum(r.success for r in results if r)}/{bar.n}")

    try:
        while pending or active:
            for slot in range(slots):  # start episodes on idle envs
                while slot not in active and pending:
                    i = pending.popleft()
                    ep_seed = episode_seed(seed, i, "eval")
                    state = initial_states[i % len(initial_states)] if initial_states else None
                    reply = envs.reset(slot, ep_seed, state)
                    if isinstance(reply, SlotError):
                        results[i] = failed(ep_seed, reply.reason)
                        bar.update(1)
                        continue
                    active[slot] = Episode(i, ep_seed, cfg, *reply)
            if not active:
                break
            asking = [s for s in sorted(active) if active[s].executor.needs_chunk()]
            if asking:  # one policy call for every env that needs a new chunk
                windows = [active[s].window() for s in asking]
                batch = {k: torch.from_numpy(np.stack([w[k] for w in windows])).to(device)
                         for k in cfg.obs_keys}
                tasks = torch.full((len(asking),), task_index, device=device)
                chunks = policy.predict_chunk(batch, tasks, generator).float().cpu().numpy()
                for s, chunk in zip(asking, chunks):
                    active[s].executor.push(chunk)
            replies = envs.step({s: active[s].executor.pop() for s in sorted(active)})
            for slot, reply in replies.items():
                if isinstance(reply, SlotError):  # recorded with its reason; the run goes on
                    finish(slot, active[slot].result(reply.reason))
                    continue
                if video_path and active[slot].index < video_episodes:
                    frames.append(envs.render(slot))
                if active[slot].record(*reply):
                    finish(slot, active[slot].result())
    finally:
        bar.close()
        envs.close()
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
