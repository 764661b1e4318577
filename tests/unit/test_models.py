"""One contract suite over every registered model family, on a short synthetic series."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from energy_forecast.backtest import split_series
from energy_forecast.data import load_series
from energy_forecast.device import DeviceUnavailableError
from energy_forecast.features import build_features
from energy_forecast.models import (
    ModelConfigError,
    ValidationData,
    available_models,
    create_model,
    model_class,
    register,
)
from energy_forecast.models.baselines import SeasonalNaiveForecaster
from energy_forecast.training import load_config
from tests.conftest import CONFIGS, SMALL_SPLIT

SMALL_PARAMS = {
    "xgboost": {"n_estimators": 30},
    "lightgbm": {"n_estimators": 30},
    "catboost": {"iterations": 30},
    "stacking": {"members": [{"type": "xgboost", "params": {"n_estimators": 20}}, {"type": "lightgbm", "params": {"n_estimators": 20}}]},
    "voting": {"members": [{"type": "xgboost", "params": {"n_estimators": 20}}, {"type": "catboost", "params": {"iterations": 20}}]},
    "seasonal_naive": {"season_length": 96},
    "last_value": {},
}
TABULAR_AND_BASELINES = sorted(SMALL_PARAMS)


@pytest.fixture(scope="module")
def prepared(synthetic_csv):
    import os

    previous = os.environ.get("DATA_PATH")
    os.environ["DATA_PATH"] = str(synthetic_csv)
    try:
        config = load_config(CONFIGS / "training" / "xgboost.yaml", {"split": SMALL_SPLIT})
        series = load_series(config.data)
    finally:
        if previous is None:
            os.environ.pop("DATA_PATH")
        else:
            os.environ["DATA_PATH"] = previous
    return config, series


def build(config, model_type: str, device: str = "auto"):
    model_config = config.model.model_copy(update={"type": model_type, "params": SMALL_PARAMS[model_type], "device": device})
    return create_model(model_config, config.problem)


_FITTED: dict[str, tuple] = {}


def fitted(prepared, model_type: str):
    """Fit each family once per module; tests only read the fitted model."""
    if model_type not in _FITTED:
        _FITTED[model_type] = _fit(prepared, model_type)
    return _FITTED[model_type]


def _fit(prepared, model_type: str):
    config, series = prepared
    model = build(config, model_type)
    split = split_series(series.frame, config.split, config.task, min_history=max(model.min_history, 672))
    model.fit(split.history, ValidationData(split.through_validation, split.validation_origins))
    return model, split


def test_when_the_registry_is_listed_then_every_family_is_there():
    assert {"xgboost", "lightgbm", "catboost", "stacking", "voting", "seasonal_naive", "last_value"} <= set(available_models())
    assert "seasonal_naive" not in available_models(include_baselines=False)


def test_when_a_name_is_registered_twice_then_registration_fails():
    class Impostor(SeasonalNaiveForecaster):
        name = "xgboost"

    with pytest.raises(ValueError, match="registered twice"):
        register(Impostor)


def test_when_an_unknown_model_is_asked_for_then_the_valid_ones_are_listed():
    with pytest.raises(ModelConfigError, match="unknown model type 'prophet'; valid types: .*catboost.*xgboost"):
        model_class("prophet")


@pytest.mark.parametrize("model_type", TABULAR_AND_BASELINES)
def test_when_fitted_then_predict_gives_one_finite_row_per_origin_and_step(prepared, model_type):
    model, split = fitted(prepared, model_type)
    forecast = model.predict(split.through_test, split.test_origins)
    horizon = model.problem.horizon
    assert list(forecast.columns[:4]) == ["origin", "step", "timestamp", "prediction"]
    assert len(forecast) == len(split.test_origins) * horizon
    assert forecast["step"].tolist() == list(range(1, horizon + 1)) * len(split.test_origins)
    assert np.isfinite(forecast["prediction"]).all()
    assert (forecast["timestamp"] >= forecast["origin"]).all()


@pytest.mark.parametrize("model_type", TABULAR_AND_BASELINES)
def test_when_data_after_the_origin_changes_then_the_forecast_does_not(prepared, model_type):
    model, split = fitted(prepared, model_type)
    origin = split.test_origins[3]
    baseline = model.predict(split.through_test, split.test_origins[3:4])
    tampered = split.through_test.copy()
    later = tampered.index >= origin
    tampered.loc[later, "Usage_kWh"] = 999.0
    for name in model.problem.past_covariates:
        if isinstance(tampered[name].dtype, pd.CategoricalDtype):
            tampered.loc[later, name] = tampered[name].cat.categories[0]
        else:
            tampered.loc[later, name] = -5.0
    pd.testing.assert_frame_equal(model.predict(tampered, split.test_origins[3:4]), baseline)


@pytest.mark.parametrize("model_type", TABULAR_AND_BASELINES)
def test_when_saved_and_loaded_then_model_input_reproduces_the_forecast(prepared, model_type, tmp_path):
    model, split = fitted(prepared, model_type)
    forecast = model.predict(split.through_test, split.test_origins)
    model_input = model.model_input(split.through_test, split.test_origins)
    model.save(tmp_path / "saved")
    restored = model_class(model_type).load(tmp_path / "saved")
    np.testing.assert_array_equal(restored.predict_model_input(model_input), forecast["prediction"].to_numpy())


def test_when_predict_comes_before_fit_then_it_says_so(prepared):
    config, series = prepared
    with pytest.raises(ValueError, match="call fit\\(\\) before predict\\(\\)"):
        build(config, "xgboost").predict(series.frame, series.frame.index[-200:-199])


def test_when_known_future_values_are_missing_in_the_horizon_then_predict_refuses(prepared):
    model, split = fitted(prepared, "xgboost")
    frame = split.through_test.copy()
    frame.loc[split.test_origins[0] + pd.Timedelta(hours=5), "Load_Type"] = np.nan
    with pytest.raises(ValueError, match="known-future covariate 'Load_Type' is missing inside the horizon"):
        model.predict(frame, split.test_origins[:1])


def test_when_stacking_fits_then_members_train_on_training_rows_and_the_meta_learner_on_validation(prepared, monkeypatch):
    config, series = prepared
    model = build(config, "stacking")
    split = split_series(series.frame, config.split, config.task, min_history=672)
    seen = []
    for member in model.members:
        original = member._fit_matrix

        def spy(X, y, X_val, y_val, original=original):
            seen.append((len(X), X_val))
            return original(X, y, X_val, y_val)

        monkeypatch.setattr(member, "_fit_matrix", spy)
    model.fit(split.history, ValidationData(split.through_validation, split.validation_origins))
    training_rows = len(build_features(split.history, model.training_origins(split.history), problem=model.problem).X)
    assert seen == [(training_rows, None)] * len(model.members)  # no member sees November, not even to early-stop
    assert split.history.index[-1] < split.validation_origins[0]
    assert model.meta_.n_features_in_ == len(model.members)
    assert (model.weights_ >= 0).all()


def test_when_stacking_has_no_validation_period_then_it_refuses(prepared):
    config, series = prepared
    with pytest.raises(ValueError, match="learns its combination on the validation period"):
        build(config, "stacking").fit(series.frame.iloc[:3000])


def test_when_voting_weights_are_learned_then_the_more_skilful_member_weighs_more(prepared):
    model, _ = fitted(prepared, "voting")
    assert model.weights_.sum() == pytest.approx(1.0) and (model.weights_ > 0).all()
    assert model.params.weighting == "inverse_mse"


def test_when_auto_finds_no_gpu_then_the_cpu_is_used_and_the_reason_recorded(prepared, monkeypatch, caplog):
    monkeypatch.setenv("PATH", "/nonexistent")  # no nvidia-smi: no driver
    config, _ = prepared
    with caplog.at_level(logging.INFO, logger="energy_forecast"):
        model = build(config, "xgboost")
    assert model.device.device == "cpu" and not model.device.gpu_used
    assert model.device.as_tags() == {"device": "cpu", "gpu_used": "false", "device_requested": "auto", "device_reason": "no NVIDIA driver found (nvidia-smi is not on PATH)"}
    assert "device auto -> CPU" in caplog.text


def test_when_cuda_is_demanded_without_a_gpu_then_the_run_fails_clearly(prepared, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    config, _ = prepared
    with pytest.raises(DeviceUnavailableError, match="model.device is 'cuda' but no GPU is usable"):
        build(config, "catboost", device="cuda")
    with pytest.raises(DeviceUnavailableError, match="PyPI build, which has no GPU support"):
        build(config, "lightgbm", device="cuda")
    assert build(config, "lightgbm").device.reason.startswith("the installed LightGBM is the PyPI build")
