"""What a check reports: one finding per problem found, or one "ok" finding when it found none."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

SEVERITIES = ("error", "warning", "info", "ok")


@dataclass
class Finding:
    id: str
    severity: str  # one of SEVERITIES
    title: str  # the root cause, in one sentence
    evidence: dict = field(default_factory=dict)  # the figures that prove it
    fix: str = ""  # what to change
    plots: list[str] = field(default_factory=list)  # PNG files, relative to the report folder

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got '{self.severity}'")

    @property
    def rank(self) -> int:
        return SEVERITIES.index(self.severity)

    def to_json(self) -> dict:
        return asdict(self)


def ok(check_id: str, title: str, evidence: dict | None = None, plots: list[str] | None = None) -> Finding:
    return Finding(check_id, "ok", title, evidence or {}, "", plots or [])


def skipped(check_id: str, reason: str) -> Finding:
    return Finding(check_id, "info", f"not run: {reason}", {"skipped": reason})


def is_problem(finding: Finding) -> bool:
    return finding.severity in ("error", "warning")


def rounded(x, digits: int = 4):
    """Numbers for evidence: plain floats, rounded, with None for NaN/inf (valid JSON)."""
    if isinstance(x, (list, tuple, np.ndarray)):
        return [rounded(v, digits) for v in np.asarray(x, dtype=np.float64).tolist()]
    x = float(x)
    return round(x, digits) if math.isfinite(x) else None
