"""Many series (sites, meters, plants) described by one data YAML: a panel.

A data YAML declares a panel in one of two ways:

- ``id_column: site``: one file, every row naming its series;
- a glob ``path: plants/*.csv``: one file per series, the series id being the file name without
  its suffix (``plants/plant_007.csv`` is series ``plant_007``).

Every series is validated on its own by the single-series checks of
:mod:`energy_forecast.data.loading` (stamps, values, grid, gaps), and every error names the
series first: ``series 'plant_007': plants/plant_007.csv: target column ...``.

**Shape: a dict of per-series frames**, ``{series id: frame}``, each frame exactly what
:func:`~energy_forecast.data.loading.load_series` returns for one series (a regular
``timestamp`` index, target then covariates), all on one grid (the YAML's frequency, the same
phase, the same zone). Chosen over one long frame with an id column because every consumer works
per series: features read lags inside one series (a lag must never cross into the neighbour's
rows), the backtest cuts each series at the same bounds, Chronos-2 takes one context per series,
and a chunked training matrix is built one series at a time. A dict gives that without a groupby
or a sort on every use, and without an id column repeated on every row. :meth:`PanelData.long`
returns the long frame for the consumers that want it (Chronos-2's ``predict_df``, a store).
Series may start and end at different stamps; categorical covariates share one category list
across series, so codes mean the same thing in every series.
"""

from __future__ import annotations

import glob
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from energy_forecast.config import DataConfig
from energy_forecast.data.loading import DataValidationError, _check_columns, _read_csv, _validated, load_series

__all__ = ["SERIES_ID", "PanelData", "load_panel"]

logger = logging.getLogger(__name__)

SERIES_ID = "series_id"
"""The id column of :meth:`PanelData.long`."""


@dataclass(frozen=True)
class PanelData:
    """Validated series on one grid, keyed by series id (sorted)."""

    series: dict[str, pd.DataFrame]
    config: DataConfig
    sha256: str
    """Of the files' own sha256s in id order (one file: that file's sha256)."""
    files: dict[str, Path]
    filled_steps: dict[str, int]

    @property
    def ids(self) -> list[str]:
        return list(self.series)

    def __len__(self) -> int:
        return len(self.series)

    def target(self, series_id: str) -> pd.Series:
        return self.series[series_id][self.config.target]

    def long(self) -> pd.DataFrame:
        """One long frame: ``series_id``, ``timestamp``, then the target and covariates."""
        return pd.concat(
            [frame.reset_index().assign(**{SERIES_ID: sid}) for sid, frame in self.series.items()], ignore_index=True
        )[[SERIES_ID, *[c for c in next(iter(self.series.values())).reset_index().columns]]]


def _series_error(series_id: str, error: DataValidationError) -> DataValidationError:
    return DataValidationError(f"series '{series_id}': {error}")


def _from_files(config: DataConfig) -> tuple[dict[str, pd.DataFrame], dict[str, Path], dict[str, int], list[str]]:
    paths = sorted(Path(p) for p in glob.glob(str(config.path)))
    paths = [p for p in paths if p.is_file()]
    if not paths:
        raise DataValidationError(f"{config.path}: no file matches this glob; one file per series was expected")
    frames, files, filled, hashes = {}, {}, {}, []
    stems = [p.stem for p in paths]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:
        raise DataValidationError(f"{config.path}: several files give the same series id {twice} (ids are file names without suffix)")
    for path in paths:
        one = config.model_copy(update={"path": path, "sha256": None})
        try:
            series = load_series(one)
        except DataValidationError as error:
            raise _series_error(path.stem, error) from None
        frames[path.stem], files[path.stem], filled[path.stem] = series.frame, path, series.filled_steps
        hashes.append(series.sha256)
    return frames, files, filled, hashes


def _from_id_column(config: DataConfig) -> tuple[dict[str, pd.DataFrame], dict[str, Path], dict[str, int], list[str]]:
    raw, sha256, _ = _read_csv(config)
    if raw.empty:
        raise DataValidationError(f"{config.path}: the file has a header but no data rows")
    assert config.id_column is not None
    if config.id_column not in raw.columns:
        raise DataValidationError(f"{config.path}: missing id column '{config.id_column}'; the file has {list(raw.columns)}")
    _check_columns(raw, config)
    ids = raw[config.id_column].str.strip()
    empty = ids.eq("")
    if empty.any():
        row = int(empty.to_numpy().nonzero()[0][0])
        raise DataValidationError(f"{config.path}: id column '{config.id_column}': row {row + 1} (line {row + 2}): no series id")
    if config.sha256 and sha256 != config.sha256:
        raise DataValidationError(f"{config.path}: sha256 {sha256} differs from the data YAML's pinned sha256 {config.sha256}")
    frames, files, filled = {}, {}, {}
    for series_id, rows in raw.groupby(ids, sort=True):  # rows keep their file positions: errors name file lines
        try:
            frames[str(series_id)], filled[str(series_id)] = _validated(rows, config)
        except DataValidationError as error:
            raise _series_error(str(series_id), error) from None
        files[str(series_id)] = config.path
    return frames, files, filled, [sha256]


def _one_grid(frames: dict[str, pd.DataFrame], config: DataConfig) -> None:
    """Every series on the same grid: the same phase of the frequency (zones are the YAML's, so shared)."""
    first_id, first = next(iter(frames.items()))
    anchor = first.index[0]
    for series_id, frame in frames.items():
        offset = (frame.index[0] - anchor) / config.step
        if offset != round(offset):
            raise DataValidationError(
                f"series '{series_id}': {frame.index[0]} is not on the {config.frequency} grid of series '{first_id}' "
                f"(which starts at {anchor}): every series of a panel must share one grid"
            )


def _shared_categories(frames: dict[str, pd.DataFrame], config: DataConfig) -> dict[str, pd.DataFrame]:
    """One category list per categorical covariate across series, so codes agree between series."""
    categorical = [c.name for c in config.covariates if c.kind == "categorical"]
    if not categorical:
        return frames
    union = {name: sorted(set().union(*(frame[name].cat.categories for frame in frames.values()))) for name in categorical}
    return {
        sid: frame.assign(**{name: pd.Categorical(frame[name].astype(str), categories=union[name]) for name in categorical})
        for sid, frame in frames.items()
    }


def load_panel(config: DataConfig) -> PanelData:
    """Load and validate every series of a panel data YAML (also accepts a single-series YAML: one series,
    its id the data set's name).

    Raises:
        DataValidationError: naming the series (and its file and line) that fails a check.
    """
    if config.id_column is not None:
        frames, files, filled, hashes = _from_id_column(config)
    elif config.is_glob:
        frames, files, filled, hashes = _from_files(config)
    else:
        series = load_series(config)
        frames, files, filled, hashes = {config.name: series.frame}, {config.name: config.path}, {config.name: series.filled_steps}, [series.sha256]
    _one_grid(frames, config)
    frames = _shared_categories(frames, config)
    digest = hashes[0] if len(hashes) == 1 else hashlib.sha256("".join(hashes).encode()).hexdigest()
    logger.info("%s: a panel of %d series", config.path, len(frames))
    return PanelData(series=frames, config=config, sha256=digest, files=files, filled_steps=filled)
