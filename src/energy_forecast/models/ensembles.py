"""Ensembles of tabular families: ``model.type: stacking`` and ``model.type: voting``.

Members are built through the registry from ``params.members`` and share the feature matrix.
Both ensembles fit their members on the training period only, then learn how to combine them on
the validation period, which no member trained on (members do not early-stop on it either):

* stacking fits a meta-learner on the members' validation predictions;
* voting weights each member by its validation skill (inverse mean squared error).

The fitted ensemble is logged as an MLflow pyfunc that takes the feature matrix.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from energy_forecast.config import ForecastProblem, StrictModel
from energy_forecast.device import DeviceChoice
from energy_forecast.models.base import ModelParams, ValidationData
from energy_forecast.models.registry import ModelConfigError, model_class, parse_params, register
from energy_forecast.models.tabular import TabularForecaster

__all__ = ["StackingForecaster", "StackingParams", "VotingForecaster", "VotingParams"]

logger = logging.getLogger(__name__)


class MemberSpec(StrictModel):
    type: str
    params: dict[str, Any] = Field(default_factory=dict)


def _default_members() -> list[MemberSpec]:
    return [MemberSpec(type="xgboost"), MemberSpec(type="lightgbm"), MemberSpec(type="catboost")]


class EnsembleParams(ModelParams):
    members: list[MemberSpec] = Field(default_factory=_default_members, min_length=2)

    @field_validator("members")
    @classmethod
    def _members_are_tabular(cls, members: list[MemberSpec]) -> list[MemberSpec]:
        for position, member in enumerate(members):
            field = f"members.{position}"
            member_cls = model_class(member.type, f"{field}.type")
            if not issubclass(member_cls, TabularForecaster) or issubclass(member_cls, _Ensemble):
                raise ModelConfigError(
                    f"{field}.type", f"'{member.type}' cannot be an ensemble member; members must be single tabular families"
                )
            parse_params(member.type, member.params, field)
        return members


class StackingParams(EnsembleParams):
    meta_learner: Literal["linear_positive", "ridge"] = Field(
        "linear_positive", description="linear_positive: least squares with non-negative weights"
    )
    ridge_alpha: float = Field(1.0, gt=0)


class VotingParams(EnsembleParams):
    weighting: Literal["inverse_mse", "equal"] = "inverse_mse"


class _Ensemble(TabularForecaster):
    params: EnsembleParams
    pip_packages = ("xgboost", "lightgbm", "catboost", "scikit-learn", "numpy", "pandas", "joblib")

    def __init__(self, params: ModelParams, problem: ForecastProblem, device: DeviceChoice) -> None:
        super().__init__(params, problem, device)
        self.members: list[TabularForecaster] = []
        for member in self.params.members:
            member_cls = model_class(member.type)
            member_params = parse_params(member.type, member.params)
            member_device = device if member_cls.gpu_support(member_params) is True else DeviceChoice(
                device.requested, "cpu", str(member_cls.gpu_support(member_params))
            )
            self.members.append(member_cls(member_params, problem, member_device))

    @classmethod
    def gpu_support(cls, params: ModelParams) -> bool | str:
        assert isinstance(params, EnsembleParams)
        support = [model_class(m.type).gpu_support(parse_params(m.type, m.params)) for m in params.members]
        return True if any(s is True for s in support) else "no member can use a GPU"

    def _fit(self, history: pd.DataFrame, validation: ValidationData | None) -> None:
        if validation is None:
            raise ValueError(f"{self.name} learns its combination on the validation period; the split has none")
        super()._fit(history, validation)

    def _fit_matrix(self, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame | None, y_val: np.ndarray | None) -> None:
        assert X_val is not None and y_val is not None
        for member in self.members:
            logger.info("%s: fitting member %s on the training period", self.name, member.name)
            member.feature_names_ = list(X.columns)
            member._fit_matrix(X, y, None, None)
        validation_predictions = self._member_predictions(X_val)
        self._learn_combination(validation_predictions, y_val)

    def _member_predictions(self, X: pd.DataFrame) -> np.ndarray:
        return np.column_stack([member._predict_matrix(X) for member in self.members]).astype("float64")

    def _learn_combination(self, predictions: np.ndarray, actual: np.ndarray) -> None:
        raise NotImplementedError

    def fitted_summary(self) -> dict[str, Any]:
        return {f"weight_{m.name}_{i}": float(w) for i, (m, w) in enumerate(zip(self.members, self.weights_, strict=True))}


@register
class StackingForecaster(_Ensemble):
    name = "stacking"
    params_class = StackingParams
    approach = "stacking: meta-learner fitted on members' predictions for the validation period"
    params: StackingParams

    def _learn_combination(self, predictions: np.ndarray, actual: np.ndarray) -> None:
        from sklearn.linear_model import LinearRegression, Ridge

        if self.params.meta_learner == "ridge":
            self.meta_ = Ridge(alpha=self.params.ridge_alpha)
        else:
            self.meta_ = LinearRegression(positive=True)
        self.meta_.fit(predictions, actual)
        self.weights_ = self.meta_.coef_
        logger.info(
            "stacking: meta-learner weights %s, intercept %.3f",
            dict(zip([m.name for m in self.members], np.round(self.weights_, 3).tolist(), strict=True)),
            self.meta_.intercept_,
        )

    def _predict_matrix(self, X: pd.DataFrame) -> np.ndarray:
        return self.meta_.predict(self._member_predictions(X))

    def fitted_summary(self) -> dict[str, Any]:
        return {**super().fitted_summary(), "meta_intercept": float(self.meta_.intercept_)}


@register
class VotingForecaster(_Ensemble):
    name = "voting"
    params_class = VotingParams
    approach = "voting: members averaged with weights from their validation skill"
    params: VotingParams

    def _learn_combination(self, predictions: np.ndarray, actual: np.ndarray) -> None:
        if self.params.weighting == "equal":
            weights = np.ones(len(self.members))
        else:
            mse = np.mean((predictions - actual[:, None]) ** 2, axis=0)
            weights = 1.0 / np.maximum(mse, 1e-12)
        self.weights_ = weights / weights.sum()
        logger.info(
            "voting: weights %s", dict(zip([m.name for m in self.members], np.round(self.weights_, 3).tolist(), strict=True))
        )

    def _predict_matrix(self, X: pd.DataFrame) -> np.ndarray:
        return self._member_predictions(X) @ self.weights_
