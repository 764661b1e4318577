"""LightGBM family: ``model.type: lightgbm``.

LightGBM uses a GPU only when it was built for one; the PyPI wheel is not, so ``device: auto``
runs it on the CPU. Set ``gpu_build: true`` with a CUDA build of LightGBM to use ``device_type=cuda``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from energy_forecast.models.base import ModelParams
from energy_forecast.models.boosted import BoostedTreeForecaster, BoostedTreeParams
from energy_forecast.models.registry import register

__all__ = ["LightGBMForecaster", "LightGBMParams"]

logger = logging.getLogger(__name__)


class LightGBMParams(BoostedTreeParams):
    n_estimators: int = Field(1000, gt=0)
    num_leaves: int = Field(63, gt=1)
    max_depth: int = -1
    min_child_samples: int = Field(20, ge=0)
    subsample: float = Field(0.8, gt=0, le=1)
    subsample_freq: int = Field(1, ge=0)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    reg_lambda: float = Field(1.0, ge=0)
    reg_alpha: float = Field(0.0, ge=0)
    objective: str = "regression"
    n_jobs: int | None = None
    gpu_build: bool = Field(False, description="true only with a LightGBM built for CUDA")


@register
class LightGBMForecaster(BoostedTreeForecaster):
    name = "lightgbm"
    params_class = LightGBMParams
    mlflow_flavour = "lightgbm"
    rounds_param = "n_estimators"
    native_file = "model.txt"
    fitting_only = BoostedTreeForecaster.fitting_only | {"gpu_build"}
    pip_packages = ("lightgbm", "scikit-learn", "numpy", "pandas")
    params: LightGBMParams

    @classmethod
    def gpu_support(cls, params: ModelParams) -> bool | str:
        if isinstance(params, LightGBMParams) and params.gpu_build:
            return True
        return "the installed LightGBM is the PyPI build, which has no GPU support (set gpu_build: true with a CUDA build)"

    def _train(self, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame | None, y_val: np.ndarray | None, early_stopping: int | None) -> Any:
        import lightgbm

        model = lightgbm.LGBMRegressor(
            **self.library_params(),
            device_type="cuda" if self.device.gpu_used else "cpu",
            random_state=self.problem.seed,
            verbose=-1,
        )
        every = self.params.log_every

        def log_progress(env: Any) -> None:
            if env.iteration % every == 0 and env.evaluation_result_list:
                scores = ", ".join(f"{data}-{metric} {value:.4f}" for data, metric, value, _ in env.evaluation_result_list)
                logger.info("lightgbm: round %d: %s", env.iteration, scores)

        callbacks: list[Any] = [log_progress]
        fit_kwargs: dict[str, Any] = {}
        if X_val is not None:
            fit_kwargs.update(eval_X=(X_val,), eval_y=(y_val,))
            if early_stopping:
                callbacks.append(lightgbm.early_stopping(early_stopping, verbose=False))
        model.fit(X, y, callbacks=callbacks, **fit_kwargs)
        return model

    @property
    def rounds_kept(self) -> int | None:
        return int(self.model_.best_iteration_) or None  # 0 without early stopping

    def _save_native(self, path: Path) -> None:
        booster = getattr(self.model_, "booster_", self.model_)  # fitted: an LGBMRegressor; restored: its Booster
        booster.save_model(str(path))  # the best iteration only, when early stopping chose one

    def _load_native(self, path: Path) -> None:
        import lightgbm

        self.model_ = lightgbm.Booster(model_file=str(path))  # predicts like the fitted LGBMRegressor
