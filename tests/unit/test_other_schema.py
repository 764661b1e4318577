"""Another CSV with another schema trains with nothing but its own YAML files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import yaml

from energy_forecast.training import load_config, train


def test_when_an_hourly_csv_with_other_columns_is_described_then_a_model_trains_and_beats_naive(tmp_path):
    stamps = pd.date_range("2021-01-01", periods=24 * 120, freq="h")
    rng = np.random.default_rng(1)
    shift = np.where((stamps.hour >= 6) & (stamps.hour < 18) & (stamps.day_of_week < 5), "on", "off")
    load = np.where(shift == "on", 50.0, 10.0) + rng.normal(0, 2, len(stamps))
    pd.DataFrame({
        "when": stamps.strftime("%Y-%m-%d %H:%M"),
        "load_mw": load.round(3),
        "temperature_c": rng.normal(5, 3, len(stamps)).round(1),
        "shift": shift,
    }).to_csv(tmp_path / "plant.csv", index=False)
    (tmp_path / "plant.yaml").write_text(yaml.safe_dump({
        "name": "plant", "path": str(tmp_path / "plant.csv"), "encoding": "utf-8",
        "timestamp": {"column": "when", "format": "%Y-%m-%d %H:%M"}, "target": "load_mw", "frequency": "1h",
        "covariates": [{"name": "temperature_c", "role": "past"}, {"name": "shift", "role": "future", "kind": "categorical"}],
    }))
    (tmp_path / "train.yaml").write_text(yaml.safe_dump({
        "data": "plant.yaml",
        "task": {"name": "day_ahead", "horizon": 24, "origin_every": "1D"},
        "split": {"train_end": "2021-03-15", "validation_end": "2021-04-01", "test_end": "2021-05-01"},
        "features": {"origin_lags": [1, 24], "seasonal_lags": [24, 168], "rolling_windows": [24], "past_covariate_lags": [1]},
        "model": {"type": "lightgbm", "params": {"n_estimators": 60}},
    }))
    result = train(load_config(tmp_path / "train.yaml"))
    assert result.tags["horizon"] == "24" and result.task == "day_ahead"
    assert result.metrics["rmse"] < min(m["rmse"] for m in result.baseline_metrics.values())
