"""A replay of the real meter feed: the CSV cut into one file per day, delivered one by one.

    energy-forecast replay --from 2018-12-01 --days 7      # `make replay`

The live series (the operations loop's stored data) starts as the real file's rows before
``--from``; each day after it becomes a delivery, written as the feed writes it (the file's own
header, quirks and line endings) into the landing location, one every ``--every`` seconds. What
happens next is the operations loop's business (``pipelines``): the new-data sensor validates
and appends each day, forecasts the next, and scores the one whose actuals just arrived.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from energy_forecast.config import DataConfig
from energy_forecast.data.loading import file_rows
from energy_forecast.ingest import Landing

__all__ = ["DayFile", "day_files", "delivery_name", "start_live_series"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DayFile:
    day: pd.Timestamp
    name: str
    payload: bytes


def delivery_name(data: DataConfig, day: pd.Timestamp) -> str:
    return f"{data.name}-{day:%Y-%m-%d}.csv"


def _encode(lines: list[str], data: DataConfig) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode(data.encoding)


def start_live_series(source: DataConfig, live: Path, start: pd.Timestamp) -> int:
    """Write the live series: the source file's rows before ``start``. Returns the row count."""
    lines, stamps = file_rows(source)
    keep = [line for line, stamp in zip(lines[1:], stamps, strict=True) if stamp < start]
    if not keep:
        raise ValueError(f"{source.path}: no row before {start}: nothing to start the live series with")
    live.parent.mkdir(parents=True, exist_ok=True)
    partial = live.with_name(f".{live.name}.partial")
    partial.write_bytes(_encode([lines[0], *keep], source))
    os.replace(partial, live)
    for stale in (live.with_name(live.name + ".deliveries.json"),):
        stale.unlink(missing_ok=True)
    logger.info("live series %s: %d rows before %s from %s", live, len(keep), start, source.path)
    return len(keep)


def day_files(source: DataConfig, start: pd.Timestamp, days: int) -> Iterator[DayFile]:
    """The source file's rows of each day from ``start``, as one delivery per day."""
    lines, stamps = file_rows(source)
    day_of = stamps.normalize()
    for offset in range(days):
        day = start.normalize() + pd.Timedelta(days=offset)
        rows = [line for line, d in zip(lines[1:], day_of, strict=True) if d == day]
        if not rows:
            raise ValueError(f"{source.path}: no rows on {day:%Y-%m-%d}: the data end at {stamps.max()}")
        yield DayFile(day, delivery_name(source, day), _encode([lines[0], *rows], source))


def deliver(files: Iterator[DayFile], landing: Landing, every: float, after_each: Callable[[DayFile], None] | None = None) -> list[str]:
    """Put each file into the landing location, ``every`` seconds apart; ``after_each`` runs after
    each delivery (the in-process loop processes it there)."""
    delivered = []
    for index, file in enumerate(files):
        if index and every > 0:
            time.sleep(every)
        delivered.append(landing.put(file.name, file.payload))
        logger.info("replay: delivered %s (%d bytes) to %s", file.name, len(file.payload), landing.location)
        if after_each is not None:
            after_each(file)
    return delivered
