"""The forecast contract: one input and one output for every model family.

A registered model (``steel_industry-day_ahead``, say) may be XGBoost today and Chronos-2
tomorrow; its callers never notice, because every family takes and returns the same frames.

**Input**: the recent history and the known future, with timestamps.

======================  =====================================================================
``origin`` (optional)   rows sharing an origin are one forecast request; without the column
                        the whole frame is one request, whose origin is the stamp after the
                        last observed target
``timestamp``           interval-start stamps on the data's regular grid, contiguous within a
                        request
``<target>``            observed values before the origin; empty (NaN) from the origin on
each past covariate     values before the origin (anything from the origin on is ignored)
each known-future one   values on every row, the horizon's included
======================  =====================================================================

The covariates are every covariate the data YAML declares, whichever subset the model uses, so
that every version of a registered model has the same input. Each request holds at least the
model's ``lookback`` steps before its origin (:func:`describe_lookback`) and ``horizon`` steps
from it; longer histories are fine (only the last ``lookback`` steps are read).

**Output**: the forecast frame of :mod:`energy_forecast.frames`: one row per origin and step,
``origin``, ``step``, ``timestamp``, ``prediction`` and ``q<level>`` for the task's levels.

Several requests in one frame are forecast in one model call when their histories agree where
they overlap (the usual case: windows of one series); otherwise each is forecast on its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from energy_forecast.config import ForecastProblem
from energy_forecast.frames import ORIGIN, PREDICTION, STEP, TIMESTAMP, quantile_column
from energy_forecast.models.base import Forecaster

__all__ = ["ContractError", "build_input", "describe_lookback", "forecast", "input_columns", "output_columns", "requests_from_input"]

logger = logging.getLogger(__name__)


class ContractError(ValueError):
    """The input does not satisfy the forecast contract; the message says what is missing."""


def input_columns(problem: ForecastProblem) -> list[str]:
    """``origin``, ``timestamp``, the target, then every declared covariate."""
    return [ORIGIN, TIMESTAMP, problem.target, *(c.name for c in problem.inputs)]


def output_columns(problem: ForecastProblem) -> list[str]:
    return [ORIGIN, STEP, TIMESTAMP, PREDICTION, *(quantile_column(level) for level in problem.quantile_levels)]


def describe_lookback(steps: int, step: pd.Timedelta) -> str:
    """``2688 steps (28 days)`` / ``100 steps (1 day 1 h)``."""
    span = steps * step
    days, rest = span.days, span - pd.Timedelta(days=span.days)
    hours = rest / pd.Timedelta(hours=1)
    parts = ([f"{days} day{'s' if days != 1 else ''}"] if days else []) + ([f"{hours:g} h"] if hours else [])
    return f"{steps} steps ({' '.join(parts) or '0 h'})"


def build_input(frame: pd.DataFrame, origins: pd.DatetimeIndex, problem: ForecastProblem, lookback: int) -> pd.DataFrame:
    """The contract input that asks for these origins: for each, ``lookback`` rows of history and
    its horizon, with what is unknown at the origin left empty.

    Args:
        frame: the series (index: interval-start stamps) holding the target and every input
            covariate, and the known-future covariates over each origin's horizon.
        origins: stamps of ``frame`` with ``lookback`` rows before them and ``horizon`` from them.
    """
    horizon = problem.horizon
    positions = frame.index.get_indexer(origins)
    if (positions < lookback).any() or (positions + horizon > len(frame)).any():
        raise ContractError(f"origins need {lookback} rows before and {horizon} from them in the frame")
    rows = (positions[:, None] + np.arange(-lookback, horizon)).ravel()
    columns = [problem.target, *(c.name for c in problem.inputs)]
    request = frame[columns].iloc[rows].rename_axis(TIMESTAMP).reset_index()
    request.insert(0, ORIGIN, np.repeat(frame.index[positions], lookback + horizon))
    unknown = (request[TIMESTAMP] >= request[ORIGIN]).to_numpy()
    for covariate in (problem.target, *(c.name for c in problem.inputs if c.role == "past")):
        request[covariate] = request[covariate].mask(unknown)
    for covariate in problem.inputs:
        if covariate.kind == "categorical":
            request[covariate.name] = request[covariate.name].astype(object)
    return request


@dataclass(frozen=True)
class Batch:
    """Requests forecast in one model call: a regular series and the origins to forecast from it."""

    frame: pd.DataFrame
    origins: pd.DatetimeIndex


def _as_stamps(values: pd.Series, column: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    try:
        return pd.to_datetime(values, format="ISO8601")
    except (ValueError, TypeError) as error:
        raise ContractError(f"column '{column}' must hold timestamps (ISO 8601): {error}") from None


def requests_from_input(model_input: pd.DataFrame, problem: ForecastProblem, lookback: int) -> list[Batch]:
    """Check a contract input and turn it into model calls.

    Raises:
        ContractError: a column is missing; stamps are unparseable, duplicated, off the grid or
            not contiguous; a request has less history than ``lookback`` or does not cover the
            horizon; a known-future covariate is missing on the horizon; a value is infinite.
    """
    needed = input_columns(problem)[1:]
    missing = [column for column in needed if column not in model_input.columns]
    if missing:
        raise ContractError(f"the input lacks columns {missing}; the contract needs {needed} (and optionally '{ORIGIN}')")
    if model_input.empty:
        raise ContractError("the input has no rows")
    frame = model_input[[c for c in input_columns(problem) if c in model_input.columns]].copy()
    frame[TIMESTAMP] = _as_stamps(frame[TIMESTAMP], TIMESTAMP)
    for column in [problem.target, *(c.name for c in problem.inputs if c.kind == "numeric")]:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = frame[column].notna() & values.isna()
        if bad.any():
            raise ContractError(f"'{column}' must be numeric; got {frame.loc[bad, column].iloc[0]!r} at {frame.loc[bad, TIMESTAMP].iloc[0]}")
        if np.isinf(values.to_numpy(dtype="float64")).any():
            raise ContractError(f"'{column}' holds infinite values")
        frame[column] = values.astype("float64")
    if ORIGIN in frame.columns and frame[ORIGIN].notna().any():
        if frame[ORIGIN].isna().any():
            raise ContractError(f"'{ORIGIN}' is empty on {int(frame[ORIGIN].isna().sum())} row(s): give every row its origin, or drop the column")
        frame[ORIGIN] = _as_stamps(frame[ORIGIN], ORIGIN)
        groups = [(pd.Timestamp(origin), part.drop(columns=[ORIGIN])) for origin, part in frame.groupby(ORIGIN, sort=True)]
    else:
        observed = frame.loc[frame[problem.target].notna(), TIMESTAMP]
        if observed.empty:
            raise ContractError(f"'{problem.target}' has no observed value: there is no history to forecast from")
        groups = [(observed.max() + problem.step, frame.drop(columns=[ORIGIN], errors="ignore"))]
    requests = [_request(origin, part, problem, lookback) for origin, part in groups]
    merged = _merge(requests, problem)
    if merged is not None:
        return [merged]
    logger.info("forecast contract: the requests' histories disagree where they overlap; forecasting them one by one")
    return [Batch(part, pd.DatetimeIndex([origin])) for origin, part in requests]


def _request(origin: pd.Timestamp, part: pd.DataFrame, problem: ForecastProblem, lookback: int) -> tuple[pd.Timestamp, pd.DataFrame]:
    """One request as a regular series indexed by stamp, checked against the contract."""
    step, horizon = problem.step, problem.horizon
    part = part.sort_values(TIMESTAMP)
    stamps = pd.DatetimeIndex(part[TIMESTAMP])
    duplicated = stamps[stamps.duplicated()]
    if len(duplicated):
        raise ContractError(f"origin {origin}: timestamp {duplicated[0]} appears more than once")
    jumps = np.flatnonzero(np.asarray((stamps[1:] - stamps[:-1]) != step))
    if len(jumps):
        at = int(jumps[0])
        raise ContractError(
            f"origin {origin}: timestamps must be contiguous on the {problem.frequency} grid; {stamps[at + 1]} follows {stamps[at]}"
        )
    if (origin - stamps[0]) % step != pd.Timedelta(0):
        raise ContractError(f"origin {origin} is not on the {problem.frequency} grid of its timestamps (first {stamps[0]})")
    history = int((stamps < origin).sum())
    if history < lookback:
        raise ContractError(
            f"origin {origin}: the input holds {describe_lookback(history, step)} before the origin; this model needs at least "
            f"{describe_lookback(lookback, step)}, from {origin - lookback * step} on"
        )
    covered = int((stamps >= origin).sum())
    horizon_end = origin + (horizon - 1) * step
    known_future = [c.name for c in problem.inputs if c.role == "future"]
    if covered < horizon:
        raise ContractError(
            f"origin {origin}: the input covers {covered} of the {horizon} horizon steps; add rows up to {horizon_end} "
            f"with the known-future covariates {known_future}"
        )
    series = part.set_index(TIMESTAMP).loc[: horizon_end]
    ahead = series.loc[origin:]
    for name in known_future:
        gaps = ahead.index[ahead[name].isna().to_numpy()]
        if len(gaps):
            raise ContractError(
                f"origin {origin}: known-future covariate '{name}' is missing at {gaps[0]}"
                + (f" and {len(gaps) - 1} more horizon step(s)" if len(gaps) > 1 else "")
                + "; it must be given over the whole horizon"
            )
    return origin, series


def _merge(requests: list[tuple[pd.Timestamp, pd.DataFrame]], problem: ForecastProblem) -> Batch | None:
    """All requests as one regular series, if they agree wherever they overlap (else None).

    What each request knows: target and past covariates before its origin, known-future
    covariates everywhere. A forecast reads nothing else, so forecasting every origin from the
    merged series equals forecasting each request on its own.
    """
    origins = pd.DatetimeIndex([origin for origin, _ in requests])
    if len(requests) == 1:
        origin, series = requests[0]
        return Batch(series, origins)
    observed = [problem.target, *(c.name for c in problem.inputs if c.role == "past")]
    ahead = [c.name for c in problem.inputs if c.role == "future"]
    parts = []
    for columns, rows in ((observed, lambda s, o: s.loc[s.index < o]), (ahead, lambda s, o: s)):
        if not columns:
            continue
        known = pd.concat([rows(series, origin)[columns] for origin, series in requests])
        distinct = known.reset_index().drop_duplicates()
        if distinct[TIMESTAMP].duplicated().any():
            return None
        parts.append(distinct.set_index(TIMESTAMP))
    merged = pd.concat(parts, axis=1, sort=True)
    grid = pd.date_range(merged.index.min(), merged.index.max(), freq=problem.step, name=TIMESTAMP)
    merged = merged.reindex(grid)
    return Batch(merged[[problem.target, *(c.name for c in problem.inputs)]], origins)


def forecast(model: Forecaster, model_input: pd.DataFrame) -> pd.DataFrame:
    """Answer a contract input with the model: one row per origin and step (see module doc)."""
    batches = requests_from_input(model_input, model.problem, model.lookback)
    answers = [model.predict(batch.frame, batch.origins) for batch in batches]
    result = pd.concat(answers, ignore_index=True) if len(answers) > 1 else answers[0]
    return result[output_columns(model.problem)].sort_values([ORIGIN, STEP], ignore_index=True)
