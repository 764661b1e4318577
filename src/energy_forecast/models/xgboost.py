"""XGBoost family: ``model.type: xgboost``; GPU through XGBoost's ``device`` switch."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from energy_forecast.models.base import ModelParams
from energy_forecast.models.registry import register
from energy_forecast.models.tabular import TabularForecaster

__all__ = ["XGBoostForecaster", "XGBoostParams"]

logger = logging.getLogger(__name__)


class XGBoostParams(ModelParams):
    n_estimators: int = Field(1000, gt=0)
    learning_rate: float = Field(0.05, gt=0)
    max_depth: int = Field(8, ge=0)
    min_child_weight: float = Field(1.0, ge=0)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    reg_lambda: float = Field(1.0, ge=0)
    reg_alpha: float = Field(0.0, ge=0)
    objective: str = "reg:squarederror"
    early_stopping_rounds: int | None = Field(50, gt=0, description="on the validation period; null to disable")
    n_jobs: int | None = None
    log_every: int = Field(100, gt=0, description="log the validation score every N rounds")


def _progress_callback(every: int) -> Any:
    import xgboost

    class LogProgress(xgboost.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
            if epoch % every == 0 and evals_log:
                scores = ", ".join(
                    f"{data}-{metric} {values[-1]:.4f}" for data, metrics in evals_log.items() for metric, values in metrics.items()
                )
                logger.info("xgboost: round %d: %s", epoch, scores)
            return False

    return LogProgress()


@register
class XGBoostForecaster(TabularForecaster):
    name = "xgboost"
    params_class = XGBoostParams
    mlflow_flavour = "xgboost"
    pip_packages = ("xgboost", "scikit-learn", "numpy", "pandas")
    params: XGBoostParams

    @classmethod
    def gpu_support(cls, params: ModelParams) -> bool | str:
        return True

    def _fit_matrix(self, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame | None, y_val: np.ndarray | None) -> None:
        import xgboost

        settings = self.params.model_dump(exclude={"log_every", "early_stopping_rounds"})
        early_stopping = self.params.early_stopping_rounds if X_val is not None else None
        self.model_ = xgboost.XGBRegressor(
            **settings,
            tree_method="hist",
            device=self.device.device,
            random_state=self.problem.seed,
            early_stopping_rounds=early_stopping,
            callbacks=[_progress_callback(self.params.log_every)],
        )
        eval_set = [(X_val, y_val)] if X_val is not None else None
        self.model_.fit(X, y, eval_set=eval_set, verbose=False)
        self.model_.set_params(callbacks=None)  # the callback is local to fitting; keep the model picklable
        if early_stopping:
            logger.info("xgboost: early stopping kept %d of %d rounds", self.model_.best_iteration + 1, self.params.n_estimators)

    def _predict_matrix(self, X: pd.DataFrame) -> np.ndarray:
        return self.model_.predict(X)

    def native_model(self) -> Any:
        return self.model_

    def fitted_summary(self) -> dict[str, Any]:
        best = getattr(self.model_, "best_iteration", None)
        return {"best_iteration": best} if best is not None else {}
