"""Optuna tuning on small synthetic data: a study resumes after an interruption (SQLite and
PostgreSQL), trials are nested MLflow runs, and the tuned YAML reproduces the tuned score."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from energy_forecast.data import load_series
from energy_forecast.tracking import Tracker
from energy_forecast.training import evaluate, load_config
from energy_forecast.tuning import tune, tuned_path
from tests.conftest import SMALL_SPLIT
from tests.integration.helpers import small_config

SEARCH_SPACE = {
    "max_depth": {"type": "int", "low": 2, "high": 6},
    "learning_rate": {"type": "float", "low": 0.02, "high": 0.3, "log": True},
    "subsample": {"type": "categorical", "choices": [0.6, 0.8, 1.0]},
}
FAST = {"features": {"train_origin_every": "1D"}}


def tuning_config(directory: Path, storage: str, trials: int = 3, **tuning) -> Path:
    path, _ = small_config(
        directory, "xgboost.yaml", params={"n_estimators": 30},
        tuning={"trials": trials, "storage": storage, "search_space": SEARCH_SPACE, **tuning}, **FAST,
    )
    return path


class Interrupt(KeyboardInterrupt):
    """Ctrl-C after the n-th trial of this invocation."""


def interrupt_after(n: int):
    seen = []

    def progress(update) -> None:
        seen.append(update)
        if len(seen) == n:
            raise Interrupt

    return progress


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'optuna.db'}"
    postgres, make_database = request.getfixturevalue("postgres"), request.getfixturevalue("postgres_database")
    return postgres.url(make_database())


def test_when_a_study_is_interrupted_then_tuning_again_resumes_it(tmp_path, synthetic_csv, use_data, storage):
    use_data(synthetic_csv)
    config_path = tuning_config(tmp_path, storage, trials=3)
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")

    with pytest.raises(Interrupt):
        tune(config_path, tracker=tracker, progress=interrupt_after(2))
    name = "steel_industry-day_ahead-xgboost_small"
    before = optuna.load_study(study_name=name, storage=storage).get_trials()
    assert [t.state for t in before] == [optuna.trial.TrialState.COMPLETE] * 2
    assert not tuned_path(config_path).exists()

    result = tune(config_path, tracker=tracker)

    after = optuna.load_study(study_name=name, storage=storage).get_trials()
    assert result.trials_run == 1 and result.trials_finished == 3 and len(after) == 3
    assert [t.params for t in after[:2]] == [t.params for t in before]  # the interrupted trials are kept, not redone
    assert [t.value for t in after[:2]] == [t.value for t in before]
    assert result.best_value == min(t.value for t in after)
    # a third invocation has nothing left to run and rewrites the same YAML
    assert tune(config_path, tracker=tracker).trials_run == 0

    client = MlflowClient(tracker.tracking_uri)
    runs = client.search_runs([tracker.experiment_id(yaml.safe_load(config_path.read_text())["tracking"]["experiment"])])
    parents = sorted((r for r in runs if "mlflow.parentRunId" not in r.data.tags), key=lambda r: r.info.start_time)
    trials = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert parents[0].info.status in ("FAILED", "KILLED") and [p.info.status for p in parents[1:]] == ["FINISHED", "FINISHED"]
    assert sorted(int(r.data.tags["optuna_trial"]) for r in trials) == [0, 1, 2]
    assert {r.data.tags["mlflow.parentRunId"] for r in trials} == {parents[0].info.run_id, parents[1].info.run_id}
    assert parents[1].data.metrics["best_val_rmse"] == pytest.approx(result.best_value)
    assert "password" not in parents[1].data.tags["optuna_storage"]


def test_when_training_from_the_tuned_yaml_then_it_reproduces_the_tuned_score(tmp_path, synthetic_csv, use_data):
    use_data(synthetic_csv)
    config_path = tuning_config(tmp_path, f"sqlite:///{tmp_path / 'optuna.db'}", trials=2)
    result = tune(config_path)

    first = optuna.load_study(study_name=result.study_name, storage=f"sqlite:///{tmp_path / 'optuna.db'}").trials[0]
    # the YAML's own values start a new study; its subsample 0.7 is no choice, so that one is sampled
    assert {k: first.params[k] for k in ("max_depth", "learning_rate")} == {"max_depth": 5, "learning_rate": 0.03}
    assert first.params["subsample"] in (0.6, 0.8, 1.0)
    tuned = Path(result.tuned_config)
    assert tuned == tmp_path / "xgboost_small_tuned.yaml"
    text = tuned.read_text()
    assert f"Study '{result.study_name}'" in text and "optuna.db" in text.splitlines()[1]
    assert yaml.safe_load(text) == {"extends": "xgboost_small.yaml", "model": {"params": result.best_params}}
    config = load_config(tuned)
    assert {k: config.model.params[k] for k in SEARCH_SPACE} == result.best_params
    evaluation = evaluate(config, load_series(config.data))
    assert evaluation.validation_metrics["rmse"] == pytest.approx(result.best_value, rel=1e-9, abs=1e-9)


def test_when_trials_are_scored_on_several_windows_then_optunas_pruner_stops_bad_ones_early(tmp_path, synthetic_csv, use_data):
    use_data(synthetic_csv)
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    path, _ = small_config(
        tmp_path, "xgboost.yaml", params={"n_estimators": 30},
        split={**SMALL_SPLIT, "validation_windows": 2},  # two fortnights before the test, each trained only on what precedes it
        features={"train_origin_every": "1D", "seasonal_lags": ["1d", "7d"], "seasonal_means": [["1d", 7]]},
        tuning={"trials": 8, "storage": storage, "sampler": "random", "pruner": {"type": "median", "n_startup_trials": 2},
                "search_space": {"learning_rate": {"type": "float", "low": 0.001, "high": 0.3, "log": True}}},
    )

    result = tune(path)

    trials = optuna.load_study(study_name=result.study_name, storage=storage).get_trials()
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    assert result.trials_pruned == len(pruned) >= 1
    assert all(list(t.intermediate_values) == [0] for t in pruned)  # stopped after the first window
    assert all(list(t.intermediate_values) == [0, 1] for t in trials if t.state == optuna.trial.TrialState.COMPLETE)
    config = load_config(result.tuned_config)
    assert config.split.validation_windows == 2
    assert evaluate(config, load_series(config.data)).validation_metrics["rmse"] == pytest.approx(result.best_value, rel=1e-9, abs=1e-9)


def test_when_tune_runs_from_the_command_line_then_it_goes_through_dagster_and_prints_progress(tmp_path, synthetic_csv, use_data, monkeypatch, capsys):
    use_data(synthetic_csv)
    config_path = tuning_config(tmp_path, "", trials=5)  # empty storage: the default beside the MLflow store
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    from pipelines.cli import main

    main(["tune", str(config_path), "--trials", "2"])

    captured = capsys.readouterr()
    progress = [line for line in captured.err.splitlines() if "tuning steel_industry-day_ahead-xgboost_small: trial" in line]
    assert len(progress) == 2 and "finished 2/2; best " in progress[-1] and ", left ~" in progress[-1], captured.err
    assert "study 'steel_industry-day_ahead-xgboost_small' in sqlite:///" in captured.out
    assert (tmp_path / "optuna.db").is_file() and (tmp_path / "xgboost_small_tuned.yaml").is_file()
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
    assert [r.job_name for r in runs] == ["tune_model_job"] and runs[0].is_success


def test_when_the_tuned_yaml_cannot_be_written_then_tuning_refuses_before_any_trial(tmp_path, synthetic_csv, use_data):
    from energy_forecast.config import ConfigError

    use_data(synthetic_csv)
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    config_path = tuning_config(tmp_path, storage, trials=1)
    not_a_folder = tmp_path / "plain-file"
    not_a_folder.write_text("")
    with pytest.raises(ConfigError, match=r"xgboost_small\.yaml: the tuned YAML .*plain-file/tuned\.yaml cannot be written .*output_path"):
        tune(config_path, output=not_a_folder / "tuned.yaml")
    assert not (tmp_path / "optuna.db").exists()  # no study was opened
