"""Several checkpoints on the same seeded episodes: one report each, and the figures pooled
over them (the same recipe trained from several seeds)."""

from __future__ import annotations

from vlascope.devices import resolve_device
from vlascope.errors import VlascopeError
from vlascope.evaluate.metrics import pool_runs
from vlascope.evaluate.runner import EvalReport, evaluate
from vlascope.policies import load_pretrained
from vlascope.policies.factory import read_config


def evaluate_checkpoints(checkpoints: list[str], task: str, episodes: int, seed: int = 0,
                         device: str = "auto", execution: dict | None = None, video_path: str | None = None,
                         **run) -> tuple[list[EvalReport], dict | None]:
    """Evaluate each checkpoint on the same seeded episodes, so their rows differ only by the
    weights; `execution` (n_action_steps, temporal_ensemble) changes how chunks are executed,
    an inference-time choice. Returns the reports and, for several checkpoints, the pooled figures."""
    if len(checkpoints) > 1 and video_path:
        raise VlascopeError(f"--video records one checkpoint; {len(checkpoints)} were given")
    for ckpt in checkpoints:  # a bad last folder is named before the first is evaluated
        read_config(ckpt)
    torch_device = resolve_device(device)
    reports = []
    for ckpt in checkpoints:
        policy = load_pretrained(ckpt, device=torch_device)
        try:
            policy.config = policy.config.with_execution(**(execution or {}))
        except ValueError as exc:
            raise VlascopeError(f"{ckpt}: {exc}") from None
        reports.append(evaluate(policy, task, episodes, seed=seed, video_path=video_path, **run))
    pooled = pool_runs([r.summary for r in reports]) if len(reports) > 1 else None
    return reports, pooled
