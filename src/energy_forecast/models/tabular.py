"""Shared machinery of the feature-based (tabular) families.

A tabular family learns one direct multi-horizon model: each training row is an (origin, step)
pair with the leak-free features of :mod:`energy_forecast.features`. Families implement only
``_fit_matrix`` / ``_predict_matrix`` and how their fitted model is written to and read from a
native file.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from energy_forecast.backtest import origins_between
from energy_forecast.features import FeatureMatrix, build_features
from energy_forecast.frames import PREDICTION
from energy_forecast.models.base import Forecaster, ValidationData

__all__ = ["TabularForecaster"]

logger = logging.getLogger(__name__)


class TabularForecaster(Forecaster):
    approach = "direct multi-horizon regression on leak-free lag, calendar and covariate features"
    windowed = True
    native_file: ClassVar[str]
    """File name of the fitted model in a saved model's folder."""

    feature_names_: list[str]

    @property
    def lookback(self) -> int:
        return self.problem.features.lookback

    def training_origins(self, history: pd.DataFrame) -> pd.DatetimeIndex:
        every = self.problem.features.train_origin_every or self.problem.origin_every
        end = history.index[-1] + self.problem.step
        return origins_between(
            history.index, history.index[0], end,
            horizon=self.problem.horizon, every=every, at=self.problem.origin_time, min_history=self.lookback,
        )

    @property
    def learns_change(self) -> bool:
        """Whether the model learns the change from the last value rather than the level (the
        recipe's ``relative_to_last``; families with a ``learn_change`` parameter override this)."""
        return self.problem.features.relative_to_last

    def _target(self, matrix: FeatureMatrix) -> np.ndarray:
        return matrix.y - matrix.last if self.learns_change else matrix.y

    def _fit(self, history: pd.DataFrame, validation: ValidationData | None) -> None:
        origins = self.training_origins(history)
        if origins.empty:
            raise ValueError(f"{self.name}: no training origin fits in the training period")
        train = build_features(history, origins, problem=self.problem)
        val_X = val_y = None
        if validation is not None:
            val = build_features(validation.frame, validation.origins, problem=self.problem)
            val_X, val_y = val.X, self._target(val)
        logger.info(
            "%s: fitting on %d rows (%d origins x %d steps), %d features, on %s",
            self.name, len(train.X), len(origins), self.problem.horizon, train.X.shape[1], self.device.device,
        )
        self.feature_names_ = list(train.X.columns)
        self._fit_matrix(train.X, self._target(train), val_X, val_y)

    def _predict(self, frame: pd.DataFrame, origins: pd.DatetimeIndex) -> pd.DataFrame:
        matrix = build_features(frame, origins, problem=self.problem)
        predicted = np.asarray(self._predict_matrix(matrix.X[self.feature_names_]), dtype="float64")
        if self.learns_change:
            predicted = predicted + matrix.last
        return matrix.keys.assign(**{PREDICTION: predicted})

    def _save_state(self, directory: Path) -> dict[str, Any]:
        self._save_native(directory / self.native_file)
        return {"feature_names": self.feature_names_, "native_file": self.native_file}

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:
        self.feature_names_ = list(state["feature_names"])
        self._load_native(directory / state["native_file"])

    @abstractmethod
    def _fit_matrix(
        self, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame | None, y_val: np.ndarray | None
    ) -> None:
        """Fit on the feature matrix; ``X_val`` is for early stopping and may be None."""

    @abstractmethod
    def _predict_matrix(self, X: pd.DataFrame) -> np.ndarray: ...

    @abstractmethod
    def _save_native(self, path: Path) -> None:
        """Write the fitted model in the library's own format."""

    @abstractmethod
    def _load_native(self, path: Path) -> None:
        """Read what :meth:`_save_native` wrote."""
