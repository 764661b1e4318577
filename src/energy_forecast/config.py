"""Validated configuration, loaded once from YAML before any work starts.

Three kinds of file live under ``configs/``:

* a **data** YAML (``configs/data/*.yaml``) describes one CSV: its timestamp quirks, the target,
  the frequency and every covariate with its role (``past`` or ``future``) and kind;
* a **task** YAML (``configs/tasks/*.yaml``) says what is forecast: the horizon and when
  forecast origins occur;
* a **training** YAML (``configs/training/*.yaml``) names a data file and a task, the
  chronological split, the feature recipe, the model (``model.type`` + ``model.params``) and
  where results are tracked. ``extends:`` merges the file onto a parent, so each model file
  only states what differs.

Every error names the file and the dotted field, lists the valid choices where there is a fixed
set, and is raised before data is read or a run is started. Model parameters are checked
against the model family's own schema by :func:`energy_forecast.training.load_config`, which
sits above the model registry.
"""

from __future__ import annotations

import os
import re
import typing
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "CalendarFeature",
    "ComparisonConfig",
    "ConfigError",
    "Covariate",
    "DataConfig",
    "FeatureConfig",
    "ForecastProblem",
    "IntervalConfig",
    "ModelConfig",
    "OperationsConfig",
    "SplitConfig",
    "StrictModel",
    "TaskConfig",
    "TimestampSpec",
    "TrackingConfig",
    "TrainingConfig",
    "TuningConfig",
    "ValidationWindow",
    "deep_merge",
    "format_validation_error",
    "check_lags_leak_free",
    "check_steps",
    "longest_day",
    "to_steps",
    "Steps",
    "load_comparison_config",
    "load_data_config",
    "load_operations_config",
    "load_task_config",
    "load_training_config",
    "read_yaml",
]


class ConfigError(ValueError):
    """A configuration file is missing, unreadable or invalid.

    The message names the file and each offending field, so it can be fixed without reading code.
    """


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


Steps = int | str
"""A length in time: a number of steps, or a duration such as ``15min``, ``1h``, ``1d``, ``7d``
(pandas notation) that :func:`to_steps` turns into steps of the data's frequency."""


def _pandas_duration(value: str) -> str:
    """``value`` as pandas keeps reading it: stripped, a trailing lower-case day (``1d``, which
    pandas deprecates) written ``1D``."""
    value = value.strip()
    return value[:-1] + "D" if value.endswith("d") else value


def _duration(value: str) -> pd.Timedelta:
    try:
        delta = pd.Timedelta(_pandas_duration(value))
    except (ValueError, TypeError):
        raise ValueError(f"'{value}' is neither a number of steps nor a duration such as '15min', '1h', '1d' or '7d'") from None
    if delta <= pd.Timedelta(0):
        raise ValueError(f"'{value}' must be a positive duration")
    return delta


def to_steps(value: Steps, step: pd.Timedelta, field: str) -> int:
    """``value`` in steps of ``step``: an int is already steps; a duration must be a whole number of them.

    Raises:
        ValueError: naming ``field``, when the duration is not a whole number of steps.
    """
    if isinstance(value, int):
        return value
    delta = _duration(value)
    steps, remainder = divmod(delta, step)
    if remainder != pd.Timedelta(0) or steps < 1:
        raise ValueError(f"{field}: {value} is not a whole number of {_describe(step)} steps (it is {delta / step:g}); write steps, or a multiple of {_describe(step)}")
    return int(steps)


def _describe(step: pd.Timedelta) -> str:
    minutes = step / pd.Timedelta(minutes=1)
    return f"{minutes:g}-minute" if minutes < 60 else f"{step}"


def check_steps(values: list[Any]) -> None:
    """Each value is a positive number of steps or a positive duration (else ValueError; the
    caller's field validator names the field)."""
    for value in values:
        if isinstance(value, str):
            _duration(value)
        elif value < 1:
            raise ValueError(f"must be positive, got {value}")


def _known_zone(value: str | None) -> str | None:
    if value is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"'{value}' is not an IANA time zone such as 'Europe/Berlin', 'Asia/Seoul' or 'UTC'") from None
    return value


class TimestampSpec(StrictModel):
    column: str
    timezone: str | None = Field(
        default=None,
        description="the zone the stamps are written in when they carry no UTC offset (e.g. UTC, or the plant's "
        "zone); stamps with offsets are exact instants. Unset and no offsets: the stamps are the plant's wall clock",
    )
    format: str | None = Field(
        default=None, description="strptime format, e.g. '%d/%m/%Y %H:%M'; ISO 8601 when unset"
    )
    label: Literal["start", "end"] = Field(
        default="start",
        description="whether a stamp marks the start or the end of its interval; "
        "the loader always returns interval-start stamps",
    )
    midnight_dated_previous_day: bool = Field(
        default=False,
        description="the 00:00 stamp carries the date of the day it ends (it belongs to the next "
        "calendar day); the loader adds one day to such stamps",
    )

    @field_validator("timezone")
    @classmethod
    def _timezone_is_known(cls, value: str | None) -> str | None:
        return _known_zone(value)


AHEAD_RULES = (
    "calendar:seconds_since_midnight_end",
    "calendar:seconds_since_midnight_start",
    "calendar:week_status",
    "calendar:day_name",
    "calendar:hour",
    "calendar:day_of_week",
    "same_slot_last_week",
)
"""How a known-future covariate is filled beyond the data's last row (energy_forecast.data.ahead)."""


class Covariate(StrictModel):
    name: str
    role: Literal["past", "future"] = Field(
        description="past: known only up to the forecast origin; future: known over the horizon"
    )
    kind: Literal["numeric", "categorical"] = "numeric"
    note: str | None = None
    ahead: str | None = Field(
        default=None,
        description="known-future covariates only: how `forecast` fills them beyond the data's last row: "
        "calendar:<rule> (a function of the stamp) or same_slot_last_week (an assumption, recorded with the "
        "forecast); unset: the data must hold the horizon",
    )

    @model_validator(mode="after")
    def _ahead_is_known_and_for_future_covariates(self) -> Covariate:
        if self.ahead is None:
            return self
        if self.role != "future":
            raise ValueError(f"covariate '{self.name}': ahead applies to role: future only (it is {self.role})")
        if self.ahead not in AHEAD_RULES:
            raise ValueError(f"covariate '{self.name}': ahead '{self.ahead}' is not one of {', '.join(AHEAD_RULES)}")
        return self


class DataConfig(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="names registered models ({data}-{task}): letters, digits, _ . -")
    path: Path
    sha256: str | None = Field(default=None, description="expected sha256 of the file, if pinned: a different file is refused")
    encoding: str = "utf-8-sig"
    timestamp: TimestampSpec
    target: str
    target_min: float | None = Field(
        default=0.0,
        description="the smallest value the target can take (energy use: 0); the loader rejects lower values and "
        "forecasts are clipped to it; null for a target without a bound",
    )
    max_abs_value: float = Field(
        1e12, gt=0, description="readings beyond +- this are refused as implausible (a unit or export error, not a load)"
    )
    timezone: str | None = Field(
        default=None,
        description="the plant's local time zone (IANA, e.g. Europe/Berlin): stamps are converted to it, and calendar "
        "features, daily origins and daily partitions follow its wall clock, daylight saving included. Unset: the "
        "stamps' own zone (timestamp.timezone), else naive wall-clock time without daylight saving",
    )
    frequency: str = "15min"
    max_gap_steps: int = Field(
        default=0,
        ge=0,
        description="gaps of up to this many missing steps are filled and counted; longer gaps "
        "are rejected",
    )
    covariates: list[Covariate] = Field(default_factory=list)
    id_column: str | None = Field(
        default=None,
        description="a panel in one file: the column naming each row's series (a site, a meter); every series is "
        "validated on its own. Alternatively `path` may be a glob (plants/*.csv): one file per series, the series "
        "id being the file name without its suffix",
    )

    @property
    def is_glob(self) -> bool:
        """``path`` is a pattern matching one file per series."""
        return any(char in str(self.path) for char in "*?[")

    @property
    def is_panel(self) -> bool:
        """Many series: an ``id_column`` or a glob ``path``."""
        return self.id_column is not None or self.is_glob

    @field_validator("sha256")
    @classmethod
    def _sha256_is_hex(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not re.fullmatch(r"[0-9a-f]{64}", value.strip().lower()):
            raise ValueError(f"'{value}' is not a sha256 (64 hex digits); leave it empty to pin nothing")
        return value.strip().lower()

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        import codecs

        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"'{value}' is not an encoding Python knows (e.g. utf-8, utf-8-sig, latin-1, cp1252)") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone_is_known(cls, value: str | None) -> str | None:
        return _known_zone(value)

    @property
    def zone(self) -> str | None:
        """The plant's zone the loaded index is in; None for naive wall-clock data."""
        return self.timezone or self.timestamp.timezone

    @field_validator("frequency")
    @classmethod
    def _frequency_is_a_pandas_offset(cls, value: str) -> str:
        try:
            offset = pd.tseries.frequencies.to_offset(value)
        except ValueError as error:
            raise ValueError(f"'{value}' is not a pandas frequency such as '15min' or '1h'") from error
        if pd.Timedelta(offset) <= pd.Timedelta(0):
            raise ValueError(f"'{value}' must be a positive fixed frequency")
        return value

    @model_validator(mode="after")
    def _covariates_are_distinct_from_target(self) -> DataConfig:
        names = [c.name for c in self.covariates]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"covariates declared twice: {duplicated}")
        if self.target in names:
            raise ValueError(f"the target '{self.target}' cannot also be a covariate")
        if self.timestamp.column in names or self.timestamp.column == self.target:
            raise ValueError(f"the timestamp column '{self.timestamp.column}' cannot be a value column")
        if self.id_column is not None:
            if self.id_column in (*names, self.target, self.timestamp.column):
                raise ValueError(f"id_column '{self.id_column}' cannot also be the target, the timestamp or a covariate")
            if self.is_glob:
                raise ValueError("declare either id_column (one file, many series) or a glob path (one file per series), not both")
        if self.is_glob and self.sha256:
            raise ValueError("sha256 pins one file; a glob path names many: leave sha256 empty")
        return self

    @property
    def step(self) -> pd.Timedelta:
        return pd.Timedelta(pd.tseries.frequencies.to_offset(self.frequency))

    def covariate(self, name: str) -> Covariate:
        for covariate in self.covariates:
            if covariate.name == name:
                return covariate
        raise KeyError(name)


# --------------------------------------------------------------------------------------------
# task, split, features
# --------------------------------------------------------------------------------------------


DEFAULT_QUANTILE_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


class TaskConfig(StrictModel):
    """What is forecast: ``horizon`` steps ahead from each origin.

    Origins fall every ``origin_every``, phase-aligned to ``origin_time`` of each day. An origin is
    the first forecast timestamp: everything strictly before it is history.
    """

    name: str
    horizon: Steps = Field(
        description="steps forecast from each origin, or a duration (1d: a whole local day, 25 hours where daylight "
        "saving can lengthen one)"
    )
    origin_every: str = Field(default="1D", description="pandas offset between forecast origins")
    origin_time: str = Field(default="00:00", description="HH:MM that origins are aligned to")
    quantile_levels: tuple[float, ...] = Field(
        default=DEFAULT_QUANTILE_LEVELS,
        description="quantiles every model forecasts (columns q<level>); 0.1 and 0.9 bound the 80 % interval",
    )

    @field_validator("quantile_levels")
    @classmethod
    def _levels_inside_unit_interval(cls, levels: tuple[float, ...]) -> tuple[float, ...]:
        bad = [level for level in levels if not 0.0 < level < 1.0]
        if bad or not levels:
            raise ValueError(f"quantile levels must lie strictly between 0 and 1, got {list(levels)}")
        return tuple(sorted(set(levels)))

    @field_validator("horizon")
    @classmethod
    def _horizon_positive(cls, value: Steps) -> Steps:
        check_steps([value])
        return value

    def horizon_steps(self, data: DataConfig) -> int:
        """The horizon in steps of ``data``: a duration of whole days covers the longest local day of its zone."""
        steps = to_steps(self.horizon, data.step, "horizon")
        if isinstance(self.horizon, str) and data.zone and _duration(self.horizon) % pd.Timedelta(days=1) == pd.Timedelta(0):
            steps += to_steps(f"{(longest_day(data.zone) - pd.Timedelta(days=1)).total_seconds():.0f}s", data.step, f"horizon (the extra hour of {data.zone}'s longest day)") if longest_day(data.zone) > pd.Timedelta(days=1) else 0
        return steps

    @field_validator("origin_every")
    @classmethod
    def _origin_every_is_fixed(cls, value: str) -> str:
        try:
            delta = pd.Timedelta(pd.tseries.frequencies.to_offset(value))
        except (ValueError, TypeError) as error:
            raise ValueError(f"'{value}' is not a fixed pandas offset such as '1D' or '15min'") from error
        if delta <= pd.Timedelta(0):
            raise ValueError(f"'{value}' must be positive")
        return value

    @field_validator("origin_time")
    @classmethod
    def _origin_time_is_hh_mm(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"'{value}' is not a time of day written HH:MM")
        return value


class ValidationWindow(StrictModel):
    """One validation window: origins from ``start`` on, each horizon ending by ``end`` (exclusive)."""

    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _start_before_end(self) -> ValidationWindow:
        if not self.start < self.end:
            raise ValueError(f"a validation window's start ({self.start}) must come before its end ({self.end})")
        return self


class SplitConfig(StrictModel):
    """Chronological split. Each bound is exclusive and is the first stamp of the next period.

    ``train_start`` .. ``train_end`` trains, ``train_end`` .. ``validation_end`` validates
    (early stopping, ensemble weights, Chronos validation), ``validation_end`` .. ``test_end``
    is scored by the rolling-origin backtest.

    With ``validation_windows`` > 1, early-stopping rounds and ensemble weights are chosen on
    several windows before the test (each scored by the same rolling-origin backtest, each model
    trained only on data before its window); ``refit`` then refits on everything before the test
    with the chosen round count (:mod:`energy_forecast.validation`).
    """

    train_start: datetime | None = None
    train_end: datetime
    validation_end: datetime
    test_end: datetime | None = None
    validation_windows: int | list[ValidationWindow] = Field(
        1,
        description="a number N: the validation period (train_end .. validation_end) and the N-1 periods of the same length "
        "before it (whole calendar months when both bounds are month starts); or a list of {start, end} windows, each "
        "ending by validation_end. Early stopping, ensemble weights and tuning use every window; the test never",
    )
    refit: bool = Field(
        False,
        description="true: after validation, refit on everything before validation_end with the round count chosen on the "
        "windows (their median best iteration), no early stopping; false: keep the model trained before the last window",
    )

    @model_validator(mode="after")
    def _bounds_increase(self) -> SplitConfig:
        bounds = [
            ("train_start", self.train_start),
            ("train_end", self.train_end),
            ("validation_end", self.validation_end),
            ("test_end", self.test_end),
        ]
        present = [(name, value) for name, value in bounds if value is not None]
        aware = [name for name, value in present if value.tzinfo is not None]
        if aware and len(aware) != len(present):
            raise ValueError(
                f"{', '.join(aware)} carry a UTC offset and the other bounds do not: write every bound in the plant's "
                "local time without an offset (or every one with it)"
            )
        for (first, a), (second, b) in zip(present, present[1:], strict=False):
            if not a < b:
                raise ValueError(f"{first} ({a}) must come before {second} ({b})")
        if isinstance(self.validation_windows, int) and self.validation_windows < 1:
            raise ValueError(f"validation_windows must be at least 1, got {self.validation_windows}")
        if isinstance(self.validation_windows, list):
            if not self.validation_windows:
                raise ValueError("validation_windows: an empty list; give at least one window, or a number")
            windows = sorted(self.validation_windows, key=lambda w: w.start)
            for position, window in enumerate(self.validation_windows):
                if (window.end.tzinfo is None) != (self.validation_end.tzinfo is None):
                    raise ValueError(f"validation_windows.{position}: write it like the other bounds (with or without a UTC offset)")
                if window.end > self.validation_end:
                    raise ValueError(
                        f"validation_windows.{position}: ends {window.end}, after validation_end ({self.validation_end}): "
                        "a validation window may not overlap the test period"
                    )
                if self.train_start is not None and window.start <= self.train_start:
                    raise ValueError(f"validation_windows.{position}: starts {window.start}, not after train_start ({self.train_start})")
            for first, second in zip(windows, windows[1:], strict=False):
                if second.start < first.end:
                    raise ValueError(f"validation_windows: {first.start}..{first.end} and {second.start}..{second.end} overlap")
            object.__setattr__(self, "validation_windows", windows)
        return self


CalendarFeature = Literal["slot_of_day", "hour", "day_of_week", "is_weekend", "day_of_year", "month"]
RollingStat = Literal["mean", "max", "min", "std", "steps_since_max", "run"]


class FeatureConfig(StrictModel):
    """Feature recipe of the tabular (gradient-boosting) families.

    Every value that is not a known-future covariate enters through a lag that ends before the
    origin, so nothing at or after the origin can leak in. Names carry the lag.
    """

    origin_lags: list[Steps] = Field(
        default=[1, 2, 3, 4, 8, 16, 48, 96],
        description="target values k steps (or a duration: 15min, 1h, 1d) before the origin",
    )
    seasonal_lags: list[Steps] = Field(
        default=[96, 192, 672],
        description="target values L steps (or a duration: 1d, 7d) before the forecast timestamp; L must be >= horizon",
    )
    seasonal_means: list[tuple[Steps, int]] = Field(
        default=[],
        description="[L, n]: mean of the target at L, 2L, ..., nL steps before the forecast stamp "
        "(a smoothed same-slot profile; L may be a duration); L must be >= horizon",
    )
    rolling_windows: list[Steps] = Field(
        default=[16, 96, 672], description="windows of the last w target values (or a duration: 4h, 1d) before the origin"
    )
    rolling_stats: list[RollingStat] = Field(
        default=["mean"],
        description="what each rolling window gives: mean, max, min, std, steps_since_max (steps back from the last value "
        "to the window's peak: where a batch cycle stands) and run (how many of the latest values lie on the same side of "
        "the window's mean, positive above it, negative at or below)",
    )
    past_covariate_lags: list[Steps] = Field(
        default=[1, 96], description="past covariate values k steps (or a duration) before the origin"
    )
    calendar: list[CalendarFeature] = Field(
        default=["slot_of_day", "day_of_week", "is_weekend"],
        description="calendar features of the forecast timestamp (in the plant's local time)",
    )
    horizon_summaries: bool = Field(
        default=False,
        description="summaries of each known-future covariate over the origin's whole horizon "
        "(mean, or the share of each category), e.g. how much of tomorrow is planned at full load",
    )
    train_origin_every: str | None = Field(
        default=None,
        description="spacing of training origins; the task's origin_every when unset",
    )
    origin_differences: list[Steps] = Field(
        default=[],
        description="the last value minus the value k steps before it (the recent slope and the last hour's shape)",
    )
    future_lags: list[Steps] = Field(
        default=[],
        description="known-future covariates k steps before the forecast stamp (with the value at the stamp: a transition "
        "known ahead, such as a Load_Type change at the next slot)",
    )
    seasonal_changes: bool = Field(
        default=False,
        description="for each seasonal lag and mean: its value at the forecast stamp minus its value at the last observed "
        "stamp (how the load usually moves from the last slot to this one) and the last value plus that move",
    )
    relative_to_last: bool = Field(
        default=False,
        description="the model learns the change from the last observed value (target minus the value just before the "
        "origin) and adds it back: levels a tree never saw stay reachable",
    )

    @field_validator("origin_lags", "seasonal_lags", "rolling_windows", "past_covariate_lags", "origin_differences", "future_lags")
    @classmethod
    def _positive_and_unique(cls, values: list[Steps]) -> list[Steps]:
        check_steps(values)
        return sorted(set(values)) if all(isinstance(v, int) for v in values) else values

    @field_validator("train_origin_every")
    @classmethod
    def _train_origin_every_is_a_duration(cls, value: str | None) -> str | None:
        """Checked before any work (not at the first fit), and written as pandas will keep reading
        it: ``1d`` becomes ``1D`` (pandas deprecates the lower-case day)."""
        if value is None:
            return None
        _duration(value)
        return _pandas_duration(value)

    @field_validator("seasonal_means")
    @classmethod
    def _lags_and_counts_positive(cls, values: list[tuple[Steps, int]]) -> list[tuple[Steps, int]]:
        check_steps([lag for lag, _ in values])
        bad = [pair for pair in values if pair[1] < 1]
        if bad:
            raise ValueError(f"lag and count must be positive, got {bad}")
        return sorted(set(values)) if all(isinstance(lag, int) for lag, _ in values) else values

    @property
    def resolved(self) -> bool:
        """Every lag and window is a number of steps (:meth:`in_steps` has run)."""
        lengths = [
            *self.origin_lags, *self.seasonal_lags, *(lag for lag, _ in self.seasonal_means), *self.rolling_windows,
            *self.past_covariate_lags, *self.origin_differences, *self.future_lags,
        ]
        return all(isinstance(value, int) for value in lengths)

    def in_steps(self, step: pd.Timedelta) -> FeatureConfig:
        """A copy with every duration written as steps of ``step``.

        Raises:
            ValueError: a duration is not a whole number of steps, naming the field.
        """
        if self.resolved:
            return self

        def steps(field: str) -> list[int]:
            return [to_steps(value, step, f"features.{field}") for value in getattr(self, field)]

        return FeatureConfig.model_validate(
            {
                **self.model_dump(),
                **{field: steps(field) for field in ("origin_lags", "seasonal_lags", "rolling_windows", "past_covariate_lags", "origin_differences", "future_lags")},
                "seasonal_means": [(to_steps(lag, step, "features.seasonal_means"), count) for lag, count in self.seasonal_means],
            }
        )

    @property
    def lookback(self) -> int:
        """Steps of history needed before the earliest origin."""
        if not self.resolved:
            raise ValueError("features hold durations: resolve them with in_steps(step) first")
        return max(
            [
                1,
                *self.origin_lags,
                *self.seasonal_lags,
                *(lag * count for lag, count in self.seasonal_means),
                *self.rolling_windows,
                *self.past_covariate_lags,
                *(k + 1 for k in self.origin_differences),
                *(lag * count + 1 for lag, count in self.seasonal_means if self.seasonal_changes),
                *(lag + 1 for lag in self.seasonal_lags if self.seasonal_changes),
                *self.future_lags,
            ]
        )


def longest_day(zone: str) -> pd.Timedelta:
    """The longest local day of ``zone`` (25 hours where daylight saving ends; 24 hours elsewhere)."""
    midnights = pd.date_range("2000-01-01", "2040-01-01", freq="D", tz=zone)
    return max(pd.Timedelta(days=1), (midnights[1:] - midnights[:-1]).max())


def check_lags_leak_free(features: FeatureConfig, horizon: int) -> None:
    """The one leak rule of the direct design: a lag counted from the forecast stamp must reach
    back at least the horizon, or the last steps of a horizon would read values at or after the
    origin. Raises ValueError naming the offending lags."""
    lags = [*features.seasonal_lags, *(lag for lag, _ in features.seasonal_means)]
    too_short = [lag for lag in lags if lag < horizon]
    if too_short:
        raise ValueError(
            f"features.seasonal_lags / seasonal_means lags {too_short} are shorter than the horizon "
            f"({horizon}): they would read values at or after the origin"
        )


class ForecastProblem(StrictModel):
    """The forecasting problem, described once: what is forecast, from which columns, with which
    features. Every model is built from it and saves it beside its fitted state, so a saved model
    needs no YAML to forecast. :attr:`TrainingConfig.problem` builds it from a training YAML."""

    target: str
    target_min: float | None = None
    """Forecasts and their quantiles are clipped to this bound (the data's ``target_min``)."""
    frequency: str = "15min"
    horizon: int = Field(gt=0)
    origin_every: str = "1D"
    origin_time: str = "00:00"
    covariates: tuple[Covariate, ...] = ()
    """The covariates the model may use, each with its role (past / future) and kind."""
    available_covariates: tuple[Covariate, ...] | None = None
    """Every covariate the data declares: the forecast contract's input columns, the same for all
    models of a data set whichever subset each uses. ``covariates`` when unset."""
    features: FeatureConfig = Field(default_factory=lambda: FeatureConfig())
    quantile_levels: tuple[float, ...] = DEFAULT_QUANTILE_LEVELS
    interval_bands: int = Field(8, ge=1)
    """Bands of horizon steps with their own calibrated quantiles (models/intervals.py)."""
    seed: int = 42

    @model_validator(mode="after")
    def _leak_free(self) -> ForecastProblem:
        object.__setattr__(self, "features", self.features.in_steps(self.step))
        check_lags_leak_free(self.features, self.horizon)
        if self.target in self.covariate_names:
            raise ValueError(f"the target '{self.target}' cannot also be a covariate")
        if self.available_covariates is None:
            object.__setattr__(self, "available_covariates", self.covariates)
        unavailable = [c.name for c in self.covariates if c not in self.available_covariates]
        if unavailable:
            raise ValueError(f"covariates {unavailable} are not among the available ones")
        return self

    @property
    def inputs(self) -> tuple[Covariate, ...]:
        """The covariates of the forecast contract's input (every declared one)."""
        return self.available_covariates or ()

    @property
    def step(self) -> pd.Timedelta:
        return pd.Timedelta(pd.tseries.frequencies.to_offset(self.frequency))

    @property
    def covariate_names(self) -> tuple[str, ...]:
        """Past covariates, then known-future ones."""
        return (*self.past_covariates, *self.future_covariates)

    @property
    def past_covariates(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.covariates if c.role == "past")

    @property
    def future_covariates(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.covariates if c.role == "future")

    @property
    def categorical_covariates(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.covariates if c.kind == "categorical")

    def steps_per(self, period: str) -> int:
        return int(pd.Timedelta(period) / self.step)

    def replace(self, **changes: Any) -> ForecastProblem:
        """A validated copy with ``changes`` (e.g. another horizon)."""
        return ForecastProblem.model_validate({**self.model_dump(), **changes})


# --------------------------------------------------------------------------------------------
# model and tracking
# --------------------------------------------------------------------------------------------


class ModelConfig(StrictModel):
    type: str = Field(description="registry name of the model family, e.g. xgboost")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    params: dict[str, Any] = Field(default_factory=dict)


class IntervalConfig(StrictModel):
    """Calibrated quantiles for families that forecast one value (all but Chronos-2)."""

    step_bands: int = Field(
        8, ge=1, description="bands of horizon steps that get their own split-conformal quantiles from the validation residuals"
    )


NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]*")
"""Experiment and registered-model names: letters, digits, space, _ . - (no slash: MLflow and the
artifact store would read one as a path, and ``..`` could leave the store)."""
TEMPLATE_FIELDS = ("data", "task")


class TrackingConfig(StrictModel):
    experiment: str = "steel-energy-forecast"
    registered_model: str | None = Field(
        default="{data}-{task}",
        description="registered model name ({data} and {task} are filled in); null skips registration",
    )
    promotion_metric: Literal["rmse", "mae", "mase", "smape"] = "rmse"

    @field_validator("experiment")
    @classmethod
    def _experiment_is_a_plain_name(cls, value: str) -> str:
        if not NAME_PATTERN.fullmatch(value) or ".." in value or value != value.strip():
            raise ValueError(f"{value!r} is not a plain name: use letters, digits, space, _ . - (no slash, no '..', not empty)")
        return value

    @field_validator("registered_model")
    @classmethod
    def _template_names_known_fields(cls, value: str | None) -> str | None:
        if value is None:
            return None
        import string

        try:
            fields = [field for _, field, _, _ in string.Formatter().parse(value) if field is not None]
        except ValueError as error:
            raise ValueError(f"{value!r} is not a valid name template: {error}") from None
        unknown = [field for field in fields if field not in TEMPLATE_FIELDS]
        if unknown:
            raise ValueError(f"{value!r} uses {unknown}; a name template can only fill in {{data}} and {{task}}")
        filled = value.format(data="data", task="task")
        if not NAME_PATTERN.fullmatch(filled) or ".." in filled:
            raise ValueError(f"{value!r} is not a plain name once filled in: use letters, digits, space, _ . - (no slash)")
        return value


class IntRange(StrictModel):
    """An integer parameter searched between ``low`` and ``high`` (both included)."""

    type: Literal["int"]
    low: int
    high: int
    step: int = Field(1, gt=0)
    log: bool = Field(False, description="sample on a log scale (low must be >= 1; step must be 1)")

    @model_validator(mode="after")
    def _bounds(self) -> IntRange:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and (self.low < 1 or self.step != 1):
            raise ValueError("log: true needs low >= 1 and step 1")
        return self


class FloatRange(StrictModel):
    """A real parameter searched between ``low`` and ``high``."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = Field(False, description="sample on a log scale (low must be > 0), e.g. learning rates")
    step: float | None = Field(None, gt=0, description="a grid step; not with log")

    @model_validator(mode="after")
    def _bounds(self) -> FloatRange:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"log: true needs low > 0 (got {self.low})")
        if self.log and self.step is not None:
            raise ValueError("log: true and step cannot be combined")
        return self


class Choice(StrictModel):
    """A parameter searched among ``choices`` (numbers, strings, booleans or null)."""

    type: Literal["categorical"]
    choices: list[str | int | float | bool | None] = Field(min_length=1)

    @field_validator("choices")
    @classmethod
    def _distinct(cls, values: list[Any]) -> list[Any]:
        duplicated = [value for position, value in enumerate(values) if value in values[:position]]
        if duplicated:
            raise ValueError(f"choices listed twice: {duplicated}")
        return values


SearchRange = typing.Annotated[IntRange | FloatRange | Choice, Field(discriminator="type")]


class PrunerConfig(StrictModel):
    """Optuna's pruner: a trial stops after a validation window that is worse than the others' there."""

    type: Literal["median", "percentile", "none"] = Field(
        "median", description="median: optuna.pruners.MedianPruner; percentile: PercentilePruner; none: NopPruner"
    )
    n_startup_trials: int = Field(5, ge=0, description="no pruning until this many trials finished")
    n_warmup_steps: int = Field(0, ge=0, description="no pruning before this many validation windows of a trial")
    percentile: float = Field(25.0, gt=0, lt=100, description="percentile pruner only: keep the best this many percent")


class TuningConfig(StrictModel):
    """``tuning:`` of a training YAML: what ``energy-forecast tune`` searches (Optuna) and for how long.

    Trials score the validation windows only; the test period is never read. The budget is
    ``trials`` (finished trials of the study, counted across resumptions) and/or ``timeout`` (wall
    seconds of this invocation), whichever ends first.
    """

    search_space: dict[str, SearchRange] = Field(
        min_length=1,
        description="model.params name -> {type: int|float|categorical, low, high, log, step, choices}; a child YAML's "
        "search_space replaces its parent's whole",
    )
    trials: int | None = Field(None, gt=0, description="finished trials the study should hold (a resumed study runs the rest)")
    timeout: float | None = Field(None, gt=0, description="wall seconds for this invocation; a running trial completes")
    metric: Literal["rmse", "mae", "mase", "smape"] = Field("rmse", description="validation metric minimised")
    sampler: Literal["tpe", "random"] = "tpe"
    sampler_seed: int = 42
    pruner: PrunerConfig = Field(default_factory=PrunerConfig)
    storage: str | None = Field(
        None,
        exclude=True,  # never in a dump (logged params, resolved_config.yaml): the URL may hold a password
        description="an SQLAlchemy URL for the Optuna study (postgresql+psycopg2://..., sqlite:///...); empty: "
        "sqlite optuna.db beside the local MLflow store (.mlflow/). ${VAR} references are expanded",
    )
    study_name: str | None = Field(None, description="default: <data>-<task>-<config file stem>")

    @model_validator(mode="after")
    def _a_budget(self) -> TuningConfig:
        if self.trials is None and self.timeout is None:
            raise ValueError("give a budget: trials (a number of trials) and/or timeout (wall seconds)")
        return self

    @field_validator("storage")
    @classmethod
    def _storage_is_a_database_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value.strip())
        except ArgumentError:
            raise ValueError(f"{value!r} is not a database URL such as sqlite:///path/optuna.db or postgresql+psycopg2://user@host/db") from None
        if url.get_backend_name() not in ("sqlite", "postgresql", "mysql"):
            raise ValueError(f"{url.render_as_string(hide_password=True)}: Optuna studies live in sqlite, postgresql or mysql, not {url.get_backend_name()}")
        if url.get_backend_name() == "postgresql" and url.drivername == "postgresql":
            raise ValueError("write postgresql+psycopg2://... (a plain postgresql:// URL needs the psycopg 3 driver, which is not installed)")
        return value.strip()

    @field_validator("study_name")
    @classmethod
    def _plain_study_name(cls, value: str | None) -> str | None:
        if value is not None and (not NAME_PATTERN.fullmatch(value) or ".." in value):
            raise ValueError(f"{value!r} is not a plain name: use letters, digits, space, _ . -")
        return value


class TrainingConfig(StrictModel):
    name: str
    data: DataConfig
    task: TaskConfig
    split: SplitConfig
    covariates: Literal["all", "none"] | list[str] = Field(
        default="all",
        description="which declared covariates the model may use; roles come from the data YAML",
    )
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    intervals: IntervalConfig = Field(default_factory=IntervalConfig)
    model: ModelConfig
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    tuning: TuningConfig | None = Field(default=None, description="the Optuna search of `energy-forecast tune`; training ignores it")
    seed: int = 42
    source: Path | None = Field(default=None, exclude=True, description="file this was loaded from")

    @model_validator(mode="after")
    def _covariates_and_lags_fit_the_data_and_task(self) -> TrainingConfig:
        if isinstance(self.covariates, list):
            declared = [c.name for c in self.data.covariates]
            unknown = [name for name in self.covariates if name not in declared]
            if unknown:
                raise ValueError(
                    f"covariates {unknown} are not declared in data '{self.data.name}'; "
                    f"declared covariates: {declared}"
                )
        object.__setattr__(self, "task", self.task.model_copy(update={"horizon": self.task.horizon_steps(self.data)}))
        object.__setattr__(self, "features", self.features.in_steps(self.data.step))
        check_lags_leak_free(self.features, self.task.horizon)
        return self

    @property
    def selected_covariates(self) -> list[Covariate]:
        if self.covariates == "all":
            return list(self.data.covariates)
        if self.covariates == "none":
            return []
        return [self.data.covariate(name) for name in self.covariates]

    @property
    def problem(self) -> ForecastProblem:
        """The forecasting problem this config describes (what every model is built from)."""
        return ForecastProblem(
            target=self.data.target,
            target_min=self.data.target_min,
            frequency=self.data.frequency,
            horizon=self.task.horizon,
            origin_every=self.task.origin_every,
            origin_time=self.task.origin_time,
            covariates=tuple(self.selected_covariates),
            available_covariates=tuple(self.data.covariates),
            features=self.features,
            quantile_levels=self.task.quantile_levels,
            interval_bands=self.intervals.step_bands,
            seed=self.seed,
        )

    @property
    def registered_model_name(self) -> str | None:
        template = self.tracking.registered_model
        if template is None:
            return None
        return template.format(data=self.data.name, task=self.task.name)


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------

_ENV_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?-)(?P<default>[^}]*))?\}")
MAX_YAML_DEPTH = 40
"""Nesting deeper than this is refused (no config needs it; it only costs recursion)."""


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing duplicate keys (the last one would silently win) and absurd nesting."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_YAML_DEPTH} levels deep", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"duplicate key {key!r} (first at line {seen[key].line + 1}): the last one would silently win",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _interpolate(value: Any, source: Path, where: str = "") -> Any:
    """``${VAR}``, ``${VAR:-default}`` (unset or empty: default) and ``${VAR-default}`` (unset:
    default) in string VALUES, after parsing: an environment value is text in its field, it can never
    change the document's structure, and references inside comments are never read."""
    if isinstance(value, dict):
        return {key: _interpolate(item, source, f"{where}.{key}" if where else str(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolate(item, source, f"{where}.{position}") for position, item in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name, operator, default = match.group("name"), match.group("operator"), match.group("default")
        current = os.environ.get(name)
        if operator == ":-":
            return current if current else default
        if operator == "-":
            return current if current is not None else default
        if current is None:
            raise ConfigError(f"{source}: {where}: ${{{name}}} is used but the environment variable {name} is not set")
        return current

    return _ENV_REFERENCE.sub(substitute, value)


def read_yaml(path: Path) -> dict[str, Any]:
    """Read one YAML mapping: UTF-8, no duplicate keys, environment references expanded in values.

    Raises:
        ConfigError: the file is missing, not UTF-8, not YAML, not a mapping, has a duplicate key or
            names an unset variable; the message names the file (and the line or field).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte {error.object[error.start]:#04x} at offset {error.start}); save it as UTF-8") from None
    try:
        loaded = yaml.load(text, Loader=_StrictLoader)  # noqa: S506  (a SafeLoader subclass)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(loaded).__name__}")
    return _interpolate(loaded, path)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge ``override`` onto ``base``: mappings merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


_FILE_REFERENCES = ("data", "task")


def _read_with_extends(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        chain = " -> ".join(str(p) for p in (*seen, path))
        raise ConfigError(f"{path}: 'extends' forms a cycle: {chain}")
    raw = read_yaml(path)
    for section in _FILE_REFERENCES:  # a path is relative to the file that wrote it
        if isinstance(raw.get(section), str):
            raw[section] = str((path.parent / raw[section]).resolve())
    if isinstance(raw.get("data"), dict):  # an inline data section: its CSV path too
        _resolve_relative(raw["data"], "path", path.parent)
    members = ((raw.get("model") or {}).get("params") or {}).get("members") if isinstance(raw.get("model"), dict) else None
    for member in members if isinstance(members, list) else []:  # ensemble members written as another training YAML
        if isinstance(member, dict) and isinstance(member.get("config"), str) and "type" not in member:
            member["config"] = str((path.parent / member["config"]).resolve())
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: extends: expected a relative path to a parent YAML")
    inherited = _read_with_extends(path.parent / parent, (*seen, path))
    return _merge_training(inherited, raw)


def _merge_training(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """``deep_merge``, except that parameters belong to a model type: a child that changes
    ``model.type`` does not inherit the parent's ``model.params`` (nor its ``tuning:`` block), and a
    child's ``tuning.search_space`` replaces the parent's whole (ranges of different types never mix)."""
    parent_model, child_model = parent.get("model"), child.get("model")
    if isinstance(parent_model, dict) and isinstance(child_model, dict):
        if child_model.get("type", parent_model.get("type")) != parent_model.get("type"):
            parent = {k: v for k, v in parent.items() if k != "tuning"}
            parent["model"] = {k: v for k, v in parent_model.items() if k != "params"}
    parent_tuning, child_tuning = parent.get("tuning"), child.get("tuning")
    if isinstance(parent_tuning, dict) and isinstance(child_tuning, dict) and "search_space" in child_tuning:
        parent = {**parent, "tuning": {k: v for k, v in parent_tuning.items() if k != "search_space"}}
    return deep_merge(parent, child)


def _annotation_fields(annotation: Any) -> dict[str, Any] | None:
    """The fields of the first pydantic model inside an annotation, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation.model_fields
    for argument in typing.get_args(annotation):
        fields = _annotation_fields(argument)
        if fields is not None:
            return fields
    return None


def _valid_fields_at(model: type[BaseModel], location: tuple[Any, ...]) -> list[str]:
    fields: dict[str, Any] | None = model.model_fields
    for part in location:
        if fields is None:
            return []
        if isinstance(part, int):
            continue
        field = fields.get(part)
        fields = _annotation_fields(field.annotation) if field is not None else None
    return sorted(name for name in (fields or {}) if name != "source")


def format_validation_error(error: ValidationError, source: Path | str, model: type[BaseModel]) -> str:
    """One line per problem: ``file: dotted.field: what is wrong``."""
    lines = []
    for problem in error.errors():
        location = tuple(problem["loc"])
        field = ".".join(str(part) for part in location) or "(top level)"
        if problem["type"] == "extra_forbidden":
            valid = _valid_fields_at(model, location[:-1])
            message = f"unknown field; valid fields here: {', '.join(valid)}"
        elif problem["type"] == "missing":
            message = "required field is missing"
        else:
            message = problem["msg"].removeprefix("Value error, ")
            if "input" in problem and problem["type"].startswith("literal"):
                message += f" (got {problem['input']!r})"
        lines.append(f"{source}: {field}: {message}")
    return "\n".join(lines)


def _validate(model: type[StrictModel], raw: dict[str, Any], source: Path) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, source, model)) from None


def _resolve_relative(raw: dict[str, Any], key: str, base: Path) -> None:
    value = raw.get(key)
    if isinstance(value, str) and value and not value.startswith("s3://") and not Path(value).expanduser().is_absolute():
        raw[key] = str((base / Path(value).expanduser()).resolve())


def load_data_config(path: Path | str) -> DataConfig:
    """Load a data YAML. A relative ``path:`` inside it is relative to the YAML's folder, like every
    other path a config names (``data:``, ``task:``, ``extends:``)."""
    path = Path(path)
    raw = read_yaml(path)
    _resolve_relative(raw, "path", path.parent)
    return _validate(DataConfig, raw, path)


def load_task_config(path: Path | str) -> TaskConfig:
    """Load a task YAML; its name defaults to the file's stem."""
    path = Path(path)
    raw = read_yaml(path)
    raw.setdefault("name", path.stem)
    return _validate(TaskConfig, raw, path)


def load_training_config(path: Path | str, overrides: dict[str, Any] | None = None) -> TrainingConfig:
    """Load a training YAML (following ``extends``) with its data and task files.

    ``data`` and ``task`` may be inline mappings or paths relative to the YAML that names them.
    ``overrides`` is merged last, e.g. ``{"model": {"params": {"n_estimators": 50}}}``.
    """
    path = Path(path)
    raw = _read_with_extends(path)
    if overrides:
        raw = _merge_training(raw, overrides)
    raw.setdefault("name", path.stem)
    for section, loader in (("data", load_data_config), ("task", load_task_config)):
        reference = raw.get(section)
        if isinstance(reference, str):
            referenced_path = Path(reference)
            if not referenced_path.is_file():
                raise ConfigError(f"{path}: {section}: file not found: {referenced_path}")
            raw[section] = loader(referenced_path)  # errors name the referenced file
    config = _validate(TrainingConfig, raw, path)
    return config.model_copy(update={"source": path})


class ComparisonConfig(StrictModel):
    """A set of training configs compared on one leaderboard (``configs/comparisons/*.yaml``)."""

    name: str
    description: str | None = None
    configs: list[Path] = Field(min_length=1)
    source: Path | None = Field(default=None, exclude=True)


def load_comparison_config(path: Path | str) -> ComparisonConfig:
    """Load a comparison YAML; its ``configs`` are paths relative to it and must exist."""
    path = Path(path)
    raw = read_yaml(path)
    raw.setdefault("name", path.stem)
    comparison = _validate(ComparisonConfig, raw, path)
    resolved = [(path.parent / member).resolve() for member in comparison.configs]
    missing = [str(member) for member, full in zip(comparison.configs, resolved, strict=True) if not full.is_file()]
    if missing:
        raise ConfigError(f"{path}: configs: files not found: {missing}")
    return comparison.model_copy(update={"configs": resolved, "source": path})


# --------------------------------------------------------------------------------------------
# operations: the daily loop (pipelines/defs)
# --------------------------------------------------------------------------------------------


class PromotionPolicy(StrictModel):
    min_skill_vs_naive: float = Field(
        0.1,
        description="the blocking check: a new model's validation RMSE must be at least this fraction below the weekly "
        "seasonal naive's (0.1: 10 % better), or it is not promoted",
    )


class RetrainingPolicy(StrictModel):
    schedule: str = Field("0 3 * * 1", description="cron, in the plant's time zone: the weekly retraining")
    validation_days: int = Field(30, gt=0, description="retraining on the live series: the last days before the test days validate")
    test_days: int = Field(14, gt=0, description="... and the last days of the series test")
    accuracy_factor: float = Field(1.5, gt=0, description="retrain when the rolling 7-day RMSE exceeds this multiple of the backtest RMSE")
    drift_psi: float = Field(1.0, gt=0, description="retrain when a watched column's PSI (recent vs reference) exceeds this")
    drift_columns: list[str] = Field(
        default_factory=list,
        description="the columns whose drift triggers retraining; empty: the target (the report covers every column anyway)",
    )
    min_days_between: int = Field(1, ge=0, description="a sensor-triggered retraining waits this long after the last one")


class CheckPolicy(StrictModel):
    freshness_hours: float = Field(48, gt=0, description="meter_readings fails its freshness check when its last stamp is older")
    plausible_factor: float = Field(1.5, gt=0, description="forecasts above this multiple of the largest value seen fail the sanity check")


class DriftPolicy(StrictModel):
    reference_start: datetime = Field(description="the reference period (the training period) starts ...")
    reference_end: datetime = Field(description="... and ends here (exclusive)")
    recent_days: int = Field(14, gt=0)


class SitesConfig(StrictModel):
    """Many sites in the operating loop: each a dynamic partition, added when its first file lands."""

    data: DataConfig = Field(description="the panel's data YAML: the schema every site's files follow")
    landing: str = Field(description="per-site landing: <landing>/<site>/<file>.csv (a folder, or s3://bucket/prefix)")
    series_folder: Path = Field(description="each site's stored series: <series_folder>/<site>.csv")
    first_forecast_day: datetime = Field(description="the first day of the site x day partitions")
    global_model: Path | None = Field(None, description="folder of a saved global model (GlobalBoostedModel.save) that forecasts every site")

    def site_data(self, site: str) -> DataConfig:
        """The data YAML's schema reading one site's stored series."""
        return self.data.model_copy(update={"path": self.series_folder / f"{site}.csv", "sha256": None, "id_column": None})


class OperationsConfig(StrictModel):
    """The operating loop: where data arrive and are stored, which models retrain, its thresholds."""

    data: DataConfig
    task: TaskConfig
    series: Path = Field(description="the stored series: deliveries are appended to this CSV (the data YAML's format)")
    landing: str = Field(description="where deliveries arrive: a folder, or s3://bucket/prefix")
    timezone: str | None = Field(
        None, description="the plant's time zone: daily partitions and schedules follow it; unset: the data YAML's zone, else UTC"
    )
    first_forecast_day: datetime = Field(description="the first day with a daily_forecast partition")
    models: list[Path] = Field(min_length=1, description="training YAMLs with a model asset each")
    registered_model: str | None = Field(None, description="default: {data}-{task}")
    promotion: PromotionPolicy = Field(default_factory=PromotionPolicy)
    retraining: RetrainingPolicy = Field(default_factory=RetrainingPolicy)
    checks: CheckPolicy = Field(default_factory=CheckPolicy)
    drift: DriftPolicy
    alert_webhook: str | None = Field(None, description="URL that alerts are POSTed to as JSON; unset: alerts are logged only")
    sites: SitesConfig | None = Field(None, description="many sites: per-site landing, dynamic partitions, site x day forecasts")
    source: Path | None = Field(default=None, exclude=True)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        return _known_zone(value)

    @field_validator("alert_webhook")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _watched_columns_exist(self) -> OperationsConfig:
        known = [self.data.target, *(c.name for c in self.data.covariates)]
        unknown = [c for c in self.retraining.drift_columns if c not in known]
        if unknown:
            raise ValueError(f"retraining.drift_columns: {unknown} are not columns of data '{self.data.name}'; its columns: {known}")
        if self.data.zone and self.timezone and self.timezone != self.data.zone:
            raise ValueError(f"timezone: {self.timezone} differs from the data's zone {self.data.zone}: daily partitions would cut the plant's days elsewhere")
        object.__setattr__(self, "timezone", self.timezone or self.data.zone or "UTC")
        object.__setattr__(self, "task", self.task.model_copy(update={"horizon": self.task.horizon_steps(self.data)}))
        return self

    @property
    def live_data(self) -> DataConfig:
        """The data YAML's schema, reading the stored series."""
        return self.data.model_copy(update={"path": self.series, "sha256": None})

    @property
    def model_name(self) -> str:
        return self.registered_model or f"{self.data.name}-{self.task.name}"


def load_operations_config(path: Path | str) -> OperationsConfig:
    """Load the operations YAML; ``data``, ``task``, ``series``, ``landing`` (a folder) and
    ``models`` are paths relative to it."""
    path = Path(path)
    raw = read_yaml(path)
    base = path.parent
    for key in ("series",):
        if isinstance(raw.get(key), str):
            raw[key] = str((base / raw[key]).resolve())
    if isinstance(raw.get("landing"), str) and not raw["landing"].startswith("s3://"):
        raw["landing"] = str((base / raw["landing"]).resolve())
    if isinstance(raw.get("data"), str):
        data_path = (base / raw["data"]).resolve()
        if not data_path.is_file():
            raise ConfigError(f"{path}: data: file not found: {data_path}")
        raw["data"] = load_data_config(data_path)
    if isinstance(raw.get("task"), str):
        task_path = (base / raw["task"]).resolve()
        if not task_path.is_file():
            raise ConfigError(f"{path}: task: file not found: {task_path}")
        raw["task"] = load_task_config(task_path)
    if isinstance(raw.get("models"), list):
        resolved = [(base / str(model)).resolve() for model in raw["models"]]
        missing = [str(model) for model in resolved if not model.is_file()]
        if missing:
            raise ConfigError(f"{path}: models: files not found: {missing}")
        raw["models"] = [str(model) for model in resolved]
    sites = raw.get("sites")
    if isinstance(sites, dict):
        for key in ("series_folder", "global_model"):
            if isinstance(sites.get(key), str) and sites[key]:
                sites[key] = str((base / sites[key]).resolve())
        if isinstance(sites.get("landing"), str) and not sites["landing"].startswith("s3://"):
            sites["landing"] = str((base / sites["landing"]).resolve())
        if isinstance(sites.get("data"), str):
            data_path = (base / sites["data"]).resolve()
            if not data_path.is_file():
                raise ConfigError(f"{path}: sites.data: file not found: {data_path}")
            sites["data"] = load_data_config(data_path)
    config = _validate(OperationsConfig, raw, path)
    return config.model_copy(update={"source": path})
