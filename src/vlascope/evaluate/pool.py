"""Environments for closed-loop evaluation: in this process, or in worker processes.

Both pools take commands for a slot (one env) and hand back replies as they come:

    submit(slot, "reset", seed, initial_state)   -> (obs, initial_state)
    submit(slot, "run", actions, keep)           -> Segment
    replies()                                    -> [(slot, reply), ...], waiting for at least one

"run" steps through a whole segment of actions (everything the policy's executor has before it
needs a new chunk), stops early when the episode ends, and answers with a summary holding the
last `keep` observations (what the policy's next window needs): a worker answers once per chunk,
not once per step, and the evaluating process does no per-step work.

Workers are asynchronous: the caller runs the policy for the envs that have answered while the
others are still stepping, and each worker holds several envs so that it has another segment to
step while one of its envs waits for the policy. A failure comes back as a `SlotError` value
instead of an exception, so a failing simulator costs one episode, not the run; a worker that
dies (segfault, killed) is replaced and every episode it held is recorded as failed with the
reason.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass
from multiprocessing.connection import wait

import numpy as np

from vlascope.envs import MetaWorldEnv
from vlascope.envs.metaworld import StepInfo, spread_rendering
from vlascope.errors import VlascopeError


@dataclass
class SlotError:
    reason: str


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


@dataclass
class Segment:
    """What a run of actions did: its step count and totals, and the last observations."""
    observations: list[dict]  # the last `keep`, oldest first
    steps: int
    reward: float
    success: bool
    reached: bool | None  # at any step; None where the task has no object
    grasped: bool | None
    over: bool  # the env's step limit
    last: StepInfo

    @property
    def ends_episode(self) -> bool:  # an episode ends at its first success or its step limit
        return self.success or self.over


def run_segment(env: MetaWorldEnv, actions: np.ndarray, keep: int, frames: list | None = None) -> Segment:
    observations, reward, success, over = [], 0.0, False, False
    reached = grasped = None
    for steps, action in enumerate(actions, 1):
        # Only the last `keep` observations reach the policy: the camera renders those alone
        # (should the episode end earlier, no observation of it is read at all).
        obs, info, over = env.step(action, render=steps > len(actions) - keep)
        observations.append(obs)
        reward += info.reward
        success = success or info.success
        if info.reached is not None:
            reached = bool(reached) or info.reached
        if info.grasped is not None:
            grasped = bool(grasped) or info.grasped
        if frames is not None:
            frames.append(env.render())
        if success or over:
            break
    return Segment(observations[-keep:], steps, reward, success, reached, grasped, over, info)


def _replace(env: MetaWorldEnv, spec: dict) -> MetaWorldEnv:
    """A fresh env for one whose simulator failed (closing the old one may fail too)."""
    try:
        env.close()
    except Exception:
        pass
    return MetaWorldEnv(**spec)


def _execute(env: MetaWorldEnv, command: str, args: tuple, frames: list | None = None):
    if command == "reset":
        return env.reset(*args), env.initial_state.copy()
    return run_segment(env, *args, frames=frames)


class InProcessEnvs:
    """One env in this process: episodes run one after another (and can be filmed)."""

    slots = 1

    def __init__(self, spec: dict):
        self.spec = spec
        self.env = MetaWorldEnv(**spec)
        self.ready: list = []
        self.frames: list | None = None  # set to a list to collect a frame per step

    def submit(self, slot: int, command: str, *args) -> None:
        try:
            self.ready.append((slot, _execute(self.env, command, args, self.frames)))
        except Exception as exc:  # the simulator, not the policy, failed
            self.ready.append((slot, SlotError(_describe(exc))))
            self.env = _replace(self.env, self.spec)

    def replies(self) -> list:
        out, self.ready = self.ready, []
        return out

    def close(self) -> None:
        self.env.close()


def _worker(conn, specs: list[dict], index: int) -> None:
    # A worker imports MetaWorld and this module's imports alone, not torch: it only steps envs.
    spread_rendering(index)
    envs = [MetaWorldEnv(**spec) for spec in specs]
    conn.send("ready")
    while True:
        try:
            command, index, *args = conn.recv()
        except EOFError:
            return
        if command == "close":
            for env in envs:
                env.close()
            return
        try:
            conn.send((index, "ok", _execute(envs[index], command, args)))
        except Exception as exc:
            conn.send((index, "error", _describe(exc)))
            envs[index] = _replace(envs[index], specs[index])


class WorkerEnvs:
    """`workers` processes holding `envs_per_worker` envs each; slot s lives in worker
    s // envs_per_worker and is built from `specs[s]` (one spec for every slot, or one each:
    envs of several tasks can share a worker)."""

    def __init__(self, specs: dict | list[dict], workers: int, envs_per_worker: int):
        self.per_worker = envs_per_worker
        self.slots = workers * envs_per_worker
        self.specs = [specs] * self.slots if isinstance(specs, dict) else list(specs)
        if len(self.specs) != self.slots:
            raise ValueError(f"{len(self.specs)} env specs for {self.slots} slots")
        self.ctx = mp.get_context("spawn")  # a fresh interpreter: no inherited GL or CUDA state
        self.procs, self.conns = [None] * workers, [None] * workers
        self.in_flight: list[set[int]] = [set() for _ in range(workers)]
        self.ready: list = []  # replies received or failures found, not yet handed out
        self.lost: dict[int, str] = {}  # slot -> why its env is gone (until its next reset)
        for w in range(workers):
            self._start(w)
        for w in range(workers):  # started in parallel; evaluation times only the stepping
            self._wait_ready(w)

    def _worker_specs(self, w: int) -> list[dict]:
        return self.specs[w * self.per_worker:(w + 1) * self.per_worker]

    def _start(self, w: int) -> None:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, args=(child, self._worker_specs(w), w), daemon=True)
        proc.start()
        child.close()
        self.procs[w], self.conns[w] = proc, parent

    def _wait_ready(self, w: int) -> None:
        try:
            self.conns[w].recv()
        except (EOFError, OSError):
            tasks = sorted({spec["task"] for spec in self._worker_specs(w)})
            raise VlascopeError(f"an env worker for {', '.join(tasks)} died while building its "
                                f"envs (exit code {self.procs[w].exitcode})") from None

    def _crashed(self, w: int) -> None:
        """Replace a dead worker; each episode it held fails with how the worker ended."""
        self.procs[w].join(5)
        reason = f"env worker crashed (exit code {self.procs[w].exitcode})"
        self.ready += [(slot, SlotError(reason)) for slot in sorted(self.in_flight[w])]
        # Its other envs' episodes are gone too, also those waiting for the policy just now:
        # their next segment fails instead of running on a fresh, never-reset env.
        for slot in range(w * self.per_worker, (w + 1) * self.per_worker):
            if slot not in self.in_flight[w]:
                self.lost[slot] = reason
        self.in_flight[w] = set()
        self._start(w)
        self._wait_ready(w)

    def submit(self, slot: int, command: str, *args) -> None:
        w, index = divmod(slot, self.per_worker)
        reason = self.lost.pop(slot, None)
        if reason is not None and command == "run":
            self.ready.append((slot, SlotError(reason)))
            return
        self.in_flight[w].add(slot)
        try:
            self.conns[w].send((command, index, *args))
        except (BrokenPipeError, OSError):
            self._crashed(w)

    def replies(self, batch_wait: float = 0.01) -> list:
        """Wait for a reply, then up to `batch_wait` seconds more until every env in flight has
        answered: one policy call for many envs costs about what a call for one does, so
        batching beats answering each env the moment it is ready (EnvPool's batched async mode).
        Waiting only as long as a policy call costs was tried and was slower: more, smaller
        calls."""
        deadline = None
        while True:
            if self.ready and deadline is None:  # replies may be waiting already (a crash)
                deadline = time.monotonic() + batch_wait
            busy = [self.conns[w] for w in range(len(self.conns)) if self.in_flight[w]]
            in_flight = sum(map(len, self.in_flight))
            if not busy or (self.ready and (len(self.ready) >= in_flight or
                                            time.monotonic() >= deadline)):
                break
            timeout = None if not self.ready else max(0.0, deadline - time.monotonic())
            for conn in wait(busy, timeout):
                self._receive(self.conns.index(conn))
        out, self.ready = self.ready, []
        return out

    def _receive(self, w: int) -> None:
        conn = self.conns[w]
        try:
            while conn.poll():
                index, status, payload = conn.recv()
                slot = w * self.per_worker + index
                self.in_flight[w].discard(slot)
                self.ready.append((slot, payload if status == "ok" else SlotError(payload)))
        except (EOFError, OSError):
            self._crashed(w)

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.send(("close", 0))
            except (BrokenPipeError, OSError):
                pass
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
