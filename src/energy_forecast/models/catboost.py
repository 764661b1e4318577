"""CatBoost family: ``model.type: catboost``; GPU through CatBoost's ``task_type``."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from energy_forecast.models.base import ModelParams
from energy_forecast.models.registry import register
from energy_forecast.models.tabular import TabularForecaster

__all__ = ["CatBoostForecaster", "CatBoostParams"]

logger = logging.getLogger(__name__)


class CatBoostParams(ModelParams):
    iterations: int = Field(1000, gt=0)
    learning_rate: float = Field(0.05, gt=0)
    depth: int = Field(8, ge=1, le=16)
    l2_leaf_reg: float = Field(3.0, ge=0)
    loss_function: str = "RMSE"
    early_stopping_rounds: int | None = Field(50, gt=0, description="on the validation period; null to disable")
    thread_count: int = -1
    log_every: int = Field(100, gt=0)


class _LogStream:
    """File-like sink for CatBoost's progress lines, forwarded to logging."""

    def write(self, text: str) -> None:
        for line in text.splitlines():
            if line.strip():
                logger.info("catboost: %s", line.strip())

    def flush(self) -> None:
        """Nothing is buffered."""


@register
class CatBoostForecaster(TabularForecaster):
    name = "catboost"
    params_class = CatBoostParams
    mlflow_flavour = "catboost"
    pip_packages = ("catboost", "numpy", "pandas")
    params: CatBoostParams

    @classmethod
    def gpu_support(cls, params: ModelParams) -> bool | str:
        return True

    def _fit_matrix(self, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame | None, y_val: np.ndarray | None) -> None:
        import catboost

        settings = self.params.model_dump(exclude={"log_every", "early_stopping_rounds"})
        self.model_ = catboost.CatBoostRegressor(
            **settings,
            task_type="GPU" if self.device.gpu_used else "CPU",
            random_seed=self.problem.seed,
            allow_writing_files=False,
        )
        fit_kwargs: dict[str, Any] = {}
        if X_val is not None:
            fit_kwargs = {"eval_set": (X_val, y_val), "early_stopping_rounds": self.params.early_stopping_rounds}
        stream = _LogStream()
        self.model_.fit(X, y, verbose=self.params.log_every, log_cout=stream, log_cerr=stream, **fit_kwargs)

    def _predict_matrix(self, X: pd.DataFrame) -> np.ndarray:
        return self.model_.predict(X)

    def native_model(self) -> Any:
        return self.model_

    def fitted_summary(self) -> dict[str, Any]:
        best = self.model_.get_best_iteration()
        return {"best_iteration": best} if best is not None else {}
