import pytest

from vlascope.evaluate.metrics import summarize, wilson_interval
from vlascope.evaluate.runner import EpisodeResult


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(20, 20)
    assert lo == pytest.approx(0.8389, abs=1e-3) and hi == 1.0
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-3)
    lo, hi = wilson_interval(25, 50)
    assert lo == pytest.approx(0.3664, abs=1e-3) and hi == pytest.approx(0.6336, abs=1e-3)


def test_summary():
    eps = [EpisodeResult(1, True, 40, 100.0, True, None, 0.01),
           EpisodeResult(3, False, 500, 20.0, False, None, 0.2)]
    s = summarize(eps)
    assert s["successes"] == 1 and s["success_rate"] == 0.5
    assert s["reached_rate"] == 0.5 and s["grasped_rate"] is None
    assert s["avg_length"] == 270 and s["avg_return"] == 60
