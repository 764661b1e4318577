"""Known-future covariates beyond the last row of the data: the ``ahead:`` rule of each one.

A forecast from the latest data needs its known-future covariates over the horizon, which the
meter file does not hold yet. The data YAML says, per covariate, where they come from:

``calendar:<rule>``
    computed from the interval's start stamp: a pure function of the calendar (``NSM``,
    ``WeekStatus`` and ``Day_of_week`` of the steel file). A unit test checks each rule against
    every row of the real file.
``same_slot_last_week``
    the value of the same quarter-hour seven days before. An *assumption* (here: that next week's
    production plan repeats this week's), declared in the YAML and recorded with every forecast.

A covariate without a rule must already be in the data over the whole horizon (a plan file
merged into the CSV, say); otherwise the forecast fails, naming it, before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from energy_forecast.config import DataConfig

__all__ = ["CALENDAR_RULES", "KnownFutureError", "extend_known_future"]


class KnownFutureError(ValueError):
    """A known-future covariate cannot be filled over the requested horizon."""


def _wall_seconds(stamps: pd.DatetimeIndex) -> np.ndarray:
    """Seconds since local midnight on the wall clock (so 03:00 is 10800 on a 23-hour day too)."""
    return np.asarray(stamps.hour * 3600 + stamps.minute * 60 + stamps.second, dtype="float64")


def _seconds_since_midnight_end(starts: pd.DatetimeIndex, step: pd.Timedelta) -> np.ndarray:
    return _wall_seconds(starts + step)


CALENDAR_RULES: dict[str, Callable[[pd.DatetimeIndex, pd.Timedelta], np.ndarray]] = {
    "seconds_since_midnight_end": _seconds_since_midnight_end,
    "seconds_since_midnight_start": lambda starts, step: _wall_seconds(starts),
    "week_status": lambda starts, step: np.where(starts.day_of_week >= 5, "Weekend", "Weekday"),
    "day_name": lambda starts, step: np.asarray(starts.day_name(), dtype=object),
    "hour": lambda starts, step: np.asarray(starts.hour, dtype="float64"),
    "day_of_week": lambda starts, step: np.asarray(starts.day_of_week, dtype="float64"),
}
"""``calendar:<name>`` rules: interval-start stamps (and the step) -> values."""

SAME_SLOT_LAST_WEEK = "same_slot_last_week"
WEEK = pd.Timedelta(days=7)


def extend_known_future(frame: pd.DataFrame, data: DataConfig, until: pd.Timestamp) -> tuple[pd.DataFrame, dict[str, str]]:
    """``frame`` extended with rows up to ``until`` (inclusive): the target and past covariates
    empty, each known-future covariate filled by its ``ahead:`` rule.

    Returns:
        The extended frame and, per known-future covariate, where its horizon values came from
        (``data``, ``calendar:<rule>`` or ``same_slot_last_week``), to record with the forecast.

    Raises:
        KnownFutureError: a known-future covariate without a rule is missing, or a weekly repeat
            reaches back before the data begins.
    """
    step = data.step
    last = frame.index[-1]
    future = [c for c in data.covariates if c.role == "future"]
    if until <= last:
        return frame, {c.name: "data" for c in future}
    new = pd.date_range(last + step, until, freq=step, name=frame.index.name)
    extended = pd.concat([frame, pd.DataFrame(index=new)])
    sources: dict[str, str] = {}
    for covariate in future:
        rule = covariate.ahead
        if rule is None:
            raise KnownFutureError(
                f"{data.path}: known-future covariate '{covariate.name}' ends at {last}, but the forecast needs it up to {until}; "
                f"add its values to the data, or declare an `ahead:` rule for it in the data YAML "
                f"(calendar:<{'|'.join(CALENDAR_RULES)}> or {SAME_SLOT_LAST_WEEK})"
            )
        if rule.startswith("calendar:"):
            values = CALENDAR_RULES[rule.removeprefix("calendar:")](new, step)
            extended.loc[new, covariate.name] = values
        else:
            if new[0] - WEEK < frame.index[0]:
                raise KnownFutureError(f"{data.path}: '{covariate.name}' repeats last week, but the data start at {frame.index[0]}")
            column = extended[covariate.name].copy()
            for stamp in new:  # a horizon longer than a week repeats the repeated values
                column.loc[stamp] = column.loc[stamp - WEEK]
            extended[covariate.name] = column
        sources[covariate.name] = rule
    for covariate in data.covariates:
        if covariate.kind == "categorical":
            extended[covariate.name] = pd.Categorical(extended[covariate.name], categories=frame[covariate.name].cat.categories)
    return extended, sources
