"""Leak-free features for direct multi-horizon tabular models.

One row per (origin, step). The origin ``o`` is the first forecast stamp; the row forecasts stamp
``t = o + (step - 1)``. Values enter only as follows, so nothing observed at or after the origin
can reach a feature:

==========================  ========================================  ========================
feature                     value                                     reads positions
==========================  ========================================  ========================
``step``                    steps ahead, 1..horizon                   none
``target_lag{k}_origin``    target k steps before the origin          ``o - k``, k >= 1
``target_lag{L}``           target L steps before the forecast stamp  ``t - L``, L >= horizon
``target_mean_lag{L}x{n}``  mean of the target at L, 2L, … nL before  ``t - iL``, L >= horizon
``target_mean{w}_origin``   mean of the w target values before o      ``o - w .. o - 1``
``target_{stat}{w}_origin`` max, min, std, steps_since_max, run of     ``o - w .. o - 1``
                            the same window (``rolling_stats``)
``{past}_lag{k}_origin``    past covariate k steps before the origin  ``o - k``, k >= 1
``target_diff{k}_origin``   last value minus the value k before it    ``o - 1``, ``o - 1 - k``
``..._change``              a seasonal lag or mean at the stamp minus  ``t - L``, ``o - 1 - L``
                            the same at the last observed stamp       (L >= horizon)
``..._last_plus_change``    the last value plus that change           ``o - 1`` and the above
``{future}``                known-future covariate at the stamp       ``t`` (known ahead)
``{future}_lag{k}``         known-future covariate k before the stamp ``t - k`` (known ahead)
``{future}_mean_horizon``,  a known-future covariate summarised over  ``o .. o + horizon - 1``
``{future}_{cat}_share_…``  the whole horizon (``horizon_summaries``)  (known ahead)
calendar                    of the forecast stamp                     the stamp only
==========================  ========================================  ========================

``tests/unit/test_features.py`` checks each column against a naive reference and proves the
property by changing every past value at or after the origin and seeing no feature move.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from energy_forecast.config import ForecastProblem
from energy_forecast.frames import ORIGIN, STEP, TIMESTAMP

__all__ = ["FeatureMatrix", "build_features", "feature_name"]


def feature_name(text: str) -> str:
    """A column name every tabular library accepts (LightGBM rejects JSON-special characters)."""
    return re.sub(r"[^0-9A-Za-z_]+", "_", text).strip("_")


@dataclass(frozen=True)
class FeatureMatrix:
    X: pd.DataFrame
    """Features, float64, one row per (origin, step)."""
    keys: pd.DataFrame
    """``origin``, ``step`` and ``timestamp`` of each row."""
    y: np.ndarray
    """Target at each row's stamp; NaN where the frame has no value there yet."""
    last: np.ndarray
    """The last value before each row's origin: a model that learns the change from it
    (``relative_to_last``, or the model's ``learn_change``) learns ``y - last`` and adds it back."""


def _codes(column: pd.Series) -> np.ndarray:
    """Category codes as floats; NaN stays NaN (trees route it explicitly)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy().astype("float64")
        codes[codes < 0] = np.nan
        return codes
    return column.to_numpy(dtype="float64", na_value=np.nan)


def _rolling_stats(y: np.ndarray, cumulative: np.ndarray, positions: np.ndarray, w: int, stats: list[str]) -> dict[str, np.ndarray]:
    """Each statistic of the ``w`` values before each origin position (``y[p - w : p]``);
    ``cumulative`` is ``y``'s running sum with a leading 0, computed once for every window."""
    mean = (cumulative[positions] - cumulative[positions - w]) / w
    out: dict[str, np.ndarray] = {"mean": mean} if "mean" in stats else {}
    if set(stats) <= {"mean"}:
        return out
    window = np.lib.stride_tricks.sliding_window_view(y, w)[positions - w]  # row i: the w values before positions[i]
    for stat in stats:
        if stat in ("max", "min", "std"):
            out[stat] = getattr(window, stat)(axis=1)
        elif stat == "steps_since_max":
            out[stat] = (w - 1 - window.argmax(axis=1)).astype("float64")
        elif stat == "run":
            above = window[:, ::-1] > mean[:, None]  # the latest value first
            changed = above != above[:, :1]
            length = np.where(changed.any(axis=1), changed.argmax(axis=1), w).astype("float64")
            out[stat] = np.where(above[:, 0], length, -length)
    return out


def _calendar(stamps: pd.DatetimeIndex, wanted: list[str]) -> dict[str, np.ndarray]:
    every = {
        "slot_of_day": lambda: (stamps.hour * 60 + stamps.minute) / 15.0,
        "hour": lambda: stamps.hour,
        "day_of_week": lambda: stamps.day_of_week,
        "is_weekend": lambda: stamps.day_of_week >= 5,
        "day_of_year": lambda: stamps.day_of_year,
        "month": lambda: stamps.month,
    }
    return {name: np.asarray(every[name](), dtype="float64") for name in wanted}


class _SameSlot:
    """Where a seasonal lag reads from. In steps, except for whole days on data in a zone with
    daylight saving: there "a week before" is the same wall-clock slot a week before (a plant's
    shifts keep local time), which is 4 steps more or less than a week in steps across a change.
    Slots that do not exist on the wall clock that day, or would not be before the origin, fall
    back to the lag in steps."""

    def __init__(self, index: pd.DatetimeIndex, step: pd.Timedelta) -> None:
        self.step = step
        self.wall: np.ndarray | None = None
        self.tick = pd.Timedelta(1, unit=index.unit)  # what one unit of asi8 is
        if index.tz is not None:
            wall = index.tz_localize(None).asi8
            offsets = index.asi8 - wall
            if len(offsets) and offsets.min() != offsets.max():  # a change inside the data
                self.wall = wall
                self.known, self.first = np.unique(wall, return_index=True)

    def source(self, stamp_pos: np.ndarray, lag: int, origin_pos: np.ndarray) -> np.ndarray:
        in_steps = stamp_pos - lag
        days = lag * self.step / pd.Timedelta(days=1)
        if self.wall is None or days != int(days):
            return in_steps
        wanted = self.wall[stamp_pos] - int(pd.Timedelta(days=int(days)) / self.tick)
        at = np.clip(np.searchsorted(self.known, wanted), 0, len(self.known) - 1)
        found = self.known[at] == wanted
        wall_clock = self.first[at]
        return np.where(found & (wall_clock < origin_pos) & (wall_clock >= 0), wall_clock, in_steps)


def build_features(frame: pd.DataFrame, origins: pd.DatetimeIndex, *, problem: ForecastProblem) -> FeatureMatrix:
    """Features for every origin in ``origins`` and every step up to ``problem.horizon``.

    Args:
        frame: regular series indexed by interval-start stamps, holding the target and the
            covariates of ``problem``. Rows after an origin may hold anything (or NaN) in the
            target and past columns; known-future columns must be filled over the horizon.
        origins: stamps in ``frame.index`` with at least ``problem.features.lookback`` rows before
            them and ``problem.horizon`` rows from them on.
        problem: the feature recipe, the covariates and the horizon.

    Raises:
        ValueError: an origin is not in the index, lacks history, or its horizon runs past the
            end of the frame.
    """
    horizon, recipe, lookback = problem.horizon, problem.features, problem.features.lookback
    positions = frame.index.get_indexer(origins)
    if (positions < 0).any():
        missing = origins[positions < 0][:3].tolist()
        raise ValueError(f"origins {missing} are not stamps of the series")
    if len(positions) and positions.min() < lookback:
        raise ValueError(
            f"origin {origins[positions.argmin()]} has {positions.min()} steps of history; "
            f"the features need {lookback}"
        )
    if len(positions) and positions.max() + horizon > len(frame):
        raise ValueError(
            f"origin {origins[positions.argmax()]}: the horizon of {horizon} steps runs past the "
            f"end of the series ({frame.index[-1]}); extend the frame with known-future covariates"
        )

    origin_pos = np.repeat(positions, horizon)
    step = np.tile(np.arange(1, horizon + 1), len(positions))
    stamp_pos = origin_pos + step - 1
    y = frame[problem.target].to_numpy(dtype="float64", na_value=np.nan)

    columns: dict[str, np.ndarray] = {STEP: step.astype("float64")}
    last = y[origin_pos - 1]
    for k in recipe.origin_lags:
        columns[f"target_lag{k}_origin"] = y[origin_pos - k]
    for k in recipe.origin_differences:
        columns[f"target_diff{k}_origin"] = last - y[origin_pos - 1 - k]
    same_slot = _SameSlot(frame.index, problem.step)
    for lag in recipe.seasonal_lags:
        columns[f"target_lag{lag}"] = y[same_slot.source(stamp_pos, lag, origin_pos)]
        if recipe.seasonal_changes:
            change = columns[f"target_lag{lag}"] - y[same_slot.source(origin_pos - 1, lag, origin_pos)]
            columns[f"target_lag{lag}_change"] = change
            columns[f"target_lag{lag}_last_plus_change"] = last + change
    for lag, count in recipe.seasonal_means:
        name = f"target_mean_lag{lag}x{count}"
        columns[name] = np.mean([y[same_slot.source(stamp_pos, lag * i, origin_pos)] for i in range(1, count + 1)], axis=0)
        if recipe.seasonal_changes:
            before = np.mean([y[same_slot.source(origin_pos - 1, lag * i, origin_pos)] for i in range(1, count + 1)], axis=0)
            columns[f"{name}_change"] = columns[name] - before
            columns[f"{name}_last_plus_change"] = last + columns[f"{name}_change"]
    if recipe.rolling_windows:
        cumulative = np.concatenate([[0.0], np.cumsum(y)])
        for w in recipe.rolling_windows:
            for stat, values in _rolling_stats(y, cumulative, positions, w, recipe.rolling_stats).items():
                columns[f"target_{stat}{w}_origin"] = np.repeat(values, horizon)
    for name in problem.past_covariates:
        values = _codes(frame[name])
        for k in recipe.past_covariate_lags:
            columns[f"{feature_name(name)}_lag{k}_origin"] = values[origin_pos - k]
    window = positions[:, None] + np.arange(horizon)  # each origin's horizon rows
    for name in problem.future_covariates:
        codes = _codes(frame[name])
        columns[feature_name(name)] = codes[stamp_pos]
        for k in recipe.future_lags:
            columns[f"{feature_name(name)}_lag{k}"] = codes[stamp_pos - k]
        if recipe.horizon_summaries:
            column = frame[name]
            if isinstance(column.dtype, pd.CategoricalDtype):
                codes = column.cat.codes.to_numpy()
                for code, category in enumerate(column.cat.categories):
                    share = (codes[window] == code).mean(axis=1)
                    columns[f"{feature_name(name)}_{feature_name(str(category))}_share_horizon"] = np.repeat(share, horizon)
            else:
                columns[f"{feature_name(name)}_mean_horizon"] = np.repeat(column.to_numpy(dtype="float64")[window].mean(axis=1), horizon)
    stamps = frame.index[stamp_pos]
    columns.update(_calendar(stamps, recipe.calendar))

    keys = pd.DataFrame(
        {ORIGIN: frame.index[origin_pos], STEP: step, TIMESTAMP: stamps}
    )
    return FeatureMatrix(X=pd.DataFrame(columns, dtype="float64"), keys=keys, y=y[stamp_pos], last=last)
