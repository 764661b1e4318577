"""The loop's gates and alarms, on the 70-day synthetic series (SQLite instance, local MLflow):

* the blocking check stops a promotion (and a passing one lets it through);
* the retraining sensor fires on a shifted target or a degraded accuracy, and not otherwise;
* a failed run and a failed check reach an HTTP receiver on loopback as JSON alerts.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from energy_forecast.data.loading import file_rows
from energy_forecast.replay import start_live_series
from tests.conftest import CONFIGS, SMALL_SPLIT
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration


class Receiver:
    """An HTTP endpoint on loopback that keeps every JSON body posted to it."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  (http.server's name)
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                """Quiet."""

        self.server = HTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def setup_loop(directory: Path, synthetic_csv: Path, patch: pytest.MonkeyPatch, *, min_skill: float, webhook: str = "", **retraining) -> object:
    small = directory / "xgboost_small.yaml"
    small.write_text(yaml.safe_dump({"extends": str(CONFIGS / "training" / "xgboost.yaml"), "split": SMALL_SPLIT, "model": {"params": {"n_estimators": 40}}}))
    body = yaml.safe_load((CONFIGS / "operations.yaml").read_text())
    body.update(
        data=str(CONFIGS / "data" / "steel_industry.yaml"), task=str(CONFIGS / "tasks" / "day_ahead.yaml"),
        series=str(directory / "live.csv"), landing=str(directory / "landing"), models=[str(small)], alert_webhook=webhook,
        first_forecast_day="2018-02-01", promotion={"min_skill_vs_naive": min_skill},
        drift={"reference_start": "2018-01-01", "reference_end": "2018-02-12", "recent_days": 14},
        retraining={**body["retraining"], **retraining},
    )
    (directory / "operations.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    (directory / "dagster").mkdir()
    (directory / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    for name, value in {
        "DATA_PATH": str(synthetic_csv), "DAGSTER_HOME": str(directory / "dagster"), "MLFLOW_TRACKING_URI": f"sqlite:///{directory / 'mlflow.db'}",
        "FORECAST_STORE_URL": f"sqlite:///{directory / 'forecasts.db'}", "FORECAST_PLOTS_URI": str(directory / "plots"),
        "OPERATIONS_CONFIG": str(directory / "operations.yaml"),
    }.items():
        patch.setenv(name, value)
    import pipelines.definitions

    return importlib.reload(pipelines.definitions)


@pytest.fixture
def restore_definitions() -> Iterator[None]:
    yield
    import pipelines.definitions

    importlib.reload(pipelines.definitions)


def materialize_models(definitions, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return definitions.defs.resolve_job_def("train_models_job").execute_in_process(instance=instance, raise_on_error=False)


@pytest.mark.parametrize(("min_skill", "promoted"), [(0.99, False), (-10.0, True)])
def test_the_blocking_check_decides_whether_a_new_model_may_be_promoted(min_skill, promoted, tmp_path, synthetic_csv, monkeypatch, restore_definitions):
    definitions = setup_loop(tmp_path, synthetic_csv, monkeypatch, min_skill=min_skill)
    with dg.DagsterInstance.get() as instance:
        result = materialize_models(definitions, instance)

        model_events = instance.get_latest_materialization_event(dg.AssetKey("model_xgboost_small"))
        promotion_events = instance.get_latest_materialization_event(dg.AssetKey("promotion_xgboost_small"))
        check = instance.event_log_storage.get_latest_asset_check_execution_by_key([dg.AssetCheckKey(dg.AssetKey("model_xgboost_small"), "beats_seasonal_naive")])
    assert model_events is not None  # trained, logged and registered either way
    record = next(iter(check.values()))
    aliases = MlflowClient().get_registered_model("steel_industry-day_ahead").aliases
    version = MlflowClient().get_model_version("steel_industry-day_ahead", aliases["challenger"])
    if promoted:
        assert result.success and promotion_events is not None and record.status.value == "SUCCEEDED"
        assert aliases["champion"] == aliases["challenger"] and version.tags["promotion.promoted"] == "true"
    else:
        assert not result.success and promotion_events is None and record.status.value == "FAILED"
        assert "champion" not in aliases
        assert version.tags["promotion.promoted"] == "false" and "blocking check beats_seasonal_naive" in version.tags["promotion.decision"]


@pytest.mark.parametrize(("scale", "fires"), [(1.0, False), (2.0, True)])
def test_the_retraining_sensor_fires_on_a_shifted_target_and_not_otherwise(scale, fires, tmp_path, synthetic_csv, monkeypatch, restore_definitions):
    definitions = setup_loop(tmp_path, synthetic_csv, monkeypatch, min_skill=0.0, drift_psi=0.5)
    operations = definitions.operations
    start_live_series(operations.data, operations.series, pd.Timestamp("2018-03-12"))
    if scale != 1.0:  # the last two weeks' readings multiplied, written back in the file's own format
        live = operations.live_data
        lines, stamps = file_rows(live)
        recent = stamps >= stamps.max() - pd.Timedelta(days=14)
        body = [_scaled(line, scale) if late else line for line, late in zip(lines[1:], recent, strict=True)]
        live.path.write_bytes(("\r\n".join([lines[0], *body]) + "\r\n").encode("utf-8-sig"))
    with dg.DagsterInstance.get() as instance:
        assert definitions.defs.resolve_job_def("drift_job").execute_in_process(instance=instance).success
        sensor = definitions.defs.resolve_sensor_def("retraining_sensor")
        context = dg.build_sensor_context(instance=instance, definitions=definitions.defs, resources=definitions.defs.resources)
        requests = sensor.evaluate_tick(context).run_requests or []
    assert ("retrain_job" in [r.job_name for r in requests]) is fires


def _scaled(line: str, scale: float) -> str:
    cells = line.split(",")
    if len(cells) > 1 and cells[1].strip():
        cells[1] = f"{float(cells[1]) * scale:.2f}"
    return ",".join(cells)


def test_the_retraining_sensor_fires_when_realized_accuracy_falls_behind_the_backtest(tmp_path, synthetic_csv, monkeypatch, restore_definitions):
    definitions = setup_loop(tmp_path, synthetic_csv, monkeypatch, min_skill=0.0, accuracy_factor=1.5)
    sensor = definitions.defs.resolve_sensor_def("retraining_sensor")
    with dg.DagsterInstance.get() as instance:
        fired = []
        for ratio in (1.1, 2.4):
            instance.report_runless_asset_event(dg.AssetMaterialization(
                asset_key="forecast_accuracy", partition=f"2018-03-0{len(fired) + 1}",
                metadata={"rolling_7d_ratio_to_backtest": ratio},
            ))
            context = dg.build_sensor_context(instance=instance, definitions=definitions.defs, resources=definitions.defs.resources)
            fired.append("retrain_job" in [r.job_name for r in sensor.evaluate_tick(context).run_requests or []])
    assert fired == [False, True]


def test_a_failed_run_and_a_failed_check_reach_the_alert_webhook(tmp_path, synthetic_csv, monkeypatch, restore_definitions):
    receiver = Receiver()
    definitions = setup_loop(tmp_path, synthetic_csv, monkeypatch, min_skill=0.99, webhook=receiver.url)
    from pipelines.replay import Loop

    with dg.DagsterInstance.get() as instance:
        loop = Loop(definitions.defs, instance)
        request = dg.RunRequest(job_name="train_models_job")
        assert not loop.execute("manual", request)  # the blocking check fails the run
        loop.tick("alert_on_failed_checks")
    kinds = sorted(body["kind"] for body in receiver.bodies)
    assert kinds == ["check_failure", "run_failure"], receiver.bodies
    check = next(body for body in receiver.bodies if body["kind"] == "check_failure")
    assert check["details"]["check"] == "beats_seasonal_naive" and check["details"]["metadata"]["required"] == 0.99
    run = next(body for body in receiver.bodies if body["kind"] == "run_failure")
    assert run["details"]["job"] == "train_models_job" and run["source"] == "energy-forecast"
