"""Realized accuracy and drift, against hand-computed values and synthetic shifts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from energy_forecast.config import load_data_config
from energy_forecast.data import load_series
from energy_forecast.frames import forecast_frame
from energy_forecast.monitoring import day_accuracy, drift, latest_forecasts, pooled_accuracy, psi
from tests.conftest import STEEL_DATA_CONFIG


def test_psi_matches_a_hand_computed_value_and_is_zero_for_the_same_sample():
    reference = np.array(["a"] * 50 + ["b"] * 50)
    recent = np.array(["a"] * 80 + ["b"] * 20)
    expected = (0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5)
    assert psi(reference, recent, categorical=True) == pytest.approx(expected)
    values = np.random.default_rng(0).normal(size=5000)
    assert psi(values, values) == pytest.approx(0.0)


def test_day_accuracy_scores_the_forecast_and_weekly_naive_against_actuals():
    index = pd.date_range("2018-01-01", periods=96 * 8, freq="15min")
    series = pd.Series(np.tile(np.arange(96, dtype=float), 8), index=index)
    series.iloc[-96:] += 2.0  # the last day is 2 above the same day last week
    day = index[-96:]
    rows = forecast_frame([day[0]] * 96, range(1, 97), day, series.iloc[-96:] + 1.0, {0.1: series.iloc[-96:] - 1.0, 0.9: series.iloc[-96:] + 0.5})
    result = day_accuracy(rows, series)
    assert result["rmse"] == pytest.approx(1.0) and result["naive_rmse"] == pytest.approx(2.0)
    assert result["skill_vs_naive"] == pytest.approx(0.5) and result["coverage_80"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="96 forecast stamp\\(s\\) have no actual yet"):
        day_accuracy(rows.assign(timestamp=rows["timestamp"] + pd.Timedelta(days=1)), series)


def test_the_latest_forecast_per_stamp_comes_from_the_newest_version_of_each_origin():
    stamps = pd.date_range("2018-01-02", periods=4, freq="15min")
    old = forecast_frame([stamps[0]] * 4, range(1, 5), stamps, [1.0] * 4).assign(model_version="1", created_at=pd.Timestamp("2018-01-01 10:00"))
    new = old.assign(prediction=2.0, model_version="2", created_at=pd.Timestamp("2018-01-01 11:00"))
    chosen = latest_forecasts(pd.concat([new, old], ignore_index=True))  # stored in any order
    assert chosen["prediction"].tolist() == [2.0] * 4


def test_pooled_accuracy_compares_the_window_with_the_backtest():
    index = pd.date_range("2018-01-01", periods=96 * 14, freq="15min")
    series = pd.Series(10.0, index=index)
    rows = forecast_frame(index.normalize(), np.tile(np.arange(1, 97), 14), index, series + 3.0)
    result = pooled_accuracy(rows, series, end=index[-1] + pd.Timedelta("15min"), days=7, backtest_rmse=2.0)
    assert result["rmse"] == pytest.approx(3.0) and result["ratio_to_backtest"] == pytest.approx(1.5) and result["days_scored"] == 7


@pytest.mark.parametrize(("scale", "drifts"), [(1.0, False), (1.8, True)])
def test_drift_flags_a_shifted_target_and_not_an_unshifted_one(synthetic_csv, use_data, scale, drifts):
    use_data(synthetic_csv)
    data = load_data_config(STEEL_DATA_CONFIG)
    frame = load_series(data).frame.copy()
    recent = frame.index >= frame.index[-1] - pd.Timedelta(days=14) + data.step
    frame.loc[recent, "Usage_kWh"] *= scale

    report = drift(frame, data, reference=(frame.index[0], pd.Timestamp("2018-02-01")), recent_days=14, threshold=0.25)

    assert ("Usage_kWh" in report.drifted) is drifts
    assert set(report.table["column"]) == {"Usage_kWh", *(c.name for c in data.covariates)}
    numeric = report.table.set_index("column").loc["Usage_kWh"]
    assert 0 <= numeric["ks"] <= 1 and 0 <= numeric["ks_pvalue"] <= 1
