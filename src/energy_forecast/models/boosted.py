"""The shared base of the three boosted-tree families (XGBoost, LightGBM, CatBoost).

What they share lives here once: the parameters every booster has (learning rate, early stopping
on the validation period, progress logging), the fitting skeleton (early stopping only when a
validation period is given), prediction, the fitted summary and the native model MLflow logs.
Each family says only how to build and train its library's estimator and where it keeps the
number of rounds early stopping chose.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from energy_forecast.config import FeatureConfig
from energy_forecast.models.base import ModelParams
from energy_forecast.models.tabular import TabularForecaster

__all__ = ["BoostedTreeForecaster", "BoostedTreeParams", "learns_change"]

logger = logging.getLogger(__name__)


class BoostedTreeParams(ModelParams):
    """Parameters every booster has; families add their library's own."""

    learning_rate: float = Field(0.05, gt=0)
    early_stopping_rounds: int | None = Field(50, gt=0, description="on the validation period; null to disable")
    log_every: int = Field(100, gt=0, description="log the validation score every N rounds")
    learn_change: bool | None = Field(
        None,
        description="true: learn the change from the last value before the origin; false: learn the level; unset: as "
        "features.relative_to_last says. Lets ensemble members that share one feature recipe learn different targets",
    )


def learns_change(params: BoostedTreeParams, features: FeatureConfig) -> bool:
    """Whether a booster learns the change from the last value rather than the level: its own
    ``learn_change`` where set, else the recipe's ``relative_to_last``. The one rule of the
    single-series and the global (panel) models."""
    return features.relative_to_last if params.learn_change is None else params.learn_change


class BoostedTreeForecaster(TabularForecaster):
    """A gradient-boosted tree ensemble on the direct multi-horizon feature matrix."""

    params: BoostedTreeParams
    rounds_param: ClassVar[str]
    """The library's name for the maximum number of rounds (``n_estimators``, ``iterations``)."""
    fitting_only: ClassVar[frozenset[str]] = frozenset({"log_every", "early_stopping_rounds", "learn_change"})
    """Parameters that steer fitting here and are not passed to the library's estimator."""

    @classmethod
    def gpu_support(cls, params: ModelParams) -> bool | str:
        return True

    @property
    def learns_change(self) -> bool:
        return learns_change(self.params, self.problem.features)

    @property
    def fitted_rounds(self) -> int | None:
        return self.rounds_kept if getattr(self, "model_", None) is not None else None

    def fix_rounds(self, rounds: int) -> None:
        if rounds < 1:
            raise ValueError(f"{self.name}: cannot train {rounds} rounds")
        self.params = self.params.model_copy(update={self.rounds_param: int(rounds), "early_stopping_rounds": None})

    def library_params(self) -> dict[str, Any]:
        """The YAML parameters the library's estimator takes."""
        return self.params.model_dump(exclude=set(self.fitting_only))

    def _fit_matrix(self, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame | None, y_val: np.ndarray | None) -> None:
        early_stopping = self.params.early_stopping_rounds if X_val is not None else None
        self.model_ = self._train(X, y, X_val, y_val, early_stopping)
        kept = self.rounds_kept
        if early_stopping and kept is not None:
            logger.info("%s: early stopping kept %d of %d rounds", self.name, kept, getattr(self.params, self.rounds_param))

    def _predict_matrix(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model_.predict(X), dtype="float64")

    def native_model(self) -> Any:
        return self.model_

    def fitted_summary(self) -> dict[str, Any]:
        kept = self.rounds_kept
        return {"best_iteration": kept} if kept is not None else {}

    @abstractmethod
    def _train(
        self, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame | None, y_val: np.ndarray | None, early_stopping: int | None
    ) -> Any:
        """Build and fit the library's estimator; ``X_val`` (may be None) is for early stopping only."""

    @property
    @abstractmethod
    def rounds_kept(self) -> int | None:
        """Rounds the fitted model uses when early stopping chose them, else None."""
