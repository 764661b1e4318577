"""Shared machinery of the feature-based (tabular) families.

A tabular family learns one direct multi-horizon model: each training row is an (origin, step)
pair with the leak-free features of :mod:`energy_forecast.features`. Families implement only
``_fit_matrix`` / ``_predict_matrix``; the logged MLflow model takes the feature matrix.
"""

from __future__ import annotations

import logging
from abc import abstractmethod

import numpy as np
import pandas as pd

from energy_forecast.backtest import origins_between
from energy_forecast.config import ForecastProblem
from energy_forecast.device import DeviceChoice
from energy_forecast.features import build_features
from energy_forecast.models.base import Forecaster, ModelParams, ValidationData

__all__ = ["TabularForecaster"]

logger = logging.getLogger(__name__)


class TabularForecaster(Forecaster):
    approach = "direct multi-horizon regression on leak-free lag, calendar and covariate features"

    def __init__(self, params: ModelParams, problem: ForecastProblem, device: DeviceChoice) -> None:
        super().__init__(params, problem, device)
        self.feature_names_: list[str] = []

    @property
    def min_history(self) -> int:
        return self.problem.features.lookback

    def training_origins(self, history: pd.DataFrame) -> pd.DatetimeIndex:
        every = self.problem.features.train_origin_every or self.problem.origin_every
        end = history.index[-1] + self.problem.step
        return origins_between(
            history.index, history.index[0], end,
            horizon=self.problem.horizon, every=every, at=self.problem.origin_time, min_history=self.min_history,
        )

    def _fit(self, history: pd.DataFrame, validation: ValidationData | None) -> None:
        origins = self.training_origins(history)
        if origins.empty:
            raise ValueError(f"{self.name}: no training origin fits in the training period")
        train = build_features(history, origins, problem=self.problem)
        val_X = val_y = None
        if validation is not None:
            val = build_features(validation.frame, validation.origins, problem=self.problem)
            val_X, val_y = val.X, val.y
        logger.info(
            "%s: fitting on %d rows (%d origins x %d steps), %d features, on %s",
            self.name, len(train.X), len(origins), self.problem.horizon, train.X.shape[1], self.device.device,
        )
        self.feature_names_ = list(train.X.columns)
        self._fit_matrix(train.X, train.y, val_X, val_y)

    def _predict(self, frame: pd.DataFrame, origins: pd.DatetimeIndex) -> pd.DataFrame:
        matrix = build_features(frame, origins, problem=self.problem)
        return matrix.keys.assign(prediction=np.asarray(self._predict_matrix(matrix.X), dtype="float64"))

    def model_input(self, frame: pd.DataFrame, origins: pd.DatetimeIndex) -> pd.DataFrame:
        return build_features(frame, origins, problem=self.problem).X

    def predict_model_input(self, model_input: pd.DataFrame) -> np.ndarray:
        return np.asarray(self._predict_matrix(model_input[self.feature_names_]), dtype="float64")

    @abstractmethod
    def _fit_matrix(
        self, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame | None, y_val: np.ndarray | None
    ) -> None:
        """Fit on the feature matrix; ``X_val`` is for early stopping and may be None."""

    @abstractmethod
    def _predict_matrix(self, X: pd.DataFrame) -> np.ndarray: ...
