"""Metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from energy_forecast.metrics import mase_scale, rmse_by_step, score


def test_when_scored_then_each_metric_matches_its_definition():
    actual = np.array([0.0, 10.0, 20.0, 30.0])
    predicted = np.array([1.0, 12.0, 18.0, 30.0])
    result = score(actual, predicted, scale=2.0)
    assert result["rmse"] == pytest.approx(np.sqrt((1 + 4 + 4 + 0) / 4))
    assert result["mae"] == pytest.approx(1.25)
    assert result["r2"] == pytest.approx(1 - 9 / 500)
    assert result["mape_nonzero"] == pytest.approx(100 * (0.2 + 0.1 + 0) / 3)  # the zero actual is skipped
    assert result["smape"] == pytest.approx(100 * (2 * 1 / 1 + 2 * 2 / 22 + 2 * 2 / 38 + 0) / 4)
    assert result["mase"] == pytest.approx(1.25 / 2.0)


def test_when_actual_and_prediction_are_both_zero_then_smape_counts_zero_error():
    assert score(np.array([0.0, 4.0]), np.array([0.0, 4.0]), scale=1.0)["smape"] == 0.0


def test_when_mase_scale_is_computed_then_it_is_the_in_sample_seasonal_naive_mae():
    history = np.array([1.0, 2.0, 3.0, 5.0, 8.0])
    assert mase_scale(history, season=2) == pytest.approx(np.mean([2.0, 3.0, 5.0]))
    with pytest.raises(ValueError, match="more than one season"):
        mase_scale(history, season=5)


def test_when_rmse_by_step_then_each_step_aggregates_across_origins():
    forecast = pd.DataFrame({"step": [1, 2, 1, 2], "actual": [0.0, 0.0, 0.0, 0.0], "prediction": [1.0, 2.0, 3.0, 4.0]})
    by_step = rmse_by_step(forecast)
    assert by_step.loc[1] == pytest.approx(np.sqrt(5)) and by_step.loc[2] == pytest.approx(np.sqrt(10))


def test_when_inputs_are_not_finite_or_misaligned_then_scoring_refuses():
    with pytest.raises(ValueError, match="finite"):
        score(np.array([1.0, np.nan]), np.array([1.0, 1.0]), scale=1.0)
    with pytest.raises(ValueError, match="shape mismatch"):
        score(np.array([1.0]), np.array([1.0, 1.0]), scale=1.0)
