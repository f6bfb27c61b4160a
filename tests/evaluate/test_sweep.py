import csv
import json

import pytest

from vlascope.errors import VlascopeError
from vlascope.evaluate.sweep import (nearest_loss, ranks, read_loss_log, spearman, sweep_run,
                                    tracking)


def row(step, loss, reward, success):
    return {"step": step, "train_loss": loss, "avg_reward": reward, "success_rate": success}


def test_sweep_evaluates_every_step_checkpoint(trained_run, tmp_path):
    result = sweep_run(trained_run.run_dir, "reach-v3", 1, seed=0, device="cpu", max_steps=8,
                       progress=False)
    assert [r["step"] for r in result.rows] == [3, 5]  # `last` is not swept
    for r in result.rows:
        assert r["episodes"] == 1 and 0 <= r["success_rate"] <= 1
        assert r["train_loss"] is not None and r["train_loss"] > 0
        lo, hi = r["success_ci95"]
        assert 0 <= lo <= hi <= 1
        assert r["reached_rate"] is None and r["grasped_rate"] is None  # reach has no object
    assert result.to_json()["tracking"]["reward_tracks_success"] is None  # only 2 checkpoints
    table = result.format_table()
    assert "step" in table.splitlines()[0] and len(table.splitlines()) == 4

    json_path, csv_path = result.save(tmp_path)
    assert [r["step"] for r in json.loads(json_path.read_text())["rows"]] == [3, 5]
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["3", "5"] and rows[0]["grasped_rate"] == ""


def test_no_checkpoints_is_a_one_line_error(tmp_path):
    with pytest.raises(VlascopeError, match="no checkpoints/step_") as exc:
        sweep_run(tmp_path, "reach-v3", 1, progress=False)
    assert "\n" not in str(exc.value)


def test_ranks_average_ties_and_spearman():
    assert ranks([10, 20, 20, 30]).tolist() == [1, 2.5, 2.5, 4]
    assert spearman([1, 2, 3, 4], [1, 4, 9, 16]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [5, 5, 5]) is None


def test_reward_rising_while_success_falls_does_not_track():
    rows = [row(1, 1.0, 10, 0.8), row(2, 0.8, 20, 0.5), row(3, 0.6, 30, 0.2), row(4, 0.5, 40, 0.1)]
    t = tracking(rows)
    assert t["reward_success_spearman"] == pytest.approx(-1.0)
    assert t["reward_tracks_success"] is False
    assert t["loss_tracks_success"] is False  # loss falls while success falls too


def test_consistent_run_tracks():
    rows = [row(1, 1.0, 10, 0.0), row(2, 0.7, 25, 0.3), row(3, 0.5, 25, 0.3), row(4, 0.3, 40, 0.9)]
    t = tracking(rows)
    assert t["reward_tracks_success"] is True and t["loss_tracks_success"] is True
    assert t["loss_success_spearman"] < 0 < t["reward_success_spearman"]
    assert t["reason"] is None


def test_undecidable_cases_are_none():
    t = tracking([row(1, 1.0, 10, 0.0), row(2, 0.5, 20, 0.5)])
    assert t["reward_tracks_success"] is None and t["loss_tracks_success"] is None
    assert "checkpoint" in t["reason"]
    t = tracking([row(1, 1.0, 10, 0.5), row(2, 0.5, 20, 0.5), row(3, 0.2, 30, 0.5)])
    assert t["reward_success_spearman"] is None and "same" in t["reason"]
    # A missing loss only removes that checkpoint from the loss comparison.
    t = tracking([row(1, None, 10, 0.0), row(2, 0.5, 20, 0.5), row(3, 0.2, 30, 0.9)])
    assert t["reward_tracks_success"] is True and t["loss_tracks_success"] is None


def test_nearest_logged_loss(trained_run):
    assert sorted(read_loss_log(trained_run.run_dir)) == [1, 2, 3, 4, 5]
    assert nearest_loss({1: 0.9, 4: 0.5, 8: 0.2}, 5) == 0.5
    assert nearest_loss({}, 5) is None
