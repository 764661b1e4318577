"""Watching the loop: drift, retraining when accuracy or the data drift, the weekly schedule, alerts.

* ``drift``: the recent weeks of the target and each covariate against the training period
  (PSI, and KS for numbers; :func:`energy_forecast.monitoring.drift`), as numbers and a plot.
* ``retraining_sensor`` asks for ``retrain_job`` when the rolling 7-day RMSE of
  ``forecast_accuracy`` exceeds ``retraining.accuracy_factor`` x the backtest RMSE, or when the
  PSI of a watched column (``retraining.drift_columns``, default the target) exceeds
  ``retraining.drift_psi``; at most once per ``min_days_between``.
* ``weekly_retraining`` runs ``retrain_job`` on ``retraining.schedule`` in the plant's time zone.
* ``alert_on_run_failure`` and ``alert_on_failed_checks`` log every failure and POST it, as JSON,
  to the alert webhook when one is set.
"""

import json
import time

import dagster as dg
import pandas as pd

from energy_forecast.config import OperationsConfig
from energy_forecast.data.loading import load_series
from energy_forecast.monitoring import drift as drift_report
from energy_forecast.monitoring import drift_png
from pipelines.defs.ingest import meter_readings
from pipelines.metadata import markdown_table, png_markdown
from pipelines.resources import Alerts, Operations

RETRAIN_JOB = "retrain_job"


@dg.asset(
    deps=[meter_readings],
    group_name="monitoring",
    kinds={"python"},
    description="PSI (and KS) of the recent weeks of the target and every covariate against the training period.",
)
def drift(context: dg.AssetExecutionContext, operations: Operations):
    ops = operations.config
    series = load_series(ops.live_data)
    report = drift_report(
        series.frame, ops.data, reference=(pd.Timestamp(ops.drift.reference_start), pd.Timestamp(ops.drift.reference_end)),
        recent_days=ops.drift.recent_days, threshold=ops.retraining.drift_psi,
    )
    table = report.table.round(4)
    watched = ops.retraining.drift_columns or [ops.data.target]
    return dg.Output(
        table,
        metadata={
            "max_psi": dg.MetadataValue.float(report.max_psi),
            "watched_psi": dg.MetadataValue.float(float(report.table.set_index("column").loc[watched, "psi"].max())),
            "watched_columns": dg.MetadataValue.json(watched),
            "drifted": dg.MetadataValue.json(report.drifted),
            "threshold": dg.MetadataValue.float(report.threshold),
            "recent": dg.MetadataValue.text(f"{report.recent[0]} .. {report.recent[1]}"),
            "table": dg.MetadataValue.md(markdown_table(table)),
            "plot": dg.MetadataValue.md(png_markdown(drift_png(report, series.frame, ops.data.target), "drift")),
        },
    )


drift_job = dg.define_asset_job("drift_job", selection=dg.AssetSelection.assets(drift), description="Measure drift against the training period.")


def _latest_value(instance: dg.DagsterInstance, key: dg.AssetKey, label: str) -> tuple[float | None, str | None]:
    event = instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return None, None
    entry = event.asset_materialization.metadata.get(label)
    return (float(entry.value) if entry is not None and entry.value is not None else None), event.run_id


def monitoring_definitions(operations: OperationsConfig, retrain_job) -> dict[str, list]:
    policy = operations.retraining

    @dg.sensor(
        jobs=[retrain_job, drift_job], minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
        description="Retrain when the rolling 7-day RMSE or the drift crosses its threshold; measure drift after new data.",
    )
    def retraining_sensor(context: dg.SensorEvaluationContext):
        state = json.loads(context.cursor) if context.cursor else {}
        requests = []
        _, ingest_run = _latest_value(context.instance, meter_readings.key, "appended")
        if ingest_run and ingest_run != state.get("drift_after"):
            state["drift_after"] = ingest_run
            requests.append(dg.RunRequest(job_name="drift_job", run_key=f"drift-{ingest_run}"))
        ratio, accuracy_run = _latest_value(context.instance, dg.AssetKey("forecast_accuracy"), "rolling_7d_ratio_to_backtest")
        max_psi, drift_run = _latest_value(context.instance, drift.key, "watched_psi")
        reasons = []
        if ratio is not None and ratio > policy.accuracy_factor and accuracy_run != state.get("accuracy_seen"):
            reasons.append(f"rolling 7-day RMSE is {ratio:.2f} x the backtest's (threshold {policy.accuracy_factor})")
        if max_psi is not None and max_psi > policy.drift_psi and drift_run != state.get("drift_seen"):
            reasons.append(f"drift: PSI {max_psi:.3f} of {policy.drift_columns or [operations.data.target]} (threshold {policy.drift_psi})")
        state["accuracy_seen"], state["drift_seen"] = accuracy_run, drift_run
        waited = time.time() - state.get("last_retrain", 0.0) >= policy.min_days_between * 86400
        if reasons and waited:
            state["last_retrain"] = time.time()
            context.log.info("retraining: " + "; ".join(reasons))
            requests.append(dg.RunRequest(job_name=RETRAIN_JOB, run_key=f"retrain-{accuracy_run}-{drift_run}", tags={"energy_forecast/retrain_reason": "; ".join(reasons)[:250]}))
        elif reasons:
            context.log.info(f"retraining wanted ({'; '.join(reasons)}) but the last one was under {policy.min_days_between} day(s) ago")
        context.update_cursor(json.dumps(state))
        return requests or dg.SkipReason("accuracy and drift within their thresholds")

    weekly = dg.ScheduleDefinition(
        name="weekly_retraining", job=retrain_job, cron_schedule=policy.schedule, execution_timezone=operations.timezone,
        description="Retrain the models on the stored series; each promotion is gated by its blocking check.",
    )
    return {"assets": [drift], "jobs": [drift_job], "sensors": [retraining_sensor], "schedules": [weekly]}


@dg.run_failure_sensor(default_status=dg.DefaultSensorStatus.RUNNING, description="Alert on every failed run.")
def alert_on_run_failure(context: dg.RunFailureSensorContext, alerts: Alerts, operations: Operations):
    run = context.dagster_run
    alerts.send(
        "run_failure",
        f"{run.job_name} run {run.run_id} failed",
        {"job": run.job_name, "run_id": run.run_id, "error": context.failure_event.message, "tags": dict(run.tags)},
        fallback_url=operations.config.alert_webhook,
    )


@dg.sensor(minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING, description="Alert on every failed asset check.")
def alert_on_failed_checks(context: dg.SensorEvaluationContext, alerts: Alerts, operations: Operations):
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    seen = set(json.loads(context.cursor)) if context.cursor else set()
    check_keys = [key for node in context.repository_def.asset_graph.asset_nodes for key in node.check_keys]
    latest = context.instance.event_log_storage.get_latest_asset_check_execution_by_key(check_keys)
    sent = 0
    for key, record in latest.items():
        marker = f"{key.asset_key.to_user_string()}:{key.name}:{record.id}"
        if record.status != AssetCheckExecutionRecordStatus.FAILED or marker in seen:
            continue
        evaluation = record.event.dagster_event.asset_check_evaluation_data if record.event and record.event.dagster_event else None
        metadata = {k: v.value for k, v in (evaluation.metadata if evaluation else {}).items()}
        alerts.send(
            "check_failure", f"check {key.name} of {key.asset_key.to_user_string()} failed",
            {"asset": key.asset_key.to_user_string(), "check": key.name, "run_id": record.run_id, "partition": record.partition, "metadata": metadata},
            fallback_url=operations.config.alert_webhook,
        )
        seen.add(marker)
        sent += 1
    context.update_cursor(json.dumps(sorted(seen)[-500:]))
    return dg.SkipReason(f"{sent} alert(s) sent" if sent else "no new failed check")
