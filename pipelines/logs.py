"""Show the library's progress (``energy_forecast.*`` loggers) in the Dagster run log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg


class _DagsterLogHandler(logging.Handler):
    def __init__(self, log: dg.DagsterLogManager) -> None:
        super().__init__(logging.INFO)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        message = f"{record.name.removeprefix('energy_forecast.')}: {record.getMessage()}"
        if record.levelno >= logging.ERROR:
            self.log.error(message)
        elif record.levelno >= logging.WARNING:
            self.log.warning(message)
        else:
            self.log.info(message)


@contextmanager
def library_logs_to(log: dg.DagsterLogManager) -> Iterator[None]:
    library = logging.getLogger("energy_forecast")
    handler = _DagsterLogHandler(log)
    previous_level, previous_propagate = library.level, library.propagate
    library.setLevel(logging.INFO)
    library.addHandler(handler)
    library.propagate = False  # Dagster prints its own log; don't print each line twice
    try:
        yield
    finally:
        library.removeHandler(handler)
        library.setLevel(previous_level)
        library.propagate = previous_propagate
