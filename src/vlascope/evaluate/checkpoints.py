"""Several checkpoints on the same seeded episodes: one report each, and the figures pooled
over them (the same recipe trained from several seeds). A checkpoint is a vlascope one, a
LeRobot pretrained_model folder, or whatever a user's adapter loads."""

from __future__ import annotations

from vlascope.devices import resolve_device
from vlascope.errors import VlascopeError
from vlascope.evaluate.metrics import pool_runs, pooled_success
from vlascope.evaluate.runner import EvalReport, evaluate_tasks
from vlascope.policies import load_pretrained
from vlascope.policies.factory import read_config
from vlascope.policies.foreign import is_foreign, load_foreign_policy


def evaluate_checkpoints(checkpoints: list[str], tasks: list[str], episodes: int, seed: int = 0,
                         device: str = "auto", execution: dict | None = None, video_path: str | None = None,
                         adapter: str | None = None, **run) -> tuple[list[dict[str, EvalReport]], dict | None]:
    """Evaluate each checkpoint on the same seeded episodes of each task, so their rows differ
    only by the weights; `execution` (n_action_steps, temporal_ensemble) changes how chunks are
    executed, an inference-time choice. A LeRobot folder is loaded by lerobot; with `adapter`
    (package.module:factory) every checkpoint is loaded by the user's factory. Returns each
    checkpoint's reports by task and, for several checkpoints, the figures pooled over them (each
    one's episodes of every task counted together)."""
    if len(checkpoints) > 1 and video_path:
        raise VlascopeError(f"--video records one checkpoint; {len(checkpoints)} were given")
    foreign = [is_foreign(ckpt, adapter) for ckpt in checkpoints]
    for ckpt, elsewhere in zip(checkpoints, foreign):  # a bad last folder is named before the first is evaluated
        if not elsewhere:
            read_config(ckpt)
    torch_device = resolve_device(device)
    reports = []
    for ckpt, elsewhere in zip(checkpoints, foreign):
        if elsewhere:
            # What the doctor's closed-loop checks run: the policy's own predict_chunk on the
            # simulator's observations under MetaWorld's keys.
            policy = load_foreign_policy(ckpt, torch_device, adapter).eval().closed_loop_policy()
        else:
            policy = load_pretrained(ckpt, device=torch_device)
        try:
            policy.config = policy.config.with_execution(**(execution or {}))
        except ValueError as exc:
            raise VlascopeError(f"{ckpt}: {exc}") from None
        reports.append(evaluate_tasks(policy, tasks, episodes, seed=seed, video_path=video_path, **run))
    overall = [pooled_success([r.summary for r in by_task.values()]) for by_task in reports]
    pooled = pool_runs(overall) if len(reports) > 1 else None
    return reports, pooled
