"""The forecast endpoint: ``<registered model>@<alias>`` over HTTP, following promotions.

    python -m energy_forecast.serving --port 8080       # the `serving` service of the Compose stack

Why a small FastAPI app rather than ``mlflow models serve``: MLflow's scoring server loads one
model URI when it starts and never looks at the registry again, so serving a new champion would
need a restart. This app keeps MLflow's request format and parsing (``dataframe_split``,
``dataframe_records`` or ``inputs``, the model's input schema), and a background thread asks the
registry every ``SERVING_REFRESH_SECONDS`` (default 15) which version holds the alias; a new
version is loaded beside the old one and swapped in only once it has loaded, so requests never
wait and a promotion is served within seconds.

Endpoints:

* ``POST /invocations``: the forecast contract (:mod:`energy_forecast.contract`): one row per
  origin and step; header ``X-Model-Version``. Bad input is a 400 whose message names what is
  missing (history shorter than the lookback, a known-future covariate, a column).
* ``GET /health``: 200 while the registry answers (the container healthcheck); 503 otherwise.
* ``GET /ready``: 200 once a model is loaded; 503 before (no champion yet) or when loading failed.
* ``GET /model``: which model and version answer, loaded when, and its lookback.

Settings (environment): ``MLFLOW_TRACKING_URI``, ``SERVING_MODEL`` (registered model, e.g.
``steel_industry-day_ahead``), ``SERVING_ALIAS`` (``champion``), ``SERVING_REFRESH_SECONDS``, and
``SERVING_ARTIFACTS_S3``: the MLflow server's ``--artifacts-destination`` (``s3://mlflow`` in the
Compose stack). With it, a version's files are read straight from the bucket with this process's
own S3 key (the stack's read-only ``serving`` key) instead of streaming through the tracking server.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' real annotations.
import argparse
import json
import logging
import os
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = ["ChampionWatcher", "Served", "create_app", "main"]

logger = logging.getLogger(__name__)

FORMATS = ("dataframe_split", "dataframe_records", "inputs", "instances")


@dataclass(frozen=True)
class Served:
    registered_model: str
    alias: str
    version: str
    model: Any
    """The loaded MLflow pyfunc model."""
    loaded_at: float
    lookback_steps: int | None


class ChampionWatcher:
    """Which version holds ``alias``, and that version loaded; refreshed by polling the registry."""

    def __init__(
        self, registered_model: str, alias: str = "champion", tracking_uri: str | None = None, refresh_seconds: float = 15.0,
        artifacts_s3: str | None = None,
    ) -> None:
        from mlflow.tracking import MlflowClient

        from energy_forecast.tracking import resolve_tracking_uri

        self.registered_model, self.alias, self.refresh_seconds = registered_model, alias, refresh_seconds
        self.artifacts_s3 = artifacts_s3.rstrip("/") if artifacts_s3 else None
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        self.client = MlflowClient(self.tracking_uri)
        self.served: Served | None = None
        self.registry_error: str | None = "not asked yet"
        self.load_error: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> bool:
        """Ask the registry once; load and swap in a new version. Returns True when it swapped."""
        from mlflow.exceptions import MlflowException

        try:
            version = str(self.client.get_model_version_by_alias(self.registered_model, self.alias).version)
        except MlflowException as error:
            code = getattr(error, "error_code", "")
            self.registry_error = None if code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE") else str(error).splitlines()[0]
            self.load_error = f"no version of '{self.registered_model}' holds the alias '{self.alias}' yet"
            return False
        except OSError as error:  # the tracking server is down or unreachable
            self.registry_error = f"the registry at {self.tracking_uri} does not answer: {error}"
            return False
        self.registry_error = None
        current = self.served
        if current is not None and current.version == version:
            return False
        return self._load(version)

    def model_uri(self, version: str) -> str:
        """Where ``version`` is loaded from: ``models:/NAME/VERSION`` (through the tracking server), or
        with ``artifacts_s3``, the same files in the bucket behind the server's proxied artifact root
        (``mlflow-artifacts:/<path>`` is stored at ``<artifacts_s3>/<path>``)."""
        from urllib.parse import urlparse

        through_server = f"models:/{self.registered_model}/{version}"
        if not self.artifacts_s3:
            return through_server
        # the version's files (a registered version's source is ``models:/m-<id>``; this is its location)
        location = self.client.get_model_version_download_uri(self.registered_model, version)
        parsed = urlparse(location)
        if parsed.scheme != "mlflow-artifacts":
            logger.info("v%s lives at %s, not under the proxied artifact root: loading it through the tracking server", version, location)
            return through_server
        return f"{self.artifacts_s3}/{parsed.path.lstrip('/')}"

    def _load(self, version: str) -> bool:
        import mlflow
        from mlflow.exceptions import MlflowException

        started = time.perf_counter()
        try:
            uri = self.model_uri(version)
            logger.info("loading %s v%s from %s", self.registered_model, version, uri)
            model = mlflow.pyfunc.load_model(uri)
        except (MlflowException, OSError, ValueError, ImportError) as error:
            self.load_error = f"{self.registered_model} v{version} could not be loaded: {error}"
            logger.error("%s; still serving %s", self.load_error, f"v{self.served.version}" if self.served else "nothing")
            return False
        metadata = model.metadata.metadata or {}
        served = Served(self.registered_model, self.alias, version, model, time.time(), metadata.get("lookback_steps"))
        with self._lock:
            previous, self.served, self.load_error = self.served, served, None
        logger.info(
            "serving %s@%s = v%s (%s) after %.1f s of loading%s",
            self.registered_model, self.alias, version, metadata.get("family", "?"), time.perf_counter() - started,
            f"; replaced v{previous.version}" if previous else "",
        )
        return True

    def current(self) -> Served | None:
        with self._lock:
            return self.served

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._poll, name="champion-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _poll(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            self.refresh()


def _jsonable(frame: pd.DataFrame) -> list[dict[str, Any]]:
    frame = frame.copy()
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            frame[column] = frame[column].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return json.loads(frame.to_json(orient="records", double_precision=15))


def create_app(watcher: ChampionWatcher) -> Any:
    """The FastAPI application around ``watcher`` (started and stopped with the app)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc.scoring_server import infer_and_parse_data

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202  (FastAPI's own protocol)
        watcher.start()
        yield
        watcher.stop()

    app = FastAPI(title="energy-forecast serving", lifespan=lifespan)

    def describe(served: Served | None) -> dict[str, Any]:
        body: dict[str, Any] = {"registered_model": watcher.registered_model, "alias": watcher.alias}
        if served is not None:
            body.update(version=served.version, loaded_at=pd.Timestamp(served.loaded_at, unit="s").isoformat(), lookback_steps=served.lookback_steps)
        if watcher.load_error:
            body["waiting"] = watcher.load_error
        return body

    @app.get("/health")
    def health() -> JSONResponse:
        if watcher.registry_error:
            return JSONResponse({"status": "registry unreachable", "error": watcher.registry_error}, status_code=503)
        return JSONResponse({"status": "ok", **describe(watcher.current())})

    @app.get("/ready")
    def ready() -> JSONResponse:
        served = watcher.current()
        return JSONResponse({"status": "ready" if served else "not ready", **describe(served)}, status_code=200 if served else 503)

    @app.get("/model")
    def model_info() -> JSONResponse:
        return JSONResponse(describe(watcher.current()))

    @app.post("/invocations")
    async def invocations(request: Request) -> JSONResponse:
        served = watcher.current()
        if served is None:
            return JSONResponse({"error_code": "NOT_READY", "message": watcher.load_error or "no model loaded yet"}, status_code=503)
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            return JSONResponse({"error_code": "BAD_REQUEST", "message": f"the body is not JSON: {error}"}, status_code=400)
        if not isinstance(body, dict) or not set(body) & set(FORMATS):
            return JSONResponse(
                {"error_code": "BAD_REQUEST", "message": f"send a JSON object with one of {list(FORMATS)} (MLflow's scoring format)"},
                status_code=400,
            )
        try:
            frame = infer_and_parse_data({k: v for k, v in body.items() if k in FORMATS}, served.model.metadata.get_input_schema())
            answer = served.model.predict(frame)
        except (MlflowException, ValueError, KeyError, TypeError) as error:  # bad input: schema, contract, categories
            message = error.message if isinstance(error, MlflowException) else str(error)
            if "Failed to enforce schema" in message and "Error: " in message:  # MLflow quotes the whole frame first
                message = "the input does not match the model's schema: " + message.rsplit("Error: ", 1)[1].strip()
            return JSONResponse({"error_code": "BAD_REQUEST", "message": message}, status_code=400)
        return JSONResponse({"predictions": _jsonable(answer)}, headers={"X-Model-Version": served.version})

    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m energy_forecast.serving", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--model", default=os.environ.get("SERVING_MODEL", "steel_industry-day_ahead"), help="registered model")
    parser.add_argument("--alias", default=os.environ.get("SERVING_ALIAS", "champion"))
    parser.add_argument("--refresh-seconds", type=float, default=float(os.environ.get("SERVING_REFRESH_SECONDS", "15")))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "mlflow", "urllib3", "botocore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    watcher = ChampionWatcher(args.model, args.alias, refresh_seconds=args.refresh_seconds, artifacts_s3=os.environ.get("SERVING_ARTIFACTS_S3") or None)
    uvicorn.run(create_app(watcher), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
