"""XGBoost family: ``model.type: xgboost``; GPU through XGBoost's ``device`` switch."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from energy_forecast.models.boosted import BoostedTreeForecaster, BoostedTreeParams
from energy_forecast.models.registry import register

__all__ = ["XGBoostForecaster", "XGBoostParams"]

logger = logging.getLogger(__name__)


class XGBoostParams(BoostedTreeParams):
    n_estimators: int = Field(1000, gt=0)
    max_depth: int = Field(8, ge=0)
    min_child_weight: float = Field(1.0, ge=0)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    reg_lambda: float = Field(1.0, ge=0)
    reg_alpha: float = Field(0.0, ge=0)
    objective: str = "reg:squarederror"
    n_jobs: int | None = None


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
class XGBoostForecaster(BoostedTreeForecaster):
    name = "xgboost"
    params_class = XGBoostParams
    mlflow_flavour = "xgboost"
    rounds_param = "n_estimators"
    native_file = "model.ubj"
    pip_packages = ("xgboost", "scikit-learn", "numpy", "pandas")
    params: XGBoostParams

    def _train(self, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame | None, y_val: np.ndarray | None, early_stopping: int | None) -> Any:
        import xgboost

        model = xgboost.XGBRegressor(
            **self.library_params(),
            tree_method="hist",
            device=self.device.device,
            random_state=self.problem.seed,
            early_stopping_rounds=early_stopping,
            callbacks=[_progress_callback(self.params.log_every)],
        )
        model.fit(X, y, eval_set=[(X_val, y_val)] if X_val is not None else None, verbose=False)
        model.set_params(callbacks=None)  # the callback is local to fitting
        return model

    @property
    def rounds_kept(self) -> int | None:
        best = getattr(self.model_, "best_iteration", None)  # set only by early stopping
        return None if best is None else int(best) + 1

    def _save_native(self, path: Path) -> None:
        self.model_.save_model(str(path))  # UBJSON; keeps best_iteration, which predict uses

    def _load_native(self, path: Path) -> None:
        import xgboost

        self.model_ = xgboost.XGBRegressor()
        self.model_.load_model(str(path))
