"""New meter data: the landing location, the new-data sensor and the ``meter_readings`` asset.

The sensor watches the landing location (a folder embedded, an S3 prefix in the stack) and asks
for one ``ingest_job`` run per new set of files (one at a time: the appends must keep their order).
The run materializes ``meter_readings``: every pending file, oldest first, is validated and
appended to the stored series (:func:`energy_forecast.ingest.ingest_delivery`), or moved to
``quarantine/`` with its reason; nothing stored is touched by a bad file and the next ones still
go through. Its checks then look at the whole stored series.
"""

import os
from datetime import datetime

import dagster as dg
import numpy as np
import pandas as pd

from energy_forecast.config import OperationsConfig
from energy_forecast.data.loading import DataValidationError, SeriesData, interval_starts, load_series, read_raw
from energy_forecast.ingest import BadDelivery, Delivery, ingest_delivery, landing_at
from energy_forecast.plots import figure_png
from pipelines.logs import library_logs_to
from pipelines.metadata import markdown_table, png_markdown
from pipelines.resources import Operations

INGEST_JOB = "ingest_job"
INGEST_TAG = "energy_forecast/ingest"
NOW_VARIABLE = "ENERGY_FORECAST_NOW"


def now() -> pd.Timestamp:
    """The clock the freshness check reads: ``ENERGY_FORECAST_NOW`` (a replay of past data sets it
    to the end of the delivered day), else the wall clock, naive, in the data's local time."""
    value = os.environ.get(NOW_VARIABLE)
    return pd.Timestamp(value) if value else pd.Timestamp(datetime.now())


def _last_week_png(series: SeriesData) -> bytes:
    import matplotlib.pyplot as plt

    target = series.target
    recent = target.loc[target.index >= target.index[-1] - pd.Timedelta(days=7)]
    figure, axis = plt.subplots(figsize=(10, 2.6))
    axis.plot(recent.index, recent.to_numpy(), color="black", linewidth=0.8)
    axis.set_title(f"{series.config.target}: the last 7 days")
    axis.grid(alpha=0.3)
    figure.autofmt_xdate()
    return figure_png(figure)


def _dvc_md5(series: SeriesData) -> str:
    pointer = os.fspath(series.config.path) + ".dvc"
    if not os.path.isfile(pointer):
        return "not versioned (no .dvc pointer beside the series)"
    import yaml

    outs = (yaml.safe_load(open(pointer).read()) or {}).get("outs") or [{}]
    recorded = str(outs[0].get("md5", ""))
    return recorded if recorded == series.md5 else f"stale pointer {recorded} (file {series.md5})"


def completed_days(deliveries: list[Delivery]) -> list[str]:
    """The days whose last quarter-hour an appended delivery brought (their actuals are complete)."""
    days = set()
    for delivery in deliveries:
        if delivery.status != "appended":
            continue
        last = pd.Timestamp(delivery.last)
        first = pd.Timestamp(delivery.first)
        for day in pd.date_range(first.normalize(), last.normalize(), freq="D"):
            if last >= day + pd.Timedelta(days=1) - pd.Timedelta(minutes=15):
                days.add(f"{day:%Y-%m-%d}")
    return sorted(days)


@dg.asset(
    group_name="ingest",
    kinds={"csv"},
    description="The validated stored series: pending deliveries from the landing location appended, bad ones quarantined.",
    check_specs=[
        dg.AssetCheckSpec("schema", asset="meter_readings", description="every declared column is there; stamps parse; numbers are numbers"),
        dg.AssetCheckSpec("gaps", asset="meter_readings", description="no gap longer than the data YAML's max_gap_steps"),
        dg.AssetCheckSpec("duplicates", asset="meter_readings", description="no stamp twice"),
        dg.AssetCheckSpec("values", asset="meter_readings", description="no value below target_min, none infinite"),
        dg.AssetCheckSpec("freshness", asset="meter_readings", description="the last stamp is at most checks.freshness_hours old"),
    ],
)
def meter_readings(context: dg.AssetExecutionContext, operations: Operations):
    ops = operations.config
    landing = landing_at(ops.landing)
    deliveries: list[Delivery] = []
    quarantined: list[dict[str, str]] = []
    with library_logs_to(context.log):
        for name in landing.pending():
            try:
                deliveries.append(ingest_delivery(ops.live_data, name, landing.read(name)))
            except BadDelivery as error:
                quarantined.append({"file": name, "reason": str(error), "moved_to": landing.quarantine(name, str(error))})
                context.log.warning(f"{name} quarantined: {error}")
                continue
            landing.archive(name)
        try:
            series: SeriesData | None = load_series(ops.live_data)
            invalid = None
        except DataValidationError as error:  # recorded and reported by the checks below, not hidden
            series, invalid = None, str(error)
            context.log.error(f"the stored series does not load: {error}")
    table = pd.DataFrame([{"file": d.name, "status": d.status, "rows": d.rows, "first": d.first, "last": d.last} for d in deliveries])
    days = completed_days(deliveries)
    metadata = {
        "deliveries": dg.MetadataValue.md(markdown_table(table) if len(table) else "none pending"),
        "appended": dg.MetadataValue.int(sum(d.status == "appended" for d in deliveries)),
        "quarantined": dg.MetadataValue.json(quarantined),
        "completed_days": dg.MetadataValue.json(days),
    }
    if series is not None:
        frame = series.frame
        metadata |= {
            "rows": dg.MetadataValue.int(len(frame)),
            "span": dg.MetadataValue.text(f"{frame.index[0]} .. {frame.index[-1]}"),
            "last_stamp": dg.MetadataValue.text(str(frame.index[-1])),
            "sha256": dg.MetadataValue.text(series.sha256),
            "dvc_md5": dg.MetadataValue.text(_dvc_md5(series)),
            "last_7_days": dg.MetadataValue.md(png_markdown(_last_week_png(series), "last 7 days")),
        }
    else:
        metadata["invalid"] = dg.MetadataValue.text(invalid or "")
    yield dg.Output({"valid": series is not None, "completed_days": days, "last": metadata.get("last_stamp", dg.MetadataValue.text("")).value}, metadata=metadata)
    yield from data_checks(ops)


def data_checks(ops: OperationsConfig):
    """Each property of the stored series, from the raw file, so the UI says which one failed even
    when the loader would refuse the file at the first problem."""
    data = ops.live_data
    raw = read_raw(data)
    declared = [data.timestamp.column, data.target, *(c.name for c in data.covariates)]
    missing = [c for c in declared if c not in raw.columns]
    numeric = [c for c in (data.target, *(c.name for c in data.covariates if c.kind == "numeric")) if c in raw.columns]
    values = raw[numeric].apply(lambda column: pd.to_numeric(column.str.strip(), errors="coerce"))
    non_numeric = {c: int(values[c].isna().sum()) for c in numeric if values[c].isna().any()}
    stamps = interval_starts(raw, data) if data.timestamp.column in raw.columns else pd.DatetimeIndex([])
    unparseable = int(stamps.isna().sum())
    yield dg.AssetCheckResult(
        check_name="schema", passed=not missing and not non_numeric and not unparseable,
        metadata={"missing_columns": missing, "non_numeric_values": non_numeric, "unparseable_stamps": unparseable},
    )
    valid = stamps.dropna().sort_values()
    missing_steps = np.asarray((valid[1:] - valid[:-1]) / data.step, dtype="float64") - 1
    longest = int(missing_steps.max()) if len(missing_steps) else 0
    yield dg.AssetCheckResult(check_name="gaps", passed=longest <= data.max_gap_steps, metadata={"longest_gap_steps": longest, "allowed": data.max_gap_steps})
    duplicated = int(valid.duplicated().sum())
    yield dg.AssetCheckResult(check_name="duplicates", passed=duplicated == 0, metadata={"duplicated_stamps": duplicated})
    infinite = int(np.isinf(values.to_numpy(dtype="float64")).sum())
    target = values[data.target] if data.target in values else pd.Series(dtype="float64")
    below = int((target < data.target_min).sum()) if data.target_min is not None else 0
    yield dg.AssetCheckResult(check_name="values", passed=infinite == 0 and below == 0, metadata={"infinite": infinite, "below_target_min": below})
    last = valid[-1] if len(valid) else None
    age_hours = float((now() - (last + data.step)) / pd.Timedelta(hours=1)) if last is not None else float("inf")
    yield dg.AssetCheckResult(
        check_name="freshness", passed=age_hours <= ops.checks.freshness_hours, severity=dg.AssetCheckSeverity.WARN,
        metadata={"last_stamp": str(last), "age_hours": round(age_hours, 2), "allowed_hours": ops.checks.freshness_hours, "clock": os.environ.get(NOW_VARIABLE, "wall clock")},
    )


ingest_job = dg.define_asset_job(
    INGEST_JOB, selection=dg.AssetSelection.assets(meter_readings), tags={INGEST_TAG: "true"},
    description="Validate and append what arrived in the landing location (the new-data sensor's job).",
)


@dg.sensor(job=ingest_job, minimum_interval_seconds=int(os.environ.get("NEW_DATA_SENSOR_SECONDS", "10")), default_status=dg.DefaultSensorStatus.RUNNING)
def new_data_sensor(context: dg.SensorEvaluationContext, operations: Operations):
    """One ingest run for what is pending in the landing location, never two at once."""
    landing = landing_at(operations.config.landing)
    pending = landing.pending()
    if not pending:
        return dg.SkipReason(f"nothing new in {landing.location}")
    active = context.instance.get_run_records(
        dg.RunsFilter(job_name=INGEST_JOB, statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]),
        limit=1,
    )
    if active:
        return dg.SkipReason(f"{len(pending)} file(s) wait for ingest run {active[0].dagster_run.run_id} to finish")
    # no run key: a file delivered again under the same name must be looked at again (it is then a no-op)
    return dg.RunRequest(tags={"energy_forecast/files": ",".join(pending)[:250]})
