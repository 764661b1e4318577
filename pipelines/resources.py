"""Resources: thin wrappers around external services, configured from the environment."""


import dagster as dg

from energy_forecast.tracking import Tracker


class MlflowTracking(dg.ConfigurableResource):
    """An MLflow tracking server (Compose: ``http://mlflow:5000``) or a local store.

    Leave ``tracking_uri`` unset to use ``MLFLOW_TRACKING_URI``, and without that a SQLite store
    under ``./.mlflow`` (the ``make demo`` default).
    """

    tracking_uri: str | None = None

    def tracker(self) -> Tracker:
        return Tracker(self.tracking_uri)
