"""Tomorrow's forecast and yesterday's accuracy, one daily partition each, in the plant's time zone.

* ``daily_forecast[D]``: the champion's forecast of day D, made at its origin (D 00:00, the first
  stamp after the data of D-1), written to the forecasts store with its plot
  (:func:`energy_forecast.forecast.forecast_next`). Its checks: finite values, inside a physically
  plausible range taken from history, quantiles in order.
* ``forecast_accuracy[D]``: once D's actuals are stored, the forecast of D scored against them and
  against the weekly seasonal naive; rolling 7- and 28-day views compared with the champion's
  backtest (December) RMSE.

``after_new_data_sensor`` follows ``meter_readings``: for every day an ingest completed it asks
for ``forecast_accuracy`` of that day and ``daily_forecast`` of the next.
"""

import dagster as dg
import numpy as np
import pandas as pd

from energy_forecast.config import OperationsConfig
from energy_forecast.data.loading import load_series
from energy_forecast.forecast import forecast_next
from energy_forecast.frames import ORIGIN, PREDICTION, TIMESTAMP, quantile_column
from energy_forecast.monitoring import accuracy_png, day_accuracy, latest_forecasts, pooled_accuracy
from pipelines.defs.ingest import meter_readings
from pipelines.logs import library_logs_to
from pipelines.metadata import png_markdown
from pipelines.resources import ForecastsStore, MlflowTracking, Operations

FORECAST_JOB, ACCURACY_JOB = "daily_forecast_job", "forecast_accuracy_job"


def daily_partitions(operations: OperationsConfig) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=operations.first_forecast_day.strftime("%Y-%m-%d"), timezone=operations.timezone)


def sanity(rows: pd.DataFrame, *, ceiling: float, floor: float | None) -> dict:
    """Finite, within [floor, ceiling], quantiles in order: the facts the sanity check judges."""
    columns = [PREDICTION, *[c for c in rows.columns if str(c).startswith("q0.")]]
    values = rows[columns].to_numpy(dtype="float64")
    levels = sorted((float(c[1:]), c) for c in columns[1:])
    ordered = np.diff(rows[[c for _, c in levels]].to_numpy(dtype="float64"), axis=1) >= -1e-9
    return {
        "non_finite": int((~np.isfinite(values)).sum()),
        "above_ceiling": int((values > ceiling).sum()),
        "below_floor": int((values < floor).sum()) if floor is not None else 0,
        "crossed_quantiles": int((~ordered).sum()),
        "ceiling": float(ceiling),
    }


def forecast_definitions(operations: OperationsConfig) -> dict[str, list]:
    partitions = daily_partitions(operations)

    @dg.asset(
        partitions_def=partitions,
        deps=[meter_readings],
        group_name="forecasts",
        kinds={"sql", "mlflow"},
        description="The champion's forecast of the day, made at its origin (00:00), in the forecasts store with its plot.",
        check_specs=[dg.AssetCheckSpec("sanity", asset="daily_forecast", description="finite, within a plausible range from history, quantiles in order")],
    )
    def daily_forecast(context: dg.AssetExecutionContext, operations: Operations, forecasts: ForecastsStore, mlflow: MlflowTracking):
        ops = operations.config
        origin = pd.Timestamp(context.partition_key)
        with library_logs_to(context.log):
            outcome = forecast_next(
                ops.live_data, registered_model=ops.model_name, origin=origin, store=forecasts.store(), plots=forecasts.plots(),
                tracking_uri=mlflow.tracker().tracking_uri,
            )
        rows = outcome.rows
        history = load_series(ops.live_data).target
        facts = sanity(rows, ceiling=ops.checks.plausible_factor * float(history.max()), floor=ops.data.target_min)
        metadata = {
            "model": dg.MetadataValue.text(f"{ops.model_name} v{outcome.model.version} ({outcome.model.model_type})"),
            "origin": dg.MetadataValue.text(str(origin)),
            "mean": dg.MetadataValue.float(float(rows[PREDICTION].mean())),
            "band_80_width": dg.MetadataValue.float(float((rows[quantile_column(0.9)] - rows[quantile_column(0.1)]).mean())),
            "store": dg.MetadataValue.text(outcome.store),
            "plot_location": dg.MetadataValue.text(outcome.plot),
            "known_future_from": dg.MetadataValue.json(outcome.covariate_sources),
            "seconds": dg.MetadataValue.float(round(outcome.seconds, 3)),
        }
        if not outcome.plot.startswith("s3://"):
            metadata["plot"] = dg.MetadataValue.md(png_markdown(open(outcome.plot, "rb").read(), "forecast"))
        yield dg.Output(rows, metadata=metadata)
        passed = not (facts["non_finite"] or facts["above_ceiling"] or facts["below_floor"] or facts["crossed_quantiles"])
        yield dg.AssetCheckResult(check_name="sanity", passed=passed, metadata=facts)

    @dg.asset(
        partitions_def=partitions,
        deps=[daily_forecast, meter_readings],
        group_name="forecasts",
        kinds={"sql"},
        description="The day's forecast against its actuals and the weekly seasonal naive; rolling 7/28-day views against the backtest.",
    )
    def forecast_accuracy(context: dg.AssetExecutionContext, operations: Operations, forecasts: ForecastsStore, mlflow: MlflowTracking):
        ops = operations.config
        day = pd.Timestamp(context.partition_key)
        store = forecasts.store()
        series = load_series(ops.live_data).target
        stored = latest_forecasts(store.read(registered_model=ops.model_name, start=day - pd.Timedelta(days=28), end=day + pd.Timedelta(days=1)))
        today = stored[stored[ORIGIN] == day]
        if today.empty:
            raise dg.Failure(f"no forecast of {day:%Y-%m-%d} in {store.location}: materialize daily_forecast[{context.partition_key}] first")
        accuracy = day_accuracy(today, series)
        version = str(today["model_version"].iloc[0])
        backtest = _backtest_rmse(mlflow, ops.model_name, version)
        rolling = {days: pooled_accuracy(stored, series, end=day + pd.Timedelta(days=1), days=days, backtest_rmse=backtest) for days in (7, 28)}
        daily = _daily_rmse(stored, series, day)
        result = {"day": context.partition_key, "model_version": version, **accuracy, "backtest_rmse": backtest,
                  **{f"rolling_{days}d_{k}": v for days, scores in rolling.items() for k, v in scores.items() if k in ("rmse", "mae", "coverage_80", "ratio_to_backtest", "days_scored", "naive_rmse")}}
        metadata = {k: dg.MetadataValue.float(float(v)) for k, v in result.items() if isinstance(v, int | float) and v is not None and np.isfinite(v)}
        metadata["model_version"] = dg.MetadataValue.text(version)
        metadata["daily_rmse"] = dg.MetadataValue.md(png_markdown(accuracy_png(daily, backtest_rmse=backtest, title=f"{ops.model_name}: realized RMSE per day"), "daily RMSE"))
        return dg.Output(result, metadata=metadata)

    forecast_job = dg.define_asset_job(
        FORECAST_JOB, selection=dg.AssetSelection.assets(daily_forecast),
        description="Forecast one day with the champion (a partition per day).",
    )
    accuracy_job = dg.define_asset_job(
        ACCURACY_JOB, selection=dg.AssetSelection.assets(forecast_accuracy),
        description="Score one day's forecast against its actuals.",
    )

    @dg.asset_sensor(
        asset_key=meter_readings.key, jobs=[forecast_job, accuracy_job], minimum_interval_seconds=5,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="After new data: forecast the next day of every completed day, and score the completed day if it was forecast.",
    )
    def after_new_data_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
        materialization = asset_event.asset_materialization
        entry = materialization.metadata.get("completed_days") if materialization else None
        days = list(entry.value) if entry is not None else []
        if not days:
            return dg.SkipReason("the last ingest completed no day")
        forecast_days = set(context.instance.get_materialized_partitions(daily_forecast.key))
        first = partitions.get_first_partition_key()
        for day in days:
            following = f"{pd.Timestamp(day) + pd.Timedelta(days=1):%Y-%m-%d}"
            if first is not None and following >= first:
                yield dg.RunRequest(job_name=FORECAST_JOB, partition_key=following, run_key=f"forecast-{following}-{asset_event.run_id}")
            if day in forecast_days:
                yield dg.RunRequest(job_name=ACCURACY_JOB, partition_key=day, run_key=f"accuracy-{day}-{asset_event.run_id}")
            else:
                context.log.info(f"{day}: completed, but never forecast: no accuracy to score")

    return {"assets": [daily_forecast, forecast_accuracy], "jobs": [forecast_job, accuracy_job], "sensors": [after_new_data_sensor]}


def _backtest_rmse(mlflow: MlflowTracking, name: str, version: str) -> float | None:
    """The December (test period) RMSE the version promised: its run's ``test_rmse``."""
    client = mlflow.tracker().client
    run_id = client.get_model_version(name, version).run_id
    return client.get_run(run_id).data.metrics.get("test_rmse")


def _daily_rmse(stored: pd.DataFrame, series: pd.Series, day: pd.Timestamp) -> pd.DataFrame:
    rows = []
    for origin, part in stored.groupby(stored[TIMESTAMP].dt.normalize()):
        if origin > day or series.reindex(pd.DatetimeIndex(part[TIMESTAMP])).isna().any():
            continue
        rows.append({"day": origin, **day_accuracy(part, series)})
    return pd.DataFrame(rows).set_index("day") if rows else pd.DataFrame(columns=["rmse"])

