"""MLflow runs, artifacts, models and registry aliases.

Tracking records what training decided; it never decides what to train. The tracking URI comes
from the caller (a Dagster resource), else ``MLFLOW_TRACKING_URI``, else a local SQLite store
under ``.mlflow/`` in the working directory.

A run's context manager marks the run FAILED on any error, so no run is left RUNNING, and the
registry is touched only after everything else was logged: a failed run changes no alias.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import io
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Metric
from mlflow.models.model import ModelInfo
from mlflow.tracking import MlflowClient

from energy_forecast.locks import promotion_lock
from energy_forecast.models.base import Forecaster
from energy_forecast.promotion import Decision, RescoreError, decide
from energy_forecast.pyfunc import ARTIFACT, contract_signature

__all__ = [
    "Promotion",
    "load_logged_forecaster",
    "Tracker",
    "flatten",
    "git_commit",
    "resolve_tracking_uri",
]

logger = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"
SCORED_ON = "scored_on"
"""Run tag naming the data (sha256) and test period a run's test metrics come from: two versions'
scores are compared only when it is equal."""
LOCAL_STORE = Path(".mlflow")
MODEL_ARTIFACT = "model"
NATIVE_ARTIFACT = "native_model"


def resolve_tracking_uri(explicit: str | None = None) -> str:
    """``explicit``, else ``MLFLOW_TRACKING_URI``, else SQLite under ``./.mlflow``."""
    uri = explicit or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    LOCAL_STORE.mkdir(exist_ok=True)
    return f"sqlite:///{(LOCAL_STORE / 'mlflow.db').resolve()}"




def flatten(tree: Any, prefix: str = "") -> dict[str, str]:
    """``{"model": {"params": {"a": 1}}}`` -> ``{"model.params.a": "1"}``; lists stay whole."""
    if isinstance(tree, dict):
        flat: dict[str, str] = {}
        for key, value in tree.items():
            flat.update(flatten(value, f"{prefix}{key}."))
        return flat
    text = json.dumps(tree) if isinstance(tree, list | tuple) else str(tree)
    return {prefix.rstrip("."): text[:6000]}


def git_commit() -> str:
    """The checkout's commit (with ``-dirty`` when modified), ``GIT_COMMIT`` in images, else unknown."""
    if os.environ.get("GIT_COMMIT"):
        return os.environ["GIT_COMMIT"]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False)
        if head.returncode != 0:
            return "unknown"
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=10, check=False)
    except FileNotFoundError:  # no git executable
        return "unknown"
    return head.stdout.strip() + ("-dirty" if status.stdout.strip() else "")


def _requirements(packages: tuple[str, ...]) -> list[str]:
    return [f"{name}=={importlib.metadata.version(name)}" for name in packages]


PACKAGE_DIR = Path(__file__).resolve().parent
"""This package: logged with every model (``code_paths``), so a model needs no checkout to load."""
PYFUNC_ENTRY = PACKAGE_DIR / "pyfunc_entry.py"
CONTRACT_REQUIREMENTS = ("numpy", "pandas", "pydantic", "PyYAML")
"""What the package itself imports when a contract model loads; families add their libraries."""


def load_logged_forecaster(model_uri: str) -> Forecaster:
    """The fitted forecaster inside a logged contract model (for ensembles reusing a member)."""
    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model().forecaster


def _log_native(model: Forecaster) -> ModelInfo:
    """The raw booster in its native MLflow flavour, for users who want the library's own object."""
    module = importlib.import_module(f"mlflow.{model.mlflow_flavour}")
    return module.log_model(model.native_model(), name=NATIVE_ARTIFACT)


@dataclass(frozen=True)
class Promotion:
    registered_model: str
    version: str
    promoted: bool
    decision: str
    champion_version: str | None


class Tracker:
    """One MLflow tracking server or local store.

    Args:
        tracking_uri: see :func:`resolve_tracking_uri`.
        run_tags: tags added to every run this tracker starts. The orchestrator names the run's
            owner here (Dagster: ``dagster_run_id``), so that :mod:`energy_forecast.reaper` can
            tell an orphan, left RUNNING by a process that died, from a run still in progress.
    """

    def __init__(self, tracking_uri: str | None = None, *, run_tags: dict[str, str] | None = None) -> None:
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        self.client = MlflowClient(self.tracking_uri)
        self.run_tags = dict(run_tags or {})

    def experiment_id(self, name: str) -> str:
        existing = self.client.get_experiment_by_name(name)
        if existing is not None:
            return existing.experiment_id
        location = None
        if self.tracking_uri.startswith("sqlite:///"):  # keep a local store's artifacts beside its database
            store = Path(self.tracking_uri.removeprefix("sqlite:///")).parent
            location = (store / "artifacts" / name).resolve().as_uri()
        return self.client.create_experiment(name, artifact_location=location)

    def run_url(self, experiment_id: str, run_id: str) -> str | None:
        if self.tracking_uri.startswith(("http://", "https://")):
            return f"{self.tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
        return None

    @contextmanager
    def run(self, *, experiment: str, run_name: str, tags: dict[str, str], nested: bool = False) -> Iterator[mlflow.ActiveRun]:
        """A run that ends FINISHED, or FAILED (KILLED on interrupt) if the body raises; tagged with
        ``tags`` and the tracker's ``run_tags``.

        ``nested``: a child of the active run (a tuning trial under its study's run)."""
        mlflow.set_tracking_uri(self.tracking_uri)
        experiment_id = self.experiment_id(experiment)
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags={**self.run_tags, **tags}, nested=nested) as active:
            logger.info("MLflow run %s started in experiment '%s' (%s)", active.info.run_id, experiment, self.tracking_uri)
            yield active

    # -- logging inside an active run ------------------------------------------------------------

    def log_params(self, params: dict[str, str]) -> None:
        mlflow.log_params(params)

    def set_tags(self, tags: dict[str, str]) -> None:
        mlflow.set_tags(tags)

    def log_metrics(self, metrics: dict[str, float], by_step: dict[str, pd.Series] | None = None) -> None:
        finite = {name: value for name, value in metrics.items() if value is not None and np.isfinite(value)}
        mlflow.log_metrics(finite)
        if by_step:
            run_id = mlflow.active_run().info.run_id
            now = int(time.time() * 1000)
            batch = [
                Metric(name, float(value), now, int(step))
                for name, series in by_step.items()
                for step, value in series.items()
            ]
            for start in range(0, len(batch), 1000):
                self.client.log_batch(run_id, metrics=batch[start : start + 1000])

    def log_bytes(self, payload: bytes, artifact_path: str) -> None:
        """Log ``payload`` as the file ``artifact_path`` (``dir/name`` or ``name``)."""
        with tempfile.TemporaryDirectory() as scratch:
            target = Path(scratch) / Path(artifact_path).name
            target.write_bytes(payload)
            folder = Path(artifact_path).parent
            mlflow.log_artifact(str(target), artifact_path=None if folder == Path(".") else str(folder))

    def log_frame(self, frame: pd.DataFrame, artifact_path: str) -> None:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        self.log_bytes(buffer.getvalue(), artifact_path)

    def log_folder(self, directory: Path, artifact_path: str) -> None:
        """Log every file under ``directory`` below ``artifact_path``."""
        mlflow.log_artifacts(str(directory), artifact_path=artifact_path)

    def log_text(self, text: str, artifact_path: str) -> None:
        mlflow.log_text(text, artifact_path)

    def log_model(self, model: Forecaster, input_example: pd.DataFrame) -> ModelInfo:
        """Log the contract model (the one registered and served) and, for boosters, the native one.

        The contract model carries this package and the saved forecaster, declares the contract's
        signature and pins the installed versions of what it imports.
        """
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as scratch:
            directory = Path(scratch) / ARTIFACT
            model.save(directory)
            package = shutil.copytree(PACKAGE_DIR, Path(scratch) / "code" / PACKAGE_DIR.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            info = mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT,
                python_model=str(PYFUNC_ENTRY),
                artifacts={ARTIFACT: str(directory)},
                code_paths=[str(package)],
                signature=contract_signature(model.problem),
                input_example=input_example,
                pip_requirements=_requirements(tuple(dict.fromkeys((*CONTRACT_REQUIREMENTS, *model.pip_packages)))),
                metadata={
                    "family": model.name,
                    "lookback_steps": model.lookback,
                    "horizon": model.problem.horizon,
                    "frequency": model.problem.frequency,
                    "quantile_levels": list(model.problem.quantile_levels),
                },
            )
        logger.info("logged the %s contract model in %.1f s: %s", model.name, time.perf_counter() - started, info.model_uri)
        if model.mlflow_flavour != "pyfunc":
            native = _log_native(model)
            logger.info("logged the raw %s model (mlflow.%s): %s", model.name, model.mlflow_flavour, native.model_uri)
        return info

    # -- registry --------------------------------------------------------------------------------

    def register(self, model_uri: str, name: str, *, tags: dict[str, str]) -> str:
        """Register a new version of ``name`` and give it the alias ``challenger``. Returns the version."""
        version = str(mlflow.register_model(model_uri, name, tags=tags).version)
        self.client.set_registered_model_alias(name, CHALLENGER, version)
        logger.info("registered %s v%s as %s", name, version, CHALLENGER)
        return version

    def champion(self, name: str, metric: str) -> tuple[str | None, float | None]:
        """The current champion's version and its ``metric`` (None, None without a champion)."""
        version = self.client.get_registered_model(name).aliases.get(CHAMPION)
        if version is None:
            return None, None
        run_id = self.client.get_model_version(name, version).run_id
        return str(version), self.client.get_run(run_id).data.metrics.get(metric)

    def promote(
        self,
        name: str,
        version: str,
        *,
        run_id: str,
        metric: str,
        value: float,
        scored_on: str = "",
        rescore: Callable[[str], float] | None = None,
    ) -> Promotion:
        """Decide (:func:`energy_forecast.promotion.decide`) whether ``version`` takes ``champion``,
        move the alias if so, and write the comparison as tags on the version and on its run.

        Atomic per registered model: reading the champion, deciding and moving the alias happen
        under :func:`energy_forecast.locks.promotion_lock`, so two runs finishing together are
        decided one after the other, each against the champion the other left. The comparison tags
        are written before the alias, and ``champion`` is the last write: a crash in between leaves
        the previous champion in place, never a version that lost.

        Args:
            scored_on: what ``value`` was measured on (:data:`SCORED_ON`). A champion whose run
                says otherwise is re-scored with ``rescore`` (its model URI -> its ``metric`` on
                this version's test period) before deciding; without ``rescore``, or when
                re-scoring is impossible, the champion stays and the reason is recorded.
        """
        with promotion_lock(name, tracking_uri=self.tracking_uri) as lock:
            logger.debug("%s v%s: promoting under %s", name, version, lock)
            champion_version = self.client.get_registered_model(name).aliases.get(CHAMPION)
            champion_value, note = None, ""
            decision: Decision | None = None
            if champion_version is not None:
                champion_run = self.client.get_run(self.client.get_model_version(name, champion_version).run_id)
                champion_value = champion_run.data.metrics.get(metric)
                champion_scored_on = champion_run.data.tags.get(SCORED_ON, "")
                if champion_scored_on != scored_on:
                    was = champion_scored_on or "data and a split it did not record"
                    if rescore is None:
                        decision = Decision(False, f"kept champion v{champion_version}: it was scored on {was}, this version on {scored_on}, and nothing re-scores it")
                    else:
                        try:
                            champion_value = rescore(f"models:/{name}/{champion_version}")
                            note = f"champion v{champion_version} re-scored on this version's test period (it was scored on {was})"
                            logger.info("%s: %s: %s %.4f", name, note, metric, champion_value)
                        except RescoreError as error:
                            decision = Decision(False, f"kept champion v{champion_version}: scored on {was} and cannot be re-scored here ({error})")
            decision = decision or decide(metric, value, champion_version, champion_value)
            comparison = {
                "promotion.metric": metric,
                "promotion.challenger_value": f"{value:.6f}",
                "promotion.champion_version": str(champion_version or ""),
                "promotion.champion_value": "" if champion_value is None else f"{champion_value:.6f}",
                "promotion.champion_rescored": note,
                "promotion.decision": decision.reason,
                "promotion.promoted": str(decision.promoted).lower(),
            }
            for key, text in comparison.items():
                self.client.set_model_version_tag(name, version, key, text)
                self.client.set_tag(run_id, key, text)
            if decision.promoted:  # the last write: everything before it can fail without harm
                self.client.set_registered_model_alias(name, CHAMPION, version)
        logger.info("%s v%s: %s", name, version, decision.reason)
        return Promotion(name, str(version), decision.promoted, decision.reason, champion_version)

    def record_refusal(self, name: str, version: str, *, run_id: str, reason: str) -> Promotion:
        """A version that may not compete (a failed blocking check): tagged, no alias moved."""
        for key, text in {"promotion.decision": reason, "promotion.promoted": "false"}.items():
            self.client.set_model_version_tag(name, version, key, text)
            self.client.set_tag(run_id, key, text)
        logger.info("%s v%s: %s", name, version, reason)
        return Promotion(name, str(version), False, reason, self.client.get_registered_model(name).aliases.get(CHAMPION))
