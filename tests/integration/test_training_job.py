"""complete_training_job for every traditional model type, against real services.

Dagster stores its runs in PostgreSQL; MLflow is a real server on PostgreSQL whose artifacts go
to an S3 server. For each model type: the run, its metrics and tags exist; the logged model is
the family the YAML named; its files are in the bucket; the registered model reproduces the
logged predictions through the forecast contract, whatever the family.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from pipelines.definitions import defs
from tests.integration.conftest import S3_BUCKET, s3_keys
from tests.integration.helpers import FAST_PARAMS, small_config

pytestmark = pytest.mark.integration

NATIVE_FLAVOUR = {"xgboost": "xgboost", "lightgbm": "lightgbm", "catboost": "catboost"}
ENSEMBLE_CLASS = {"stacking": "StackingForecaster", "voting": "VotingForecaster"}
QUANTILES = [f"q0.{i}" for i in range(1, 10)]


def run_training_job(config_path, instance):
    job = defs.resolve_job_def("complete_training_job")
    return job.execute_in_process(
        run_config={"ops": {"train_model": {"config": {"config_path": str(config_path)}}}}, instance=instance
    )


@pytest.mark.parametrize("model_type", ["xgboost", "lightgbm", "catboost", "stacking", "voting"])
def test_when_complete_training_job_runs_then_mlflow_s3_and_registry_hold_the_named_model(
    model_type, tmp_path, synthetic_csv, use_data, mlflow_client_env, dagster_instance, s3_client
):
    use_data(synthetic_csv)
    config_path, experiment = small_config(tmp_path, f"{model_type}.yaml", params=FAST_PARAMS[model_type])

    outcome = run_training_job(config_path, dagster_instance)

    assert outcome.success
    assert dagster_instance.get_run_by_id(outcome.run_id).is_success  # stored in PostgreSQL
    result = outcome.output_for_node("train_model")
    client = MlflowClient(mlflow_client_env)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["model_type"] == model_type
    for tag in ("approach", "device", "gpu_used", "data_sha256", "git_commit", "horizon"):
        assert run.data.tags[tag], tag
    assert run.data.tags["horizon"] == "96"
    assert run.data.tags["device"] == "cpu" and run.data.tags["gpu_used"] == "false"
    for metric in (
        "test_rmse", "test_mae", "test_r2", "test_mape_nonzero", "test_smape", "test_mase", "baseline_seasonal_naive_weekly_test_rmse",
        "test_pinball_loss", "test_coverage_80", "test_width_80", "val_coverage_80",
    ):
        assert np.isfinite(run.data.metrics[metric]), metric
    assert len(client.get_metric_history(result.run_id, "test_rmse_by_step_model")) == 96
    assert run.data.params["model.type"] == model_type

    # the logged contract model wraps the family the YAML named; boosters also log their raw model
    info = mlflow.models.get_model_info(result.model_uri)
    assert info.metadata["family"] == model_type and info.metadata["lookback_steps"] > 0
    assert info.signature.inputs.input_names()[:3] == ["origin", "timestamp", "Usage_kWh"]
    wrapped = mlflow.pyfunc.load_model(result.model_uri).unwrap_python_model().forecaster
    assert wrapped.name == model_type
    if model_type in NATIVE_FLAVOUR:
        native = [m for m in client.search_logged_models(experiment_ids=[run.info.experiment_id]) if m.source_run_id == result.run_id and m.name == "native_model"]
        assert len(native) == 1 and NATIVE_FLAVOUR[model_type] in mlflow.models.get_model_info(f"models:/{native[0].model_id}").flavors
    else:
        assert type(wrapped).__name__ == ENSEMBLE_CLASS[model_type]
        assert [m.name for m in wrapped.members] == ["xgboost", "lightgbm", "catboost"]

    # artifacts went through the server into the bucket
    keys = s3_keys(s3_client)
    run_prefix = f"artifacts/{run.info.experiment_id}/{result.run_id}/artifacts/"
    for artifact in ("plots/forecast_vs_actual.png", "plots/error_by_horizon.png", "predictions/test_forecast.parquet", "predictions/model_input.parquet", "config/resolved_config.yaml"):
        assert run_prefix + artifact in keys, artifact
    model_id = result.model_uri.removeprefix("models:/")
    assert any(key.startswith(f"artifacts/{run.info.experiment_id}/models/{model_id}/artifacts/") and key.endswith("MLmodel") for key in keys), f"no model files of {model_id} in s3://{S3_BUCKET}"

    # the registered challenger reproduces the logged predictions
    promotion = result.promotion
    assert promotion is not None and promotion.promoted
    aliases = client.get_registered_model(promotion.registered_model).aliases
    assert aliases["challenger"] == promotion.version and aliases["champion"] == promotion.version
    model_input = pd.read_parquet(mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path="predictions/model_input.parquet"))
    logged = pd.read_parquet(mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path="predictions/test_forecast.parquet"))
    reloaded = mlflow.pyfunc.load_model(f"models:/{promotion.registered_model}@challenger")
    answer = reloaded.predict(model_input)
    expected = logged[logged["origin"].isin(answer["origin"].unique())].reset_index(drop=True)
    assert answer["origin"].nunique() == model_input["origin"].nunique() == logged["origin"].nunique()  # the 14 test days
    np.testing.assert_array_equal(answer["prediction"].to_numpy(), expected["prediction"].to_numpy())
    np.testing.assert_array_equal(answer[QUANTILES].to_numpy(), expected[QUANTILES].to_numpy())
