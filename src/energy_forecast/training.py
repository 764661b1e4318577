"""Train one config end to end: ``train(load_config(path))``. No Dagster needed.

Order matters: the config (model type and parameters included) and the data are validated before
an MLflow run starts, so bad input leaves nothing behind. Inside the run: fit on the training
period, score the validation and test periods by rolling origins against the baselines, log
everything, then register the model and decide on promotion.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from energy_forecast.backtest import ChronologicalSplit, attach_actuals, split_series
from energy_forecast.config import ConfigError, ForecastProblem, TrainingConfig, load_training_config
from energy_forecast.contract import build_input
from energy_forecast.data.loading import DataValidationError, SeriesData, load_series
from energy_forecast.device import DeviceChoice
from energy_forecast.frames import ACTUAL, ORIGIN, PREDICTION, baseline_column
from energy_forecast.metrics import mase_scale, quantile_scores, rmse_by_step, score
from energy_forecast.models import (
    Forecaster,
    ModelConfigError,
    create_model,
    parse_params,
)
from energy_forecast.models.registry import model_class
from energy_forecast.plots import error_by_horizon_png, forecast_week_png
from energy_forecast.promotion import RescoreError
from energy_forecast.tracking import SCORED_ON, Promotion, Tracker, flatten, git_commit, load_logged_forecaster
from energy_forecast.validation import validate

__all__ = [
    "BASELINES",
    "Evaluation",
    "check_search_space",
    "TrainingResult",
    "evaluate",
    "load_config",
    "member_configs",
    "preflight",
    "promote_result",
    "rescore",
    "scored_on",
    "rolling_split",
    "skill_vs_naive",
    "train",
]

logger = logging.getLogger(__name__)

BASELINES: dict[str, tuple[str, str | None]] = {
    "seasonal_naive_daily": ("seasonal_naive", "1D"),
    "seasonal_naive_weekly": ("seasonal_naive", "7D"),
    "last_value": ("last_value", None),
}
"""Always reported beside the model: name -> (registry type, season length as a period)."""

_CPU = DeviceChoice("cpu", "cpu", "baselines need no accelerator")

REFERENCE_BASELINE = "seasonal_naive_weekly"
"""MASE and the skill score are measured against this baseline."""

REPRODUCED_ORIGINS = 31
"""Test origins (spread evenly) whose contract input is logged with the run: reloading the model
and forecasting from it must reproduce their logged forecasts exactly."""


def load_config(path: Path | str, overrides: dict[str, Any] | None = None) -> TrainingConfig:
    """Load a training YAML and check ``model.type`` and ``model.params`` against the registry.

    Ensemble members written as another training YAML (``{config: xgboost.yaml}``) become that
    YAML's model type and parameters, labelled with its name; the YAML must describe the same
    forecasting problem.
    """
    config = load_training_config(path, overrides)
    config = _with_member_configs(config, {k: v for k, v in (overrides or {}).items() if k != "model"})
    try:
        parse_params(config.model.type, config.model.params)
    except ModelConfigError as error:
        raise ConfigError(f"{config.source}: {error}") from None
    if config.tuning is not None:
        check_search_space(config)
    return config


def check_search_space(config: TrainingConfig) -> None:
    """Every searched parameter is one of the family's, and its bounds (or each choice) are values
    the family accepts, so no trial can fail on a parameter: checked when the YAML loads.

    Raises:
        ConfigError: naming the file and ``tuning.search_space.<name>``.
    """
    assert config.tuning is not None
    cls = model_class(config.model.type)
    known = cls.params_class.model_fields
    for name, searched in config.tuning.search_space.items():
        field = f"tuning.search_space.{name}"
        if name not in known:
            raise ConfigError(f"{config.source}: {field}: {config.model.type} has no parameter '{name}'; valid parameters: {', '.join(sorted(known))}")
        values = searched.choices if searched.type == "categorical" else [searched.low, searched.high]
        for value in values:
            try:
                parse_params(config.model.type, {**config.model.params, name: value})
            except ModelConfigError as error:
                raise ConfigError(f"{config.source}: {field}: {value!r} is not a valid {name} ({str(error).split(': ', 1)[-1]})") from None


def _with_member_configs(config: TrainingConfig, overrides: dict[str, Any]) -> TrainingConfig:
    """Ensemble members written as training YAMLs, read with the ensemble's own overrides (task,
    features, split) so that they describe its problem."""
    members = config.model.params.get("members")
    if not isinstance(members, list) or not any(isinstance(m, dict) and "config" in m and "type" not in m for m in members):
        return config
    resolved = []
    for position, member in enumerate(members):
        if not (isinstance(member, dict) and "config" in member and "type" not in member):
            resolved.append(member)
            continue
        field = f"model.params.members.{position}.config"
        member_path = Path(str(member["config"]))
        if not member_path.is_file():
            raise ConfigError(f"{config.source}: {field}: file not found: {member_path}")
        extra = sorted(set(member) - {"config"})
        if extra:
            raise ConfigError(f"{config.source}: {field}: a member given as a YAML takes nothing else (got {extra})")
        member_config = load_config(member_path, overrides or None)
        if member_config.problem != config.problem:
            raise ConfigError(f"{config.source}: {field}: {member_path.name} describes another forecasting problem (data, task, covariates or features differ)")
        resolved.append({"type": member_config.model.type, "params": member_config.model.params, "config": member_config.name})
    params = {**config.model.params, "members": resolved}
    return config.model_copy(update={"model": config.model.model_copy(update={"params": params})})


def _baseline_models(problem: ForecastProblem) -> dict[str, Forecaster]:
    models = {}
    for name, (family, season) in BASELINES.items():
        cls = model_class(family)
        params = cls.params_class(season_length=problem.steps_per(season)) if season else cls.params_class()
        models[name] = cls(params, problem, device=_CPU)
    return models


@dataclass
class Evaluation:
    """A fitted model and its rolling-origin scores against the baselines."""

    config: TrainingConfig
    model: Forecaster
    split: ChronologicalSplit
    forecast: pd.DataFrame
    """Test forecasts: origin, step, timestamp, actual, prediction, [quantiles], baseline_<name>."""
    metrics: dict[str, float]
    validation_metrics: dict[str, float]
    baseline_metrics: dict[str, dict[str, float]]
    validation_baseline_metrics: dict[str, dict[str, float]]
    contract_input: pd.DataFrame
    """The contract input asking for up to ``REPRODUCED_ORIGINS`` test origins: the logged model
    reproduces their rows of ``forecast`` from it."""
    fit_seconds: float
    predict_seconds: float

    def input_example(self) -> pd.DataFrame:
        """One request of the contract (the first reproduced origin), logged as the model's example."""
        first = self.contract_input[ORIGIN].iloc[0]
        return self.contract_input.loc[self.contract_input[ORIGIN] == first].drop(columns=[ORIGIN])

    def rmse_by_step(self) -> dict[str, pd.Series]:
        columns = {"model": PREDICTION, **{name: baseline_column(name) for name in self.baseline_metrics}}
        return {label: rmse_by_step(self.forecast, column) for label, column in columns.items()}

    def leaderboard(self) -> pd.DataFrame:
        rows = [{"forecaster": self.config.name, "kind": "model", **self.metrics}]
        rows += [{"forecaster": name, "kind": "baseline", **m} for name, m in self.baseline_metrics.items()]
        return pd.DataFrame(rows).sort_values("rmse", ignore_index=True)

    def plots(self) -> dict[str, bytes]:
        step_minutes = self.model.problem.step / pd.Timedelta(minutes=1)
        title = f"{self.config.name} ({self.config.task.name})"
        return {
            "forecast_vs_actual.png": forecast_week_png(
                self.forecast, title=title, baseline_column=baseline_column(REFERENCE_BASELINE), unit=self.config.data.target
            ),
            "error_by_horizon.png": error_by_horizon_png(
                self.forecast,
                title=f"{title}: test RMSE by horizon",
                columns={self.config.model.type: PREDICTION, **{n: baseline_column(n) for n in self.baseline_metrics}},
                step_minutes=step_minutes,
            ),
        }


@dataclass(frozen=True)
class Preflight:
    """What a training run needs, built and checked before it starts."""

    model: Forecaster
    series: SeriesData
    split: ChronologicalSplit


def _split(config: TrainingConfig, series: SeriesData, model: Forecaster) -> ChronologicalSplit:
    baselines = _baseline_models(config.problem)
    min_history = max(model.lookback, *(b.lookback for b in baselines.values()))
    try:
        return split_series(series.frame, config.split, config.task, min_history=min_history)
    except ValueError as error:  # the split does not fit this data: a config error, named by field
        raise ConfigError(f"{config.source}: {error} (data {config.data.path}: {len(series.frame)} rows, {series.frame.index[0]} to {series.frame.index[-1]})") from None


def preflight(config: TrainingConfig, members: Mapping[str, Forecaster] | None = None) -> Preflight:
    """Everything ``train`` would refuse, checked before anything is fitted or logged: the model and
    its parameters, the device, the weights (Chronos-2), the data file, and the data's fitness for
    this config (a split with room for the lookback, a target that is not constant).

    Raises:
        ConfigError, ModelConfigError, DeviceUnavailableError, DataValidationError, and the model's
        own prerequisites (e.g. WeightsUnavailableError).
    """
    model = create_model(config.model, config.problem)
    if members:
        model.use_fitted_members(members)
    model.prepare()
    series = load_series(config.data)
    split = _split(config, series, model)
    target = split.history[config.data.target].to_numpy(dtype="float64")
    if np.nanmax(target) == np.nanmin(target):
        raise DataValidationError(
            f"{config.data.path}: target column '{config.data.target}' is constant ({target[0]:g}) over the whole training "
            f"period ({split.history.index[0]} to {split.history.index[-1]}): there is nothing to learn"
        )
    return Preflight(model, series, split)


def evaluate(config: TrainingConfig, series: SeriesData, model: Forecaster | None = None, split: ChronologicalSplit | None = None) -> Evaluation:
    """Fit on the training period and score validation and test origins against the baselines."""
    problem = config.problem
    model = model or create_model(config.model, problem)
    baselines = _baseline_models(problem)
    split = split or _split(config, series, model)
    logger.info("%s: split %s", config.name, split.describe())

    started = time.perf_counter()
    validated = validate(config, series, model=model, split=split)
    fit_seconds = time.perf_counter() - started
    logger.info(
        "%s: fitted in %.1f s; validation RMSE %.3f over %d window(s) %s, refit %s",
        config.name, fit_seconds, validated.rmse, len(validated.windows), [round(r, 3) for r in validated.window_rmse], validated.record.refit,
    )

    started = time.perf_counter()
    forecast = attach_actuals(model.predict(split.through_test, split.test_origins), split.through_test, problem.target)
    predict_seconds = time.perf_counter() - started
    logger.info("%s: %d test origins forecast in %.2f s", config.name, len(split.test_origins), predict_seconds)

    scale = mase_scale(split.history[problem.target].to_numpy(), problem.steps_per("7D"))
    validation = validated.record.forecast  # out-of-window forecasts of every window: no model trained on its own window
    if not model.native_quantiles:  # quantiles from the calibration on these same residuals (so in-sample coverage)
        validation = model.add_quantiles(validation)
    validation_origins = validated.origins
    baseline_metrics, validation_baseline_metrics = {}, {}
    for name, baseline in baselines.items():
        baseline.fit(split.history)
        predicted = baseline.predict(split.through_test, split.test_origins)
        forecast[baseline_column(name)] = predicted[PREDICTION].to_numpy()
        baseline_metrics[name] = score(forecast[ACTUAL], predicted[PREDICTION], scale=scale)
        on_validation = baseline.predict(split.through_validation, validation_origins)
        validation_baseline_metrics[name] = score(validation[ACTUAL], on_validation[PREDICTION], scale=scale)
    return Evaluation(
        config=config,
        model=model,
        split=split,
        forecast=forecast,
        metrics=score(forecast[ACTUAL], forecast[PREDICTION], scale=scale) | quantile_scores(forecast),
        validation_metrics=score(validation[ACTUAL], validation[PREDICTION], scale=scale) | quantile_scores(validation) | validated.summary(),
        baseline_metrics=baseline_metrics,
        validation_baseline_metrics=validation_baseline_metrics,
        contract_input=build_input(split.through_test, _spread(split.test_origins, REPRODUCED_ORIGINS), problem, model.lookback),
        fit_seconds=fit_seconds,
        predict_seconds=predict_seconds,
    )


def _spread(origins: pd.DatetimeIndex, most: int) -> pd.DatetimeIndex:
    """At most ``most`` of ``origins``, evenly spread, the first and last included."""
    if len(origins) <= most:
        return origins
    return origins[np.unique(np.linspace(0, len(origins) - 1, most).round().astype(int))]


@dataclass
class TrainingResult:
    """What a training run produced; small and picklable (Dagster passes it between steps)."""

    config_name: str
    config_path: str | None
    model_type: str
    task: str
    experiment: str
    metrics: dict[str, float]
    validation_metrics: dict[str, float]
    baseline_metrics: dict[str, dict[str, float]]
    validation_baseline_metrics: dict[str, dict[str, float]]
    leaderboard: pd.DataFrame
    plots: dict[str, bytes]
    tags: dict[str, str]
    fit_seconds: float
    predict_seconds: float
    promotion_metric: str = "rmse"
    run_id: str | None = None
    experiment_id: str | None = None
    run_url: str | None = None
    tracking_uri: str | None = None
    model_uri: str | None = None
    registered_model: str | None = None
    registered_version: str | None = None
    promotion: Promotion | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    config: TrainingConfig | None = None
    """The resolved config: what re-scores a champion on this result's test period."""


def run_tags(config: TrainingConfig, model: Forecaster, series: SeriesData) -> dict[str, str]:
    tags = {
        "model_type": config.model.type,
        "approach": model.approach,
        "task": config.task.name,
        "horizon": str(config.task.horizon),
        "data_name": config.data.name,
        "data_sha256": series.sha256,
        "data_path": str(config.data.path),
        "git_commit": git_commit(),
        "config_file": str(config.source or ""),
        **model.device.as_tags(),
    }
    dvc_file = Path(f"{config.data.path}.dvc")
    if dvc_file.is_file():
        outs = (yaml.safe_load(dvc_file.read_text()) or {}).get("outs") or [{}]
        pointer = str(outs[0].get("md5", ""))
        if pointer == series.md5:
            tags["data_dvc_md5"] = pointer
        else:  # the file changed since `dvc add`: the pointer does not version what was trained on
            logger.warning("%s records md5 %s but the file's is %s: run `make data` to version it", dvc_file, pointer, series.md5)
            tags["data_dvc_status"] = f"modified since dvc add (pointer {pointer}, file {series.md5})"
    return tags


def train(
    config: TrainingConfig, tracker: Tracker | None = None, *, promote: bool = True, members: Mapping[str, Forecaster] | None = None
) -> TrainingResult:
    """Validate, fit, backtest, and (with a tracker) log, register and promote.

    Args:
        promote: decide promotion right away (the CLI and the Launchpad jobs); False registers the
            version as ``challenger`` only, for a separate, gated promotion step
            (:func:`promote_result`: Dagster's blocking check runs in between).
        members: fitted models of an ensemble's member configs, by config name, reused instead
            of refitting them (Dagster passes the member assets of the same materialization).

    Raises:
        ConfigError, ModelConfigError: the config is invalid (before any run starts).
        DataValidationError: the data file is invalid (before any run starts).
        DeviceUnavailableError: ``device: cuda`` cannot be met (before any run starts).
        Errors of :meth:`Forecaster.prepare`, e.g. unreachable weights (before any run starts).
    """
    checked = preflight(config, members)  # nothing is logged for bad input: no run starts
    model, series = checked.model, checked.series
    tags = run_tags(config, model, series) | {SCORED_ON: scored_on(series, checked.split, config.problem)}
    if tracker is None:
        evaluation = evaluate(config, series, model, checked.split)
        return _result(config, evaluation, tags)

    run_name = f"{config.name}-{pd.Timestamp.now():%Y%m%d-%H%M%S}"
    with tracker.run(experiment=config.tracking.experiment, run_name=run_name, tags=tags) as active:
        tracker.log_params(flatten(config.model_dump(mode="json")))
        evaluation = evaluate(config, series, model, checked.split)
        result = _result(config, evaluation, tags)
        _log_evaluation(tracker, evaluation, result)
        info = tracker.log_model(model, evaluation.input_example())
        result.run_id = active.info.run_id
        result.experiment_id = active.info.experiment_id
        result.run_url = tracker.run_url(active.info.experiment_id, active.info.run_id)
        result.tracking_uri = tracker.tracking_uri
        result.model_uri = info.model_uri
        name = config.registered_model_name
        if name:
            result.registered_version = tracker.register(info.model_uri, name, tags={"model_type": config.model.type, "task": config.task.name})
            result.registered_model = name
            if promote:
                result.promotion = promote_result(result, tracker, config.tracking.promotion_metric)
    return result


def promote_result(result: TrainingResult, tracker: Tracker, metric: str | None = None) -> Promotion:
    """Let a registered version compete for ``champion`` on its test metric."""
    if not (result.registered_model and result.registered_version and result.run_id):
        raise ValueError(f"{result.config_name}: nothing registered to promote")
    metric = metric or result.promotion_metric
    config = result.config
    return tracker.promote(
        result.registered_model,
        result.registered_version,
        run_id=result.run_id,
        metric=f"test_{metric}",
        value=result.metrics[metric],
        scored_on=result.tags.get(SCORED_ON, ""),
        rescore=None if config is None else lambda model_uri: rescore(config, model_uri, metric),
    )


def scored_on(series: SeriesData, split: ChronologicalSplit, problem: ForecastProblem) -> str:
    """What a run's test metrics were measured on: the data file's content, the target, the test
    origins and the horizon. Scores are comparable only when this is equal."""
    origins = split.test_origins
    return (
        f"data sha256 {series.sha256[:16]}, target {problem.target}, test origins {origins[0]:%Y-%m-%d %H:%M} to "
        f"{origins[-1]:%Y-%m-%d %H:%M} ({len(origins)}), horizon {problem.horizon} x {problem.frequency}"
    )


def rescore(config: TrainingConfig, model_uri: str, metric: str) -> float:
    """``metric`` of the model at ``model_uri`` (e.g. a champion) on ``config``'s test period, with
    the same origins, actuals and scale as :func:`evaluate` gives the model trained from ``config``.

    Raises:
        RescoreError: that model cannot forecast these origins (a different target or horizon, or
            more history than the data holds before the first test origin).
    """
    model = load_logged_forecaster(model_uri)
    problem = config.problem
    if (model.problem.target, model.problem.horizon) != (problem.target, problem.horizon):
        raise RescoreError(
            f"{model_uri} forecasts {model.problem.target} {model.problem.horizon} steps ahead, the test {problem.target} {problem.horizon}"
        )
    series = load_series(config.data)
    try:
        split = split_series(series.frame, config.split, config.task, min_history=model.lookback)
    except ValueError as error:
        raise RescoreError(f"{model_uri} needs {model.lookback} steps of history: {error}") from None
    forecast = attach_actuals(model.predict(split.through_test, split.test_origins), split.through_test, problem.target)
    scale = mase_scale(split.history[problem.target].to_numpy(), problem.steps_per("7D"))
    scores = score(forecast[ACTUAL], forecast[PREDICTION], scale=scale) | quantile_scores(forecast)
    if metric not in scores:
        raise RescoreError(f"{model_uri} gives no {metric} (it has no {metric.split('_')[0]} output)")
    return float(scores[metric])


def skill_vs_naive(result: TrainingResult, period: str = "validation") -> float:
    """1 - RMSE / weekly seasonal naive's RMSE on the validation (or test) period: above 0 is better than naive."""
    model, naive = (result.validation_metrics, result.validation_baseline_metrics) if period == "validation" else (result.metrics, result.baseline_metrics)
    return 1.0 - model["rmse"] / naive[REFERENCE_BASELINE]["rmse"]


def member_configs(config: TrainingConfig) -> list[str]:
    """Names of the training YAMLs an ensemble config's members come from."""
    members = config.model.params.get("members")
    return [m["config"] for m in members if isinstance(m, dict) and m.get("config")] if isinstance(members, list) else []


def rolling_split(config: TrainingConfig, series_path: Path, *, validation_days: int, test_days: int) -> TrainingConfig:
    """``config`` reading ``series_path``, split relative to where that series ends: the last
    ``test_days`` days test, the ``validation_days`` before them validate, everything earlier trains.
    The retraining of the operating loop uses it on the live series."""
    data = config.data.model_copy(update={"path": series_path, "sha256": None})
    last = load_series(data).frame.index[-1]
    test_end = (last + data.step).ceil("D")
    validation_end = test_end - pd.Timedelta(days=test_days)
    train_end = validation_end - pd.Timedelta(days=validation_days)
    split = config.split.model_copy(update={"train_start": None, "train_end": train_end.to_pydatetime(), "validation_end": validation_end.to_pydatetime(), "test_end": test_end.to_pydatetime()})
    return config.model_copy(update={"data": data, "split": split})


def _result(config: TrainingConfig, evaluation: Evaluation, tags: dict[str, str]) -> TrainingResult:
    return TrainingResult(
        config_name=config.name,
        config_path=str(config.source) if config.source else None,
        model_type=config.model.type,
        task=config.task.name,
        experiment=config.tracking.experiment,
        metrics=evaluation.metrics,
        validation_metrics=evaluation.validation_metrics,
        baseline_metrics=evaluation.baseline_metrics,
        validation_baseline_metrics=evaluation.validation_baseline_metrics,
        leaderboard=evaluation.leaderboard(),
        plots=evaluation.plots(),
        tags=tags,
        fit_seconds=evaluation.fit_seconds,
        predict_seconds=evaluation.predict_seconds,
        promotion_metric=config.tracking.promotion_metric,
        extra=evaluation.model.fitted_summary(),
        config=config,
    )


def _log_evaluation(tracker: Tracker, evaluation: Evaluation, result: TrainingResult) -> None:
    reference = evaluation.baseline_metrics[REFERENCE_BASELINE]["rmse"]
    metrics = {
        **{f"test_{k}": v for k, v in evaluation.metrics.items()},
        **{f"val_{k}": v for k, v in evaluation.validation_metrics.items()},
        **{f"baseline_{b}_test_{k}": v for b, m in evaluation.baseline_metrics.items() for k, v in m.items()},
        **{f"baseline_{b}_val_{k}": v for b, m in evaluation.validation_baseline_metrics.items() for k, v in m.items()},
        f"skill_rmse_vs_{REFERENCE_BASELINE}": 1.0 - evaluation.metrics["rmse"] / reference,
        "fit_seconds": evaluation.fit_seconds,
        "predict_seconds": evaluation.predict_seconds,
        **{f"fitted_{k}": float(v) for k, v in result.extra.items() if isinstance(v, int | float | np.number)},
    }
    by_step = {f"test_rmse_by_step_{label}": series for label, series in evaluation.rmse_by_step().items()}
    tracker.log_metrics(metrics, by_step=by_step)
    tracker.log_text(yaml.safe_dump(evaluation.config.model_dump(mode="json"), sort_keys=False), "config/resolved_config.yaml")
    tracker.log_frame(evaluation.forecast, "predictions/test_forecast.parquet")
    tracker.log_frame(evaluation.contract_input, "predictions/model_input.parquet")
    tracker.log_text(result.leaderboard.to_markdown(index=False, floatfmt=".3f"), "evaluation/leaderboard.md")
    for name, png in result.plots.items():
        tracker.log_bytes(png, f"plots/{name}")

