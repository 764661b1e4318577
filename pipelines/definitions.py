"""The code location: ``dagster dev`` and the code server load this module. Wiring only.

The operations YAML (``OPERATIONS_CONFIG``, default ``configs/operations.yaml``) says which models
have assets, the daily partitions' first day and time zone, and the retraining schedule.
"""

import os

import dagster as dg

from energy_forecast.config import load_operations_config
from pipelines.defs.forecasts import forecast_definitions
from pipelines.defs.ingest import ingest_job, meter_readings, new_data_sensor
from pipelines.defs.models import model_definitions, model_jobs
from pipelines.defs.monitoring import alert_on_failed_checks, alert_on_run_failure, monitoring_definitions
from pipelines.defs.reliability import mlflow_reaper
from pipelines.defs.sites import site_definitions
from pipelines.jobs import (
    chronos_covariates_job,
    chronos_finetuned_job,
    chronos_zeroshot_job,
    compare_all_models_job,
    compare_models_job,
    complete_training_job,
    tune_model_job,
)
from pipelines.logs import concise_console_logger
from pipelines.paths import resolve_config_path
from pipelines.resources import OPERATIONS_YAML, deployment_resources

operations = load_operations_config(resolve_config_path(os.environ.get("OPERATIONS_CONFIG", OPERATIONS_YAML)))
train_models_job, retrain_job = model_jobs(operations)
forecasts = forecast_definitions(operations)
monitoring = monitoring_definitions(operations, retrain_job)
sites = site_definitions(operations)

defs = dg.Definitions(
    assets=[meter_readings, *model_definitions(operations), *forecasts["assets"], *monitoring["assets"], *sites["assets"]],
    jobs=[
        complete_training_job,
        compare_models_job,
        chronos_zeroshot_job,
        chronos_finetuned_job,
        chronos_covariates_job,
        compare_all_models_job,
        tune_model_job,
        ingest_job,
        train_models_job,
        retrain_job,
        *forecasts["jobs"],
        *monitoring["jobs"],
        *sites["jobs"],
    ],
    sensors=[
        new_data_sensor, *forecasts["sensors"], *monitoring["sensors"], *sites["sensors"], alert_on_run_failure, alert_on_failed_checks,
        mlflow_reaper,
    ],
    schedules=monitoring["schedules"],
    resources=deployment_resources(),
    executor=dg.in_process_executor,  # one process per run: the steps share heavy imports (seconds each otherwise)
    loggers={"console": concise_console_logger},
)
