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


DEBUG_VARIABLE = "ENERGY_FORECAST_DEBUG"
"""Set (to 1) by ``energy-forecast --debug``: the console keeps failures' stack traces."""


class _ConciseFormatter(logging.Formatter):
    """One line per message; a failure keeps its error and drops Dagster's stack trace."""

    def __init__(self, debug: bool) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
        self.debug = debug

    def format(self, record: logging.LogRecord) -> str:
        meta = getattr(record, "dagster_meta", None) or {}
        step = meta.get("step_key") or ""
        message = meta.get("orig_message") or record.getMessage()
        if not self.debug and "Stack Trace:" in message:
            lines = [line for line in message.split("Stack Trace:")[0].splitlines() if line.strip()]
            message = " ".join(lines[-2:]) + "  (--debug shows the stack trace)"
        record = logging.makeLogRecord({**record.__dict__, "msg": f"{step + ': ' if step else ''}{message}", "args": ()})
        return super().format(record)


@dg.logger(
    {"log_level": dg.Field(str, is_required=False, default_value="INFO"), "name": dg.Field(str, is_required=False, default_value="dagster")},
    description="The console log without Dagster's stack traces (ENERGY_FORECAST_DEBUG=1 keeps them).",
)
def concise_console_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    import os
    import sys

    config = init_context.logger_config
    console = logging.Logger(config["name"], level=config["log_level"].upper())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_ConciseFormatter(debug=os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")))
    console.addHandler(handler)
    return console
