"""`vlascope data inspect`: what a dataset holds, its per-dimension statistics, and what the
doctor's data checks say about it (no model is built)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from vlascope.doctor.data_checks import (check_action_scale_imbalance, check_initial_state_diversity,
                                         check_nan_in_data, check_near_constant_action_dim,
                                         check_observability, per_dimension_statistics)
from vlascope.doctor.findings import is_problem
from vlascope.doctor.run import build_context


def inspect_dataset(path: str, key_map: str | None = None, plots: str | None = None,
                    obs_keys: list[str] | None = None) -> dict:
    out_dir = Path(plots) if plots else Path(tempfile.mkdtemp(prefix="vlascope-inspect-"))
    # The default (flow) pipeline's normaliser is what the scale check reads: nothing trains.
    ctx = build_context(path, str(out_dir), key_map=key_map, quick=True, obs_keys=obs_keys)
    data = ctx.dataset
    checks = [check_nan_in_data, check_initial_state_diversity, check_near_constant_action_dim,
              check_action_scale_imbalance] + ([check_observability] if obs_keys else [])
    findings = [f for check in checks for f in check(ctx)]
    first = data.episodes[0]
    keys = {"actions": (["T", first.actions.shape[1]], str(first.actions.dtype))}
    keys |= {f"obs/{k}": (["T", *v.shape[1:]], str(v.dtype)) for k, v in first.obs.items()}
    stats = {k: {name: a.tolist() for name, a in s.items()}
             for k, s in per_dimension_statistics(data.episodes).items()}
    lengths = [len(e) for e in data.episodes]
    return {"path": str(path), "task": data.task, "instruction": data.attrs.get("instruction"),
            "demos": len(data.episodes), "frames": int(sum(lengths)),
            "length": {"min": min(lengths), "mean": float(np.mean(lengths)), "max": max(lengths)},
            "keys": keys, "statistics": stats, "findings": findings,
            "plots": sorted(str(out_dir / p) for f in findings for p in f.plots) if plots else []}


def format_inspection(info: dict) -> str:
    lines = [f"{info['path']}: {info['demos']} demos, {info['frames']} frames "
             f"(length {info['length']['min']}-{info['length']['max']}, mean {info['length']['mean']:.0f})"]
    if info["task"]:
        lines.append(f"task {info['task']}: \"{info['instruction'] or ''}\"")
    lines.append("keys:")
    lines += [f"  {k:28s} ({', '.join(map(str, shape))}) {dtype}" for k, (shape, dtype) in info["keys"].items()]
    lines.append("per dimension: mean ± std [min, max]")
    for k, s in info["statistics"].items():
        for d in range(len(s["mean"])):
            lines.append(f"  {k}[{d}]".ljust(24) + f"{s['mean'][d]:+9.4f} ± {s['std'][d]:8.4f} "
                         f"[{s['min'][d]:+9.4f}, {s['max'][d]:+9.4f}]")
    diversity = next((f for f in info["findings"] if f.id == "initial-state-diversity"), None)
    if diversity is not None:
        lines.append(f"initial states: {diversity.title}")
    problems = [f for f in info["findings"] if is_problem(f)]
    lines.append("warnings:" if problems else "warnings: none")
    lines += [f"  [{f.severity}] {f.id}: {f.title}" for f in problems]
    if info["plots"]:
        lines.append("plots: " + ", ".join(info["plots"]))
    return "\n".join(lines)
