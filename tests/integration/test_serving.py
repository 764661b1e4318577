"""Forecasting tomorrow and serving the champion, against a real MLflow server, PostgreSQL and S3.

* ``mlflow models serve -m models:/<name>@champion --env-manager local`` answers the forecast
  contract from a folder outside the checkout, in a Python that cannot import the checkout's
  package: the model brings its own code.
* ``forecast_next`` writes tomorrow's rows to the PostgreSQL store and the plot to S3; bad input
  fails before anything is written.
* The serving app answers exactly what the batch forecast stored, and serves a new champion
  after a promotion without a restart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from mlflow.tracking import MlflowClient

from energy_forecast.config import TrainingConfig, load_data_config
from energy_forecast.contract import build_input
from energy_forecast.data import load_series
from energy_forecast.data.loading import DataValidationError
from energy_forecast.forecast import ForecastError, forecast_next
from energy_forecast.store import ForecastStore, PlotStore
from energy_forecast.tracking import Tracker
from energy_forecast.training import TrainingResult, load_config, train
from tests.conftest import STEEL_DATA_CONFIG
from tests.integration.conftest import S3_BUCKET, S3_KEYS, free_port
from tests.integration.helpers import small_config

pytestmark = pytest.mark.integration

ISOLATION = '''\
"""Loaded at interpreter start (sitecustomize): hide the checkout's energy_forecast, so only a
copy shipped inside a model can be imported."""
import sys

sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.path[:] = [p for p in sys.path if "__editable__" not in p and not p.rstrip("/").endswith(("{checkout}", "{checkout}/src"))]
'''


@dataclass
class Trained:
    experiment: str
    name: str
    first: TrainingResult
    second: TrainingResult
    data_path: Path
    config: TrainingConfig


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic_csv, mlflow_server) -> Iterator[Trained]:
    directory = tmp_path_factory.mktemp("serving")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATA_PATH", str(synthetic_csv))
        patch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
        path, experiment = small_config(directory, "xgboost.yaml", params={"n_estimators": 40})
        config = load_config(path)
        first = train(config, Tracker(mlflow_server))
        second = train(load_config(path, {"model": {"type": "lightgbm", "params": {"n_estimators": 40}}}), Tracker(mlflow_server))
        yield Trained(experiment, f"{experiment}-day_ahead", first, second, synthetic_csv, config)


@pytest.fixture
def champion_v1(trained, mlflow_server) -> str:
    MlflowClient(mlflow_server).set_registered_model_alias(trained.name, "champion", trained.first.promotion.version)
    return trained.first.promotion.version


def request_frame(trained: Trained, origin: pd.Timestamp, lookback: int) -> pd.DataFrame:
    """A contract request for one origin (no origin column: it follows the last observed value)."""
    frame = load_series(trained.config.data).frame
    return build_input(frame, pd.DatetimeIndex([origin]), trained.config.problem, lookback).drop(columns=["origin"])


def as_payload(frame: pd.DataFrame) -> dict:
    return {"dataframe_split": json.loads(frame.to_json(orient="split", date_format="iso", index=False, double_precision=15))}


def wait_until_answers(url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def outside_checkout(tmp_path) -> tuple[Path, dict[str, str]]:
    """A folder away from the checkout, and an environment whose Python cannot import it."""
    checkout = str(Path(__file__).resolve().parents[2])
    hooks = tmp_path / "isolation"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(ISOLATION.replace("{checkout}", checkout))
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DATA_PATH")}
    environment["PYTHONPATH"] = str(hooks)
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"  # an activated environment
    probe = subprocess.run([sys.executable, "-c", "import energy_forecast"], cwd=workdir, env=environment, capture_output=True, text=True, check=False)
    assert probe.returncode != 0 and "No module named 'energy_forecast'" in probe.stderr, "the isolation must hide the checkout"
    return workdir, environment


def test_mlflow_models_serve_answers_the_contract_from_outside_the_checkout(trained, champion_v1, mlflow_server, outside_checkout, tmp_path):
    workdir, environment = outside_checkout
    port = free_port()
    log = tmp_path / "serve.log"
    command = [
        str(Path(sys.executable).with_name("mlflow")), "models", "serve", "-m", f"models:/{trained.name}@champion",
        "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port),
    ]
    with open(log, "w") as sink:
        process = subprocess.Popen(command, cwd=workdir, env={**environment, "MLFLOW_TRACKING_URI": mlflow_server}, stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_until_answers(f"http://127.0.0.1:{port}/health", process, log)
        model = trained.first
        request = request_frame(trained, pd.Timestamp("2018-03-05 13:00"), 2688)

        answer = requests.post(f"http://127.0.0.1:{port}/invocations", json=as_payload(request), timeout=60)

        assert answer.status_code == 200, answer.text[:2000]
        rows = pd.DataFrame(answer.json()["predictions"])
        assert len(rows) == 96 and list(rows.columns[:4]) == ["origin", "step", "timestamp", "prediction"]
        import mlflow

        expected = mlflow.pyfunc.load_model(model.model_uri).predict(request)
        np.testing.assert_allclose(rows["prediction"].to_numpy(dtype=float), expected["prediction"].to_numpy(), rtol=1e-9)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # seen in CI: the server ignored SIGTERM for 30 s after its checks had passed
            process.kill()
            process.wait(timeout=30)


def test_forecast_next_writes_tomorrow_to_postgresql_and_its_plot_to_s3(trained, champion_v1, mlflow_server, postgres, postgres_database, s3_endpoint, monkeypatch):
    for name, value in S3_KEYS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    monkeypatch.setenv("DATA_PATH", str(trained.data_path))
    store = ForecastStore(postgres.url(postgres_database()))
    data = load_data_config(STEEL_DATA_CONFIG)

    outcome = forecast_next(data, registered_model=trained.name, store=store, plots=PlotStore(f"s3://{S3_BUCKET}/forecast-plots"), tracking_uri=mlflow_server)

    last = load_series(data).frame.index[-1]
    assert outcome.origin == last + pd.Timedelta("15min") and outcome.model.version == champion_v1
    rows = store.read(registered_model=trained.name, model_version=champion_v1)
    assert len(rows) == 96 and rows["timestamp"].iloc[-1] == outcome.origin + pd.Timedelta(hours=23, minutes=45)
    assert (rows[["q0.1", "q0.5", "q0.9"]].diff(axis=1).iloc[:, 1:] >= 0).all().all()
    assert outcome.covariate_sources["Load_Type"] == "same_slot_last_week" and outcome.covariate_sources["NSM"].startswith("calendar:")
    assert outcome.plot == f"s3://{S3_BUCKET}/forecast-plots/{trained.name}/v{champion_v1}/{outcome.origin:%Y-%m-%dT%H%M}.png"

    again = forecast_next(data, registered_model=trained.name, store=store, plots=PlotStore(f"s3://{S3_BUCKET}/forecast-plots"), tracking_uri=mlflow_server)
    assert len(store.read(registered_model=trained.name)) == 96  # the re-run replaced its rows
    pd.testing.assert_frame_equal(again.rows.reset_index(drop=True), outcome.rows.reset_index(drop=True))


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("too little history", r"of data before origin .* needs 2688 steps \(28 days\)"),
        ("an origin off the grid", "is not on the data's 15min grid"),
        ("an origin beyond the data", "the history before it is missing"),
        ("no rule for a known-future covariate", r"known-future covariate 'Load_Type' ends at .* declare an `ahead:` rule"),
        ("a gap longer than allowed", r"gap of 8 missing step\(s\)"),
        ("no champion", "holds the alias 'champion'"),
    ],
)
def test_when_the_forecast_cannot_be_made_then_nothing_is_written(case, message, trained, champion_v1, mlflow_server, tmp_path, monkeypatch):
    csv = tmp_path / "data.csv"
    lines = trained.data_path.read_bytes().split(b"\r\n")
    data = load_data_config(STEEL_DATA_CONFIG)
    origin, name, yaml_text = None, trained.name, STEEL_DATA_CONFIG.read_text()
    if case == "too little history":
        lines = [lines[0], *lines[-2000:]]
    elif case == "an origin off the grid":
        origin = "2018-03-11 10:07"
    elif case == "an origin beyond the data":
        origin = "2018-03-20"
    elif case == "no rule for a known-future covariate":
        yaml_text = yaml_text.replace(", ahead: same_slot_last_week", "")
    elif case == "a gap longer than allowed":
        lines = [*lines[:3000], *lines[3008:]]
    elif case == "no champion":
        name = f"{trained.experiment}-nowhere"
    csv.write_bytes(b"\r\n".join(lines))
    (tmp_path / "data.yaml").write_text(yaml_text)
    monkeypatch.setenv("DATA_PATH", str(csv))
    data = load_data_config(tmp_path / "data.yaml")
    store = ForecastStore(f"sqlite:///{tmp_path / 'forecasts.db'}")

    with pytest.raises((ForecastError, DataValidationError, ValueError), match=message):
        forecast_next(data, registered_model=name, origin=origin, store=store, plots=PlotStore(str(tmp_path / "plots")), tracking_uri=mlflow_server)

    assert store.read().empty and not (tmp_path / "plots").exists()


def test_the_serving_app_answers_what_the_batch_stored_and_follows_a_promotion(trained, champion_v1, mlflow_server, tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_PATH", str(trained.data_path))
    store = ForecastStore(f"sqlite:///{tmp_path / 'forecasts.db'}")
    origin = pd.Timestamp("2018-03-08")
    batch = forecast_next(load_data_config(STEEL_DATA_CONFIG), registered_model=trained.name, origin=origin, store=store,
                          plots=PlotStore(str(tmp_path / "plots")), tracking_uri=mlflow_server)
    port = free_port()
    log = tmp_path / "serving.log"
    environment = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server}
    command = [sys.executable, "-m", "energy_forecast.serving", "--port", str(port), "--model", trained.name, "--refresh-seconds", "2"]
    with open(log, "w") as sink:
        process = subprocess.Popen(command, env=environment, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(f"{url}/ready", process, log)
        request = request_frame(trained, origin, batch.lookback_steps)

        answer = requests.post(f"{url}/invocations", json=as_payload(request), timeout=60)

        assert answer.status_code == 200 and answer.headers["X-Model-Version"] == champion_v1
        served = pd.DataFrame(answer.json()["predictions"])
        stored = store.read(registered_model=trained.name, model_version=champion_v1, origin=origin)
        np.testing.assert_allclose(served["prediction"].to_numpy(dtype=float), stored["prediction"].to_numpy(), rtol=1e-12)
        np.testing.assert_allclose(served[["q0.1", "q0.9"]].to_numpy(dtype=float), stored[["q0.1", "q0.9"]].to_numpy(), rtol=1e-12)

        short = requests.post(f"{url}/invocations", json=as_payload(request.iloc[100:]), timeout=60)
        assert short.status_code == 400 and "needs at least 2688 steps (28 days)" in short.json()["message"]

        promoted = time.monotonic()
        MlflowClient(mlflow_server).set_registered_model_alias(trained.name, "champion", trained.second.promotion.version)
        while time.monotonic() - promoted < 60:
            answer = requests.post(f"{url}/invocations", json=as_payload(request), timeout=60)
            if answer.headers.get("X-Model-Version") == trained.second.promotion.version:
                break
            time.sleep(0.5)
        took = time.monotonic() - promoted
        assert answer.headers["X-Model-Version"] == trained.second.promotion.version, f"still v{answer.headers.get('X-Model-Version')} after {took:.0f} s"
        assert requests.get(f"{url}/model", timeout=5).json()["version"] == trained.second.promotion.version
        print(f"\nnew champion served {took:.1f} s after the promotion")
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # seen in CI: the server ignored SIGTERM for 30 s after its checks had passed
            process.kill()
            process.wait(timeout=30)


def test_with_the_artifact_bucket_the_watcher_reads_model_files_straight_from_s3(trained, champion_v1, mlflow_server, s3_endpoint, monkeypatch):
    """SERVING_ARTIFACTS_S3 (the stack's `serving` service): the version's files are read from the
    bucket behind the server's proxied artifact root, and the model answers as through the server."""
    from energy_forecast.serving import ChampionWatcher

    for key, value in {**S3_KEYS, "MLFLOW_S3_ENDPOINT_URL": s3_endpoint, "MLFLOW_TRACKING_URI": mlflow_server}.items():
        monkeypatch.setenv(key, value)
    direct = ChampionWatcher(trained.name, tracking_uri=mlflow_server, artifacts_s3=f"s3://{S3_BUCKET}/artifacts/")
    uri = direct.model_uri(champion_v1)
    assert uri.startswith(f"s3://{S3_BUCKET}/artifacts/") and "/models/m-" in uri, uri
    assert direct.refresh() and direct.current().version == champion_v1
    through_server = ChampionWatcher(trained.name, tracking_uri=mlflow_server)
    assert through_server.model_uri(champion_v1) == f"models:/{trained.name}/{champion_v1}"
    assert through_server.refresh()
    request = request_frame(trained, pd.Timestamp("2018-03-08"), int(direct.current().lookback_steps))
    np.testing.assert_allclose(direct.current().model.predict(request)["prediction"].to_numpy(dtype=float),
                               through_server.current().model.predict(request)["prediction"].to_numpy(dtype=float), rtol=1e-12)
