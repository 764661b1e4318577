"""Series frames in the long format Chronos-2's ``predict_df`` and ``fit`` read.

Every origin becomes its own series (item id = the origin) holding the ``context_length`` steps
before it and the horizon after it, so nothing at or after an origin reaches its forecast and
origins never see each other. What is unknown at an origin (the target, past covariates) is
blanked from it on; known-future covariates stay, and chronos reads them as ``future_df``.
Declared categorical covariates become text, which chronos treats as categorical.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from energy_forecast.config import ForecastProblem
from energy_forecast.frames import ORIGIN, TIMESTAMP, forecast_frame

__all__ = ["as_text", "context_frame", "forecast_from_chronos", "predict_df_arguments", "series_frame", "text_categoricals"]


def as_text(values: pd.Series) -> pd.Series:
    """String dtype; a categorical goes through its few categories (10x faster than astype)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        categories = pd.array(values.cat.categories.astype(str), dtype="string")
        return pd.Series(categories.take(values.cat.codes.to_numpy(), allow_fill=True), index=values.index, name=values.name)
    return values.astype("string")


def text_categoricals(frame: pd.DataFrame, problem: ForecastProblem) -> pd.DataFrame:
    """Declared categorical covariates as text (chronos treats non-numeric columns as categorical)."""
    for name in problem.categorical_covariates:
        if name in frame.columns and not isinstance(frame[name].dtype, pd.StringDtype):
            frame[name] = as_text(frame[name])
    return frame


def series_frame(frame: pd.DataFrame, item_id: object, problem: ForecastProblem) -> pd.DataFrame:
    """``frame`` as one long-format series: item id, timestamp, target, covariates."""
    columns = [problem.target, *problem.covariate_names]
    long = frame[columns].rename_axis(TIMESTAMP).reset_index()
    long.insert(0, ORIGIN, item_id)
    return text_categoricals(long, problem)


def context_frame(frame: pd.DataFrame, origins: pd.DatetimeIndex, problem: ForecastProblem, context_length: int) -> pd.DataFrame:
    """One series per origin: its ``context_length`` steps of history, then its horizon."""
    horizon = problem.horizon
    positions = frame.index.get_indexer(origins)
    starts = np.maximum(positions - context_length, 0)
    rows = np.concatenate([np.arange(start, p + horizon) for start, p in zip(starts, positions, strict=True)])
    origin_of_row = np.repeat(frame.index[positions], positions + horizon - starts)
    long = frame[[problem.target, *problem.covariate_names]].iloc[rows].rename_axis(TIMESTAMP).reset_index()
    long.insert(0, ORIGIN, origin_of_row)
    at_or_after = (long[TIMESTAMP] >= long[ORIGIN]).to_numpy()
    for name in (problem.target, *problem.past_covariates):  # unknown at the origin: blanked
        long[name] = long[name].mask(at_or_after)
    return text_categoricals(long, problem)


def predict_df_arguments(long: pd.DataFrame, problem: ForecastProblem, *, context_length: int, batch_size: int) -> dict[str, Any]:
    """The keyword arguments of the one ``predict_df`` call forecasting every series of ``long``.

    ``df`` is each origin's context (target and every covariate), ``future_df`` the known-future
    covariates over each horizon (None without any).
    """
    is_horizon = (long[TIMESTAMP] >= long[ORIGIN]).to_numpy()
    context, future = long[~is_horizon], long[is_horizon]
    future_covariates = list(problem.future_covariates)
    return {
        "df": context,
        "future_df": future[[ORIGIN, TIMESTAMP, *future_covariates]] if future_covariates else None,
        "id_column": ORIGIN,
        "timestamp_column": TIMESTAMP,
        "target": problem.target,
        "prediction_length": problem.horizon,
        "quantile_levels": list(problem.quantile_levels),
        "batch_size": batch_size,
        "context_length": context_length,
        "freq": problem.frequency,
    }


def forecast_from_chronos(forecast: pd.DataFrame, problem: ForecastProblem) -> pd.DataFrame:
    """``predict_df``'s answer as a forecast frame; ``prediction`` is the median.

    The model's quantile heads can cross (a 0.3 quantile above the 0.4 one); each row's quantiles
    are sorted (monotone rearrangement, Chernozhukov, Fernández-Val & Galichon 2010), which never
    increases the pinball loss, so the contract's quantiles are always ordered.
    """
    steps = problem.horizon
    n_origins = len(forecast) // steps
    levels = list(problem.quantile_levels)
    quantiles = np.sort(forecast[[str(level) for level in levels]].to_numpy(dtype="float64"), axis=1)
    median = quantiles[:, levels.index(0.5)] if 0.5 in levels else forecast["predictions"].to_numpy(dtype="float64")
    return forecast_frame(
        forecast[ORIGIN],
        np.tile(np.arange(1, steps + 1), n_origins),
        forecast[TIMESTAMP],
        median,
        {level: quantiles[:, i] for i, level in enumerate(levels)},
    )

