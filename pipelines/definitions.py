"""The code location: jobs and resources. ``dagster dev`` and the code server load this module."""

import dagster as dg

from pipelines.jobs import compare_models_job, complete_training_job
from pipelines.resources import MlflowTracking

defs = dg.Definitions(
    jobs=[complete_training_job, compare_models_job],
    resources={"mlflow": MlflowTracking()},
)
