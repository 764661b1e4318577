"""Where forecasts go: the ``forecasts`` table, and their plots.

One small interface over any SQLAlchemy database: SQLite on the embedded default
(``.forecasts/forecasts.db``), PostgreSQL in the Compose stack. The table is keyed by
(``registered_model``, ``model_version``, ``origin``, ``timestamp``); writing a forecast replaces
the rows of the same model version and origin in one transaction, so a reader sees the old rows or
the new ones, never half of each.

Plots go to a folder beside the rows (embedded) or to an S3 prefix (stack): :class:`PlotStore`.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from energy_forecast.frames import ORIGIN, PREDICTION, STEP, TIMESTAMP, quantile_column, quantile_columns
from energy_forecast.s3 import s3_client

__all__ = ["DEFAULT_DIR", "ForecastStore", "PlotStore", "default_plots_uri", "default_store_url"]

logger = logging.getLogger(__name__)

DEFAULT_DIR = Path(".forecasts")
"""The embedded default, under the working directory (``make`` runs in the checkout)."""

_metadata = sa.MetaData()
FORECASTS = sa.Table(
    "forecasts",
    _metadata,
    sa.Column("registered_model", sa.String(255), primary_key=True),
    sa.Column("model_version", sa.String(32), primary_key=True),
    sa.Column("origin", sa.DateTime(), primary_key=True),
    sa.Column("timestamp", sa.DateTime(), primary_key=True),
    sa.Column("step", sa.Integer(), nullable=False),
    sa.Column("prediction", sa.Float(), nullable=False),
    sa.Column("quantiles", sa.Text(), nullable=False, doc="JSON: level -> value"),
    sa.Column("model_type", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
)


def default_store_url() -> str:
    """``FORECAST_STORE_URL``, else SQLite in ``.forecasts/``."""
    url = os.environ.get("FORECAST_STORE_URL")
    if url:
        return url
    DEFAULT_DIR.mkdir(exist_ok=True)
    return f"sqlite:///{(DEFAULT_DIR / 'forecasts.db').resolve()}"


def default_plots_uri() -> str:
    """``FORECAST_PLOTS_URI`` (a folder or ``s3://bucket/prefix``), else ``.forecasts/plots``."""
    return os.environ.get("FORECAST_PLOTS_URI") or str((DEFAULT_DIR / "plots").resolve())


class ForecastStore:
    """The ``forecasts`` table in the database at ``url`` (created on first use)."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_store_url()
        self.engine = sa.create_engine(self.url, future=True)
        _metadata.create_all(self.engine)

    @property
    def location(self) -> str:
        """The URL without its password, for messages."""
        return sa.engine.make_url(self.url).render_as_string(hide_password=True)

    def write(self, forecast: pd.DataFrame, *, registered_model: str, model_version: str, model_type: str | None = None) -> int:
        """Store a forecast frame, replacing the rows of this model version and its origins atomically.

        Returns the number of rows written.
        """
        levels = quantile_columns(forecast)
        created = datetime.now(UTC).replace(tzinfo=None)
        quantiles = forecast[list(levels.values())].to_numpy(dtype="float64")
        rows = [
            {
                "registered_model": registered_model,
                "model_version": str(model_version),
                "origin": pd.Timestamp(origin).to_pydatetime(),
                "timestamp": pd.Timestamp(stamp).to_pydatetime(),
                "step": int(step),
                "prediction": float(prediction),
                "quantiles": json.dumps({f"{level:g}": (None if np.isnan(v) else float(v)) for level, v in zip(levels, values, strict=True)}),
                "model_type": model_type,
                "created_at": created,
            }
            for origin, stamp, step, prediction, values in zip(
                forecast[ORIGIN], forecast[TIMESTAMP], forecast[STEP], forecast[PREDICTION], quantiles, strict=True
            )
        ]
        origins = sorted({row["origin"] for row in rows})
        with self.engine.begin() as connection:  # one transaction: the old rows or the new, never half
            connection.execute(
                FORECASTS.delete().where(
                    FORECASTS.c.registered_model == registered_model,
                    FORECASTS.c.model_version == str(model_version),
                    FORECASTS.c.origin.in_(origins),
                )
            )
            if rows:
                connection.execute(FORECASTS.insert(), rows)
        logger.info("stored %d forecast rows of %s v%s (%d origin(s)) in %s", len(rows), registered_model, model_version, len(origins), self.location)
        return len(rows)

    def read(
        self,
        *,
        registered_model: str | None = None,
        model_version: str | None = None,
        origin: pd.Timestamp | None = None,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        """Stored rows as a forecast frame (plus ``registered_model``, ``model_version``, ``model_type``,
        ``created_at``), ordered by model, version, origin and step; ``start``/``end`` bound the stamps."""
        query = sa.select(FORECASTS)
        if registered_model is not None:
            query = query.where(FORECASTS.c.registered_model == registered_model)
        if model_version is not None:
            query = query.where(FORECASTS.c.model_version == str(model_version))
        if origin is not None:
            query = query.where(FORECASTS.c.origin == pd.Timestamp(origin).to_pydatetime())
        if start is not None:
            query = query.where(FORECASTS.c.timestamp >= pd.Timestamp(start).to_pydatetime())
        if end is not None:
            query = query.where(FORECASTS.c.timestamp < pd.Timestamp(end).to_pydatetime())
        query = query.order_by(FORECASTS.c.registered_model, FORECASTS.c.model_version, FORECASTS.c.origin, FORECASTS.c.step)
        with self.engine.connect() as connection:
            frame = pd.DataFrame(connection.execute(query).mappings().all(), columns=[c.name for c in FORECASTS.columns])
        if frame.empty:
            return frame.drop(columns=["quantiles"])
        quantiles = pd.DataFrame([json.loads(text) for text in frame.pop("quantiles")])
        quantiles.columns = [quantile_column(float(level)) for level in quantiles.columns]
        frame[ORIGIN], frame[TIMESTAMP] = pd.to_datetime(frame[ORIGIN]), pd.to_datetime(frame[TIMESTAMP])
        return pd.concat([frame, quantiles.astype("float64")], axis=1)


@dataclass(frozen=True)
class PlotStore:
    """PNG files under a folder or an ``s3://bucket/prefix`` (endpoint: ``AWS_ENDPOINT_URL_S3``)."""

    uri: str

    def put(self, key: str, png: bytes) -> str:
        """Write ``png`` under ``key`` (a relative path); return where it went."""
        if self.uri.startswith("s3://"):
            bucket, _, prefix = self.uri.removeprefix("s3://").partition("/")
            object_key = f"{prefix.strip('/')}/{key}" if prefix.strip("/") else key
            s3_client().put_object(Bucket=bucket, Key=object_key, Body=png, ContentType="image/png")
            return f"s3://{bucket}/{object_key}"
        path = Path(self.uri) / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        return str(path)
