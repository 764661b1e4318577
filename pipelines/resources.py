"""Resources: thin wrappers around external services and the operations YAML, configured from the
environment. One resource dict per deployment (:func:`deployment_resources`): ``local`` (``make
demo``, ``make dev``, ``make replay``: files and SQLite under the checkout) and ``stack`` (the
Compose stack: PostgreSQL, S3)."""


import json
import logging
import os
from typing import Any

import dagster as dg
import requests
from mlflow.exceptions import MlflowException
from pydantic import PrivateAttr

from energy_forecast.config import OperationsConfig, load_operations_config
from energy_forecast.store import ForecastStore, PlotStore, default_plots_uri, default_store_url
from energy_forecast.tracking import Tracker
from pipelines.paths import resolve_config_path
from pipelines.reaping import DAGSTER_RUN_TAG, reap

logger = logging.getLogger("energy_forecast.alerts")

OPERATIONS_YAML = "configs/operations.yaml"


class MlflowTracking(dg.ConfigurableResource):
    """An MLflow tracking server (Compose: ``http://mlflow:5000``) or a local store.

    Leave ``tracking_uri`` unset to use ``MLFLOW_TRACKING_URI``, and without that a SQLite store
    under ``./.mlflow`` (the ``make demo`` default).

    In a run, every MLflow run its tracker starts is tagged with the Dagster run's id
    (:data:`pipelines.reaping.DAGSTER_RUN_TAG`), and MLflow runs whose Dagster run is finished are
    reaped when the run starts (:mod:`pipelines.reaping`).
    """

    tracking_uri: str | None = None
    _owner: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if context.run is None:  # a sensor or a schedule: no owner
            return
        self._owner = context.run.run_id
        if context.instance is None:
            return
        log = context.log or logging.getLogger(__name__)
        try:
            reaped = reap(Tracker(self.tracking_uri), context.instance)
        except MlflowException as error:  # training itself reports an unreachable server, with its own error
            log.warning(f"reaping at run start skipped: MLflow did not answer ({error})")
            return
        for orphan in reaped:
            log.warning(f"reaped MLflow run {orphan.run_id}: {orphan.reason}")

    def tracker(self) -> Tracker:
        return Tracker(self.tracking_uri, run_tags={DAGSTER_RUN_TAG: self._owner} if self._owner else None)


class Operations(dg.ConfigurableResource):
    """The operations YAML: data, task, the live series, the landing location, thresholds."""

    config_path: str = OPERATIONS_YAML

    @property
    def config(self) -> OperationsConfig:
        return load_operations_config(resolve_config_path(self.config_path))


class ForecastsStore(dg.ConfigurableResource):
    """The forecasts table (``FORECAST_STORE_URL``: SQLite by default, PostgreSQL in the stack) and
    where forecast plots go (``FORECAST_PLOTS_URI``: a folder, or an S3 prefix)."""

    url: str | None = None
    plots_uri: str | None = None

    def store(self) -> ForecastStore:
        return ForecastStore(self.url or default_store_url())

    def plots(self) -> PlotStore:
        return PlotStore(self.plots_uri or default_plots_uri())


class Alerts(dg.ConfigurableResource):
    """Every alert is logged; with a webhook URL (``ALERT_WEBHOOK_URL``, or the operations YAML's
    ``alert_webhook``), it is also POSTed there as JSON."""

    webhook_url: str | None = None
    timeout_seconds: float = 10.0

    def send(self, kind: str, summary: str, details: dict[str, Any], fallback_url: str | None = None) -> bool:
        """Log the alert and post it; True when the webhook accepted it. A webhook that fails is
        logged as an error, never raised: an alert must not fail the sensor that sends it."""
        payload = {"source": "energy-forecast", "kind": kind, "summary": summary, "details": details}
        logger.warning("ALERT %s: %s %s", kind, summary, json.dumps(details, default=str))
        url = self.webhook_url or fallback_url
        if not url:
            return False
        try:
            answer = requests.post(url, json=payload, timeout=self.timeout_seconds)
        except requests.RequestException as error:
            logger.error("alert webhook %s unreachable: %s", url, error)
            return False
        if answer.status_code >= 300:
            logger.error("alert webhook %s answered HTTP %d: %s", url, answer.status_code, answer.text[:300])
            return False
        return True


def deployment() -> str:
    """``ENERGY_FORECAST_DEPLOYMENT``: ``local`` (default) or ``stack``."""
    return os.environ.get("ENERGY_FORECAST_DEPLOYMENT", "local")


def deployment_resources() -> dict[str, Any]:
    """The resources of this deployment; the stack persists asset outputs in S3 (``DAGSTER_IO_BUCKET``)."""
    resources: dict[str, Any] = {
        "mlflow": MlflowTracking(),
        "operations": Operations(config_path=os.environ.get("OPERATIONS_CONFIG", OPERATIONS_YAML)),
        "forecasts": ForecastsStore(url=os.environ.get("FORECAST_STORE_URL"), plots_uri=os.environ.get("FORECAST_PLOTS_URI")),
        "alerts": Alerts(webhook_url=os.environ.get("ALERT_WEBHOOK_URL") or None),
    }
    if deployment() == "stack":
        from dagster_aws.s3 import S3PickleIOManager, S3Resource

        from energy_forecast.s3 import s3_endpoint_url

        resources["io_manager"] = S3PickleIOManager(
            s3_resource=S3Resource(endpoint_url=s3_endpoint_url()),
            s3_bucket=os.environ["DAGSTER_IO_BUCKET"],
            s3_prefix=os.environ.get("DAGSTER_IO_PREFIX", "dagster-io"),
        )
    return resources
