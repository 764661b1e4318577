"""Hyperparameter search with Optuna: ``tune("configs/training/xgboost.yaml")``. No Dagster needed.

The training YAML's ``tuning:`` block (:class:`energy_forecast.config.TuningConfig`) declares the
search space, the budget, the sampler seed, the pruner and the study's storage. Everything is
checked before any work starts: the YAML (each searched bound or choice against the family's
parameter schema), the data and split (:func:`energy_forecast.training.preflight`), and the
storage (the study is created or loaded before the MLflow run opens).

Each trial validates the model with the suggested parameters exactly as training does
(:func:`energy_forecast.validation.validate` on ``split.validation_windows``, without the refit,
which changes no validation score); the test period is never read. After each window the trial
reports the running mean of the windows' RMSE to Optuna, whose pruner may stop it there (so with a
single window nothing is pruned). A complete trial's value is the metric over every window's
out-of-window forecasts: the ``val_<metric>`` training logs. Each trial is a nested MLflow
run under one parent run per invocation. The study lives in a database (SQLite beside the local
MLflow store, or PostgreSQL) and is loaded if it exists, so an interrupted study resumes: the
``trials`` budget counts the study's finished trials, whoever ran them.

The best parameters are written to a YAML next to the original (``xgboost.yaml`` ->
``xgboost_tuned.yaml``) that ``extends:`` it; training from it reproduces the tuned validation score.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import yaml

from energy_forecast.config import ConfigError, TrainingConfig, TuningConfig
from energy_forecast.frames import ACTUAL, PREDICTION
from energy_forecast.metrics import mase_scale, score
from energy_forecast.tracking import LOCAL_STORE, Tracker, flatten, git_commit
from energy_forecast.training import load_config, preflight
from energy_forecast.validation import validate

__all__ = [
    "TuningProgress",
    "TuningResult",
    "default_storage",
    "load_tuning_config",
    "open_study",
    "storage_for",
    "study_name",
    "tune",
    "tuned_path",
]

logger = logging.getLogger(__name__)

HEARTBEAT_S = 30
"""A running trial writes a heartbeat this often; one silent for ``GRACE_S`` (its process was
killed) is marked FAILED by the next invocation and retried once with the same parameters."""
GRACE_S = 90


def study_name(config: TrainingConfig) -> str:
    """``tuning.study_name``, else ``<data>-<task>-<config file stem>``."""
    assert config.tuning is not None
    return config.tuning.study_name or f"{config.data.name}-{config.task.name}-{config.name}"


def default_storage(tracking_uri: str | None = None) -> str:
    """SQLite ``optuna.db`` beside the local MLflow store (the embedded default), else in ``./.mlflow``."""
    if tracking_uri and tracking_uri.startswith("sqlite:///"):
        folder = Path(tracking_uri.removeprefix("sqlite:///")).parent
    else:
        folder = LOCAL_STORE.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'optuna.db'}"


def shown(url: str) -> str:
    """A storage URL without its password (for logs, tags and the tuned YAML's header)."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _check_writable(output_path: Path, config_path: Path) -> None:
    """Before any trial: the tuned YAML can be written where it goes (a file created and removed there).

    Raises:
        ConfigError: naming the folder, the reason, and how to give another.
    """
    existing = next(folder for folder in (output_path.parent, *output_path.parent.parents) if folder.exists())
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ConfigError(
            f"{config_path}: the tuned YAML {output_path} cannot be written ({error.strerror}; in the Compose stack configs/ is "
            "mounted read-only): give a writable output path (tune_model_job's output_path)"
        ) from None


def tuned_path(config_path: Path | str) -> Path:
    """``xgboost.yaml`` -> ``xgboost_tuned.yaml`` in the same folder (a name Dagster asset keys accept)."""
    path = Path(config_path)
    return path.with_name(f"{path.stem}_tuned{path.suffix}")


@dataclass(frozen=True)
class TuningProgress:
    """Where a study stands after a trial: what the CLI prints and the Dagster run logs."""

    study: str
    trial: int
    state: str
    value: float | None
    finished: int
    """Finished (complete or pruned) trials of the study, earlier invocations included."""
    budget_trials: int | None
    best_value: float | None
    best_trial: int | None
    metric: str
    elapsed_s: float
    time_left_s: float | None
    """The budget's end: the timeout's, or this invocation's mean trial time times the trials left."""

    def line(self) -> str:
        budget = f"{self.finished}/{self.budget_trials}" if self.budget_trials else f"{self.finished}"
        value = "-" if self.value is None else f"{self.value:.4f}"
        best = "-" if self.best_value is None else f"{self.best_value:.4f} (trial {self.best_trial})"
        left = "?" if self.time_left_s is None else f"{self.time_left_s:.0f} s"
        return (
            f"{self.study}: trial {self.trial} {self.state.lower()} val_{self.metric} {value}; finished {budget}; "
            f"best {best}; elapsed {self.elapsed_s:.0f} s, left ~{left}"
        )


@dataclass
class TuningResult:
    """What a tuning invocation produced; small and picklable (Dagster passes it on)."""

    config_name: str
    config_path: str
    study_name: str
    storage: str
    """The storage URL without its password."""
    metric: str
    best_value: float
    best_params: dict[str, Any]
    best_trial: int
    trials_finished: int
    trials_pruned: int
    trials_run: int
    """Trials this invocation ran (a resumed study held the others already)."""
    wall_s: float
    tuned_config: str
    run_id: str | None = None
    run_url: str | None = None
    progress: list[str] = field(default_factory=list)


def _sampler(tuning: TuningConfig) -> optuna.samplers.BaseSampler:
    if tuning.sampler == "random":
        return optuna.samplers.RandomSampler(seed=tuning.sampler_seed)
    return optuna.samplers.TPESampler(seed=tuning.sampler_seed)


def _pruner(tuning: TuningConfig) -> optuna.pruners.BasePruner:
    settings = tuning.pruner
    if settings.type == "none":
        return optuna.pruners.NopPruner()
    if settings.type == "percentile":
        return optuna.pruners.PercentilePruner(settings.percentile, n_startup_trials=settings.n_startup_trials, n_warmup_steps=settings.n_warmup_steps)
    return optuna.pruners.MedianPruner(n_startup_trials=settings.n_startup_trials, n_warmup_steps=settings.n_warmup_steps)


def _suggest(trial: optuna.Trial, tuning: TuningConfig) -> dict[str, Any]:
    suggested: dict[str, Any] = {}
    for name, searched in tuning.search_space.items():
        if searched.type == "int":
            suggested[name] = trial.suggest_int(name, searched.low, searched.high, step=searched.step, log=searched.log)
        elif searched.type == "float":
            suggested[name] = trial.suggest_float(name, searched.low, searched.high, step=searched.step, log=searched.log)
        else:
            suggested[name] = trial.suggest_categorical(name, searched.choices)
    return suggested


def load_tuning_config(config_path: Path | str, *, trials: int | None = None, timeout: float | None = None) -> TrainingConfig:
    """The training YAML, which must have a ``tuning:`` block, with the budget overridden if given.

    Raises:
        ConfigError: naming the file and field.
    """
    config = load_config(config_path)
    if config.tuning is None:
        raise ConfigError(f"{config_path}: tuning: no tuning block; add one with search_space and a budget (trials and/or timeout)")
    changes = {k: v for k, v in {"trials": trials, "timeout": timeout}.items() if v is not None}
    if not changes:
        return config
    try:
        tuning = TuningConfig.model_validate({**config.tuning.model_dump(), "storage": config.tuning.storage, **changes})
    except ValueError as error:
        problems = "; ".join(e["msg"] for e in getattr(error, "errors", lambda: [])()) or str(error)
        raise ConfigError(f"{config_path}: tuning: the budget given ({changes}) is invalid: {problems}") from None
    return config.model_copy(update={"tuning": tuning})


def storage_for(config: TrainingConfig, tracking_uri: str | None = None) -> str:
    """``tuning.storage``, else :func:`default_storage` beside the MLflow store in use."""
    assert config.tuning is not None
    return config.tuning.storage or default_storage(tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))


def open_study(config: TrainingConfig, storage_url: str) -> optuna.Study:
    """Create the study, or load it when it exists (an interrupted study resumes).

    Raises:
        ConfigError: the storage cannot be opened (naming the file's ``tuning.storage``).
    """
    import sqlalchemy.exc

    assert config.tuning is not None
    try:
        with warnings.catch_warnings():  # the heartbeat is marked experimental since Optuna 2.8
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(
                storage_url,
                heartbeat_interval=HEARTBEAT_S,
                grace_period=GRACE_S,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1),
            )
    except sqlalchemy.exc.SQLAlchemyError as error:
        reason = " ".join(str(error.orig if getattr(error, "orig", None) else error).split())[:300]
        raise ConfigError(f"{config.source}: tuning.storage: cannot open {shown(storage_url)}: {reason}") from None
    return optuna.create_study(
        study_name=study_name(config),
        storage=storage,
        sampler=_sampler(config.tuning),
        pruner=_pruner(config.tuning),
        direction="minimize",
        load_if_exists=True,
    )


def starting_point(config: TrainingConfig, params: dict[str, Any]) -> dict[str, Any]:
    """The YAML's own values (its params over the family's defaults) of the searched parameters
    that lie in their range: the first trial of a new study, so the best is never worse than them."""
    assert config.tuning is not None
    start = {}
    for name, searched in config.tuning.search_space.items():
        value = params.get(name)
        if searched.type == "categorical":
            fits = value in searched.choices
        else:
            fits = isinstance(value, int | float) and not isinstance(value, bool) and searched.low <= value <= searched.high
            fits = fits and (searched.type == "float" or float(value).is_integer())
        if fits:
            start[name] = value
    return start


def _finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))


def _best(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return min(complete, key=lambda t: t.value) if complete else None


@contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Our progress line replaces Optuna's own per-trial log line."""
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)


@contextmanager
def _maybe_run(tracker: Tracker | None, **kwargs: Any) -> Iterator[Any]:
    if tracker is None:
        yield None
        return
    with tracker.run(**kwargs) as active:
        yield active


def tune(
    config_path: Path | str,
    *,
    tracker: Tracker | None = None,
    trials: int | None = None,
    timeout: float | None = None,
    output: Path | str | None = None,
    progress: Callable[[TuningProgress], None] | None = None,
) -> TuningResult:
    """Run (or resume) the Optuna study of a training YAML's ``tuning:`` block and write the tuned YAML.

    Args:
        tracker: MLflow: one parent run per invocation, a nested run per trial; None logs nothing.
        trials, timeout: override the YAML's budget (e.g. from the CLI or the Launchpad).
        output: the tuned YAML; default :func:`tuned_path` (next to the original).
        progress: called after every trial (the library also logs each at INFO).

    Raises:
        ConfigError: no ``tuning:`` block, an invalid one, or storage that cannot be opened; and
            everything :func:`energy_forecast.training.preflight` raises, all before any trial.
    """
    config_path = Path(config_path)
    config = load_tuning_config(config_path, trials=trials, timeout=timeout)
    tuning = config.tuning
    assert tuning is not None
    checked = preflight(config)  # model, device, data, split: nothing runs on bad input
    split = checked.split
    windows = split.windows if checked.model.windowed else split.windows[-1:]  # families that choose nothing on windows: one
    problem = config.problem
    scale = mase_scale(split.history[problem.target].to_numpy(), problem.steps_per("7D"))
    output_path = Path(output) if output else tuned_path(config_path)
    _check_writable(output_path, config_path)
    storage_url = storage_for(config, tracker.tracking_uri if tracker else None)
    study = open_study(config, storage_url)
    name, where = study.study_name, shown(storage_url)
    metric = tuning.metric

    if not study.get_trials(deepcopy=False):  # a new study starts from the YAML's own values: tuning never returns worse
        start = starting_point(config, checked.model.params.model_dump())
        if start:
            study.enqueue_trial(start, user_attrs={"origin": "the YAML's own parameters"})
    already = len(_finished(study))
    remaining = None if tuning.trials is None else max(tuning.trials - already, 0)
    logger.info(
        "%s: study '%s' in %s: %d finished trials%s; %s trials to run, timeout %s, %d validation window(s) of %s origins",
        config.name, name, where, already, " (resumed)" if already else "",
        "no limit on" if remaining is None else remaining, f"{tuning.timeout:g} s" if tuning.timeout else "none",
        len(windows), "+".join(str(len(w.origins)) for w in windows),
    )
    started = time.perf_counter()
    lines: list[str] = []
    durations: list[float] = []
    tags = {
        "kind": "tuning", "optuna_study": name, "optuna_storage": where, "model_type": config.model.type,
        "task": config.task.name, "config_file": str(config_path), "git_commit": git_commit(),
    }

    def objective(trial: optuna.Trial) -> float:
        """The trial's parameters validated on every window (never the test), exactly as training
        validates: its value is the ``val_<metric>`` training from these parameters logs."""
        params = {**config.model.params, **_suggest(trial, tuning)}
        trial_config = config.model_copy(update={"model": config.model.model_copy(update={"params": params})})
        window_rmse: list[float] = []
        trial_started = time.perf_counter()

        def on_window(position: int, rmse: float) -> None:  # Optuna's pruner judges the running mean after each window
            window_rmse.append(rmse)
            trial.report(float(np.mean(window_rmse)), position)
            if tracker is not None:
                tracker.log_metrics({f"val_rmse_window{position + 1}": rmse})
            if position < len(windows) - 1 and trial.should_prune():  # after the last window nothing is left to save
                raise optuna.TrialPruned(f"after window {position + 1} of {len(windows)}: mean RMSE {np.mean(window_rmse):.4f}")

        with _maybe_run(tracker, experiment=config.tracking.experiment, run_name=f"{name}-trial-{trial.number}", tags={**tags, "optuna_trial": str(trial.number)}, nested=True) as active:
            if active is not None:
                trial.set_user_attr("mlflow_run_id", active.info.run_id)
                tracker.log_params({f"model.params.{k}": str(v) for k, v in trial.params.items()})
            try:
                validated = validate(trial_config, checked.series, split=split, refit=False, on_window=on_window)
            except optuna.TrialPruned:
                if tracker is not None:
                    tracker.set_tags({"optuna_state": "PRUNED", "optuna_windows_scored": str(len(window_rmse))})
                    tracker.log_metrics({"trial_seconds": time.perf_counter() - trial_started})
                pruned = True
            else:
                pruned = False
                forecast = validated.record.forecast
                value = score(forecast[ACTUAL], forecast[PREDICTION], scale=scale)[metric]
                if tracker is not None:
                    tracker.set_tags({"optuna_state": "COMPLETE", "optuna_windows_scored": str(len(window_rmse))})
                    tracker.log_metrics({f"val_{metric}": value, "trial_seconds": time.perf_counter() - trial_started, **validated.summary()})
        if pruned:
            raise optuna.TrialPruned(f"after {len(window_rmse)} of {len(windows)} windows")
        return value

    def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        durations.append(trial.duration.total_seconds() if trial.duration else 0.0)
        elapsed = time.perf_counter() - started
        finished = len(_finished(study))
        lefts = []
        if tuning.timeout:
            lefts.append(max(tuning.timeout - elapsed, 0.0))
        if tuning.trials:
            lefts.append(max(tuning.trials - finished, 0) * float(np.mean(durations)))
        best = _best(study)
        update = TuningProgress(
            study=name, trial=trial.number, state=trial.state.name, value=trial.value if trial.value is not None else _last(trial),
            finished=finished, budget_trials=tuning.trials, best_value=best.value if best else None,
            best_trial=best.number if best else None, metric=metric, elapsed_s=elapsed, time_left_s=min(lefts) if lefts else None,
        )
        lines.append(update.line())
        logger.info("tuning %s", update.line())
        if progress is not None:
            progress(update)

    run_name = f"tune-{config.name}-{pd.Timestamp.now():%Y%m%d-%H%M%S}"
    with _quiet_optuna(), _maybe_run(tracker, experiment=config.tracking.experiment, run_name=run_name, tags=tags) as parent:
        if tracker is not None:
            tracker.log_params({**flatten({"tuning": tuning.model_dump(mode="json")}), "tuning.storage": where, "model.type": config.model.type})
        if remaining != 0:
            study.optimize(objective, n_trials=remaining, timeout=tuning.timeout, callbacks=[report], gc_after_trial=True)
        best = _best(study)
        if best is None:
            raise RuntimeError(f"study '{name}' in {where} has no complete trial (all pruned or failed): nothing to write")
        finished = _finished(study)
        result = TuningResult(
            config_name=config.name, config_path=str(config_path), study_name=name, storage=where, metric=metric,
            best_value=float(best.value), best_params=dict(best.params), best_trial=best.number,
            trials_finished=len(finished), trials_pruned=sum(t.state == optuna.trial.TrialState.PRUNED for t in finished),
            trials_run=len(durations), wall_s=time.perf_counter() - started, tuned_config=str(output_path), progress=lines,
        )
        text = tuned_yaml(config_path, output_path, result)
        if parent is not None:  # logged first: the tuned YAML survives a failed write below
            tracker.log_params({f"best.{k}": str(v) for k, v in best.params.items()})
            tracker.log_metrics({f"best_val_{metric}": best.value, "trials_finished": len(finished), "trials_pruned": result.trials_pruned, "trials_run": result.trials_run, "tuning_seconds": result.wall_s})
            tracker.set_tags({"optuna_best_trial": str(best.number), "tuned_config": str(output_path)})
            tracker.log_text(text, f"tuning/{output_path.name}")
            tracker.log_text("\n".join(lines) + "\n", "tuning/progress.txt")
            result.run_id = parent.info.run_id
            result.run_url = tracker.run_url(parent.info.experiment_id, parent.info.run_id)
        output_path.parent.mkdir(parents=True, exist_ok=True)
        output_path.write_text(text)
        logger.info("%s: best val_%s %.4f (trial %d of %d finished): %s -> %s", config.name, metric, best.value, best.number, len(finished), best.params, output_path)
    return result


def _last(trial: optuna.trial.FrozenTrial) -> float | None:
    """A pruned trial's value: its last reported running score."""
    if not trial.intermediate_values:
        return None
    return trial.intermediate_values[max(trial.intermediate_values)]


def tuned_yaml(config_path: Path, output_path: Path, result: TuningResult) -> str:
    """The tuned YAML: ``extends:`` the original, the best parameters, a header naming the study."""
    parent = os.path.relpath(config_path.resolve(), output_path.resolve().parent)
    header = (
        f"# Tuned by `energy-forecast tune {config_path.name}` (Optuna) on {pd.Timestamp.now():%Y-%m-%d %H:%M}.\n"
        f"# Study '{result.study_name}' in {result.storage}:\n"
        f"# best of {result.trials_finished} finished trials ({result.trials_pruned} pruned) is trial {result.best_trial},\n"
        f"# validation {result.metric} {result.best_value:.6f}; training from this file reproduces it (val_{result.metric}).\n"
        "# Tuning again resumes the study and rewrites this file.\n"
    )
    body = {"extends": parent, "model": {"params": result.best_params}}
    return header + yaml.safe_dump(body, sort_keys=False)
