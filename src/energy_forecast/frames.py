"""The forecast frame: the one place that names its columns.

Every forecast, from any model family, the backtest, the logged MLflow model, the forecasts store
and the serving endpoint, is a frame with one row per (origin, step):

==============  ===========================================================================
``origin``      the forecast origin: the first forecast stamp; everything before it is history
``step``        1 .. horizon
``timestamp``   the interval-start stamp forecast: ``origin + (step - 1) * frequency``
``prediction``  the point forecast
``q<level>``    the forecast quantile at ``level`` (``q0.1``, ``q0.5``, ``q0.9`` …)
==============  ===========================================================================

Evaluation adds ``actual`` (the observed value) and ``baseline_<name>`` columns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

__all__ = [
    "ACTUAL",
    "KEYS",
    "ORIGIN",
    "PREDICTION",
    "STEP",
    "TIMESTAMP",
    "baseline_column",
    "forecast_frame",
    "quantile_column",
    "quantile_columns",
]

ORIGIN = "origin"
STEP = "step"
TIMESTAMP = "timestamp"
PREDICTION = "prediction"
ACTUAL = "actual"
KEYS = (ORIGIN, STEP, TIMESTAMP)

_QUANTILE_COLUMN = re.compile(r"q(0\.\d+)")


def quantile_column(level: float) -> str:
    """``0.1`` -> ``q0.1``: the forecast column of a quantile level."""
    return f"q{level:g}"


def quantile_columns(frame: pd.DataFrame) -> dict[float, str]:
    """Quantile level -> column, for the frame's columns named ``q<level>`` with 0 < level < 1."""
    return {float(match.group(1)): column for column in frame.columns if (match := _QUANTILE_COLUMN.fullmatch(str(column)))}


def baseline_column(name: str) -> str:
    """The evaluation column holding baseline ``name``'s forecast."""
    return f"baseline_{name}"


def forecast_frame(
    origins: Iterable, steps: Iterable, stamps: Iterable, prediction: Iterable, quantiles: Mapping[float, Iterable] | None = None
) -> pd.DataFrame:
    """A forecast frame from per-row arrays (``quantiles``: level -> values)."""
    frame = pd.DataFrame({
        ORIGIN: pd.DatetimeIndex(origins),
        STEP: np.asarray(steps, dtype="int64"),
        TIMESTAMP: pd.DatetimeIndex(stamps),
        PREDICTION: np.asarray(prediction, dtype="float64"),
    })
    for level, values in (quantiles or {}).items():
        frame[quantile_column(level)] = np.asarray(values, dtype="float64")
    return frame
