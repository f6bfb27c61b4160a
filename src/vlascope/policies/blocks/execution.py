"""From predicted chunks to one action per control step.

Receding horizon (diffusion_policy): execute the first `n_action_steps` actions of a chunk,
then predict a new one. Temporal ensembling (ACT): predict a chunk every `n_action_steps`
steps (the query frequency) and execute, at each step, the average of every live chunk's
action for that step, weighted exp(-coeff * i) with i = 0 for the oldest chunk: smoother
motion at the cost of more policy calls.
"""

from __future__ import annotations

import numpy as np


class ChunkExecutor:
    def __init__(self, n_action_steps: int, temporal_ensemble: float | None = None):
        self.n_action_steps = n_action_steps
        self.coeff = temporal_ensemble
        self.reset()

    def reset(self) -> None:
        self.step = 0
        self.queue: list[np.ndarray] = []
        self.chunks: list[tuple[int, np.ndarray]] = []  # (step it was predicted at, chunk)

    def needs_chunk(self) -> bool:
        if self.coeff is None:
            return not self.queue
        return self.step % self.n_action_steps == 0

    def push(self, chunk: np.ndarray) -> None:
        if self.coeff is None:
            self.queue = list(chunk[: self.n_action_steps])
        else:
            self.chunks.append((self.step, chunk))

    def pop(self) -> np.ndarray:
        if self.coeff is None:
            self.step += 1
            return self.queue.pop(0)
        live = [(start, c) for start, c in self.chunks if self.step - start < len(c)]
        self.chunks = live
        actions = np.stack([c[self.step - start] for start, c in live])  # oldest first
        weights = np.exp(-self.coeff * np.arange(len(actions)))
        self.step += 1
        return (weights[:, None] * actions).sum(0) / weights.sum()

    def segment(self) -> np.ndarray:
        """Every action up to the next chunk request: what an env can run without the policy."""
        actions = [self.pop()]
        while not self.needs_chunk():
            actions.append(self.pop())
        return np.stack(actions)
