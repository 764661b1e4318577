"""The code location loads, its Launchpad defaults are right, and a job runs on local storage."""

from __future__ import annotations

import json

import dagster as dg
import pytest
from mlflow.tracking import MlflowClient

from pipelines.definitions import defs
from pipelines.jobs import GPU_TAG
from tests.conftest import PROJECT_DIR
from tests.integration.helpers import FAST_PARAMS, small_config


def test_when_definitions_load_then_every_job_is_there_and_runs_in_one_process():
    names = {job.name for job in defs.resolve_all_job_defs()}
    assert {"complete_training_job", "compare_models_job"} <= names
    for job in defs.resolve_all_job_defs():
        if not job.name.startswith("__"):
            assert job.executor_def is dg.in_process_executor, job.name


def test_when_complete_training_job_opens_then_the_launchpad_holds_the_xgboost_config():
    job = defs.resolve_job_def("complete_training_job")
    path = job.run_config["ops"]["train_model"]["config"]["config_path"]
    assert path == "configs/training/xgboost.yaml" and (PROJECT_DIR / path).is_file()
    assert job.tags[GPU_TAG] == "false" and "dagster-k8s/config" not in job.tags
    comparison = defs.resolve_job_def("compare_models_job").run_config["ops"]["comparison_configs"]["config"]["comparison_path"]
    assert (PROJECT_DIR / comparison).is_file()


def test_when_tune_model_job_opens_then_the_launchpad_holds_a_config_with_a_tuning_block():
    from energy_forecast.training import load_config

    job = defs.resolve_job_def("tune_model_job")
    assert job.executor_def is dg.in_process_executor and job.tags[GPU_TAG] == "false"
    path = job.run_config["ops"]["tune_model"]["config"]["config_path"]
    assert path == "configs/training/xgboost.yaml"
    tuning = load_config(PROJECT_DIR / path).tuning
    assert tuning is not None and tuning.search_space and (tuning.trials or tuning.timeout)


def test_when_a_job_benefits_from_a_gpu_then_its_tags_say_so_for_docker_and_kubernetes():
    for name in ("chronos_zeroshot_job", "chronos_finetuned_job", "chronos_covariates_job"):
        tags = defs.resolve_job_def(name).tags
        assert tags[GPU_TAG] == "true"
        assert json.loads(tags["dagster-k8s/config"])["container_config"]["resources"]["limits"] == {"nvidia.com/gpu": 1}


def test_when_the_job_runs_on_local_storage_then_it_succeeds_with_metadata(tmp_path, synthetic_csv, use_data, monkeypatch):
    use_data(synthetic_csv)
    config_path, experiment = small_config(tmp_path, "xgboost.yaml", params=FAST_PARAMS["xgboost"])
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)  # the resource's default, as `make` sets it
    job = defs.get_job_def("complete_training_job")
    with dg.DagsterInstance.ephemeral() as instance:
        outcome = job.execute_in_process(
            run_config={"ops": {"train_model": {"config": {"config_path": str(config_path)}}}},
            instance=instance,
        )
        materializations = outcome.asset_materializations_for_node("train_model")
    assert outcome.success
    result = outcome.output_for_node("train_model")
    metadata = materializations[0].metadata
    assert materializations[0].asset_key == dg.AssetKey(["models", "day_ahead", "xgboost_small"])
    assert {"test_rmse", "leaderboard", "forecast_vs_actual", "error_by_horizon", "mlflow_run_id", "promotion"} <= set(metadata)
    assert metadata["forecast_vs_actual"].value.startswith("![forecast_vs_actual.png](data:image/png;base64,")
    run = MlflowClient(tracking_uri).get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["model_type"] == "xgboost"
    assert run.info.artifact_uri.startswith((tmp_path / "artifacts").as_uri())


@pytest.mark.parametrize("bad_path", ["configs/training/absent.yaml"])
def test_when_the_config_path_is_wrong_then_the_job_fails_naming_it(bad_path):
    with dg.DagsterInstance.ephemeral() as instance:
        outcome = defs.get_job_def("complete_training_job").execute_in_process(
            run_config={"ops": {"train_model": {"config": {"config_path": bad_path}}}}, instance=instance, raise_on_error=False
        )
    from pipelines.cli import step_failure_messages

    assert not outcome.success
    assert step_failure_messages(outcome) == [f"ConfigError: {PROJECT_DIR / bad_path}: config file not found"]
