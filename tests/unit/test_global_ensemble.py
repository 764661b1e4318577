"""Panel ensembles' weights (``energy_forecast.models.global_ensemble.panel_weights``), on forecasts
made up so that the right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from energy_forecast.models.ensembles import StackingParams, VotingParams
from energy_forecast.models.global_ensemble import GlobalEnsemble, panel_weights

MEMBERS = {"members": [{"type": "xgboost"}, {"type": "lightgbm"}]}


def two_plants(rng: np.random.Generator, rows: int = 2000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A small plant (level 10) and a large one (level 100); member errors are independent, relative to the level."""
    level = np.repeat([10.0, 100.0], rows)
    actual = level * (1 + 0.3 * np.sin(np.arange(2 * rows) / 7.0))
    errors = rng.normal(0, 0.1, size=(2 * rows, 2)) * level[:, None]
    series = np.repeat(["small", "large"], rows)
    return actual[:, None] + errors, actual, series


def rmse(prediction: np.ndarray, actual: np.ndarray) -> float:
    return float(np.sqrt(np.mean((prediction - actual) ** 2)))


@pytest.mark.parametrize(("kind", "params"), [("voting", VotingParams(**MEMBERS)), ("stacking", StackingParams(**MEMBERS))])
def test_panel_weights_beat_both_members_with_independent_errors(kind: str, params) -> None:
    predictions, actual, series = two_plants(np.random.default_rng(0))
    weights = panel_weights(kind, params, predictions, actual, series, np.sqrt(np.where(series == "small", 10.0, 100.0)))["*"]
    combined = predictions @ weights
    assert rmse(combined, actual) < min(rmse(predictions[:, 0], actual), rmse(predictions[:, 1], actual)) * 0.8
    assert weights == pytest.approx([0.5, 0.5], abs=0.1)


def test_series_weights_follow_each_series_own_best_member() -> None:
    rng = np.random.default_rng(1)
    predictions, actual, series = two_plants(rng)
    small = series == "small"
    predictions[small, 1] = actual[small] + rng.normal(0, 3.0, small.sum())  # member 1 is bad on the small plant only
    predictions[~small, 0] = actual[~small] + rng.normal(0, 30.0, (~small).sum())  # member 0 is bad on the large plant only
    weights = panel_weights("voting", VotingParams(**MEMBERS), predictions, actual, series, np.ones(len(actual)), by="series")
    assert set(weights) == {"small", "large"}
    assert weights["small"][0] > 0.8 and weights["large"][1] > 0.8


def test_rows_are_weighed_by_volume_not_by_squared_size() -> None:
    """Member 0 is perfect on the large plant, member 1 on the small one. Raw squared errors hand
    everything to member 0 (the large plant's errors are 100x larger); weighted by volume, the small
    plant still pulls its member in."""
    rng = np.random.default_rng(2)
    predictions, actual, series = two_plants(rng)
    small = series == "small"
    predictions[~small, 0] = actual[~small] + rng.normal(0, 1.0, (~small).sum())
    predictions[small, 1] = actual[small] + rng.normal(0, 0.1, small.sum())
    params = StackingParams(**MEMBERS, shrinkage=0.0)
    raw = panel_weights("stacking", params, predictions, actual, series, np.ones(len(actual)))["*"]
    by_volume = panel_weights("stacking", params, predictions, actual, series, np.sqrt(np.where(small, 10.0, 100.0)))["*"]
    assert by_volume[1] > raw[1] + 0.01


def test_missing_actuals_are_left_out() -> None:
    predictions, actual, series = two_plants(np.random.default_rng(3), rows=200)
    actual[:50] = np.nan
    weights = panel_weights("voting", VotingParams(**MEMBERS), predictions, actual, series, np.ones(len(actual)))["*"]
    assert np.isfinite(weights).all() and weights.sum() == pytest.approx(1.0)


def test_members_without_a_global_model_are_refused_by_field() -> None:
    from energy_forecast.config import ForecastProblem

    with pytest.raises(ValueError, match=r"members\.1\.type: 'catboost' has no global model"):
        GlobalEnsemble("voting", {"members": [{"type": "xgboost"}, {"type": "catboost"}]}, ForecastProblem(target="y", horizon=96))
    with pytest.raises(ValueError, match="meta_learner 'ridge' is not supported"):
        panel_weights("stacking", StackingParams(**MEMBERS, meta_learner="ridge"), np.ones((4, 2)), np.ones(4), np.array(list("aabb")), np.ones(4))
