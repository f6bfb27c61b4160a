"""Environments for closed-loop evaluation: in this process, or one per worker process.

Both pools answer the same two calls, `reset(slot, seed, initial_state)` and
`step({slot: action})`, and report a failure as a `SlotError` value instead of raising, so
one failing simulator costs one episode, not the run. Workers step in parallel (all actions
are sent before any result is read) and render their own camera images, so a pool of N
workers runs N simulators and renderers on N cores while the policy batches its inference
across them. A worker that dies (segfault, killed) is replaced and its episode recorded as
failed with the reason.
"""

from __future__ import annotations

import multiprocessing as mp
import traceback
from dataclasses import dataclass

import numpy as np

from vlascope.envs import MetaWorldEnv


@dataclass
class SlotError:
    reason: str


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


class InProcessEnvs:
    def __init__(self, spec: dict):
        self.spec = spec
        self.envs = [MetaWorldEnv(**spec)]  # one slot: episodes run one after another

    def reset(self, slot: int, seed: int, initial_state=None):
        try:
            obs = self.envs[slot].reset(seed, initial_state)
            return obs, self.envs[slot].initial_state.copy()
        except Exception as exc:  # the simulator, not the policy, failed
            self._replace(slot)
            return SlotError(_describe(exc))

    def step(self, actions: dict[int, np.ndarray]) -> dict:
        out = {}
        for slot, action in actions.items():
            try:
                out[slot] = self.envs[slot].step(action)
            except Exception as exc:
                self._replace(slot)
                out[slot] = SlotError(_describe(exc))
        return out

    def render(self, slot: int) -> np.ndarray:
        return self.envs[slot].render()

    def _replace(self, slot: int) -> None:
        try:
            self.envs[slot].close()
        except Exception:
            pass
        self.envs[slot] = MetaWorldEnv(**self.spec)

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _worker(conn, spec: dict) -> None:
    import torch

    torch.set_num_threads(1)
    env = MetaWorldEnv(**spec)
    while True:
        try:
            command, *args = conn.recv()
        except EOFError:
            return
        if command == "close":
            env.close()
            return
        try:
            if command == "reset":
                obs = env.reset(*args)
                conn.send(("ok", obs, env.initial_state.copy()))
            elif command == "step":
                conn.send(("ok", *env.step(args[0])))
        except Exception as exc:
            conn.send(("error", _describe(exc), traceback.format_exc(limit=2)))
            try:
                env.close()
            except Exception:
                pass
            env = MetaWorldEnv(**spec)


class WorkerEnvs:
    def __init__(self, spec: dict, workers: int):
        self.spec = spec
        self.ctx = mp.get_context("spawn")  # a fresh interpreter: no inherited GL or CUDA state
        self.procs, self.conns = [None] * workers, [None] * workers
        for slot in range(workers):
            self._start(slot)

    def _start(self, slot: int) -> None:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, args=(child, self.spec), daemon=True)
        proc.start()
        child.close()
        self.procs[slot], self.conns[slot] = proc, parent

    def _crashed(self, slot: int, when: str = "") -> SlotError:
        """Replace a dead worker; the error names how it ended."""
        self.procs[slot].join(5)
        code = self.procs[slot].exitcode
        self._start(slot)
        return SlotError(f"env worker crashed{when} (exit code {code})")

    def _receive(self, slot: int):
        try:
            reply = self.conns[slot].recv()
        except (EOFError, OSError):
            return self._crashed(slot)
        if reply[0] == "error":
            return SlotError(reply[1])
        return reply[1:]

    def _send(self, slot: int, message) -> bool:
        try:
            self.conns[slot].send(message)
            return True
        except (BrokenPipeError, OSError):
            return False

    def reset(self, slot: int, seed: int, initial_state=None):
        if not self._send(slot, ("reset", seed, initial_state)):
            return self._crashed(slot, " before the reset")
        reply = self._receive(slot)
        return reply if isinstance(reply, SlotError) else (reply[0], reply[1])

    def step(self, actions: dict[int, np.ndarray]) -> dict:
        sent = {slot: self._send(slot, ("step", a)) for slot, a in actions.items()}
        out = {}
        for slot, ok in sent.items():
            if not ok:
                out[slot] = self._crashed(slot)
                continue
            reply = self._receive(slot)
            out[slot] = reply if isinstance(reply, SlotError) else tuple(reply)
        return out

    def close(self) -> None:
        for slot, conn in enumerate(self.conns):
            self._send(slot, ("close",))
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
