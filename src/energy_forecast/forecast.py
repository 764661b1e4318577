"""Forecast the next horizon with the champion: ``energy-forecast forecast`` / ``make forecast``.

1. Resolve ``<registered model>@<alias>`` (``champion`` by default) in MLflow and load it: the
   contract model, whatever its family.
2. Read the latest data through the data YAML (the same loader and checks as training: a gap
   longer than ``max_gap_steps`` fails here).
3. The origin defaults to the first stamp after the data ends. Build the contract input: the
   model's lookback before the origin, and the horizon's known-future covariates (from the data
   where it has them, else from each covariate's ``ahead:`` rule, recorded with the forecast).
4. Forecast, plot (actuals before the origin, the forecast and its 80 % band, the same time last
   week), then write the rows to the forecasts store and the plot beside them.

Everything that can be wrong with the input (too little history for the model's lookback, a
known-future covariate that cannot be filled, an origin off the grid) fails before anything is
written, naming what is missing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from energy_forecast.backtest import local_bound
from energy_forecast.config import DataConfig
from energy_forecast.contract import describe_lookback
from energy_forecast.data.ahead import extend_known_future
from energy_forecast.data.loading import load_series
from energy_forecast.frames import ORIGIN, TIMESTAMP
from energy_forecast.plots import forecast_ahead_png
from energy_forecast.store import ForecastStore, PlotStore, default_plots_uri

__all__ = ["ForecastError", "ForecastOutcome", "forecast_next", "plot_key", "resolve_model"]

logger = logging.getLogger(__name__)


class ForecastError(ValueError):
    """The forecast cannot be made from this model and data; the message says what is missing."""


@dataclass(frozen=True)
class ResolvedModel:
    registered_model: str
    alias: str
    version: str
    model_type: str
    uri: str


@dataclass
class ForecastOutcome:
    model: ResolvedModel
    origin: pd.Timestamp
    rows: pd.DataFrame
    store: str
    plot: str
    covariate_sources: dict[str, str]
    lookback_steps: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)


def resolve_model(registered_model: str, alias: str, tracking_uri: str | None = None) -> ResolvedModel:
    """The version behind ``registered_model@alias``.

    Raises:
        ForecastError: no such registered model, or no version holds the alias.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from energy_forecast.tracking import resolve_tracking_uri

    client = MlflowClient(resolve_tracking_uri(tracking_uri))
    try:
        version = client.get_model_version_by_alias(registered_model, alias)
    except MlflowException as error:
        raise ForecastError(
            f"no version of registered model '{registered_model}' holds the alias '{alias}' in {client.tracking_uri} "
            f"({str(error).splitlines()[0]}); train one first (`make demo` or `make train`)"
        ) from None
    model_type = (version.tags or {}).get("model_type", "")
    return ResolvedModel(registered_model, alias, str(version.version), model_type, f"models:/{registered_model}/{version.version}")


def plot_key(registered_model: str, version: str, origin: pd.Timestamp) -> str:
    return f"{registered_model}/v{version}/{origin:%Y-%m-%dT%H%M}.png"


def forecast_next(
    data: DataConfig,
    *,
    registered_model: str,
    alias: str = "champion",
    origin: pd.Timestamp | str | None = None,
    store: ForecastStore | None = None,
    plots: PlotStore | None = None,
    tracking_uri: str | None = None,
) -> ForecastOutcome:
    """Forecast the horizon from ``origin`` (default: right after the data) and store it.

    Raises:
        ForecastError: the model or the data cannot make this forecast (nothing is written).
        DataValidationError: the data file is invalid (nothing is written).
    """
    import mlflow

    started = time.perf_counter()
    timings: dict[str, float] = {}
    resolved = resolve_model(registered_model, alias, tracking_uri)
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    model = mlflow.pyfunc.load_model(resolved.uri)
    metadata: dict[str, Any] = model.metadata.metadata or {}
    if "lookback_steps" not in metadata:
        raise ForecastError(f"{resolved.uri} predates the forecast contract (no lookback in its metadata); retrain it")
    lookback, horizon = int(metadata["lookback_steps"]), int(metadata["horizon"])
    timings["load_model"] = time.perf_counter() - started

    series = load_series(data)
    frame, step = series.frame, data.step
    first, last = frame.index[0], frame.index[-1]
    try:
        origin = last + step if origin is None else local_bound(origin, frame.index, "origin")
    except ValueError as error:
        raise ForecastError(str(error)) from None
    if (origin - first) % step != pd.Timedelta(0):
        raise ForecastError(f"origin {origin} is not on the data's {data.frequency} grid (which starts at {first})")
    if origin > last + step:
        raise ForecastError(f"origin {origin} is after the first stamp without data ({last + step}): the history before it is missing")
    history = frame.loc[frame.index < origin]
    if len(history) < lookback:
        raise ForecastError(
            f"{data.path}: {describe_lookback(len(history), step)} of data before origin {origin}; the {resolved.model_type or 'champion'} "
            f"model v{resolved.version} needs {describe_lookback(lookback, step)}, from {origin - lookback * step} on"
        )
    horizon_end = origin + (horizon - 1) * step
    extended, sources = extend_known_future(frame, data, horizon_end)
    window = extended.loc[origin - lookback * step : horizon_end].copy()
    unknown = window.index >= origin
    for name in (data.target, *(c.name for c in data.covariates if c.role == "past")):
        window.loc[unknown, name] = float("nan")
    request = window.rename_axis(TIMESTAMP).reset_index()
    for covariate in data.covariates:
        if covariate.kind == "categorical":
            request[covariate.name] = request[covariate.name].astype(object)
    timings["prepare_input"] = time.perf_counter() - started - timings["load_model"]

    rows = model.predict(request)
    timings["predict"] = time.perf_counter() - started - sum(timings.values())

    actual = frame[data.target].reindex(pd.DatetimeIndex(rows[TIMESTAMP])) if origin <= last else None
    png = forecast_ahead_png(
        rows,
        history=frame[data.target].loc[origin - 2 * pd.Timedelta(days=1) : origin - step],
        last_week=frame[data.target].reindex(pd.DatetimeIndex(rows[TIMESTAMP]) - pd.Timedelta(days=7)),
        actual=actual,
        title=f"{registered_model} v{resolved.version} ({resolved.model_type})",
        unit=data.target,
    )
    store = store or ForecastStore()
    plots = plots or PlotStore(default_plots_uri())
    store.write(rows, registered_model=registered_model, model_version=resolved.version, model_type=resolved.model_type or None)
    plot = plots.put(plot_key(registered_model, resolved.version, origin), png)
    timings["store"] = time.perf_counter() - started - sum(timings.values())
    assumed = {name: rule for name, rule in sources.items() if rule != "data"}
    if assumed:
        logger.info("known-future covariates beyond the data's last row: %s", assumed)
    outcome = ForecastOutcome(resolved, origin, rows.assign(**{ORIGIN: origin}), store.location, plot, sources, lookback, time.perf_counter() - started, timings)
    logger.info(
        "forecast %s v%s from %s: %d rows in %.2f s -> %s; plot %s",
        registered_model, resolved.version, origin, len(rows), outcome.seconds, store.location, plot,
    )
    return outcome
