"""The operating loop on the embedded default (SQLite instance, files), on the real data.

After a champion is trained (what ``make demo`` leaves behind), a replay of three December days,
with a broken day file delivered among them, must materialize ``daily_forecast`` for the three
following days and ``forecast_accuracy`` for the two days that had been forecast, every check
passing; the broken file lands in quarantine with its reason and the next good day still goes
through. Re-delivering a file changes nothing.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from energy_forecast.data.loading import file_sha256, load_series
from energy_forecast.replay import DayFile
from energy_forecast.store import ForecastStore
from energy_forecast.tracking import Tracker
from energy_forecast.training import load_config, train
from tests.conftest import CONFIGS, PROJECT_DIR

pytestmark = [pytest.mark.integration, pytest.mark.real_data]

FIXTURES = PROJECT_DIR / "tests" / "fixtures" / "replay"


@dataclass
class Loop:
    directory: Path
    defs: dg.Definitions
    operations: object
    instance: dg.DagsterInstance
    champion: str


def operations_yaml(directory: Path, models: list[str], **overrides) -> Path:
    body = yaml.safe_load((CONFIGS / "operations.yaml").read_text())
    body.update(
        data=str(CONFIGS / "data" / "steel_industry.yaml"),
        task=str(CONFIGS / "tasks" / "day_ahead.yaml"),
        series=str(directory / "live" / "Steel_industry_data.csv"),
        landing=str(directory / "landing"),
        models=models,
        alert_webhook="",
        **overrides,
    )
    path = directory / "operations.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def loop(real_data, tmp_path_factory) -> Iterator[Loop]:
    directory = tmp_path_factory.mktemp("operations")
    small = directory / "xgboost_small.yaml"
    small.write_text(yaml.safe_dump({"extends": str(CONFIGS / "training" / "xgboost.yaml"), "model": {"params": {"n_estimators": 80}}}))
    environment = {
        "DATA_PATH": str(real_data),
        "DAGSTER_HOME": str(directory / "dagster"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{directory / 'mlflow.db'}",
        "FORECAST_STORE_URL": f"sqlite:///{directory / 'forecasts.db'}",
        "FORECAST_PLOTS_URI": str(directory / "plots"),
        "OPERATIONS_CONFIG": str(operations_yaml(directory, [str(small)])),
    }
    (directory / "dagster").mkdir()
    (directory / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        patch.delenv("ENERGY_FORECAST_NOW", raising=False)
        result = train(load_config(small), Tracker())  # what `make demo` leaves: a champion
        import pipelines.definitions

        definitions = importlib.reload(pipelines.definitions)
        with dg.DagsterInstance.get() as instance:
            yield Loop(directory, definitions.defs, definitions.operations, instance, result.promotion.version)
    importlib.reload(pipelines.definitions)


def broken_day() -> DayFile:
    payload = (FIXTURES / "steel_industry-2018-12-01-resent.csv").read_bytes()
    return DayFile(pd.Timestamp("2018-12-01"), "steel_industry-2018-12-01-resent.csv", payload)


@pytest.fixture(scope="module")
def replayed(loop):
    from pipelines.replay import replay

    report = replay(loop.operations, loop.defs, loop.instance, start=pd.Timestamp("2018-12-01"), days=3, extra={1: broken_day()})
    return report


def materialized(instance: dg.DagsterInstance, key: str) -> list[str]:
    return sorted(instance.get_materialized_partitions(dg.AssetKey(key)))


def test_a_three_day_replay_forecasts_three_days_and_scores_two(loop, replayed):
    assert replayed.days == ["2018-12-01", "2018-12-02", "2018-12-03"]
    assert not replayed.failed(), replayed.failed()
    assert materialized(loop.instance, "daily_forecast") == ["2018-12-02", "2018-12-03", "2018-12-04"]
    assert materialized(loop.instance, "forecast_accuracy") == ["2018-12-02", "2018-12-03"]
    series = load_series(loop.operations.live_data).frame
    assert series.index[-1] == pd.Timestamp("2018-12-03 23:45")
    rows = ForecastStore().read(registered_model=loop.operations.model_name)
    assert sorted(rows["origin"].dt.strftime("%Y-%m-%d").unique()) == ["2018-12-02", "2018-12-03", "2018-12-04"]
    assert set(rows["model_version"]) == {loop.champion}


def test_every_check_of_the_loop_passed(loop, replayed):
    graph = loop.defs.resolve_asset_graph()
    keys = [key for node in graph.asset_nodes if node.key.to_user_string() in ("meter_readings", "daily_forecast") for key in node.check_keys]
    latest = loop.instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    assert {key.name for key in latest} == {"schema", "gaps", "duplicates", "values", "freshness", "sanity"}
    failed = {key.name: record.status for key, record in latest.items() if record.status != AssetCheckExecutionRecordStatus.SUCCEEDED}
    assert not failed


def test_the_broken_file_lands_in_quarantine_with_its_reason_and_the_next_day_still_goes_through(loop, replayed):
    landing = Path(loop.operations.landing)
    reason = (landing / "quarantine" / "steel_industry-2018-12-01-resent.csv.reason.txt").read_text()
    assert "non-numeric value 'n/a'" in reason and "Usage_kWh" in reason
    assert sorted(p.name for p in (landing / "processed").iterdir()) == [f"steel_industry-2018-12-0{d}.csv" for d in (1, 2, 3)]
    assert "2018-12-02" in materialized(loop.instance, "forecast_accuracy")  # the day after the broken file


def test_accuracy_and_drift_are_recorded_with_numbers_and_plots(loop, replayed):
    event = loop.instance.get_latest_materialization_event(dg.AssetKey("forecast_accuracy"))
    metadata = event.asset_materialization.metadata
    for label in ("rmse", "mae", "coverage_80", "naive_rmse", "rolling_7d_rmse", "rolling_28d_rmse", "backtest_rmse", "rolling_7d_ratio_to_backtest"):
        assert label in metadata, label
    assert "data:image/png;base64" in metadata["daily_rmse"].value
    drift = loop.instance.get_latest_materialization_event(dg.AssetKey("drift")).asset_materialization.metadata
    assert drift["max_psi"].value >= 0 and "Usage_kWh" in drift["table"].value


def test_when_a_file_is_delivered_again_then_nothing_changes(loop, replayed):
    from energy_forecast.ingest import landing_at
    from pipelines.replay import Loop as Daemon

    before = file_sha256(loop.operations.series)
    landing = landing_at(loop.operations.landing)
    landing.put("steel_industry-2018-12-02-again.csv", (Path(loop.operations.landing) / "processed" / "steel_industry-2018-12-02.csv").read_bytes())
    daemon = Daemon(loop.defs, loop.instance)
    daemon.settle()

    assert file_sha256(loop.operations.series) == before
    event = loop.instance.get_latest_materialization_event(dg.AssetKey("meter_readings"))
    assert json.loads(json.dumps(event.asset_materialization.metadata["completed_days"].value)) == []
    assert event.asset_materialization.metadata["appended"].value == 0
    assert [run["job"] for run in daemon.report.runs if run["job"] != "drift_job"] == ["ingest_job"]  # no forecast, no accuracy
    assert os.path.isfile(Path(loop.operations.landing) / "processed" / "steel_industry-2018-12-02-again.csv")
