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

from vlascope.envs import MetaWorldEnv, episode_seed, instruction_for
from vlascope.envs.metaworld import OBS_SLICES
from vlascope.errors import VlascopeError
from vlascope.evaluate.metrics import summarize
from vlascope.evaluate.pool import InProcessEnvs, Segment, SlotError, WorkerEnvs
from vlascope.policies.blocks.execution import ChunkExecutor
from vlascope.policies.interface import task_index


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
    seconds: float  # stepping the episodes, policy included
    env_steps_per_second: float
    setup_seconds: float = 0.0  # building the envs (starting the workers) before that

    def to_json(self) -> dict:
        return {"task": self.task, "summary": self.summary, "seconds": self.seconds,
                "env_steps_per_second": self.env_steps_per_second,
                "setup_seconds": self.setup_seconds,
                "episodes": [asdict(e) for e in self.episodes]}


def env_spec(cfg, task: str, max_steps: int | None = None, video_camera: str | None = None) -> dict:
    """MetaWorldEnv's arguments for a policy of config `cfg` (its image_keys, image_size and
    camera_view): an image policy sees what it was trained on; a state policy gets no frames,
    and `video_camera`, if any, only records (the video takes an image policy's first camera)."""
    cameras = [k.removesuffix("_image") for k in cfg.image_keys]
    if cameras:
        return dict(task=task, camera=cameras, image_size=cfg.image_size, max_steps=max_steps,
                    image_obs=True, camera_view=cfg.camera_view)
    return dict(task=task, camera=video_camera, image_size=256, max_steps=max_steps, image_obs=False)


def check_env_inputs(cfg) -> None:
    """VlascopeError naming an input the simulator does not give, or gives with another size:
    MetaWorld's env gives OBS_SLICES' keys and a frame per camera (`<camera>_image`)."""
    unknown = [k for k in cfg.obs_keys if k not in OBS_SLICES and not k.endswith("_image")]
    if unknown:
        raise VlascopeError(f"the policy reads {', '.join(unknown)}, which MetaWorld's env does not give "
                            f"(it gives {', '.join(OBS_SLICES)} and <camera>_image frames)")
    for key, where in OBS_SLICES.items():
        have, give = cfg.obs_dims.get(key), where.stop - where.start
        if key in cfg.obs_keys and have is not None and have != give:
            raise VlascopeError(f"the policy reads '{key}' of {have} dims; MetaWorld's env gives {give}")


def policy_task_index(policy, task: str) -> int:
    names = policy.config.task_names
    if not names:
        return 0
    index = task_index(names, task, instruction_for(task))
    if index is None:
        raise VlascopeError(f"the policy was trained on tasks {names}, not '{task}'")
    return index


class Episode:
    """One episode's bookkeeping: observation history, chunk execution and the running totals.
    The env lives elsewhere (this process or a worker); it feeds `record` with each segment."""

    def __init__(self, index: int, seed: int, cfg, obs: dict, initial_state: np.ndarray):
        self.index, self.seed = index, seed
        self.obs_keys = cfg.obs_keys
        self.history = deque([obs] * cfg.n_obs_steps, maxlen=cfg.n_obs_steps)
        self.executor = ChunkExecutor(cfg.n_action_steps, cfg.temporal_ensemble)
        self.initial_state = initial_state
        self.total, self.length, self.success = 0.0, 0, False
        self.reached: bool | None = None
        self.grasped: bool | None = None
        self.last = None

    def window(self) -> dict[str, np.ndarray]:
        return {k: np.stack([h[k] for h in self.history]) for k in self.obs_keys}

    def record(self, segment: Segment) -> bool:
        """Take a segment's result; True when the episode has ended."""
        self.history.extend(segment.observations)
        self.total += segment.reward
        self.length += segment.steps
        if segment.reached is not None:
            self.reached = bool(self.reached) or segment.reached
        if segment.grasped is not None:
            self.grasped = bool(self.grasped) or segment.grasped
        self.success = self.success or segment.success
        self.last = segment.last
        return segment.ends_episode

    def result(self, error: str | None = None) -> EpisodeResult:
        last = self.last
        if error is None and last is not None and last.unstable:
            error = "simulator became unstable"
        return EpisodeResult(
            seed=self.seed, success=self.success, length=self.length,
            episode_return=self.total,
            reached=self.reached, grasped=self.grasped,
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
             initial_states: list[np.ndarray] | None = None, workers: int = 0,
             envs_per_worker: int = 8, compile: bool = False) -> EvalReport:
    """Run `episodes` closed-loop episodes from unseen seeds, from the one state a --fixed-init
    dataset uses (`fixed_init`), or from `initial_states` in turn (e.g. a dataset's own).

    `workers` > 0 runs `envs_per_worker` envs in each of that many worker processes, stepping
    asynchronously, with one batched policy call for the envs that are waiting for a chunk
    (while the policy computes, a worker steps its other envs); 0 runs one env in this process
    (and is what `video_path` uses). Each episode draws its sampling noise from its own seeded
    generator, so results are in episode order and the same from run to run and from one
    worker count to another (up to float rounding in batched kernels).

    `compile` runs the policy through torch.compile(mode="reduce-overhead"): on a GPU the whole
    chunk prediction becomes one CUDA-graph replay. Batches are padded to the number of envs so
    one graph serves every call; the first calls pay the compilation.
    """
    return evaluate_tasks(policy, [task], episodes, seed, fixed_init, max_steps, video_path,
                          video_episodes, camera, progress, initial_states, workers, envs_per_worker,
                          compile)[task]


def evaluate_tasks(policy, tasks: list[str], episodes: int, seed: int = 0, fixed_init: bool = False,
                   max_steps: int | None = None, video_path: str | None = None,
                   video_episodes: int = 3, camera: str = "corner2", progress: bool = True,
                   initial_states: list[np.ndarray] | None = None, workers: int = 0,
                   envs_per_worker: int = 8, compile: bool = False) -> dict[str, EvalReport]:
    """`evaluate` for each of several tasks at once: with workers, one pool holds envs of every
    task (each slot keeps its task) and one batched policy call serves the envs of all of them,
    so a multi-task policy is evaluated without a pool start-up per task. Each task's episodes
    and seeds are those `evaluate` would run for it alone; each report's `seconds` and
    `env_steps_per_second` are the whole run's."""
    if episodes < 1:
        raise VlascopeError(f"--episodes must be at least 1, got {episodes}")
    if envs_per_worker < 1:
        raise VlascopeError(f"--envs-per-worker must be at least 1, got {envs_per_worker}")
    tasks = list(dict.fromkeys(tasks))
    if len(tasks) > 1 and (video_path or initial_states):
        raise VlascopeError("a video or given initial states are for one task at a time")
    task_indices = {task: policy_task_index(policy, task) for task in tasks}
    device = next(policy.parameters()).device
    cfg = policy.config
    check_env_inputs(cfg)

    def spec_for(task: str) -> dict:
        return env_spec(cfg, task, max_steps, camera if video_path else None)

    predict = policy.predict_chunk
    if compile:
        predict = torch.compile(policy.predict_chunk, mode="reduce-overhead", dynamic=False)
    states = {task: [fixed_initial_state(task, seed)] for task in tasks} if fixed_init else \
        {task: initial_states for task in tasks}
    if video_path:
        workers = 0
    if workers > 0:
        total = episodes * len(tasks)
        per_worker = max(1, min(envs_per_worker, -(-total // workers)))
        n_workers = min(workers, -(-total // per_worker))
        # Every task needs a slot of its own; round robin mixes the tasks over the workers.
        per_worker = max(per_worker, -(-len(tasks) // n_workers))
        slot_tasks = [tasks[s % len(tasks)] for s in range(n_workers * per_worker)]
        setup_start = time.time()
        envs = WorkerEnvs([spec_for(t) for t in slot_tasks], n_workers, per_worker)
        return _run(policy, predict, compile, envs, slot_tasks, task_indices, episodes, seed, states, device,
                    progress, None, video_episodes, setup_start)
    reports = {}
    for task in tasks:  # one env in this process, one task after another
        setup_start = time.time()
        envs = InProcessEnvs(spec_for(task))
        reports |= _run(policy, predict, compile, envs, [task], task_indices, episodes, seed, states, device,
                        progress, video_path, video_episodes, setup_start)
    return reports


def _run(policy, predict, pad: bool, envs, slot_tasks: list[str], task_indices: dict[str, int],
         episodes: int, seed: int, states: dict, device, progress: bool, video_path: str | None,
         video_episodes: int, setup_start: float) -> dict[str, EvalReport]:
    """Drive `envs` (slot s runs episodes of slot_tasks[s]) until every task has its episodes;
    `pad` fills every policy call to one row per slot (one compiled graph serves them all)."""
    cfg = policy.config
    tasks = list(dict.fromkeys(slot_tasks))
    frames: list = []
    results: dict[str, list[EpisodeResult | None]] = {t: [None] * episodes for t in tasks}
    pending = {t: deque(range(episodes)) for t in tasks}
    starting: dict[int, int] = {}  # slot -> episode index being reset there
    active: dict[int, Episode] = {}
    generators: dict[int, torch.Generator] = {}
    start = time.time()
    label = tasks[0] if len(tasks) == 1 else f"{len(tasks)} tasks"
    bar = tqdm(total=episodes * len(tasks), desc=f"eval {label}", unit="ep", disable=not progress)

    def done(task: str, index: int, result: EpisodeResult) -> None:
        results[task][index] = result
        bar.update(1)
        bar.set_postfix(success=f"{sum(r.success for rs in results.values() for r in rs if r)}/{bar.n}")

    def start_next(slot: int) -> None:
        queue = pending[slot_tasks[slot]]
        if queue:
            i = queue.popleft()
            starting[slot] = i
            given = states[slot_tasks[slot]]
            envs.submit(slot, "reset", episode_seed(seed, i, "eval"), given[i % len(given)] if given else None)

    try:
        for slot in range(envs.slots):
            start_next(slot)
        while starting or active:
            asking = []
            for slot, reply in envs.replies():
                task = slot_tasks[slot]
                if slot in starting:
                    i = starting.pop(slot)
                    ep_seed = episode_seed(seed, i, "eval")
                    if isinstance(reply, SlotError):
                        done(task, i, failed(ep_seed, reply.reason))
                        start_next(slot)
                        continue
                    active[slot] = Episode(i, ep_seed, cfg, *reply)
                    generators[slot] = torch.Generator().manual_seed(ep_seed)
                    asking.append(slot)
                    continue
                episode = active[slot]
                if isinstance(reply, SlotError):  # recorded with its reason; the run goes on
                    ended, error = True, reply.reason
                else:
                    ended, error = episode.record(reply), None
                if ended:
                    done(task, active.pop(slot).index, episode.result(error))
                    start_next(slot)
                else:
                    asking.append(slot)
            if asking:  # one policy call for every env waiting for a chunk
                rows = asking + asking[:1] * (envs.slots - len(asking)) if pad else asking
                windows = [active[s].window() for s in rows]
                batch = {k: torch.from_numpy(np.stack([w[k] for w in windows])).to(device)
                         for k in cfg.obs_keys}
                task_index = torch.tensor([task_indices[slot_tasks[s]] for s in rows], device=device)
                # Drawn on the CPU: cheap, and the same numbers whichever device runs the policy.
                noise = torch.zeros((len(rows), *policy.chunk_shape))
                for i, s in enumerate(asking):  # padding rows take no draw from any episode
                    noise[i] = torch.randn(policy.chunk_shape, generator=generators[s])
                chunks = predict(batch, task_index, noise=noise.to(device)).float().cpu().numpy()
                for s, chunk in zip(asking, chunks):
                    active[s].executor.push(chunk)
                    if video_path:
                        envs.frames = frames if active[s].index < video_episodes else None
                    envs.submit(s, "run", active[s].executor.segment(), cfg.n_obs_steps)
    finally:
        bar.close()
        envs.close()
    seconds = time.time() - start
    if video_path and frames:
        write_video(video_path, frames)
    steps = sum(r.length for rs in results.values() for r in rs)
    return {t: EvalReport(t, results[t], summarize(results[t]), seconds, steps / max(seconds, 1e-9),
                          setup_seconds=start - setup_start) for t in tasks}


def write_video(path: str, frames: list, fps: int = 30) -> None:
    import imageio.v2 as imageio

    from vlascope.fileio import atomic_path

    with atomic_path(path) as tmp:
        imageio.mimsave(tmp, frames, fps=fps, format="FFMPEG", codec="libx264",
                        macro_block_size=1)
