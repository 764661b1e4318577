"""Jobs: thin wrappers that read config and resources and call the plain library.

No `from __future__ import annotations` here: Dagster reads the real annotations of ops and configs.

Every job runs its steps in one process (``in_process_executor``): the steps share heavy imports
instead of paying seconds of interpreter start-up each, which is what made the reference
implementation spend ~58 s around a 1.5 s fit.
"""


import re

import dagster as dg
from pydantic import Field

from energy_forecast.comparison import build_leaderboard, leaderboard_png, log_leaderboard
from energy_forecast.config import load_comparison_config
from energy_forecast.tracking import load_logged_forecaster
from energy_forecast.training import TrainingResult, load_config, member_configs, train
from energy_forecast.tuning import TuningResult, tune
from pipelines.logs import library_logs_to
from pipelines.metadata import markdown_table, png_markdown, training_metadata, tuning_metadata
from pipelines.paths import resolve_config_path
from pipelines.resources import MlflowTracking

GPU_TAG = "energy_forecast/gpu"
"""Runs tagged ``true`` benefit from a GPU (the deployment limits them and grants the device)."""

K8S_GPU_CONFIG = {
    "container_config": {"resources": {"limits": {"nvidia.com/gpu": 1}}},
    "pod_spec_config": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]},
}
"""Read by Dagster's K8sRunLauncher only (infra/k8s): a GPU job's pod asks for one GPU and tolerates
the GPU nodes' taint. The Docker deployment ignores it and decides from ``GPU_TAG``."""


class TrainingJobConfig(dg.Config):
    config_path: str = Field(
        default="configs/training/xgboost.yaml",
        description="Training YAML, absolute or relative to the project directory.",
    )


class ComparisonJobConfig(dg.Config):
    comparison_path: str = Field(
        default="configs/comparisons/traditional.yaml",
        description="Comparison YAML listing the training configs to put on one leaderboard.",
    )


def _train_one(
    context: dg.OpExecutionContext, config_path: str, mlflow: MlflowTracking, members: dict[str, TrainingResult] | None = None
) -> TrainingResult:
    path = resolve_config_path(config_path)
    with library_logs_to(context.log):
        config = load_config(path)  # fails here, before any work, on a bad config
        context.log.info(f"training {config.name}: model.type={config.model.type}, task={config.task.name}")
        fitted = {name: load_logged_forecaster(result.model_uri) for name, result in (members or {}).items() if result.model_uri}
        if fitted:
            context.log.info(f"reusing the fitted members {sorted(fitted)} of this run")
        result = train(config, mlflow.tracker(), members=fitted)
    metadata = training_metadata(result)
    context.add_output_metadata(metadata)
    context.log_event(
        dg.AssetMaterialization(
            asset_key=dg.AssetKey(["models", result.task, result.config_name]),
            description=f"{result.model_type} trained from {path}",
            metadata=metadata,
        )
    )
    return result


@dg.op(description="Train, backtest, log and register the model named by a training YAML.")
def train_model(context: dg.OpExecutionContext, config: TrainingJobConfig, mlflow: MlflowTracking) -> TrainingResult:
    return _train_one(context, config.config_path, mlflow)


def training_job(name: str, default_config: str, description: str, *, gpu: bool = False) -> dg.JobDefinition:
    """A one-step job around :func:`train_model`, its Launchpad prefilled with ``default_config``."""

    @dg.job(
        name=name,
        description=description,
        executor_def=dg.in_process_executor,
        config=dg.RunConfig(ops={"train_model": TrainingJobConfig(config_path=default_config)}),
        tags={GPU_TAG: str(gpu).lower(), **({"dagster-k8s/config": K8S_GPU_CONFIG} if gpu else {})},
    )
    def _job() -> None:
        train_model()

    return _job


complete_training_job = training_job(
    "complete_training_job",
    "configs/training/xgboost.yaml",
    "Train any model from its YAML (model.type selects the family); log to MLflow and register it.",
)

chronos_zeroshot_job = training_job(
    "chronos_zeroshot_job",
    "configs/training/chronos2_zeroshot.yaml",
    "Chronos-2 zero-shot on the target alone: load the pretrained weights, backtest December, log and register.",
    gpu=True,
)

chronos_finetuned_job = training_job(
    "chronos_finetuned_job",
    "configs/training/chronos2_finetuned.yaml",
    "Chronos-2 fine-tuned on January-October (target alone), validated on November; weights logged to MLflow.",
    gpu=True,
)

chronos_covariates_job = training_job(
    "chronos_covariates_job",
    "configs/training/chronos2_covariates.yaml",
    "Chronos-2 fine-tuned with the nine covariates in their past / known-future roles; weights logged to MLflow.",
    gpu=True,
)


@dg.op(
    out={"singles": dg.DynamicOut(str, is_required=False), "ensembles": dg.DynamicOut(str, is_required=False)},
    description="Validate every config of a comparison before training any; ensembles wait for their members.",
)
def comparison_configs(context: dg.OpExecutionContext, config: ComparisonJobConfig):
    comparison = load_comparison_config(resolve_config_path(config.comparison_path))
    configs = {path: load_config(path) for path in comparison.configs}
    context.log.info(f"comparison '{comparison.name}': {len(configs)} configs validated")
    for path, training in configs.items():
        output = "ensembles" if member_configs(training) else "singles"
        yield dg.DynamicOutput(str(path), mapping_key=re.sub(r"\W", "_", path.stem), output_name=output)


@dg.op(description="Train one config of the comparison.")
def train_comparison_member(context: dg.OpExecutionContext, config_path: str, mlflow: MlflowTracking) -> TrainingResult:
    return _train_one(context, config_path, mlflow)


@dg.op(description="Train an ensemble of the comparison, reusing its members trained in this run.")
def train_comparison_ensemble(
    context: dg.OpExecutionContext, config_path: str, members: list[TrainingResult], mlflow: MlflowTracking
) -> TrainingResult:
    wanted = set(member_configs(load_config(resolve_config_path(config_path))))
    fitted = {r.config_name: r for r in members if r.config_name in wanted and r.model_uri}
    if wanted - set(fitted):
        context.log.info(f"members {sorted(wanted - set(fitted))} are not in this comparison: the ensemble fits them itself")
    return _train_one(context, config_path, mlflow, fitted)


@dg.op(description="The single models trained, handed to the ensembles as one list.")
def trained_members(results: list[TrainingResult]) -> list[TrainingResult]:
    return results


@dg.op(description="Rank the models against the baselines; log the leaderboard to MLflow.")
def publish_leaderboard(
    context: dg.OpExecutionContext, config: ComparisonJobConfig, singles: list[TrainingResult], ensembles: list[TrainingResult],
    mlflow: MlflowTracking,
) -> dg.Output:
    results = [*singles, *ensembles]
    board = build_leaderboard(results)
    name = resolve_config_path(config.comparison_path).stem
    png = leaderboard_png(board, name)
    run_id, run_url = log_leaderboard(mlflow.tracker(), results[0].experiment, name, board, png)
    metadata = {
        "leaderboard": dg.MetadataValue.md(markdown_table(board.drop(columns=["run_id"]))),
        "chart": dg.MetadataValue.md(png_markdown(png, "leaderboard")),
        "mlflow_run_id": dg.MetadataValue.text(run_id),
    }
    if run_url:
        metadata["mlflow_run"] = dg.MetadataValue.url(run_url)
    context.log_event(dg.AssetMaterialization(asset_key=dg.AssetKey(["leaderboards", name]), metadata=metadata))
    return dg.Output(board, metadata=metadata)


def comparison_job(name: str, default_comparison: str, description: str, *, gpu: bool = False) -> dg.JobDefinition:
    @dg.job(
        name=name,
        description=description,
        executor_def=dg.in_process_executor,
        tags={GPU_TAG: str(gpu).lower()},
        config=dg.RunConfig(ops={
            "comparison_configs": ComparisonJobConfig(comparison_path=default_comparison),
            "publish_leaderboard": ComparisonJobConfig(comparison_path=default_comparison),
        }),
    )
    def _job() -> None:
        singles, ensembles = comparison_configs()
        trained = trained_members(singles.map(train_comparison_member).collect())
        publish_leaderboard(trained, ensembles.map(lambda path: train_comparison_ensemble(path, trained)).collect())

    return _job


compare_models_job = comparison_job(
    "compare_models_job",
    "configs/comparisons/traditional.yaml",
    "Train every traditional config and rank them against the baselines on one leaderboard.",
)

compare_all_models_job = comparison_job(
    "compare_all_models_job",
    "configs/comparisons/all.yaml",
    "Train all eight models (five traditional, Chronos-2 in three modes) and rank them against the baselines.",
    gpu=True,
)


class TuningJobConfig(dg.Config):
    config_path: str = Field(
        default="configs/training/xgboost.yaml",
        description="Training YAML with a tuning: block (search space, budget, storage), absolute or relative to the project.",
    )
    trials: int | None = Field(default=None, description="Override tuning.trials: finished trials the study should hold.")
    timeout_s: float | None = Field(default=None, description="Override tuning.timeout: wall seconds of this run.")
    output_path: str | None = Field(
        default=None,
        description="Where the tuned YAML goes (default: <name>_tuned.yaml beside the original). In the Compose stack configs/ is "
        "read-only: give a writable path; the tuned YAML is also logged to the MLflow parent run.",
    )


@dg.op(description="Run or resume the Optuna study of a training YAML on its validation windows; write <name>_tuned.yaml.")
def tune_model(context: dg.OpExecutionContext, config: TuningJobConfig, mlflow: MlflowTracking) -> TuningResult:
    path = resolve_config_path(config.config_path)
    with library_logs_to(context.log):  # one progress line per trial: count, best so far, time left
        result = tune(path, tracker=mlflow.tracker(), trials=config.trials, timeout=config.timeout_s, output=config.output_path)
    context.add_output_metadata(tuning_metadata(result))
    return result


@dg.job(
    name="tune_model_job",
    description="Optuna search of a training YAML's tuning: block (validation only; resumes an interrupted study); "
    "trials as nested MLflow runs; the best parameters written to <name>_tuned.yaml beside it.",
    executor_def=dg.in_process_executor,
    config=dg.RunConfig(ops={"tune_model": TuningJobConfig(config_path="configs/training/xgboost.yaml")}),
    tags={GPU_TAG: "false"},
)
def tune_model_job() -> None:
    tune_model()
