"""Chronos-2 family on a tiny random checkpoint (no weights are downloaded: HF_HUB_OFFLINE=1).

Covers the device choice without a GPU, input checks that fail before any weights load, the
offline error, leak-freedom of the batched backtest, fine-tuning, covariates, persistence, and
the quantile metrics the family brings.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from energy_forecast.backtest import ChronologicalSplit, split_series
from energy_forecast.config import ConfigError, FeatureConfig, TrainingConfig
from energy_forecast.contract import ContractError, build_input, forecast
from energy_forecast.data.loading import load_series
from energy_forecast.device import DeviceUnavailableError
from energy_forecast.metrics import quantile_scores
from energy_forecast.models import (
    ModelConfigError,
    ValidationData,
    create_model,
    load_forecaster,
    parse_params,
)
from energy_forecast.models.chronos2 import Chronos2Forecaster, WeightsUnavailableError
from energy_forecast.models.chronos2 import forecaster as chronos2_module
from energy_forecast.models.chronos2 import weights as chronos2_weights
from energy_forecast.training import load_config
from tests.chronos_tiny import TINY_MAX_OUTPUT_PATCHES, build_chronos2
from tests.conftest import CONFIGS, SMALL_SPLIT, require

pytestmark = pytest.mark.chronos

QUANTILES = ["q0.1", "q0.2", "q0.3", "q0.4", "q0.5", "q0.6", "q0.7", "q0.8", "q0.9"]
PAST = ["Lagging_Current_Reactive.Power_kVarh", "Leading_Current_Reactive_Power_kVarh", "CO2(tCO2)", "Lagging_Current_Power_Factor", "Leading_Current_Power_Factor"]
FUTURE = ["NSM", "WeekStatus", "Day_of_week", "Load_Type"]
FAST = {"context_length": 256}
"""Short contexts keep the tiny model's forecasts to a fraction of a second on two cores."""


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    require(importlib.util.find_spec("chronos") is not None, "chronos-forecasting is not installed (pip install -e .[chronos])")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_chronos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_chronos2(tmp_path_factory.mktemp("chronos") / "tiny")


NO_SEASONAL_LAGS = FeatureConfig(seasonal_lags=[], seasonal_means=[])
"""Chronos reads no tabular features; a horizon longer than a day needs none shorter than it."""


def chronos_config(yaml_name: str, tiny: Path, *, covariates: str | None = None, **params: Any) -> TrainingConfig:
    """A Chronos YAML on the 70-day synthetic series and the tiny checkpoint."""
    overrides: dict[str, Any] = {"split": SMALL_SPLIT, "model": {"params": {"pretrained": str(tiny), **FAST, **params}}}
    if covariates is not None:
        overrides["covariates"] = covariates
    return load_config(CONFIGS / "training" / yaml_name, overrides)


def prepared(config: TrainingConfig) -> tuple[Chronos2Forecaster, ChronologicalSplit]:
    model = create_model(config.model, config.problem)
    assert isinstance(model, Chronos2Forecaster)
    split = split_series(load_series(config.data).frame, config.split, config.task, min_history=672)
    return model, split


@pytest.fixture
def on_synthetic(synthetic_csv: Path, use_data) -> Path:
    return use_data(synthetic_csv)


# -- configs and registry ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_name", "mode", "covariates"),
    [("chronos2_zeroshot.yaml", "zero_shot", "none"), ("chronos2_finetuned.yaml", "finetune", "none"), ("chronos2_covariates.yaml", "finetune", "all")],
)
def test_when_a_chronos_yaml_is_loaded_then_it_builds_the_chronos2_family_in_its_mode(yaml_name, mode, covariates, on_synthetic):
    config = load_config(CONFIGS / "training" / yaml_name)

    model = create_model(config.model, config.problem)

    assert isinstance(model, Chronos2Forecaster)
    assert model.params.mode == mode and config.covariates == covariates
    assert model.params.pretrained == "amazon/chronos-2"
    expected = 9 if covariates == "all" else 0
    assert len(model.problem.covariate_names) == expected


def test_when_finetune_mode_is_unknown_then_the_config_is_rejected_naming_the_choices():
    with pytest.raises(ModelConfigError, match=r"finetune_mode.*'full' or 'lora'"):
        parse_params("chronos2", {"mode": "finetune", "finetune_mode": "qlora"})


def test_when_finetuning_fields_are_given_in_zero_shot_mode_then_the_config_is_rejected():
    with pytest.raises(ModelConfigError, match="only apply to mode: finetune"):
        parse_params("chronos2", {"mode": "zero_shot", "num_steps": 10})


def test_when_a_yaml_names_an_unknown_finetune_mode_then_load_config_names_file_and_field(tmp_path, on_synthetic):
    path = tmp_path / "bad.yaml"
    path.write_text(f"extends: {CONFIGS / 'training' / 'chronos2_finetuned.yaml'}\nmodel:\n  params:\n    finetune_mode: adapters\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: model.params: finetune_mode"):
        load_config(path)


# -- device --------------------------------------------------------------------------------------


def test_when_cuda_is_unavailable_then_auto_runs_on_the_cpu_in_float32_and_tags_say_so(tiny_chronos, on_synthetic, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model, split = prepared(chronos_config("chronos2_zeroshot.yaml", tiny_chronos))

    model.fit(split.history)

    assert model.pipeline_.model.device.type == "cpu"
    assert model.pipeline_.model.dtype == torch.float32
    tags = model.device.as_tags()
    assert tags["device"] == "cpu" and tags["gpu_used"] == "false" and tags["device_requested"] == "auto"
    assert "float32" in tags["device_reason"]
    assert model.fitted_summary()["dtype"] == "float32"


def test_when_torch_reports_a_gpu_then_auto_chooses_cuda_with_bfloat16(tiny_chronos, on_synthetic, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    config = chronos_config("chronos2_zeroshot.yaml", tiny_chronos)

    model = create_model(config.model, config.problem)  # cheap: nothing loads

    assert model.device.device == "cuda" and model.device.gpu_used
    assert model.dtype_name == "bfloat16" and "bfloat16" in model.device.reason


def test_when_cuda_is_demanded_without_a_gpu_then_it_fails_clearly(tiny_chronos, on_synthetic, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = chronos_config("chronos2_zeroshot.yaml", tiny_chronos)
    with pytest.raises(DeviceUnavailableError, match="no GPU is usable"):
        create_model(config.model.model_copy(update={"device": "cuda"}), config.problem)


# -- bad input fails before any weights load -----------------------------------------------------


def test_when_lora_is_asked_without_peft_then_the_model_is_refused_before_loading(tiny_chronos, on_synthetic, monkeypatch):
    monkeypatch.setattr(chronos2_module, "peft_available", lambda: False)
    config = chronos_config("chronos2_finetuned.yaml", tiny_chronos, finetune_mode="lora")
    with pytest.raises(ImportError, match="needs peft"):
        create_model(config.model, config.problem)


def test_when_the_horizon_exceeds_what_the_model_forecasts_in_one_pass_then_fit_fails_before_loading(tiny_chronos, on_synthetic):
    config = chronos_config("chronos2_zeroshot.yaml", tiny_chronos)
    problem = config.problem
    too_long = problem.replace(horizon=16 * TINY_MAX_OUTPUT_PATCHES + 1, features=NO_SEASONAL_LAGS)
    model = create_model(config.model, too_long)
    history = load_series(config.data).frame

    with pytest.raises(ValueError, match=r"horizon of 129 steps exceeds the 128 steps.*limit_prediction_length: false"):
        model.fit(history)
    assert model.pipeline_ is None


def test_when_limit_prediction_length_is_off_then_a_long_horizon_is_unrolled(tiny_chronos, on_synthetic):
    config = chronos_config("chronos2_zeroshot.yaml", tiny_chronos, limit_prediction_length=False)
    problem = config.problem
    model = create_model(config.model, problem.replace(horizon=160, features=NO_SEASONAL_LAGS))
    frame = load_series(config.data).frame
    origin = pd.DatetimeIndex([frame.index[2000]])

    forecast = model.fit(frame.iloc[:2000]).predict(frame, origin)

    assert len(forecast) == 160 and np.isfinite(forecast["prediction"]).all()


def test_when_a_covariate_is_missing_from_the_data_then_fit_fails_before_loading(tiny_chronos, on_synthetic):
    model, split = prepared(chronos_config("chronos2_covariates.yaml", tiny_chronos))

    with pytest.raises(ValueError, match=r"lacks columns \['Load_Type'\]"):
        model.fit(split.history.drop(columns=["Load_Type"]))
    assert model.pipeline_ is None


def test_when_a_future_covariate_is_absent_from_the_horizon_then_predict_fails_naming_it(tiny_chronos, on_synthetic):
    model, split = prepared(chronos_config("chronos2_zeroshot.yaml", tiny_chronos, covariates="all"))
    model.fit(split.history)
    frame = split.through_test.copy()
    frame.loc[frame.index >= split.test_origins[3], "Load_Type"] = np.nan

    with pytest.raises(ValueError, match=r"known-future covariate 'Load_Type' is missing inside the horizon"):
        model.predict(frame, split.test_origins)


def test_when_the_contract_input_lacks_future_values_then_the_restored_model_refuses_before_loading_weights(tiny_chronos, on_synthetic, tmp_path):
    model, split = prepared(chronos_config("chronos2_zeroshot.yaml", tiny_chronos, covariates="all"))
    model.fit(split.history)
    request = build_input(split.through_test, split.test_origins, model.problem, model.lookback)
    model.save(tmp_path / "saved")
    restored = load_forecaster(tmp_path / "saved")
    no_future = request.copy()
    no_future.loc[no_future["timestamp"] >= no_future["origin"], "Load_Type"] = None

    with pytest.raises(ContractError, match=r"known-future covariate 'Load_Type' is missing at .* and 95 more horizon step"):
        forecast(restored, no_future)
    with pytest.raises(ContractError, match=r"the input lacks columns \['NSM'\]"):
        forecast(restored, request.drop(columns=["NSM"]))
    assert restored.pipeline_ is None  # nothing was loaded


# -- weights that cannot be reached -------------------------------------------------------------


def empty_hub_cache(monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(directory))


def test_when_offline_without_cached_weights_then_fit_fails_within_seconds_saying_how_to_provide_them(on_synthetic, tmp_path, monkeypatch):
    empty_hub_cache(monkeypatch, tmp_path / "empty-hf-cache")
    monkeypatch.delenv("CHRONOS2_PRETRAINED", raising=False)
    config = load_config(CONFIGS / "training" / "chronos2_zeroshot.yaml", {"split": SMALL_SPLIT})
    model, split = prepared(config)

    started = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as raised:
        model.fit(split.history)

    assert time.perf_counter() - started < 5
    message = str(raised.value)
    assert "'amazon/chronos-2' cannot be reached: HF_HUB_OFFLINE is set" in message
    assert "hf download amazon/chronos-2 --local-dir" in message and "s3://" in message and "local directory" in message


def test_when_offline_then_training_fails_before_any_mlflow_run_starts(on_synthetic, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from energy_forecast.tracking import Tracker
    from energy_forecast.training import train

    empty_hub_cache(monkeypatch, tmp_path / "empty-hf-cache")
    monkeypatch.delenv("CHRONOS2_PRETRAINED", raising=False)
    config = load_config(CONFIGS / "training" / "chronos2_zeroshot.yaml", {"split": SMALL_SPLIT})
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(WeightsUnavailableError, match="HF_HUB_OFFLINE is set"):
        train(config, tracker)
    assert MlflowClient(tracker.tracking_uri).get_experiment_by_name(config.tracking.experiment) is None


def test_when_the_hub_is_unreachable_then_the_probe_fails_fast_instead_of_retrying(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    empty_hub_cache(monkeypatch, tmp_path / "empty-hf-cache")
    monkeypatch.setattr(chronos2_weights, "_hub_reachable", lambda endpoint: (False, "huggingface.co:443 cannot be reached (test)"))

    started = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match="huggingface.co:443 cannot be reached"):
        chronos2_weights.locate_weights("amazon/chronos-2")
    assert time.perf_counter() - started < 5


def test_when_a_local_directory_has_no_config_then_the_error_names_it(tmp_path):
    with pytest.raises(WeightsUnavailableError, match=r"is not a directory with config.json"):
        chronos2_weights.locate_weights(str(tmp_path / "missing"))


def test_when_weights_sit_under_an_s3_prefix_then_they_are_cached_locally_and_loaded(tiny_chronos, tmp_path, monkeypatch):
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("AWS_ENDPOINT_URL_S3", "MLFLOW_S3_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket="models")
        for path in tiny_chronos.iterdir():
            client.upload_file(str(path), "models", f"chronos/tiny/{path.name}")

        source = chronos2_weights.locate_weights("s3://models/chronos/tiny/")
        cached = tmp_path / "cache" / "energy_forecast" / "chronos2" / "models" / "chronos" / "tiny"
        assert source.max_prediction_length == 16 * TINY_MAX_OUTPUT_PATCHES
        assert sorted(p.name for p in cached.iterdir()) == ["config.json"]  # the config alone, before any weights
        directory = source.directory()

    assert directory == cached
    assert (directory / "model.safetensors").read_bytes() == (tiny_chronos / "model.safetensors").read_bytes()


def test_the_s3_endpoint_comes_from_aws_or_mlflow_variables(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", "http://minio:9000")
    assert chronos2_weights.s3_endpoint_url() == "http://minio:9000"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://other:9000")
    assert chronos2_weights.s3_endpoint_url() == "http://other:9000"


# -- forecasting ---------------------------------------------------------------------------------


def test_when_the_backtest_runs_then_all_origins_go_through_one_predict_df_call_with_roles_respected(tiny_chronos, on_synthetic, monkeypatch):
    model, split = prepared(chronos_config("chronos2_zeroshot.yaml", tiny_chronos, covariates="all"))
    model.fit(split.history)
    calls: list[dict[str, Any]] = []
    original = model.pipeline_.predict_df

    def spy(df: pd.DataFrame, **kwargs: Any) -> pd.DataFrame:
        calls.append({"df": df, **kwargs})
        return original(df, **kwargs)

    monkeypatch.setattr(model.pipeline_, "predict_df", spy)
    forecast = model.predict(split.through_test, split.test_origins)

    assert len(calls) == 1
    call = calls[0]
    assert call["df"]["origin"].nunique() == len(split.test_origins) == 14
    assert call["freq"] == "15min" and call["prediction_length"] == 96 and call["context_length"] == 256
    assert set(PAST + FUTURE) <= set(call["df"].columns)  # everything is in the context
    assert set(call["future_df"].columns) == {"origin", "timestamp", *FUTURE}  # only known-future values beyond it
    assert (call["df"]["timestamp"] < call["df"]["origin"]).all()
    assert list(forecast.columns) == ["origin", "step", "timestamp", "prediction", *QUANTILES]
    assert len(forecast) == 14 * 96 and np.isfinite(forecast[["prediction", *QUANTILES]].to_numpy()).all()
    np.testing.assert_array_equal(forecast["prediction"], forecast["q0.5"])


def test_when_values_at_or_after_an_origin_change_then_its_forecast_does_not(tiny_chronos, on_synthetic):
    model, split = prepared(chronos_config("chronos2_zeroshot.yaml", tiny_chronos, covariates="all"))
    model.fit(split.history)
    origins = split.test_origins
    before = model.predict(split.through_test, origins)

    for position in (0, 5, len(origins) - 1):
        origin = origins[position]
        horizon_end = origin + 96 * pd.Timedelta("15min")
        perturbed = split.through_test.copy()
        at_or_after = perturbed.index >= origin
        perturbed.loc[at_or_after, ["Usage_kWh", *PAST]] = perturbed.loc[at_or_after, ["Usage_kWh", *PAST]] * 3 + 50
        beyond = perturbed.index >= horizon_end
        perturbed.loc[beyond, "NSM"] = 0.0
        perturbed.loc[beyond, "Load_Type"] = "Maximum_Load"
        after = model.predict(perturbed, origins)
        mine = (before["origin"] == origin).to_numpy()
        np.testing.assert_array_equal(after.loc[mine, ["prediction", *QUANTILES]], before.loc[mine, ["prediction", *QUANTILES]])
        if position < len(origins) - 1:  # the perturbation is real: later origins, which may see it, do move
            assert not np.array_equal(after.loc[~mine, "prediction"], before.loc[~mine, "prediction"])


def test_when_covariates_are_used_then_forecasts_differ_from_the_target_alone(tiny_chronos, on_synthetic):
    target_only, split = prepared(chronos_config("chronos2_zeroshot.yaml", tiny_chronos))
    with_covariates, _ = prepared(chronos_config("chronos2_zeroshot.yaml", tiny_chronos, covariates="all"))

    alone = target_only.fit(split.history).predict(split.through_test, split.test_origins)
    covaried = with_covariates.fit(split.history).predict(split.through_test, split.test_origins)

    assert np.abs(alone["prediction"] - covaried["prediction"]).mean() > 1e-3


def test_when_saved_and_restored_then_the_contract_input_reproduces_the_forecast_exactly(tiny_chronos, on_synthetic, tmp_path):
    model, split = prepared(chronos_config("chronos2_zeroshot.yaml", tiny_chronos, covariates="all"))
    expected = model.fit(split.history).predict(split.through_test, split.test_origins)
    request = build_input(split.through_test, split.test_origins, model.problem, model.lookback)
    model.save(tmp_path / "saved")
    request.to_parquet(tmp_path / "model_input.parquet")

    restored = load_forecaster(tmp_path / "saved")
    reproduced = forecast(restored, pd.read_parquet(tmp_path / "model_input.parquet"))

    assert {"config.json", "model.safetensors"} <= {p.name for p in (tmp_path / "saved" / "weights").iterdir()}
    pd.testing.assert_frame_equal(reproduced, expected, check_exact=True)
    with pytest.raises(ContractError, match="needs at least 256 steps"):
        forecast(restored, request.head(5))


def test_the_contract_input_blanks_what_is_unknown_at_each_origin(tiny_chronos, on_synthetic):
    model, split = prepared(chronos_config("chronos2_zeroshot.yaml", tiny_chronos, covariates="all"))
    model.fit(split.history)

    request = build_input(split.through_test, split.test_origins, model.problem, model.lookback)

    horizon = request["timestamp"] >= request["origin"]
    assert request.groupby("origin").size().eq(256 + 96).all()
    assert request.loc[horizon, ["Usage_kWh", *PAST]].isna().all().all()
    assert request.loc[horizon, FUTURE].notna().all().all()
    assert request.loc[~horizon, ["Usage_kWh", *PAST, *FUTURE]].notna().all().all()


# -- fine-tuning ---------------------------------------------------------------------------------


def test_when_finetuned_on_a_learnable_pattern_then_training_loss_falls_and_the_model_predicts_in_eval_mode(tiny_chronos, on_synthetic):
    config = chronos_config(
        "chronos2_finetuned.yaml", tiny_chronos,
        num_steps=30, learning_rate=3e-3, finetune_batch_size=8, finetune_context_length=256, log_every=1, validation=False,
    )
    model, split = prepared(config)

    model.fit(split.history, ValidationData(split.through_validation, split.validation_origins))

    losses = [entry["loss"] for entry in model.training_log_ if "loss" in entry]
    assert len(losses) == 30
    assert np.mean(losses[-8:]) < 0.85 * np.mean(losses[:8]), losses
    assert not model.pipeline_.model.training  # dropout off: the FACTS pitfall
    first = model.predict(split.through_test, split.test_origins)
    second = model.predict(split.through_test, split.test_origins)
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    summary = model.fitted_summary()
    assert summary["finetune_last_loss"] == losses[-1] and summary["finetune_steps_per_second"] > 0


def test_when_finetuned_with_lora_and_validation_then_merged_weights_are_self_contained(tiny_chronos, on_synthetic, tmp_path):
    config = chronos_config(
        "chronos2_covariates.yaml", tiny_chronos,
        finetune_mode="lora", num_steps=4, learning_rate=1e-3, finetune_batch_size=20, log_every=2, validation_every=2,
    )
    model, split = prepared(config)

    model.fit(split.history, ValidationData(split.through_validation, split.validation_origins))
    model.save(tmp_path / "saved")

    assert any("eval_loss" in entry for entry in model.training_log_)  # validated on November-like origins
    saved = {p.name for p in (tmp_path / "saved" / "weights").iterdir()}
    assert "adapter_config.json" not in saved and "model.safetensors" in saved
    restored = load_forecaster(tmp_path / "saved")
    request = build_input(split.through_test, split.test_origins[:3], model.problem, model.lookback)
    pd.testing.assert_frame_equal(forecast(restored, request), model.predict(split.through_test, split.test_origins[:3]), check_exact=True)


# -- quantile metrics ----------------------------------------------------------------------------


def test_quantile_scores_match_a_hand_computed_pinball_loss_and_coverage():
    forecast = pd.DataFrame({"actual": [1.0, 2.0, 3.0], "q0.1": [0.0, 0.0, 4.0], "q0.5": [1.0, 2.0, 3.0], "q0.9": [2.0, 3.0, 5.0], "prediction": [1.0, 2.0, 3.0]})

    scores = quantile_scores(forecast)

    # q0.1: (0.1 + 0.2 + 0.9) / 3; q0.5: 0; q0.9: (0.1 + 0.1 + 0.2) / 3
    assert scores["pinball_loss"] == pytest.approx((0.4 + 0.0 + 0.4 / 3) / 3)
    assert scores["coverage_80"] == pytest.approx(2 / 3)
    assert scores["width_80"] == pytest.approx((2 + 3 + 1) / 3)
    assert quantile_scores(forecast[["actual", "prediction"]]) == {}


# -- panels --------------------------------------------------------------------------------------


def test_when_a_panel_is_forecast_then_one_batched_call_equals_each_series_alone(tiny_chronos, on_synthetic, monkeypatch):
    model, split = prepared(chronos_config("chronos2_zeroshot.yaml", tiny_chronos))
    model.fit(split.history)
    frames = {"a": split.through_test, "b": split.through_test.assign(**{model.problem.target: split.through_test[model.problem.target] * 3.0})}
    origins = {"a": split.test_origins[:3], "b": split.test_origins[2:5]}
    calls = []
    pipeline = model._pipeline()
    original = pipeline.predict_df
    monkeypatch.setattr(pipeline, "predict_df", lambda **kw: calls.append(kw["df"]["origin"].nunique()) or original(**kw))
    panel = model.predict_panel(frames, origins)
    assert calls == [6]  # every series and origin in one call
    assert list(panel["series_id"].unique()) == ["a", "b"]
    for sid in ("a", "b"):
        alone = model.predict(frames[sid], origins[sid])
        got = panel[panel["series_id"] == sid].drop(columns="series_id").reset_index(drop=True)
        pd.testing.assert_frame_equal(got[["origin", "step", "timestamp"]], alone[["origin", "step", "timestamp"]])
        np.testing.assert_allclose(got["prediction"], alone["prediction"], rtol=1e-4, atol=1e-3)
