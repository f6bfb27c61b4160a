"""Data checks on real pick-place demos, each with one planted fault and its healthy twin."""

import numpy as np
import pytest

from tests.doctor.conftest import make_ctx, severities
from tests.doctor.faults import edited, nan_at, pin_action_dim, tiny_pipeline
from vlascope.doctor.data_checks import (check_action_scale_imbalance, check_initial_state_diversity,
                                         check_observability, per_dimension_statistics,
                                         check_nan_in_data, check_near_constant_action_dim)
from vlascope.doctor.rollout_checks import check_eval_coverage


def test_nan_is_located_by_demo_step_and_dimension(pick_place, tmp_path):
    found = check_nan_in_data(make_ctx(edited(pick_place, nan_at(1, "object_state", 5, 2)), tmp_path))
    assert [f.severity for f in found] == ["error"]
    loc = found[0].evidence["locations"][0]
    assert (loc["demo"], loc["key"], loc["step"], loc["dim"]) == ("demo_1", "obs/object_state", 5, 2)
    assert check_nan_in_data(make_ctx(pick_place, tmp_path))[0].severity == "ok"


def test_statistics_leave_out_non_finite_values(pick_place):
    from vlascope.data import read_dataset

    episodes = read_dataset(pick_place).episodes
    clean = per_dimension_statistics(episodes)
    episodes[2].actions[4, 1] = np.nan
    episodes[3].actions[0, 1] = np.inf
    broken = per_dimension_statistics(episodes)
    column = np.concatenate([e.actions for e in episodes])[:, 1].astype(np.float64)
    finite = column[np.isfinite(column)]
    assert len(finite) == len(column) - 2
    assert broken["action"]["mean"][1] == pytest.approx(finite.mean(), abs=1e-6)
    assert broken["action"]["std"][1] == pytest.approx(finite.std(), abs=1e-6)
    assert broken["action"]["max"][1] == finite.max()
    np.testing.assert_allclose(broken["action"]["mean"][[0, 2, 3]], clean["action"]["mean"][[0, 2, 3]])
    assert set(clean) == {"action", *[k for k, v in episodes[0].obs.items() if v.dtype != np.uint8]}


def test_model_checks_see_only_the_finite_demos(pick_place, tmp_path):
    def plant(episodes):
        episodes[0].actions[3, 1] = np.inf
    ctx = make_ctx(edited(pick_place, plant), tmp_path)
    assert [e.name for e in ctx.episodes] == [f"demo_{i}" for i in range(1, 6)]


def test_one_initial_state_is_an_error_and_diverse_demos_pass(pick_place, pick_place_fixed, tmp_path):
    fixed = check_initial_state_diversity(make_ctx(pick_place_fixed, tmp_path))
    assert fixed[0].severity == "error"
    assert fixed[0].evidence["distinct_initial_states_at_1mm"] == 1
    assert fixed[0].evidence["collected_with_fixed_init"] is True
    assert (tmp_path / fixed[0].plots[0]).exists()
    diverse = check_initial_state_diversity(make_ctx(pick_place, tmp_path))
    assert diverse[0].severity == "ok"
    assert diverse[0].evidence["distinct_initial_states_at_1mm"] == 6


def test_eval_coverage_flags_a_fixed_init_dataset(pick_place, pick_place_fixed, tmp_path):
    fixed = check_eval_coverage(make_ctx(pick_place_fixed, tmp_path, task="pick-place-v3"))
    assert fixed[0].severity == "error"
    assert fixed[0].evidence["fraction_of_eval_states_farther_than_3x_spacing"] > 0.9
    diverse = check_eval_coverage(make_ctx(pick_place, tmp_path, task="pick-place-v3"))
    assert diverse[0].severity == "ok"
    assert check_eval_coverage(make_ctx(pick_place, tmp_path))[0].severity == "info"  # no --task


def test_pinned_action_dim_is_named(pick_place, tmp_path):
    found = check_near_constant_action_dim(make_ctx(edited(pick_place, pin_action_dim(1)), tmp_path))
    assert [(f.severity, f.evidence["dim"]) for f in found] == [("warning", 1)]
    assert check_near_constant_action_dim(make_ctx(pick_place, tmp_path))[0].severity == "ok"


def test_scale_imbalance_counts_what_the_loss_sees(pick_place, tmp_path):
    def shrink(episodes):
        for e in episodes:
            e.actions[:, 0] *= 0.02  # range 0.04: above the normaliser floor
    # Per-dimension normalisation removes the imbalance...
    assert severities(check_action_scale_imbalance(make_ctx(edited(pick_place, shrink), tmp_path)),
                      "action-scale-imbalance") == {"ok"}
    # ...an identity action normaliser (raw MSE) leaves it.
    found = check_action_scale_imbalance(make_ctx(edited(pick_place, shrink), tmp_path,
                                                  tiny_pipeline(action_norm="identity")))
    assert found[0].severity == "warning" and found[0].evidence["normalised_std_ratio"] > 10


def test_observability_flags_a_hidden_goal_and_names_the_missing_key(pick_place_12, tmp_path):
    hidden = check_observability(make_ctx(pick_place_12, tmp_path, inputs=["robot_state", "object_state"]))
    assert [f.severity for f in hidden] == ["error"]
    assert "inputs + goal" in hidden[0].title and "Add 'goal'" in hidden[0].fix
    given = check_observability(make_ctx(pick_place_12, tmp_path,
                                         inputs=["robot_state", "object_state", "goal"]))
    assert [f.severity for f in given] == ["ok"]
    assert given[0].evidence["unexplained_share"] < hidden[0].evidence["unexplained_share"] / 2
