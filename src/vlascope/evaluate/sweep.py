"""Evaluate every checkpoint of a training run, and check whether the cheap signals track success.

Training loss and dense reward are what people watch, but closed-loop success is what counts.
A sweep scores each `checkpoints/step_*` on the same evaluation seeds, so the rows differ only
by the weights, and `tracking` says whether loss and reward rank the checkpoints like success.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vlascope.errors import VlascopeError
from vlascope.evaluate.metrics import format_percent, format_success, format_table
from vlascope.evaluate.runner import evaluate
from vlascope.fileio import atomic_path, write_json
from vlascope.policies import load_pretrained
from vlascope.train.checkpoint import list_checkpoints
from vlascope.devices import resolve_device

CSV_COLUMNS = ["step", "train_loss", "avg_reward", "success_rate", "success_ci_low",
               "success_ci_high", "reached_rate", "grasped_rate", "episodes", "successes",
               "checkpoint"]


def read_loss_log(run_dir: str | Path) -> dict[int, float]:
    path = Path(run_dir) / "loss.csv"
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(f)
                if r.get("step") and r.get("loss")}


def nearest_loss(log: dict[int, float], step: int) -> float | None:
    if not log:
        return None
    return log[min(log, key=lambda s: (abs(s - step), s))]


def sweep_run(run_dir: str | Path, task: str, episodes: int, seed: int = 0, device: str = "auto",
              max_steps: int | None = None, progress: bool = True) -> SweepResult:
    run_dir = Path(run_dir)
    folders = list_checkpoints(run_dir)  # step_* only: `last` links to the newest of them
    if not folders:
        raise VlascopeError(f"{run_dir}: no checkpoints/step_* folders; keep intermediate checkpoints "
                            "with `train: {ckpt_every: N}` in a --config YAML")
    log = read_loss_log(run_dir)
    dev = resolve_device(device)
    rows = []
    for folder in folders:
        policy = load_pretrained(folder, device=dev)
        config = policy.checkpoint_config
        step = int(config.get("step", folder.name.removeprefix("step_")))
        loss = config.get("train_loss")
        # Same seed for every checkpoint: all face the same initial states.
        s = evaluate(policy, task, episodes, seed=seed, max_steps=max_steps,
                     progress=progress).summary
        rows.append({
            "step": step,
            "train_loss": float(loss) if loss is not None else nearest_loss(log, step),
            "avg_reward": s["avg_return"],
            "success_rate": s["success_rate"],
            "success_ci95": s["success_ci95"],
            "reached_rate": s["reached_rate"],
            "grasped_rate": s["grasped_rate"],
            "episodes": s["episodes"],
            "successes": s["successes"],
            "checkpoint": str(folder),
        })
        if progress:
            tqdm.write(f"step {step}: success {s['successes']}/{s['episodes']}, "
                       f"reward {s['avg_return']:.1f}")
        del policy
    return SweepResult(str(run_dir), task, episodes, seed, rows)


def ranks(x) -> np.ndarray:
    """Ranks from 1, ties given the mean of the ranks they span."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):
        tie = x == v
        r[tie] = r[tie].mean()
    return r


def spearman(x, y) -> float | None:
    """Spearman rank correlation; None when either side is constant (undefined)."""
    rx, ry = ranks(x), ranks(y)
    if len(rx) < 2 or rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def tracking(rows: list[dict]) -> dict:
    """Whether avg reward (should rise) and loss (should fall) rank checkpoints like success."""

    def corr(key):
        pts = [(r[key], r["success_rate"]) for r in rows if r.get(key) is not None]
        if len(pts) < 3 or len({p[1] for p in pts}) < 2:
            return None
        return spearman([p[0] for p in pts], [p[1] for p in pts])

    reason = None
    if len(rows) < 3:
        reason = f"only {len(rows)} checkpoint(s); need at least 3"
    elif len({r["success_rate"] for r in rows}) < 2:
        reason = "success rate is the same at every checkpoint"
    rho_reward, rho_loss = corr("avg_reward"), corr("train_loss")
    return {
        "checkpoints": len(rows),
        "reward_success_spearman": rho_reward,
        "loss_success_spearman": rho_loss,
        "reward_tracks_success": None if rho_reward is None else rho_reward > 0,
        "loss_tracks_success": None if rho_loss is None else rho_loss < 0,
        "reason": reason,
    }


@dataclass
class SweepResult:
    run_dir: str
    task: str
    episodes: int
    seed: int
    rows: list[dict]

    def to_json(self) -> dict:
        return {"run_dir": self.run_dir, "task": self.task, "episodes": self.episodes,
                "seed": self.seed, "rows": self.rows, "tracking": tracking(self.rows)}

    def format_table(self) -> str:
        return format_table(
            ["step", "loss", "reward", "success", "95% CI", "reached", "grasped"],
            [[str(r["step"]), "n/a" if r["train_loss"] is None else f"{r['train_loss']:.4f}",
              f"{r['avg_reward']:.1f}", *format_success(r), format_percent(r["reached_rate"]),
              format_percent(r["grasped_rate"])] for r in self.rows])

    def save(self, out_dir: str | Path | None = None) -> tuple[Path, Path]:
        out = Path(out_dir or self.run_dir)
        write_json(out / "sweep.json", self.to_json())
        with atomic_path(out / "sweep.csv") as tmp, open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(CSV_COLUMNS)
            for r in self.rows:
                flat = {**r, "success_ci_low": r["success_ci95"][0],
                        "success_ci_high": r["success_ci95"][1]}
                w.writerow(["" if flat[c] is None else flat[c] for c in CSV_COLUMNS])
        return out / "sweep.json", out / "sweep.csv"
