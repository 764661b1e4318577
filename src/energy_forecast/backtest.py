"""Chronological split and rolling-origin backtests.

::

    train_start            train_end         validation_end        test_end
        |--- history / fit ---|--- validation ---|------- test --------|
                                                  o1   o2   o3   ...      origins, every
                                                  [h ] [h ] [h ]          `origin_every`
                                                                          each scored on its
                                                                          own horizon

A model is fitted once on the training period. At every test origin it forecasts ``horizon``
steps from the history strictly before that origin (rolling origin, no refit). A forecast never
crosses its period's end, so test scores use test data only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from energy_forecast.config import SplitConfig, TaskConfig
from energy_forecast.frames import ACTUAL, ORIGIN, TIMESTAMP

__all__ = ["ChronologicalSplit", "Window", "attach_actuals", "origins_between", "split_series", "validation_windows"]


def local_bound(value: object, index: pd.DatetimeIndex, field: str = "") -> pd.Timestamp:
    """``value`` comparable with ``index``: a naive bound is wall-clock time in the index's zone.

    Raises:
        ValueError: a bound with a UTC offset against naive data (naming ``field``).
    """
    stamp = pd.Timestamp(value)
    if index.tz is None:
        if stamp.tzinfo is not None:
            raise ValueError(
                f"{field or 'a bound'}={value} carries a UTC offset but the data's stamps are naive: drop the offset, or declare "
                "the data's time zone (timezone: in the data YAML)"
            )
        return stamp
    if stamp.tzinfo is None:
        return stamp.tz_localize(index.tz, ambiguous=False, nonexistent="shift_forward")
    return stamp.tz_convert(index.tz)


def origins_between(
    index: pd.DatetimeIndex,
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    horizon: int,
    every: str,
    at: str = "00:00",
    min_history: int = 0,
) -> pd.DatetimeIndex:
    """Origins ``o`` in ``index`` with ``start <= o``, all ``horizon`` steps before ``end``.

    Origins are spaced ``every`` apart, phase-aligned to the time of day ``at``, and need at least
    ``min_history`` earlier stamps in ``index``.
    """
    if len(index) == 0:
        return pd.DatetimeIndex([], name=ORIGIN)
    step = index[1] - index[0] if len(index) > 1 else pd.Timedelta(0)
    spacing = pd.Timedelta(pd.tseries.frequencies.to_offset(every))
    hours, minutes = (int(part) for part in at.split(":"))
    wall = index.tz_localize(None) if index.tz is not None else index  # local days: 23 or 25 hours across daylight saving
    anchor = wall[0].normalize() + pd.Timedelta(hours=hours, minutes=minutes)
    earliest = max(local_bound(start, index), index[min(min_history, len(index) - 1)])
    last_allowed = local_bound(end, index) - horizon * step
    phase = (wall - anchor) % spacing == pd.Timedelta(0)
    chosen = index[phase & (index >= earliest) & (index <= last_allowed)]
    if min_history >= len(index):
        chosen = chosen[:0]
    return pd.DatetimeIndex(chosen, name=ORIGIN)


@dataclass(frozen=True)
class Window:
    """A validation window: a model trained on everything before ``start`` forecasts ``origins``,
    each horizon ending by ``end`` (exclusive)."""

    start: pd.Timestamp
    end: pd.Timestamp
    origins: pd.DatetimeIndex

    def describe(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M}..{self.end:%Y-%m-%d %H:%M} ({len(self.origins)} origins)"


def _month_start(stamp: pd.Timestamp) -> bool:
    return stamp.day == 1 and stamp == stamp.normalize()


def validation_windows(
    frame: pd.DataFrame, bounds: SplitConfig, task: TaskConfig, *, min_history: int
) -> tuple[Window, ...]:
    """The validation windows of ``bounds`` on ``frame``'s index, oldest first.

    A number N: the validation period (``train_end`` .. ``validation_end``) and the N-1 periods of
    the same length before it, whole calendar months when both bounds are month starts (N=3 with a
    November validation period: September, October, November). A list: those windows.

    Raises:
        ValueError: a window has no origin or too little history before it, naming the field.
    """
    index = frame.index
    train_end = local_bound(bounds.train_end, index, "split.train_end")
    validation_end = local_bound(bounds.validation_end, index, "split.validation_end")
    if isinstance(bounds.validation_windows, list):
        spans = [
            (local_bound(w.start, index, f"split.validation_windows.{i}.start"), local_bound(w.end, index, f"split.validation_windows.{i}.end"))
            for i, w in enumerate(bounds.validation_windows)
        ]
    else:
        count = bounds.validation_windows
        wall_start, wall_end = pd.Timestamp(bounds.train_end), pd.Timestamp(bounds.validation_end)
        months = (wall_end.year - wall_start.year) * 12 + wall_end.month - wall_start.month
        by_months = _month_start(wall_start) and _month_start(wall_end)

        def shifted(stamp: pd.Timestamp, k: int) -> pd.Timestamp:
            return local_bound(stamp - (pd.DateOffset(months=months * k) if by_months else (wall_end - wall_start) * k), index)

        spans = [(shifted(wall_start, k), shifted(wall_end, k)) if k else (train_end, validation_end) for k in range(count - 1, -1, -1)]
    windows = []
    for position, (start, end) in enumerate(spans):
        field = "split.validation_windows" + (f".{position}" if isinstance(bounds.validation_windows, list) else f" (window {start:%Y-%m-%d}..{end:%Y-%m-%d})")
        if end > validation_end:
            raise ValueError(f"{field}: ends after split.validation_end ({validation_end}): it would overlap the test period")
        before = int((index < start).sum())
        if before <= min_history:
            raise ValueError(f"{field}: {before} rows before it; a model needs more than {min_history} to train (fewer windows, or later ones)")
        origins = origins_between(index, start, end, horizon=task.horizon, every=task.origin_every, at=task.origin_time, min_history=min_history)
        if origins.empty:
            raise ValueError(f"{field}: no {task.name} origin (horizon {task.horizon}) fits between {start} and {end}")
        windows.append(Window(start, end, origins))
    return tuple(windows)


@dataclass(frozen=True)
class ChronologicalSplit:
    """Frames cut at the split bounds. Each frame holds everything before its period's end."""

    history: pd.DataFrame
    """Training period only (train_start .. train_end)."""
    through_validation: pd.DataFrame
    """Training and validation periods (train_start .. validation_end)."""
    through_test: pd.DataFrame
    """Everything up to test_end: the context the test origins see."""
    validation_origins: pd.DatetimeIndex
    test_origins: pd.DatetimeIndex
    bounds: SplitConfig
    windows: tuple[Window, ...] = ()
    """The validation windows, oldest first (the last one is the validation period by default)."""

    def describe(self) -> dict[str, str | int]:
        return {
            "train_rows": len(self.history),
            "train_first": str(self.history.index[0]),
            "validation_origins": len(self.validation_origins),
            "validation_windows": len(self.windows),
            "refit": bool(self.bounds.refit),
            "test_origins": len(self.test_origins),
            "test_first_origin": str(self.test_origins[0]) if len(self.test_origins) else "",
        }


def split_series(frame: pd.DataFrame, bounds: SplitConfig, task: TaskConfig, *, min_history: int) -> ChronologicalSplit:
    """Cut ``frame`` chronologically and place the validation and test origins.

    Raises:
        ValueError: a period is empty or has no room for a single origin, naming the bound.
    """
    index = frame.index
    start = local_bound(bounds.train_start, index, "split.train_start") if bounds.train_start else index[0]
    test_end = local_bound(bounds.test_end, index, "split.test_end") if bounds.test_end else index[-1] + (index[1] - index[0])
    frame = frame.loc[(index >= start) & (index < test_end)]
    index = frame.index
    train_end = local_bound(bounds.train_end, index, "split.train_end")
    validation_end = local_bound(bounds.validation_end, index, "split.validation_end")

    history = frame.loc[index < train_end]
    if len(history) <= min_history:
        raise ValueError(
            f"split.train_end={train_end}: the training period has {len(history)} rows; the "
            f"features need more than {min_history}"
        )
    if not (index >= validation_end).any():
        raise ValueError(f"split.validation_end={validation_end}: no data after it to test on (data ends {index[-1]})")

    def place(period_start: pd.Timestamp, period_end: pd.Timestamp, bound: str) -> pd.DatetimeIndex:
        origins = origins_between(
            index, period_start, period_end,
            horizon=task.horizon, every=task.origin_every, at=task.origin_time, min_history=min_history,
        )
        if origins.empty:
            raise ValueError(
                f"split.{bound}: no {task.name} origin ({task.origin_every} at {task.origin_time}, "
                f"horizon {task.horizon}) fits between {period_start} and {period_end}"
            )
        return origins

    return ChronologicalSplit(
        history=history,
        through_validation=frame.loc[index < validation_end],
        through_test=frame,
        validation_origins=place(train_end, validation_end, "validation_end"),
        test_origins=place(validation_end, test_end, "test_end"),
        bounds=bounds,
        windows=validation_windows(frame.loc[index < validation_end], bounds, task, min_history=min_history),
    )


def attach_actuals(forecast: pd.DataFrame, frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """Add the observed ``actual`` at each forecast stamp."""
    actual = frame[target].reindex(pd.DatetimeIndex(forecast[TIMESTAMP]))
    return forecast.assign(**{ACTUAL: np.asarray(actual, dtype="float64")})
