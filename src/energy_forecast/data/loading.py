"""Load a CSV described by a data YAML into a regular, validated time series.

The loader reads everything into memory, checks it, and only then returns. Each rejection raises
:class:`DataValidationError` naming the file, the column and the first offending row, so nothing
downstream (an MLflow run, a model) is started on bad data.

Rows are reported as ``row N (line M)``: N counts data rows from 1, M is the line in the file,
header included.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from energy_forecast.config import DataConfig
from energy_forecast.frames import TIMESTAMP

__all__ = ["DataValidationError", "SeriesData", "file_rows", "file_sha256", "interval_starts", "load_series", "read_raw"]

logger = logging.getLogger(__name__)


class DataValidationError(ValueError):
    """The data file does not satisfy its data YAML. The message says where and why."""


@dataclass(frozen=True)
class SeriesData:
    """A validated series on a regular grid of interval-start stamps."""

    frame: pd.DataFrame
    """Index: interval-start timestamps (name ``timestamp``); columns: target then covariates."""
    config: DataConfig
    sha256: str
    md5: str
    """The file's md5, the hash DVC records in its ``.dvc`` pointer."""
    filled_steps: int

    @property
    def target(self) -> pd.Series:
        return self.frame[self.config.target]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _where(row: int) -> str:
    return f"row {row + 1} (line {row + 2})"


def _read_csv(config: DataConfig) -> tuple[pd.DataFrame, str, str]:
    path = config.path
    if not path.is_file():
        raise DataValidationError(
            f"{path}: data file not found. Run `make data`, or set DATA_PATH to an existing copy."
        )
    raw = path.read_bytes()
    sha256, md5 = hashlib.sha256(raw).hexdigest(), hashlib.md5(raw, usedforsecurity=False).hexdigest()
    if not raw.strip():
        raise DataValidationError(f"{path}: the file is empty (0 data rows); expected a header line and rows")
    try:
        header = next(csv.reader(io.StringIO(raw.decode(config.encoding).partition("\n")[0])))
    except UnicodeDecodeError as error:
        raise DataValidationError(f"{path}: cannot be read as {config.encoding} (byte {error.object[error.start]:#04x} at offset {error.start}); set the data YAML's encoding") from None
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        positions = {name: [i + 1 for i, n in enumerate(header) if n == name] for name in twice}
        raise DataValidationError(f"{path}: the header names a column more than once: {positions} (column positions); which one is meant is ambiguous")
    try:
        frame = pd.read_csv(io.BytesIO(raw), encoding=config.encoding, dtype=str, keep_default_na=False)
    except (UnicodeDecodeError, pd.errors.ParserError) as error:
        raise DataValidationError(f"{path}: cannot be read as CSV with encoding {config.encoding}: {' '.join(str(error).split())}") from None
    return frame, sha256, md5


def _check_columns(frame: pd.DataFrame, config: DataConfig) -> None:
    wanted = [config.timestamp.column, config.target, *(c.name for c in config.covariates)]
    missing = [column for column in wanted if column not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{config.path}: missing columns {missing}; the file has {list(frame.columns)}"
        )


def interval_starts(frame: pd.DataFrame, config: DataConfig) -> pd.DatetimeIndex:
    """Each raw row's interval-start stamp, the declared quirks repaired; NaT where unparseable.

    Stamps end up in the plant's zone (:attr:`DataConfig.zone`) when the data declares one, else
    naive wall-clock time.

    Raises:
        DataValidationError: stamps carry UTC offsets but no zone is declared, mix stamps with and
            without offsets, or name a local time that does not exist or is ambiguous.
    """
    spec = config.timestamp
    text = frame[spec.column].str.strip()
    stamps = _to_datetime(text, config)
    if spec.midnight_dated_previous_day:
        # The 00:00 stamp closes the day written in it, so it really is the next day's 00:00 (wall clock).
        wall = stamps.dt.tz_localize(None) if stamps.dt.tz is not None else stamps
        at_midnight = wall.dt.hour.eq(0) & wall.dt.minute.eq(0) & wall.dt.second.eq(0)
        stamps = stamps.where(~at_midnight, stamps + pd.Timedelta(days=1))
    stamps = _in_plant_zone(stamps, config)
    if spec.label == "end":
        stamps = stamps - config.step
    return pd.DatetimeIndex(stamps, name=TIMESTAMP)


def _to_datetime(text: pd.Series, config: DataConfig) -> pd.Series:
    """Parse; stamps with differing UTC offsets (local time across daylight saving) become UTC instants."""
    spec = config.timestamp
    form = spec.format or "ISO8601"
    try:
        return pd.to_datetime(text, format=form, errors="coerce")
    except ValueError:  # pandas refuses to mix offsets (or offsets and none) in one dtype
        stamps = pd.to_datetime(text, format=form, errors="coerce", utc=True)
    offsets = text.str.contains(r"(?:[+-]\d{2}:?\d{2}|Z)$", regex=True, na=False)
    if not offsets.all():
        rows = np.flatnonzero(~offsets.to_numpy())
        first = int(np.flatnonzero(offsets.to_numpy())[0])
        raise DataValidationError(
            f"{config.path}: column '{spec.column}': {_where(int(text.index[rows[0]]))}: {text.iloc[rows[0]]!r} has no UTC offset while "
            f"{_where(int(text.index[first]))} ({text.iloc[first]!r}) has one: write every stamp with an offset, or none"
        )
    return stamps


def _in_plant_zone(stamps: pd.Series, config: DataConfig) -> pd.Series:
    spec, zone = config.timestamp, config.zone
    where = f"{config.path}: column '{spec.column}'"
    if stamps.dt.tz is not None:
        if zone is None:
            example = stamps.dropna().iloc[0] if stamps.notna().any() else ""
            raise DataValidationError(
                f"{where}: the stamps carry UTC offsets (e.g. {example}) but the data YAML declares no time zone: set "
                "`timezone:` to the plant's zone (e.g. Europe/Berlin) so that days and calendar features are local"
            )
        return stamps.dt.tz_convert(zone)
    if spec.timezone is not None:
        try:
            stamps = stamps.dt.tz_localize(spec.timezone, ambiguous="infer", nonexistent="raise")
        except ValueError as error:  # pandas' NonExistentTimeError / AmbiguousTimeError
            raise DataValidationError(
                f"{where}: the stamps are declared as {spec.timezone} local time (timestamp.timezone) but {error}: that zone skips or "
                "repeats this hour for daylight saving; write the stamps in UTC or with offsets"
            ) from None
        return stamps.dt.tz_convert(zone) if zone else stamps
    if config.timezone is not None:  # naive stamps in the plant's own zone
        try:
            return stamps.dt.tz_localize(config.timezone, ambiguous="infer", nonexistent="raise")
        except ValueError as error:
            raise DataValidationError(
                f"{where}: naive stamps read as {config.timezone} local time: {error}; write them in UTC (timestamp.timezone: UTC) "
                "or with offsets"
            ) from None
    return stamps


def _parse_timestamps(frame: pd.DataFrame, config: DataConfig) -> pd.DatetimeIndex:
    spec = config.timestamp
    stamps = interval_starts(frame, config)
    bad = np.flatnonzero(stamps.isna())
    if bad.size:
        row = int(bad[0])
        expected = f"format '{spec.format}'" if spec.format else "ISO 8601"
        raise DataValidationError(
            f"{config.path}: column '{spec.column}': {_where(int(frame.index[row]))}: cannot parse "
            f"{frame[spec.column].iloc[row]!r} as a timestamp ({expected}); "
            f"{bad.size} unparseable value(s) in all"
        )
    return stamps


def read_raw(config: DataConfig) -> pd.DataFrame:
    """The file as text cells, nothing checked but that it reads as CSV (for checks that report
    each problem instead of refusing at the first)."""
    return _read_csv(config)[0]


def _parse_values(frame: pd.DataFrame, config: DataConfig) -> pd.DataFrame:
    values = {}
    numeric = [config.target, *(c.name for c in config.covariates if c.kind == "numeric")]
    for column in numeric:
        text = frame[column].str.strip()
        parsed = pd.to_numeric(text, errors="coerce")
        bad = np.flatnonzero(parsed.isna().to_numpy())
        if bad.size:
            row = int(bad[0])
            what = "missing value" if text.iloc[row] == "" else f"non-numeric value {text.iloc[row]!r}"
            role = "target" if column == config.target else "covariate"
            raise DataValidationError(
                f"{config.path}: {role} column '{column}': {_where(int(frame.index[row]))}: {what}; "
                f"{bad.size} such row(s) in all"
            )
        number = parsed.astype("float64").to_numpy()
        absurd = np.flatnonzero(~np.isfinite(number) | (np.abs(number) > config.max_abs_value))
        if absurd.size:
            row = int(absurd[0])
            role = "target" if column == config.target else "covariate"
            raise DataValidationError(
                f"{config.path}: {role} column '{column}': {_where(int(frame.index[row]))}: value {text.iloc[row]!r} is infinite or beyond "
                f"+-{config.max_abs_value:g} (the data YAML's max_abs_value); {absurd.size} such row(s) in all"
            )
        values[column] = number
    for covariate in config.covariates:
        if covariate.kind == "categorical":
            text = frame[covariate.name].str.strip()
            empty = np.flatnonzero(text.eq("").to_numpy())
            if empty.size:
                raise DataValidationError(
                    f"{config.path}: covariate column '{covariate.name}': {_where(int(frame.index[empty[0]]))}: "
                    f"missing value; {empty.size} such row(s) in all"
                )
            values[covariate.name] = text.to_numpy()
    target = values[config.target]
    below = np.flatnonzero(target < config.target_min) if config.target_min is not None else np.array([], dtype=int)
    if below.size:
        row = int(below[0])
        what = "negative value" if config.target_min == 0 else f"value below target_min={config.target_min:g}:"
        raise DataValidationError(
            f"{config.path}: target column '{config.target}': {_where(int(frame.index[row]))}: {what} "
            f"{target[row]}; {below.size} such row(s) in all"
        )
    ordered = [config.target, *(c.name for c in config.covariates)]
    return pd.DataFrame({column: values[column] for column in ordered})


def _check_grid(index: pd.DatetimeIndex, config: DataConfig, file_rows: np.ndarray) -> int:
    """Reject duplicates, off-grid stamps and long gaps; return the number of missing steps."""
    duplicated = np.flatnonzero(index.duplicated(keep=False))
    if duplicated.size:
        stamp = index[duplicated[0]]
        rows = [int(file_rows[i]) for i in duplicated if index[i] == stamp][:2]
        raise DataValidationError(
            f"{config.path}: column '{config.timestamp.column}': duplicate timestamp {stamp} "
            f"(interval start) at {_where(rows[0])} and {_where(rows[1])}"
        )
    step = config.step
    gaps = np.asarray((index[1:] - index[:-1]) / step, dtype="float64")
    off_grid = np.flatnonzero(gaps != np.round(gaps))
    if off_grid.size:
        at = int(off_grid[0]) + 1
        raise DataValidationError(
            f"{config.path}: column '{config.timestamp.column}': {_where(int(file_rows[at]))}: "
            f"{index[at]} is not on the {config.frequency} grid that starts at {index[0]}"
        )
    missing = gaps.astype(np.int64) - 1
    too_long = np.flatnonzero(missing > config.max_gap_steps)
    if too_long.size:
        at = int(too_long[0])
        raise DataValidationError(
            f"{config.path}: column '{config.timestamp.column}': gap of {missing[at]} missing "
            f"step(s) between {index[at]} ({_where(int(file_rows[at]))}) and {index[at + 1]} "
            f"({_where(int(file_rows[at + 1]))}); at most max_gap_steps={config.max_gap_steps} "
            f"are filled"
        )
    return int(missing.sum())


def _fill_gaps(frame: pd.DataFrame, config: DataConfig) -> pd.DataFrame:
    grid = pd.date_range(frame.index[0], frame.index[-1], freq=config.step, name=TIMESTAMP)
    filled = frame.reindex(grid)
    numeric = filled.select_dtypes("number").columns
    filled[numeric] = filled[numeric].interpolate(method="time")
    categorical = [c.name for c in config.covariates if c.kind == "categorical"]
    filled[categorical] = filled[categorical].ffill()
    return filled


def file_rows(config: DataConfig) -> tuple[list[str], pd.DatetimeIndex]:
    """The file's header and data lines as written, and each line's interval-start stamp (the
    quirks repaired), in file order: for cutting a file into deliveries without rewriting it."""
    raw, _, _ = _read_csv(config)
    _check_columns(raw, config)
    lines = Path(config.path).read_bytes().decode(config.encoding).splitlines()
    if len(lines) != len(raw) + 1:
        raise DataValidationError(f"{config.path}: {len(lines)} lines for {len(raw)} rows: a value spans lines; cannot cut it by line")
    return lines, _parse_timestamps(raw, config)


def load_series(config: DataConfig) -> SeriesData:
    """Read, repair the declared quirks, validate and return the series.

    Checks, in order: the file exists; every declared column is present; every timestamp parses;
    target and numeric covariates are numbers, the target never below ``target_min``; no two rows share a
    stamp; every stamp is on the frequency grid; no gap is longer than ``max_gap_steps``. Gaps up
    to that length are filled (time interpolation, categories carried forward) and counted.

    A panel data YAML (``id_column`` or a glob ``path``) is refused here: use :func:`load_panel`.
    """
    if config.is_panel:
        raise DataValidationError(
            f"{config.path}: the data YAML '{config.name}' describes a panel of series (id_column or a file glob); "
            "load it with load_panel, or train a global model on it"
        )
    raw, sha256, md5 = _read_csv(config)
    if raw.empty:
        raise DataValidationError(f"{config.path}: the file has a header but no data rows")
    _check_columns(raw, config)
    values, filled_steps = _validated(raw, config)
    if config.sha256 and sha256 != config.sha256:
        raise DataValidationError(
            f"{config.path}: sha256 {sha256} differs from the data YAML's pinned sha256 {config.sha256}: "
            "not the file this data set names; point the YAML (or DATA_PATH) at the right file, or update the pin "
            "(DATA_SHA256= pins nothing)"
        )
    return SeriesData(frame=values, config=config, sha256=sha256, md5=md5, filled_steps=filled_steps)


def _validated(raw: pd.DataFrame, config: DataConfig) -> tuple[pd.DataFrame, int]:
    """One series' rows (index: their positions in the file) checked, sorted, gaps filled."""
    index = _parse_timestamps(raw, config)
    values = _parse_values(raw, config)
    values.index = index
    order = np.argsort(index.asi8, kind="stable")
    values = values.iloc[order]
    filled_steps = _check_grid(values.index, config, file_rows=raw.index.to_numpy()[order])
    if filled_steps:
        values = _fill_gaps(values, config)
        logger.info("%s: filled %d missing step(s) (max_gap_steps=%d)", config.path, filled_steps, config.max_gap_steps)
    for covariate in config.covariates:
        if covariate.kind == "categorical":
            values[covariate.name] = pd.Categorical(values[covariate.name], categories=sorted(values[covariate.name].unique()))
    logger.info("%s: %d rows from %s to %s (interval starts)", config.path, len(values), values.index[0], values.index[-1])
    return values, filled_steps
