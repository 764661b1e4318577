"""The one interface every model family implements.

The base class owns the public methods: :meth:`Forecaster.fit` and :meth:`Forecaster.predict`
check their inputs and then call the family's ``_fit`` / ``_predict``. Families must not override
``fit`` or ``predict``. A family never imports Dagster, MLflow or another family; it declares what
it can do as class attributes, and tracking picks the MLflow flavour from ``mlflow_flavour``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import joblib
import numpy as np
import pandas as pd
from pydantic import ConfigDict

from energy_forecast.config import ForecastProblem, StrictModel
from energy_forecast.device import DeviceChoice, driver_cuda_available
from energy_forecast.frames import ORIGIN, STEP

__all__ = ["ForecastProblem", "Forecaster", "ModelParams", "ValidationData"]


class ModelParams(StrictModel):
    """Base of every family's hyperparameters: defaults as data, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


@dataclass(frozen=True)
class ValidationData:
    """A frame through the end of validation, and the origins to validate on."""

    frame: pd.DataFrame
    origins: pd.DatetimeIndex


class Forecaster(ABC):
    """A model that forecasts ``problem.horizon`` steps from each of many origins.

    Subclasses set ``name`` (the registry key and YAML ``model.type``), ``params_class`` and
    ``approach``, and implement ``_fit`` / ``_predict`` / ``model_input`` /
    ``predict_model_input``.
    """

    name: ClassVar[str]
    params_class: ClassVar[type[ModelParams]]
    approach: ClassVar[str]
    mlflow_flavour: ClassVar[str] = "pyfunc"
    """MLflow flavour the fitted model is logged with; tracking maps it to a logger."""
    is_baseline: ClassVar[bool] = False
    pip_packages: ClassVar[tuple[str, ...]] = ("numpy", "pandas", "joblib")
    """Distributions a logged model needs, recorded with their installed versions."""

    def __init__(self, params: ModelParams, problem: ForecastProblem, device: DeviceChoice) -> None:
        self.params = params
        self.problem = problem
        self.device = device
        self.is_fitted_ = False

    # -- capabilities --------------------------------------------------------------------------

    @classmethod
    def gpu_support(cls, params: ModelParams) -> bool | str:
        """True if this family can use a GPU with these params, else a reason why not."""
        return f"{cls.name} runs on the CPU only"

    @classmethod
    def gpu_probe(cls) -> Callable[[], tuple[bool, str]]:
        """How to ask whether a GPU is usable for this family (torch families ask torch)."""
        return driver_cuda_available

    @property
    def min_history(self) -> int:
        """Steps of history needed before the first origin."""
        return 1

    def prepare(self) -> None:  # noqa: B027  (an optional hook: most families need nothing)
        """Check external prerequisites (weights, say) before any run starts. Cheap; may repeat."""

    # -- public API (not to be overridden) -----------------------------------------------------

    def fit(self, history: pd.DataFrame, validation: ValidationData | None = None) -> Self:
        """Fit on ``history`` (the training period only); ``validation`` may tune or weight."""
        self._check_columns(history)
        if len(history) <= self.min_history:
            raise ValueError(f"{self.name}: {len(history)} rows of history; needs more than {self.min_history}")
        self._fit(history, validation)
        self.is_fitted_ = True
        return self

    def predict(self, frame: pd.DataFrame, origins: pd.DatetimeIndex) -> pd.DataFrame:
        """Forecast ``horizon`` steps from every origin.

        ``frame`` may hold values at and after an origin (the test actuals, say): a model only
        reads target and past-covariate values strictly before each origin, and known-future
        covariates up to the end of that origin's horizon.

        Returns:
            One row per (origin, step): ``origin``, ``step``, ``timestamp``, ``prediction``, and
            quantile columns ``q0.1`` … for probabilistic families.
        """
        if not self.is_fitted_:
            raise ValueError(f"{self.name}: call fit() before predict()")
        self._check_columns(frame)
        self._check_origins(frame, origins)
        forecast = self._predict(frame, origins)
        return forecast.sort_values([ORIGIN, STEP], ignore_index=True)

    # -- for tracking ----------------------------------------------------------------------------

    @abstractmethod
    def model_input(self, frame: pd.DataFrame, origins: pd.DatetimeIndex) -> pd.DataFrame:
        """The data frame the logged MLflow model takes to forecast these origins."""

    @abstractmethod
    def predict_model_input(self, model_input: pd.DataFrame) -> np.ndarray | pd.DataFrame:
        """Predictions from :meth:`model_input`'s frame, in :meth:`predict`'s row order."""

    def native_model(self) -> Any:
        """The library object a native MLflow flavour logs (only for non-pyfunc flavours)."""
        raise NotImplementedError(f"{self.name} is logged as pyfunc")

    def fitted_summary(self) -> dict[str, Any]:
        """Facts learned in fitting worth logging (best iteration, ensemble weights …)."""
        return {}

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "forecaster.json").write_text(json.dumps({"type": self.name}))
        joblib.dump(self, directory / "forecaster.joblib")

    @classmethod
    def load(cls, directory: Path) -> Forecaster:
        loaded = joblib.load(directory / "forecaster.joblib")
        if not isinstance(loaded, cls):
            raise TypeError(f"{directory} holds a {type(loaded).__name__}, not a {cls.__name__}")
        return loaded

    # -- for subclasses --------------------------------------------------------------------------

    @abstractmethod
    def _fit(self, history: pd.DataFrame, validation: ValidationData | None) -> None: ...

    @abstractmethod
    def _predict(self, frame: pd.DataFrame, origins: pd.DatetimeIndex) -> pd.DataFrame: ...

    def _check_columns(self, frame: pd.DataFrame) -> None:
        needed = [self.problem.target, *self.problem.covariate_names]
        missing = [column for column in needed if column not in frame.columns]
        if missing:
            raise ValueError(f"{self.name}: the frame lacks columns {missing}")

    def _check_origins(self, frame: pd.DataFrame, origins: pd.DatetimeIndex) -> None:
        """Each origin is a stamp with enough history, and its known-future values cover the horizon."""
        positions = frame.index.get_indexer(origins)
        if (positions < 0).any():
            raise ValueError(f"{self.name}: origins {origins[positions < 0][:3].tolist()} are not stamps of the frame")
        short = positions < self.min_history
        if short.any():
            raise ValueError(
                f"{self.name}: origin {origins[short][0]} has {positions[short][0]} steps of history, needs {self.min_history}"
            )
        horizon = self.problem.horizon
        beyond = positions + horizon > len(frame)
        if beyond.any():
            raise ValueError(
                f"{self.name}: origin {origins[beyond][0]}: the frame ends before the {horizon}-step horizon; "
                f"append the horizon's rows with known-future covariates ({list(self.problem.future_covariates)})"
            )
        window = positions[:, None] + np.arange(horizon)
        for name in self.problem.future_covariates:
            gaps = ~frame[name].notna().to_numpy()[window].all(axis=1)
            if gaps.any():
                raise ValueError(
                    f"{self.name}: known-future covariate '{name}' is missing inside the horizon of origin {origins[gaps][0]}"
                )
