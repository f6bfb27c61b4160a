"""Closed-loop evaluation in the simulator, metrics with confidence intervals, videos."""

from vlascope.evaluate.metrics import summarize, wilson_interval
from vlascope.evaluate.runner import EpisodeResult, EvalReport, evaluate

__all__ = ["EpisodeResult", "EvalReport", "evaluate", "summarize", "wilson_interval"]
