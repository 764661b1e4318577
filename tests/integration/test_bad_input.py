"""Bad input fails with a message naming file, field or row, and leaves no MLflow run RUNNING.

Through the CLI (as `make train` runs it) and through the Dagster job (as the Launchpad runs it),
against the real MLflow server. A failure inside a started run marks it FAILED and moves no alias.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from energy_forecast.data.synthetic import synthetic_steel_frame
from pipelines.cli import step_failure_messages
from pipelines.definitions import defs
from tests.conftest import CONFIGS, PROJECT_DIR
from tests.integration.helpers import FAST_PARAMS, small_config

pytestmark = pytest.mark.integration


def corrupt(rows: pd.DataFrame, problem: str) -> pd.DataFrame:
    rows = rows.copy()
    if problem == "missing column":
        return rows.drop(columns=["NSM"])
    if problem == "unparseable timestamp":
        rows.loc[100, "date"] = "2018-01-02 01:15"
    elif problem == "duplicate stamp":
        rows.loc[101, "date"] = rows.loc[100, "date"]
    elif problem == "long gap":
        rows = rows.drop(index=range(200, 300))
    elif problem == "NaN target":
        rows["Usage_kWh"] = rows["Usage_kWh"].astype(object)
        rows.loc[300, "Usage_kWh"] = ""
    elif problem == "negative target":
        rows.loc[300, "Usage_kWh"] = -3.0
    return rows


EXPECTED = {
    "missing column": "missing columns ['NSM']",
    "unparseable timestamp": "column 'date': row 101 (line 102): cannot parse '2018-01-02 01:15'",
    "duplicate stamp": "duplicate timestamp",
    "long gap": "gap of 100 missing step(s)",
    "NaN target": "target column 'Usage_kWh': row 301 (line 302): missing value",
    "negative target": "target column 'Usage_kWh': row 301 (line 302): negative value -3.0",
}


def running_runs(client: MlflowClient) -> list:
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments, filter_string="attributes.status = 'RUNNING'") if experiments else []


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True, env=env, cwd=PROJECT_DIR, timeout=300)


@pytest.mark.parametrize("problem", list(EXPECTED))
def test_when_the_data_is_bad_then_cli_and_job_name_the_problem_and_start_no_run(problem, tmp_path, mlflow_client_env, dagster_instance):
    csv = tmp_path / "bad.csv"
    corrupt(synthetic_steel_frame(days=70, seed=3), problem).to_csv(csv, index=False, encoding="utf-8-sig", lineterminator="\r\n")
    config_path, experiment = small_config(tmp_path, "xgboost.yaml", params=FAST_PARAMS["xgboost"])
    client = MlflowClient(mlflow_client_env)

    environment = {**os.environ, "DATA_PATH": str(csv), "DAGSTER_HOME": str(tmp_path / "dagster")}
    completed = cli("train", str(config_path), env=environment)
    assert completed.returncode == 2, completed.stderr[-2000:]
    assert str(csv) in completed.stderr and EXPECTED[problem] in completed.stderr

    os.environ["DATA_PATH"] = str(csv)
    try:
        outcome = defs.resolve_job_def("complete_training_job").execute_in_process(
            run_config={"ops": {"train_model": {"config": {"config_path": str(config_path)}}}}, instance=dagster_instance, raise_on_error=False
        )
    finally:
        del os.environ["DATA_PATH"]
    assert not outcome.success
    (failure,) = step_failure_messages(outcome)
    assert failure.startswith("DataValidationError: ") and EXPECTED[problem] in failure
    assert client.get_experiment_by_name(experiment) is None  # nothing was written
    assert running_runs(client) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"model": {"type": "randomforest"}}, "model.type: unknown model type 'randomforest'; valid types:"),
        ({"model": {"params": {"trees": 5}}}, "model.params: unknown parameter 'trees' for xgboost; valid parameters:"),
        ({"split": {"validation_end": "2018-01-01"}}, "split: train_end (2018-11-01 00:00:00) must come before validation_end (2018-01-01 00:00:00)"),
    ],
)
def test_when_the_config_is_bad_then_the_cli_names_file_and_field(change, expected, tmp_path, synthetic_csv, mlflow_client_env):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"extends": str(CONFIGS / "training" / "xgboost.yaml"), **change}))
    completed = cli("train", str(path), env={**os.environ, "DATA_PATH": str(synthetic_csv), "DAGSTER_HOME": str(tmp_path / "dagster")})
    assert completed.returncode == 2
    assert f"error: {path}:" in completed.stderr
    assert expected in completed.stderr
    assert running_runs(MlflowClient(mlflow_client_env)) == []
    assert not (tmp_path / "dagster").exists() or not any((tmp_path / "dagster").iterdir())  # nothing launched


def test_when_a_started_run_fails_then_it_is_failed_in_mlflow_and_no_alias_moves(tmp_path, synthetic_csv, use_data, mlflow_client_env, dagster_instance, monkeypatch):
    use_data(synthetic_csv)
    config_path, experiment = small_config(tmp_path, "lightgbm.yaml", params=FAST_PARAMS["lightgbm"])
    job = defs.resolve_job_def("complete_training_job")
    run_config = {"ops": {"train_model": {"config": {"config_path": str(config_path)}}}}
    first = job.execute_in_process(run_config=run_config, instance=dagster_instance).output_for_node("train_model")
    client = MlflowClient(mlflow_client_env)
    name = first.promotion.registered_model
    aliases_before = client.get_registered_model(name).aliases

    from energy_forecast.models.lightgbm import LightGBMForecaster

    def broken_fit(self, *args):
        raise RuntimeError("simulated failure while fitting")

    monkeypatch.setattr(LightGBMForecaster, "_fit_matrix", broken_fit)
    outcome = job.execute_in_process(run_config=run_config, instance=dagster_instance, raise_on_error=False)

    assert not outcome.success
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id], order_by=["attributes.start_time DESC"])
    assert [run.info.status for run in runs] == ["FAILED", "FINISHED"]
    assert client.get_registered_model(name).aliases == aliases_before
    assert len(client.search_model_versions(f"name = '{name}'")) == 1
    assert running_runs(client) == []


def test_when_a_better_model_arrives_then_it_takes_champion_and_a_worse_one_does_not(tmp_path, synthetic_csv, use_data, mlflow_client_env, dagster_instance):
    use_data(synthetic_csv)
    job = defs.resolve_job_def("complete_training_job")
    experiment = "test-promotion"

    def train(base: str, params: dict) -> object:
        path, _ = small_config(tmp_path, base, params=params, experiment=experiment)
        return job.execute_in_process(run_config={"ops": {"train_model": {"config": {"config_path": str(path)}}}}, instance=dagster_instance).output_for_node("train_model")

    weak = train("xgboost.yaml", {"n_estimators": 2, "learning_rate": 0.01})
    strong = train("xgboost.yaml", {"n_estimators": 80})
    weaker = train("lightgbm.yaml", {"n_estimators": 2, "learning_rate": 0.01})
    assert weak.promotion.promoted and strong.promotion.promoted and not weaker.promotion.promoted
    client = MlflowClient(mlflow_client_env)
    aliases = client.get_registered_model(strong.promotion.registered_model).aliases
    assert aliases == {"champion": strong.promotion.version, "challenger": weaker.promotion.version}
    tags = client.get_model_version(weaker.promotion.registered_model, weaker.promotion.version).tags
    assert tags["promotion.promoted"] == "false" and tags["promotion.champion_version"] == strong.promotion.version
    assert float(tags["promotion.challenger_value"]) >= float(tags["promotion.champion_value"])
    assert client.get_run(weaker.run_id).data.tags["promotion.decision"].startswith(f"kept champion v{strong.promotion.version}")
