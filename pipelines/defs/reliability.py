"""Reliability: the sensor that reaps MLflow runs whose Dagster run is gone.

A run container that is SIGKILLed, or an MLflow server that is down when a run fails, leaves the
MLflow run RUNNING. Run monitoring (infra/dagster/dagster.yaml) marks the Dagster run FAILURE;
this sensor then marks its MLflow run FAILED with the tag ``energy_forecast.reaped`` saying why
(:mod:`pipelines.reaping`, :mod:`energy_forecast.reaper`). Runs also reap when they start.
"""

import os

import dagster as dg

from pipelines.reaping import reap
from pipelines.resources import MlflowTracking

REAPER_SECONDS_VARIABLE = "REAPER_SENSOR_SECONDS"


@dg.sensor(
    name="mlflow_reaper",
    minimum_interval_seconds=int(os.environ.get(REAPER_SECONDS_VARIABLE, "30")),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Mark FAILED the MLflow runs left RUNNING by finished Dagster runs (tag energy_forecast.reaped).",
)
def mlflow_reaper(context: dg.SensorEvaluationContext, mlflow: MlflowTracking) -> dg.SkipReason:
    reaped = reap(mlflow.tracker(), context.instance)
    for orphan in reaped:
        context.log.warning(f"reaped MLflow run {orphan.run_id}: {orphan.reason}")
    if not reaped:
        return dg.SkipReason("no orphaned MLflow run")
    return dg.SkipReason(f"reaped {len(reaped)} MLflow run(s): " + "; ".join(f"{o.run_id} ({o.reason})" for o in reaped)[:900])
