import pytest

from vlascope.evaluate.metrics import (fisher_two_sided, format_pooled, gap_p_value, pool_runs,
                                       success_by_group, summarize, wilson_interval)
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


def test_pool_runs_counts_every_episode_and_reports_the_spread():
    runs = [{"successes": k, "episodes": 50, "success_rate": k / 50} for k in (42, 39, 34, 41)]
    p = pool_runs(runs)
    assert (p["runs"], p["successes"], p["episodes"]) == (4, 156, 200)
    assert p["success_rate"] == pytest.approx(0.78)
    assert p["success_ci95"] == pytest.approx(list(wilson_interval(156, 200)))
    assert (p["run_min"], p["run_max"]) == (0.68, 0.84)
    assert p["run_sd"] == pytest.approx(0.0712, abs=1e-3)
    assert format_pooled(p) == "156/200 (78%) [72, 83]%; per run 84%, 78%, 68%, 82% (sd 7 points)"
    assert pool_runs(runs[:1])["run_sd"] == 0.0
    with pytest.raises(ValueError):
        pool_runs([])


def test_gap_p_value_is_fishers_one_sided_tail():
    # 3/5 against 1/5: of the C(10, 5) ways to place 4 successes' rows, 66 give the first five
    # 3 or more successes.
    assert gap_p_value(3, 5, 1, 5) == pytest.approx(66 / 252)
    assert gap_p_value(5, 5, 0, 5) == pytest.approx(1 / 252)
    assert gap_p_value(10, 10, 3, 10) < 0.01 < gap_p_value(8, 10, 4, 10)
    # No lead, or a lead of the other side: nothing to explain.
    assert gap_p_value(0, 5, 0, 5) == 1.0 and gap_p_value(1, 5, 4, 5) > 0.9


def test_fisher_two_sided_counts_every_table_as_unlikely_as_the_observed_one():
    # Fisher's tea tasting, 3 of 4 against 1 of 4: the tables with 3 or 4, and with 0 or 1,
    # successes in the first row weigh 16 + 1 + 1 + 16 of C(8, 4) = 70.
    assert fisher_two_sided(3, 4, 1, 4) == pytest.approx(34 / 70)
    assert fisher_two_sided(1, 4, 3, 4) == fisher_two_sided(3, 4, 1, 4)
    assert fisher_two_sided(4, 8, 4, 8) == 1.0
    # Both tails: at least the one-sided tail, at most twice it here (a symmetric table).
    assert fisher_two_sided(3, 5, 1, 5) == pytest.approx(2 * gap_p_value(3, 5, 1, 5))
    # Thousands of episodes a side: 85.7% against 85.1% of 2 500 is no difference; 82.2% is.
    assert fisher_two_sided(2142, 2500, 2128, 2500) > 0.5
    assert fisher_two_sided(2056, 2500, 2178, 2500) < 1e-5


def test_success_by_group_pools_the_episodes_of_the_tasks_run():
    summaries = {"a": {"successes": 9, "episodes": 10}, "b": {"successes": 1, "episodes": 10},
                 "c": {"successes": 5, "episodes": 5}}
    groups = success_by_group(summaries, {"easy": ("a", "c", "not-run"), "hard": ("b",), "none": ("x",)})
    assert list(groups) == ["easy", "hard", "average"]  # a group with no task run is left out
    assert (groups["easy"]["tasks"], groups["easy"]["successes"], groups["easy"]["episodes"]) == (2, 14, 15)
    assert groups["average"]["success_rate"] == 15 / 25
