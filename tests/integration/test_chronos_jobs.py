"""The three Chronos-2 jobs end to end, against real services and a tiny random checkpoint.

Dagster stores its runs in PostgreSQL; MLflow is a real server on PostgreSQL whose artifacts go
to the loopback S3 server. The zero-shot job reads its weights from that S3 server (an
``s3://`` ``pretrained``), the fine-tuned ones from a local directory. Each job runs once per
module; the tests then check the run, the bucket, the registry and the Dagster log.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from energy_forecast.training import TrainingResult, load_config
from pipelines.definitions import defs
from pipelines.paths import resolve_config_path
from tests.chronos_tiny import build_chronos2
from tests.conftest import require
from tests.integration.conftest import S3_BUCKET, S3_KEYS, s3_keys
from tests.integration.helpers import small_config

pytestmark = [pytest.mark.integration, pytest.mark.chronos]

JOBS = {
    "chronos_zeroshot_job": "chronos2_zeroshot.yaml",
    "chronos_finetuned_job": "chronos2_finetuned.yaml",
    "chronos_covariates_job": "chronos2_covariates.yaml",
}
FAST: dict[str, dict[str, Any]] = {
    "chronos_zeroshot_job": {"context_length": 256},
    "chronos_finetuned_job": {"context_length": 256, "num_steps": 6, "learning_rate": 1e-3, "finetune_batch_size": 8, "validation_every": 3, "log_every": 2},
    "chronos_covariates_job": {"context_length": 256, "num_steps": 6, "learning_rate": 1e-3, "finetune_batch_size": 20, "validation_every": 3, "log_every": 2},
}
"""A few steps on short contexts: the whole module stays around a minute on two cores."""
WEIGHTS_PREFIX = "weights/tiny-chronos2"
QUANTILES = [f"q0.{i}" for i in range(1, 10)]


@dataclass
class JobRun:
    result: TrainingResult
    succeeded: bool
    stored_success: bool
    log_messages: list[str]


@pytest.fixture(scope="module")
def chronos_runs(
    tmp_path_factory: pytest.TempPathFactory, synthetic_csv: Path, mlflow_server: str, s3_endpoint: str, s3_client, dagster_postgres_home: Path
) -> Iterator[dict[str, JobRun]]:
    require(importlib.util.find_spec("chronos") is not None, "chronos-forecasting is not installed (pip install -e .[chronos])")
    from dagster import DagsterInstance

    directory = tmp_path_factory.mktemp("chronos_jobs")
    tiny = build_chronos2(directory / "tiny")
    for path in tiny.iterdir():  # the zero-shot job reads these through s3://
        s3_client.upload_file(str(path), S3_BUCKET, f"{WEIGHTS_PREFIX}/{path.name}")
    runs: dict[str, JobRun] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("DATA_PATH", str(synthetic_csv))
        patch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
        patch.setenv("MLFLOW_S3_ENDPOINT_URL", s3_endpoint)  # how the zero-shot job finds its weights
        patch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
        patch.setenv("XDG_CACHE_HOME", str(directory / "cache"))
        patch.setenv("DAGSTER_HOME", str(dagster_postgres_home))
        for name, value in S3_KEYS.items():
            patch.setenv(name, value)
        with DagsterInstance.get() as instance:
            for job_name, yaml_name in JOBS.items():
                pretrained = f"s3://{S3_BUCKET}/{WEIGHTS_PREFIX}/" if job_name == "chronos_zeroshot_job" else str(tiny)
                (directory / job_name).mkdir()
                config_path, _ = small_config(directory / job_name, yaml_name, params={"pretrained": pretrained, **FAST[job_name]})
                outcome = defs.resolve_job_def(job_name).execute_in_process(
                    run_config={"ops": {"train_model": {"config": {"config_path": str(config_path)}}}}, instance=instance
                )
                runs[job_name] = JobRun(
                    result=outcome.output_for_node("train_model"),
                    succeeded=outcome.success,
                    stored_success=instance.get_run_by_id(outcome.run_id).is_success,  # read back from PostgreSQL
                    log_messages=[entry.user_message for entry in instance.all_logs(outcome.run_id)],
                )
        yield runs


@pytest.fixture
def tracking(mlflow_server: str, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    mlflow.set_tracking_uri(mlflow_server)
    return MlflowClient(mlflow_server)


def logged_frame(run_id: str, path: str) -> pd.DataFrame:
    return pd.read_parquet(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path))


@pytest.mark.parametrize("job_name", list(JOBS))
def test_when_a_chronos_job_runs_then_mlflow_holds_the_run_with_quantile_metrics_and_cpu_float32_tags(job_name, chronos_runs, tracking):
    run_info = chronos_runs[job_name]
    assert run_info.succeeded and run_info.stored_success
    result = run_info.result
    run = tracking.get_run(result.run_id)

    assert run.info.status == "FINISHED"
    assert run.data.tags["model_type"] == "chronos2" and run.data.params["model.type"] == "chronos2"
    assert run.data.tags["device"] == "cpu" and run.data.tags["gpu_used"] == "false"
    assert "float32" in run.data.tags["device_reason"]
    mode = "zero-shot" if job_name == "chronos_zeroshot_job" else "fine-tuned"
    assert mode in run.data.tags["approach"]
    for metric in ("test_rmse", "test_mase", "test_pinball_loss", "test_coverage_80", "val_pinball_loss", "baseline_seasonal_naive_weekly_test_rmse"):
        assert np.isfinite(run.data.metrics[metric]), metric
    assert 0.0 <= run.data.metrics["test_coverage_80"] <= 1.0
    if job_name != "chronos_zeroshot_job":
        assert run.data.metrics["fitted_finetune_steps_per_second"] > 0
    forecast = logged_frame(result.run_id, "predictions/test_forecast.parquet")
    assert set(QUANTILES) <= set(forecast.columns)


@pytest.mark.parametrize("job_name", list(JOBS))
def test_when_a_chronos_job_runs_then_its_artifacts_and_weights_are_in_the_bucket(job_name, chronos_runs, tracking, s3_client):
    result = chronos_runs[job_name].result
    run = tracking.get_run(result.run_id)
    keys = s3_keys(s3_client)

    run_prefix = f"artifacts/{run.info.experiment_id}/{result.run_id}/artifacts/"
    for artifact in ("predictions/test_forecast.parquet", "predictions/model_input.parquet", "plots/forecast_vs_actual.png", "config/resolved_config.yaml"):
        assert run_prefix + artifact in keys, artifact
    model_id = result.model_uri.removeprefix("models:/")
    model_prefix = f"artifacts/{run.info.experiment_id}/models/{model_id}/artifacts/"
    model_files = [key.removeprefix(model_prefix) for key in keys if key.startswith(model_prefix)]
    assert "MLmodel" in model_files
    for weights_file in ("config.json", "model.safetensors"):
        assert f"artifacts/forecaster/weights/{weights_file}" in model_files, (weights_file, model_files)


@pytest.mark.parametrize("job_name", list(JOBS))
def test_when_the_registered_model_is_loaded_through_pyfunc_then_it_reproduces_the_logged_forecast_exactly(job_name, chronos_runs, tracking):
    result = chronos_runs[job_name].result
    promotion = result.promotion
    assert promotion is not None and promotion.promoted
    aliases = tracking.get_registered_model(promotion.registered_model).aliases
    assert aliases["challenger"] == promotion.version == aliases["champion"]
    model_input = logged_frame(result.run_id, "predictions/model_input.parquet")
    logged = logged_frame(result.run_id, "predictions/test_forecast.parquet")

    reloaded = mlflow.pyfunc.load_model(f"models:/{promotion.registered_model}@champion")
    forecast = reloaded.predict(model_input)

    assert type(reloaded.unwrap_python_model().forecaster).__name__ == "Chronos2Forecaster"
    expected = logged[logged["origin"].isin(forecast["origin"].unique())].reset_index(drop=True)
    assert len(expected) == len(forecast) > 0
    np.testing.assert_array_equal(forecast["prediction"].to_numpy(), expected["prediction"].to_numpy())
    np.testing.assert_array_equal(forecast[QUANTILES].to_numpy(), expected[QUANTILES].to_numpy())
    np.testing.assert_array_equal(pd.DatetimeIndex(forecast["timestamp"]), pd.DatetimeIndex(expected["timestamp"]))


def test_when_finetuning_in_a_job_then_progress_shows_in_the_dagster_log(chronos_runs):
    for job_name in ("chronos_finetuned_job", "chronos_covariates_job"):
        messages = chronos_runs[job_name].log_messages
        assert any("chronos2 fine-tuning: step 2/6: loss" in message for message in messages), job_name
        assert any("eval_loss" in message for message in messages), job_name


def test_when_covariates_are_used_then_the_job_forecasts_differ_from_the_target_alone(chronos_runs, tracking):
    target_alone = logged_frame(chronos_runs["chronos_finetuned_job"].result.run_id, "predictions/test_forecast.parquet")
    with_covariates = logged_frame(chronos_runs["chronos_covariates_job"].result.run_id, "predictions/test_forecast.parquet")
    model_input = logged_frame(chronos_runs["chronos_covariates_job"].result.run_id, "predictions/model_input.parquet")

    assert np.abs(target_alone["prediction"] - with_covariates["prediction"]).mean() > 1e-3
    assert {"Load_Type", "NSM", "CO2(tCO2)"} <= set(model_input.columns)


@pytest.mark.parametrize(("job_name", "yaml_name"), list(JOBS.items()))
def test_each_chronos_job_opens_prefilled_with_its_own_config(job_name, yaml_name):
    job = defs.resolve_job_def(job_name)

    default = job.run_config["ops"]["train_model"]["config"]["config_path"]

    assert default == f"configs/training/{yaml_name}"
    assert job.tags["energy_forecast/gpu"] == "true"
    config = load_config(resolve_config_path(default))
    assert config.model.type == "chronos2"
    assert (config.model.params["mode"], config.covariates) == {
        "chronos2_zeroshot.yaml": ("zero_shot", "none"),
        "chronos2_finetuned.yaml": ("finetune", "none"),
        "chronos2_covariates.yaml": ("finetune", "all"),
    }[yaml_name]


def test_when_a_chronos_yaml_runs_through_complete_training_job_then_it_trains_chronos(
    tmp_path, synthetic_csv, use_data, mlflow_client_env, dagster_instance, monkeypatch
):
    require(importlib.util.find_spec("chronos") is not None, "chronos-forecasting is not installed (pip install -e .[chronos])")
    use_data(synthetic_csv)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tiny = build_chronos2(tmp_path / "tiny")
    config_path, _ = small_config(tmp_path, "chronos2_zeroshot.yaml", params={"pretrained": str(tiny), "context_length": 128})

    outcome = defs.resolve_job_def("complete_training_job").execute_in_process(
        run_config={"ops": {"train_model": {"config": {"config_path": str(config_path)}}}}, instance=dagster_instance
    )

    assert outcome.success
    result = outcome.output_for_node("train_model")
    assert result.model_type == "chronos2" and np.isfinite(result.metrics["pinball_loss"])
    assert MlflowClient(mlflow_client_env).get_run(result.run_id).data.tags["model_type"] == "chronos2"
