"""Backtests of a panel: the single-series split applied to every series, per-series metrics and a
volume-weighted aggregate.

Every series is cut at the same split bounds (:func:`energy_forecast.backtest.split_series`), so
all series are trained, validated and tested on the same periods. Each series is scored in its own
unit (:func:`energy_forecast.metrics.score`, MASE against its own weekly naive). The aggregate
weights each series' metric by its volume, the sum of its actuals over the scored period: a plant
that uses ten times the energy counts ten times as much, which is what an energy buyer's error
costs. ``volume_weighted_rmse`` is in the target's unit; ``volume_weighted_nrmse`` divides each
series' RMSE by its mean actual first (unit-free, comparable across panels).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from energy_forecast.backtest import ChronologicalSplit, attach_actuals, split_series
from energy_forecast.config import SplitConfig, TaskConfig
from energy_forecast.frames import ACTUAL, PREDICTION
from energy_forecast.metrics import METRIC_NAMES, mase_scale, score

__all__ = ["SERIES_ID", "attach_panel_actuals", "score_panel", "split_panel"]

SERIES_ID = "series_id"


def split_panel(frames: Mapping[str, pd.DataFrame], bounds: SplitConfig, task: TaskConfig, *, min_history: int) -> dict[str, ChronologicalSplit]:
    """Every series cut at the same bounds.

    Raises:
        ValueError: naming the series whose data does not fit the split.
    """
    splits = {}
    for sid, frame in frames.items():
        try:
            splits[sid] = split_series(frame, bounds, task, min_history=min_history)
        except ValueError as error:
            raise ValueError(f"series '{sid}': {error}") from None
    return splits


def attach_panel_actuals(forecast: pd.DataFrame, frames: Mapping[str, pd.DataFrame], target: str) -> pd.DataFrame:
    """Add each row's observed ``actual``, read from its own series."""
    parts = [attach_actuals(rows, frames[str(sid)], target) for sid, rows in forecast.groupby(SERIES_ID, sort=False)]
    return pd.concat(parts, ignore_index=True)


def score_panel(
    forecast: pd.DataFrame, histories: Mapping[str, pd.DataFrame], target: str, season: int, prediction: str = PREDICTION
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per-series metrics (one row per series) and their volume-weighted aggregate.

    Args:
        forecast: ``series_id``, ``actual`` and ``prediction`` columns.
        histories: each series' training period (for its MASE scale).
        season: the naive season of MASE in steps (a week).
    """
    rows = []
    for sid, part in forecast.groupby(SERIES_ID, sort=True):
        actual = part[ACTUAL].to_numpy(dtype="float64")
        metrics = score(actual, part[prediction].to_numpy(dtype="float64"), scale=mase_scale(histories[str(sid)][target].to_numpy(), season))
        rows.append({SERIES_ID: sid, "volume": float(actual.sum()), "mean_actual": float(actual.mean()), **metrics})
    per_series = pd.DataFrame(rows).set_index(SERIES_ID)
    weights = per_series["volume"].to_numpy()
    if weights.sum() <= 0:
        weights = np.ones(len(per_series))
    aggregate = {f"volume_weighted_{name}": float(np.average(per_series[name].to_numpy(), weights=weights)) for name in METRIC_NAMES}
    nrmse = per_series["rmse"] / per_series["mean_actual"].where(per_series["mean_actual"] > 0)
    aggregate["volume_weighted_nrmse"] = float(np.average(nrmse.fillna(0.0).to_numpy(), weights=weights))
    aggregate["series"] = float(len(per_series))
    return per_series, aggregate
