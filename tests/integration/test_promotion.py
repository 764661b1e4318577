"""Atomic promotion against a real MLflow server (PostgreSQL, S3 artifacts).

Two promotions race: B (RMSE 9) reads the champion (RMSE 10) first and is slow to decide; A
(RMSE 8, the better) starts half a second later. Unserialized, both read champion 10, A moves the
alias, then B overwrites it: the worse model is champion. Serialized (a PostgreSQL advisory lock
on the stack, a file lock embedded), A waits for B and then beats B. The unlocked case is run too,
to show the interleaving really produces the bug this guards against.

Champions scored on other data or another split are re-scored on the challenger's test period.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from mlflow.tracking import MlflowClient

import energy_forecast.tracking as tracking_module
from energy_forecast.promotion import decide
from energy_forecast.tracking import SCORED_ON, Tracker
from energy_forecast.training import load_config, rescore, train
from tests.integration.helpers import FAST_PARAMS, small_config

pytestmark = pytest.mark.integration

METRIC = "test_rmse"
SCORED = "data sha256 0123456789abcdef, target Usage_kWh, test origins 2018-12-01 00:00 to 2018-12-31 00:00 (31), horizon 96 x 15min"


def new_version(
    client: MlflowClient, experiment_id: str, name: str, rmse: float, scored_on: str = SCORED
) -> tuple[str, str]:
    """A finished run with ``test_rmse`` and a version of ``name`` registered from it."""
    run = client.create_run(experiment_id, tags={SCORED_ON: scored_on})
    client.log_metric(run.info.run_id, METRIC, rmse)
    client.set_terminated(run.info.run_id)
    version = client.create_model_version(name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    return version.version, run.info.run_id


@pytest.fixture
def registry(mlflow_server: str):
    client = MlflowClient(mlflow_server)
    name = f"race-{uuid.uuid4().hex[:8]}"
    experiment_id = client.create_experiment(name)
    client.create_registered_model(name)
    return client, experiment_id, name


@pytest.mark.parametrize("lock", ["postgres", "file", "none"])
def test_when_two_promotions_race_then_the_better_model_is_champion(
    lock, registry, mlflow_server, postgres, postgres_database, tmp_path, monkeypatch
):
    client, experiment_id, name = registry
    tracker = Tracker(mlflow_server)
    if lock == "postgres":
        monkeypatch.setenv("PROMOTION_LOCK_URL", postgres.url(postgres_database()))
    else:
        monkeypatch.delenv("PROMOTION_LOCK_URL", raising=False)
        monkeypatch.setenv("PROMOTION_LOCK_DIR", str(tmp_path / "locks"))
    if lock == "none":

        @contextmanager
        def no_lock(*args, **kwargs):
            yield "no lock"

        monkeypatch.setattr(tracking_module, "promotion_lock", no_lock)

    def slow_for_b(metric, challenger, champion_version, champion):  # B reads the champion, then dawdles
        if challenger == 9.0:
            time.sleep(2.0)
        return decide(metric, challenger, champion_version, champion)

    monkeypatch.setattr(tracking_module, "decide", slow_for_b)
    first, first_run = new_version(client, experiment_id, name, 10.0)
    assert tracker.promote(name, first, run_id=first_run, metric=METRIC, value=10.0, scored_on=SCORED).promoted
    a, a_run = new_version(client, experiment_id, name, 8.0)
    b, b_run = new_version(client, experiment_id, name, 9.0)

    def promote(version, run_id, value):
        return tracker.promote(name, version, run_id=run_id, metric=METRIC, value=value, scored_on=SCORED)

    with ThreadPoolExecutor(max_workers=2) as pool:
        b_future = pool.submit(promote, b, b_run, 9.0)
        time.sleep(0.5)
        a_future = pool.submit(promote, a, a_run, 8.0)
        outcomes = {b: b_future.result(timeout=60), a: a_future.result(timeout=60)}  # re-raises a thread's error

    champion = client.get_registered_model(name).aliases["champion"]
    if lock == "none":  # the race this module exists for: both beat 10, the last writer won
        assert outcomes[a].champion_version == outcomes[b].champion_version == first
        assert champion == b
        return
    assert champion == a
    assert outcomes[b].promoted and outcomes[b].champion_version == first
    assert outcomes[a].promoted and outcomes[a].champion_version == b  # A decided after B, against B
    tags = client.get_model_version(name, a).tags
    assert tags["promotion.champion_version"] == b and float(tags["promotion.champion_value"]) == 9.0


def test_when_the_champion_was_scored_elsewhere_then_it_is_not_compared_unless_rescored(
    registry, mlflow_server, tmp_path, monkeypatch
):
    client, experiment_id, name = registry
    monkeypatch.setenv("PROMOTION_LOCK_DIR", str(tmp_path / "locks"))
    tracker = Tracker(mlflow_server)
    first, first_run = new_version(client, experiment_id, name, 20.0, scored_on="data sha256 ffff, another test period")
    assert tracker.promote(
        name, first, run_id=first_run, metric=METRIC, value=20.0, scored_on="data sha256 ffff, another test period"
    ).promoted
    second, second_run = new_version(client, experiment_id, name, 8.0)

    kept = tracker.promote(
        name, second, run_id=second_run, metric=METRIC, value=8.0, scored_on=SCORED
    )  # nothing re-scores it

    assert not kept.promoted and "nothing re-scores it" in kept.decision
    assert client.get_registered_model(name).aliases["champion"] == first
    rescored = []
    outcome = tracker.promote(
        name,
        second,
        run_id=second_run,
        metric=METRIC,
        value=8.0,
        scored_on=SCORED,
        rescore=lambda uri: rescored.append(uri) or 7.5,
    )
    assert rescored == [f"models:/{name}/{first}"]
    assert not outcome.promoted and "7.5000" in outcome.decision  # 8.0 >= the champion's 7.5 on the same test period
    tags = client.get_model_version(name, second).tags
    assert (
        tags["promotion.champion_rescored"].startswith(f"champion v{first} re-scored")
        and float(tags["promotion.champion_value"]) == 7.5
    )


def test_when_a_trained_champion_is_rescored_then_it_is_scored_like_evaluate(
    tmp_path, synthetic_csv, use_data, mlflow_client_env, monkeypatch
):
    """A champion trained on another split is re-scored on the challenger's test period; re-scoring a
    model on its own test period reproduces the test RMSE its run logged."""
    use_data(synthetic_csv)
    monkeypatch.setenv("PROMOTION_LOCK_DIR", str(tmp_path / "locks"))
    first_path, experiment = small_config(tmp_path, "xgboost.yaml", params=FAST_PARAMS["xgboost"])
    champion = train(load_config(first_path), Tracker())
    assert champion.promotion.promoted
    later = tmp_path / "later"
    later.mkdir()
    shifted = {"train_end": "2018-02-19", "validation_end": "2018-03-01", "test_end": "2018-03-12", "validation_windows": 1}
    second_path, _ = small_config(
        later, "xgboost.yaml", params={"n_estimators": 5}, experiment=experiment, split=shifted
    )

    challenger = train(load_config(second_path), Tracker())

    assert challenger.tags[SCORED_ON] != champion.tags[SCORED_ON]
    tags = (
        MlflowClient(mlflow_client_env)
        .get_model_version(challenger.registered_model, challenger.registered_version)
        .tags
    )
    assert tags["promotion.champion_rescored"].startswith(f"champion v{champion.registered_version} re-scored")
    expected = rescore(challenger.config, f"models:/{champion.registered_model}/{champion.registered_version}", "rmse")
    assert float(tags["promotion.champion_value"]) == pytest.approx(expected, abs=1e-6)
    assert expected != pytest.approx(champion.metrics["rmse"])  # another test period, another score
    own = rescore(champion.config, f"models:/{champion.registered_model}/{champion.registered_version}", "rmse")
    assert own == pytest.approx(champion.metrics["rmse"], rel=1e-9)
