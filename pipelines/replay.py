"""Replay the real meter feed through the operating loop: ``energy-forecast replay`` / ``make replay``.

    energy-forecast replay --from 2018-12-01 --days 7 --every 3

1. The live series starts as the real file's rows before ``--from`` (``--keep`` continues instead).
2. Each day after it is delivered to the landing location as the feed would write it.
3. After each delivery the loop runs here, in this process, on the local Dagster instance: the
   same sensors the daemon ticks (new data, after new data, retraining, alerts) are evaluated and
   the runs they ask for are executed in process, so a replay needs no daemon and its runs, asset
   materializations and checks appear in ``make dev``'s UI (``.dagster/``). With ``--deliver-only``
   it only delivers, and a running daemon (``make dev``, or the Compose stack with an S3 landing)
   does the rest.

The sensors' clock (the freshness check) is set to the end of each delivered day.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import pandas as pd

from energy_forecast.config import OperationsConfig
from energy_forecast.data.loading import load_series
from energy_forecast.ingest import Landing, landing_at
from energy_forecast.replay import DayFile, day_files, start_live_series
from pipelines.defs.ingest import NOW_VARIABLE

__all__ = ["Loop", "ReplayReport", "main", "replay"]

logger = logging.getLogger("energy_forecast.replay")

LOOP_SENSORS = ("new_data_sensor", "after_new_data_sensor", "retraining_sensor", "alert_on_failed_checks")
"""Ticked in this order after each delivery, until none asks for another run."""


@dataclass
class ReplayReport:
    days: list[str] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    per_day_seconds: list[float] = field(default_factory=list)

    def failed(self) -> list[dict[str, Any]]:
        return [run for run in self.runs if not run["success"]]


class Loop:
    """The daemon's part, in this process: tick the loop's sensors and run what they ask for."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.defs, self.instance = defs, instance
        self.cursors: dict[str, str | None] = {}
        self.report = ReplayReport()

    def tick(self, name: str) -> list[dg.RunRequest]:
        sensor = self.defs.resolve_sensor_def(name)
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursors.get(name), definitions=self.defs, sensor_name=name, resources=self.defs.resources
        )
        data = sensor.evaluate_tick(context)
        self.cursors[name] = data.cursor
        return list(data.run_requests or [])

    def execute(self, sensor: str, request: dg.RunRequest) -> bool:
        job = self.defs.resolve_job_def(request.job_name or self._only_job(sensor))
        started = time.perf_counter()
        run_config = {**(request.run_config or {}), "loggers": {"console": {"config": {"log_level": "INFO"}}}}
        result = job.execute_in_process(
            instance=self.instance, partition_key=request.partition_key, run_config=run_config,
            tags={**request.tags, "energy_forecast/replay": "true"}, raise_on_error=False,
        )
        entry = {"job": job.name, "partition": request.partition_key, "run_id": result.run_id, "success": result.success, "seconds": round(time.perf_counter() - started, 2)}
        self.report.runs.append(entry)
        logger.info("replay: %s%s %s in %.1f s", job.name, f"[{request.partition_key}]" if request.partition_key else "", "succeeded" if result.success else "FAILED", entry["seconds"])
        if not result.success:
            self._alert_failure(result)
        return result.success

    def _only_job(self, sensor: str) -> str:
        return self.defs.resolve_sensor_def(sensor).job_name

    def _alert_failure(self, result: dg.ExecuteInProcessResult) -> None:
        """What the daemon's run-failure sensor would do, through that same sensor."""
        failure = next((event for event in result.all_events if event.event_type_value == "PIPELINE_FAILURE"), None)
        run = self.instance.get_run_by_id(result.run_id)
        if failure is None or run is None:
            return
        sensor = self.defs.resolve_sensor_def("alert_on_run_failure")
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name, dagster_event=failure, dagster_instance=self.instance, dagster_run=run, resources=self.defs.resources,
        ).for_run_failure()
        sensor(context)

    def settle(self, rounds: int = 5) -> None:
        """Tick the loop's sensors until none asks for a run (each run may enable the next)."""
        for _ in range(rounds):
            asked = 0
            for name in LOOP_SENSORS:
                for request in self.tick(name):
                    self.execute(name, request)
                    asked += 1
            if not asked:
                return


def replay(
    operations: OperationsConfig, defs: dg.Definitions, instance: dg.DagsterInstance, *, start: pd.Timestamp, days: int,
    every: float = 0.0, keep: bool = False, process: bool = True, extra: dict[int, DayFile] | None = None,
) -> ReplayReport:
    """Deliver ``days`` days from ``start`` (``extra[i]`` is delivered just before day ``i``) and,
    with ``process``, run the loop after each delivery."""
    source = operations.data
    landing: Landing = landing_at(operations.landing)
    if not keep:
        start_live_series(source, operations.series, start)
    elif load_series(operations.live_data).frame.index[-1] >= start:
        raise ValueError(f"--keep: the live series {operations.series} already reaches {start}; start later, or replay without --keep")
    loop = Loop(defs, instance)
    began = time.perf_counter()
    for index, file in enumerate(day_files(source, start, days)):
        if index and every > 0:
            time.sleep(every)
        day_started = time.perf_counter()
        for delivery in ([extra[index]] if extra and index in extra else []) + [file]:
            landing.put(delivery.name, delivery.payload)
            logger.info("replay: delivered %s to %s", delivery.name, landing.location)
        loop.report.days.append(f"{file.day:%Y-%m-%d}")
        if process:
            os.environ[NOW_VARIABLE] = str(file.day + pd.Timedelta(days=1))
            loop.settle()
        loop.report.per_day_seconds.append(round(time.perf_counter() - day_started, 2))
    loop.report.seconds = round(time.perf_counter() - began, 2)
    return loop.report


def main(argv: list[str] | None = None) -> None:
    from pipelines.cli import EXIT_BAD_INPUT, _instance
    from pipelines.definitions import defs, operations

    parser = argparse.ArgumentParser(prog="energy-forecast replay", description=__doc__.split("\n")[0])
    parser.add_argument("--from", dest="start", default="2018-12-01", help="first day delivered (the live series ends the day before)")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--every", type=float, default=2.0, help="seconds between deliveries")
    parser.add_argument("--keep", action="store_true", help="continue the live series instead of starting it again")
    parser.add_argument("--deliver-only", action="store_true", help="only deliver: a running daemon processes the files")
    args = parser.parse_args(argv)
    with _instance() as instance:
        try:
            report = replay(operations, defs, instance, start=pd.Timestamp(args.start), days=args.days, every=args.every,
                            keep=args.keep, process=not args.deliver_only)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(EXIT_BAD_INPUT) from None
    print(f"\nreplayed {len(report.days)} day(s) {report.days[0]} .. {report.days[-1]} in {report.seconds:.0f} s "
          f"({report.seconds / max(1, len(report.days)):.1f} s per day, deliveries {args.every:g} s apart)")
    for run in report.runs:
        partition = f"[{run['partition']}]" if run["partition"] else ""
        print(f"  {'ok    ' if run['success'] else 'FAILED'} {run['job']}{partition}  {run['seconds']:.1f} s  {run['run_id']}")
    landing = landing_at(operations.landing)
    print(f"\nlive series: {operations.series}\nlanding: {landing.location} (processed/, quarantine/)")
    print("Open the UI with `make dev`: assets daily_forecast and forecast_accuracy, checks, runs.")
    if report.failed():
        raise SystemExit(1)
