"""CatBoost family: ``model.type: catboost``; GPU through CatBoost's ``task_type``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from energy_forecast.models.boosted import BoostedTreeForecaster, BoostedTreeParams
from energy_forecast.models.registry import register

__all__ = ["CatBoostForecaster", "CatBoostParams"]

logger = logging.getLogger(__name__)


class CatBoostParams(BoostedTreeParams):
    iterations: int = Field(1000, gt=0)
    depth: int = Field(8, ge=1, le=16)
    l2_leaf_reg: float = Field(3.0, ge=0)
    loss_function: str = "RMSE"
    thread_count: int = -1


class _LogStream:
    """File-like sink for CatBoost's progress lines, forwarded to logging."""

    def write(self, text: str) -> None:
        for line in text.splitlines():
            if line.strip():
                logger.info("catboost: %s", line.strip())

    def flush(self) -> None:
        """Nothing is buffered."""


@register
class CatBoostForecaster(BoostedTreeForecaster):
    name = "catboost"
    params_class = CatBoostParams
    mlflow_flavour = "catboost"
    rounds_param = "iterations"
    native_file = "model.cbm"
    pip_packages = ("catboost", "numpy", "pandas")
    params: CatBoostParams

    def _train(self, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame | None, y_val: np.ndarray | None, early_stopping: int | None) -> Any:
        import catboost

        model = catboost.CatBoostRegressor(
            **self.library_params(),
            task_type="GPU" if self.device.gpu_used else "CPU",
            random_seed=self.problem.seed,
            allow_writing_files=False,
        )
        fit_kwargs: dict[str, Any] = {}
        if X_val is not None:
            fit_kwargs = {"eval_set": (X_val, y_val), "early_stopping_rounds": early_stopping}
        stream = _LogStream()
        model.fit(X, y, verbose=self.params.log_every, log_cout=stream, log_cerr=stream, **fit_kwargs)
        return model

    @property
    def rounds_kept(self) -> int | None:
        best = self.model_.get_best_iteration()  # None without a validation set
        return None if best is None else int(best) + 1

    def _save_native(self, path: Path) -> None:
        self.model_.save_model(str(path))  # CatBoost binary; the model is already cut at its best iteration

    def _load_native(self, path: Path) -> None:
        import catboost

        self.model_ = catboost.CatBoostRegressor()
        self.model_.load_model(str(path))
