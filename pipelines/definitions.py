"""The code location: jobs and resources. ``dagster dev`` and the code server load this module."""

import dagster as dg

from pipelines.jobs import (
    chronos_covariates_job,
    chronos_finetuned_job,
    chronos_zeroshot_job,
    compare_all_models_job,
    compare_models_job,
    complete_training_job,
)
from pipelines.resources import MlflowTracking

defs = dg.Definitions(
    jobs=[
        complete_training_job,
        compare_models_job,
        chronos_zeroshot_job,
        chronos_finetuned_job,
        chronos_covariates_job,
        compare_all_models_job,
    ],
    resources={"mlflow": MlflowTracking()},
)
