"""Models as assets: one per training YAML of the operations YAML, each gated before promotion.

Why one asset per YAML (a factory) rather than one asset with static partitions: the ensembles
depend on their members' assets, and a dependency between partitions of one asset cannot say
"stacking needs xgboost of the same materialization"; with one asset per YAML the lineage graph
shows it and Dagster passes the fitted members in, so nothing is fitted twice. Each YAML's asset
also keeps its own history of materializations (MLflow run, registered version, promotion).

::

    meter_readings --> model_xgboost --(beats_seasonal_naive, blocking)--> promotion_xgboost
                   --> model_lightgbm ...                                  promotion_lightgbm
                   model_xgboost, model_lightgbm, model_catboost --> model_stacking --> promotion_stacking
                   model_* --> leaderboard

A model asset trains, backtests, logs and registers its YAML's model as ``challenger``; its
blocking check requires the validation RMSE to beat the weekly seasonal naive by the operations
YAML's margin, and a failure stops the promotion step (and tags the version with why). The
promotion asset lets the version compete for ``champion``.

``data: snapshot`` (the default: ``make demo``, the Launchpad) trains on the training YAML's own
data file and split; ``data: live`` (the weekly schedule and the retraining sensor) on the stored
series, with the last ``retraining.test_days`` as test period and ``validation_days`` before them.
"""

from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

from energy_forecast.comparison import build_leaderboard, leaderboard_png, log_leaderboard
from energy_forecast.config import OperationsConfig, TrainingConfig
from energy_forecast.tracking import Promotion, load_logged_forecaster
from energy_forecast.training import (
    TrainingResult,
    load_config,
    member_configs,
    promote_result,
    rolling_split,
    skill_vs_naive,
    train,
)
from pipelines.logs import library_logs_to
from pipelines.metadata import markdown_table, png_markdown, training_metadata
from pipelines.resources import MlflowTracking, Operations

METER_READINGS = dg.AssetKey("meter_readings")
BEATS_NAIVE = "beats_seasonal_naive"


class ModelAssetConfig(dg.Config):
    data: Literal["snapshot", "live"] = Field(
        default="snapshot",
        description="snapshot: the training YAML's data file and split; live: the stored series, its last "
        "retraining.test_days as test period and the validation_days before them as validation",
    )


def model_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(f"model_{name}")


def promotion_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(f"promotion_{name}")


def training_config(path: Path, data: str, operations: OperationsConfig) -> TrainingConfig:
    config = load_config(path)
    if data == "live":
        config = rolling_split(
            config, operations.series, validation_days=operations.retraining.validation_days, test_days=operations.retraining.test_days
        )
    return config


def _model_asset(name: str, path: Path, members: list[str]) -> dg.AssetsDefinition:
    key = model_key(name)

    @dg.asset(
        key=key,
        ins={member: dg.AssetIn(key=model_key(member)) for member in members},
        deps=[METER_READINGS],
        group_name="models",
        kinds={"mlflow", "python"},
        description=f"{path.name}: trained, backtested, logged to MLflow and registered as challenger.",
        check_specs=[
            dg.AssetCheckSpec(
                BEATS_NAIVE, asset=key, blocking=True,
                description="validation RMSE at least promotion.min_skill_vs_naive below the weekly seasonal naive's; else no promotion",
            )
        ],
    )
    def _model(context: dg.AssetExecutionContext, config: ModelAssetConfig, mlflow: MlflowTracking, operations: Operations, **fitted: TrainingResult):
        ops = operations.config
        tracker = mlflow.tracker()
        with library_logs_to(context.log):
            training = training_config(path, config.data, ops)
            reused = {member: load_logged_forecaster(result.model_uri) for member, result in fitted.items() if result.model_uri}
            if reused:
                context.log.info(f"{name}: reusing the fitted members {sorted(reused)} of this materialization")
            result = train(training, tracker, promote=False, members=reused)
        metadata = training_metadata(result)
        metadata["data"] = dg.MetadataValue.text(f"{config.data}: {training.data.path}")
        yield dg.Output(result, metadata=metadata)
        skill = skill_vs_naive(result)
        margin = ops.promotion.min_skill_vs_naive
        passed = skill >= margin
        check_metadata = {
            "validation_rmse": result.validation_metrics["rmse"],
            "naive_validation_rmse": result.validation_baseline_metrics["seasonal_naive_weekly"]["rmse"],
            "skill_vs_naive": skill,
            "required": margin,
        }
        if not passed and result.registered_model and result.registered_version and result.run_id:
            tracker.record_refusal(
                result.registered_model, result.registered_version, run_id=result.run_id,
                reason=f"not promoted: validation skill vs weekly naive {skill:.3f} < required {margin:.3f} (blocking check {BEATS_NAIVE})",
            )
        yield dg.AssetCheckResult(check_name=BEATS_NAIVE, passed=passed, metadata=check_metadata, severity=dg.AssetCheckSeverity.ERROR)

    return _model


def _promotion_asset(name: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=promotion_key(name),
        ins={"model": dg.AssetIn(key=model_key(name))},
        group_name="models",
        kinds={"mlflow"},
        description=f"{name}: the registered version competes for champion (runs only when its blocking check passed).",
    )
    def _promotion(context: dg.AssetExecutionContext, model: TrainingResult, mlflow: MlflowTracking) -> dg.Output[Promotion]:
        with library_logs_to(context.log):
            promotion = promote_result(model, mlflow.tracker())
        return dg.Output(promotion, metadata={
            "registered_model": dg.MetadataValue.text(f"{promotion.registered_model} v{promotion.version}"),
            "promoted": dg.MetadataValue.bool(promotion.promoted),
            "decision": dg.MetadataValue.text(promotion.decision),
        })

    return _promotion


def _leaderboard_asset(names: list[str]) -> dg.AssetsDefinition:
    @dg.asset(
        ins={name: dg.AssetIn(key=model_key(name)) for name in names},
        group_name="models",
        kinds={"mlflow"},
        description="Every model asset against the baselines on its test period, with the 80 % interval's coverage.",
    )
    def leaderboard(context: dg.AssetExecutionContext, mlflow: MlflowTracking, **models: TrainingResult):
        results = list(models.values())
        board = build_leaderboard(results)
        png = leaderboard_png(board, "models")
        run_id, run_url = log_leaderboard(mlflow.tracker(), results[0].experiment, "models", board, png)
        metadata = {
            "leaderboard": dg.MetadataValue.md(markdown_table(board.drop(columns=["run_id"]))),
            "chart": dg.MetadataValue.md(png_markdown(png, "leaderboard")),
            "mlflow_run_id": dg.MetadataValue.text(run_id),
        }
        if run_url:
            metadata["mlflow_run"] = dg.MetadataValue.url(run_url)
        return dg.Output(board, metadata=metadata)

    return leaderboard


def model_definitions(operations: OperationsConfig) -> list[dg.AssetsDefinition]:
    """The model, promotion and leaderboard assets of the operations YAML's training YAMLs."""
    paths = {path.stem: path for path in operations.models}
    assets: list[dg.AssetsDefinition] = []
    for name, path in paths.items():
        members = member_configs(load_config(path))
        unknown = [member for member in members if member not in paths]
        if unknown:
            raise ValueError(f"{operations.source}: models: {path.name} needs the member YAMLs {unknown}; list them too")
        assets += [_model_asset(name, path, members), _promotion_asset(name)]
    assets.append(_leaderboard_asset(list(paths)))
    return assets


def model_jobs(operations: OperationsConfig) -> list:
    names = [path.stem for path in operations.models]

    def run_config(data: str) -> dg.RunConfig:
        return dg.RunConfig(ops={model_key(name).to_python_identifier(): ModelAssetConfig(data=data) for name in names})

    selection = dg.AssetSelection.groups("models")
    return [
        dg.define_asset_job(
            "train_models_job", selection=selection, config=run_config("snapshot"),
            description="Train every model asset on its YAML's own data and split, gate and promote, rank (the demo's asset graph).",
        ),
        dg.define_asset_job(
            "retrain_job", selection=selection, config=run_config("live"),
            description="Retrain every model asset on the stored series (rolling split), gate and promote: the schedule's and the sensors' job.",
            tags={"energy_forecast/retrain": "true"},
        ),
    ]
