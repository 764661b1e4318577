"""Ensembles: ``model.type: stacking`` and ``model.type: voting``.

Members are built through the registry from ``params.members`` and used only through their public
interface (``fit``, ``predict``, ``save``), like any caller would. A member is either inline
(``{type: xgboost, params: {...}}``: fitted on the training period only, without early stopping)
or another training YAML (``{config: xgboost.yaml}``: fitted exactly as that YAML says, early
stopping on the validation period included, and reused when already fitted, so the operating loop
and ``make demo`` fit each booster once). Referenced members have seen the validation period
through early stopping, which makes their weights somewhat optimistic. Both ensembles fit their members
on the training period only, then learn how to combine them from the members' forecasts for the
validation period, which no member trained on (members do not early-stop on it either):

* stacking fits a meta-learner on the members' validation forecasts;
* voting weights each member by its validation skill (inverse mean squared error).

A saved ensemble holds each member saved by the member itself (``members/<i>/``) and the weights.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from energy_forecast.config import ForecastProblem, StrictModel
from energy_forecast.device import DeviceChoice
from energy_forecast.frames import KEYS, PREDICTION, TIMESTAMP
from energy_forecast.models.base import Forecaster, ModelParams, ValidationData
from energy_forecast.models.registry import ModelConfigError, load_forecaster, model_class, parse_params, register

__all__ = ["StackingForecaster", "StackingParams", "VotingForecaster", "VotingParams"]

logger = logging.getLogger(__name__)


class MemberSpec(StrictModel):
    type: str
    params: dict[str, Any] = Field(default_factory=dict)
    config: str | None = Field(
        None,
        description="the training YAML this member comes from (written `{config: xgboost.yaml}` in the ensemble's YAML): "
        "it is fitted as that YAML says, validation period included, and a model of that YAML already fitted in the same "
        "materialization is reused instead",
    )


def _default_members() -> list[MemberSpec]:
    return [MemberSpec(type="xgboost"), MemberSpec(type="lightgbm"), MemberSpec(type="catboost")]


class EnsembleParams(ModelParams):
    members: list[MemberSpec] = Field(default_factory=_default_members, min_length=2)

    @field_validator("members")
    @classmethod
    def _members_are_single_models(cls, members: list[MemberSpec]) -> list[MemberSpec]:
        for position, member in enumerate(members):
            field = f"members.{position}"
            member_cls = model_class(member.type, f"{field}.type")
            if issubclass(member_cls, _Ensemble) or member_cls.is_baseline:
                raise ModelConfigError(
                    f"{field}.type", f"'{member.type}' cannot be an ensemble member; members must be single model families"
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


class _Ensemble(Forecaster):
    params: EnsembleParams
    pip_packages = ("xgboost", "lightgbm", "catboost", "scikit-learn", "numpy", "pandas")

    def __init__(self, params: ModelParams, problem: ForecastProblem, device: DeviceChoice) -> None:
        super().__init__(params, problem, device)
        self.members: list[Forecaster] = []
        for member in self.params.members:
            member_cls = model_class(member.type)
            member_params = parse_params(member.type, member.params)
            support = member_cls.gpu_support(member_params)
            member_device = device if support is True else DeviceChoice(device.requested, "cpu", str(support))
            self.members.append(member_cls(member_params, problem, member_device))
        self.weights_: np.ndarray = np.array([])
        self.prefitted_: set[int] = set()

    @property
    def member_configs(self) -> list[str]:
        return [m.config for m in self.params.members if m.config]

    def use_fitted_members(self, fitted: Mapping[str, Forecaster]) -> None:
        """Reuse fitted models for the members that reference a training YAML, by its name."""
        for position, spec in enumerate(self.params.members):
            model = fitted.get(spec.config or "")
            if model is None:
                continue
            if model.name != spec.type or not model.is_fitted_:
                raise ValueError(f"{self.name}: member {position} ({spec.config}) needs a fitted {spec.type}, got a{'' if model.is_fitted_ else 'n unfitted'} {model.name}")
            self.members[position] = model
            self.prefitted_.add(position)

    @classmethod
    def gpu_support(cls, params: ModelParams) -> bool | str:
        assert isinstance(params, EnsembleParams)
        support = [model_class(m.type).gpu_support(parse_params(m.type, m.params)) for m in params.members]
        return True if any(s is True for s in support) else "no member can use a GPU"

    @property
    def lookback(self) -> int:
        return max(member.lookback for member in self.members)

    def prepare(self) -> None:
        for member in self.members:
            member.prepare()

    def _fit(self, history: pd.DataFrame, validation: ValidationData | None) -> None:
        if validation is None:
            raise ValueError(f"{self.name} learns its combination on the validation period; the split has none")
        for position, (spec, member) in enumerate(zip(self.params.members, self.members, strict=True)):
            if position in self.prefitted_:
                logger.info("%s: member %s reused, already fitted from %s", self.name, member.name, spec.config)
            elif spec.config:
                logger.info("%s: fitting member %s as %s says (early stopping on the validation period)", self.name, member.name, spec.config)
                member.fit(history, validation)
            else:
                logger.info("%s: fitting member %s on the training period", self.name, member.name)
                member.fit(history)  # inline members never see the period their weights come from
        forecasts = self._member_forecasts(validation.frame, validation.origins)
        actual = validation.frame[self.problem.target].reindex(pd.DatetimeIndex(forecasts[0][TIMESTAMP]))
        self._learn_combination(np.column_stack([f[PREDICTION] for f in forecasts]), actual.to_numpy(dtype="float64"))

    def _predict(self, frame: pd.DataFrame, origins: pd.DatetimeIndex) -> pd.DataFrame:
        forecasts = self._member_forecasts(frame, origins)
        combined = self._combine(np.column_stack([f[PREDICTION] for f in forecasts]))
        return forecasts[0][list(KEYS)].assign(**{PREDICTION: combined})

    def _member_forecasts(self, frame: pd.DataFrame, origins: pd.DatetimeIndex) -> list[pd.DataFrame]:
        """Each member's forecast, all in the same (origin, step) order."""
        return [member.predict(frame, origins) for member in self.members]

    def _learn_combination(self, predictions: np.ndarray, actual: np.ndarray) -> None:
        raise NotImplementedError

    def _combine(self, predictions: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _log_weights(self, what: str, extra: str = "") -> None:
        weights = dict(zip([m.name for m in self.members], np.round(self.weights_, 3).tolist(), strict=True))
        logger.info("%s: %s %s%s", self.name, what, weights, extra)

    def fitted_summary(self) -> dict[str, Any]:
        return {f"weight_{m.name}_{i}": float(w) for i, (m, w) in enumerate(zip(self.members, self.weights_, strict=True))}

    def _save_state(self, directory: Path) -> dict[str, Any]:
        for position, member in enumerate(self.members):
            member.save(directory / "members" / str(position))
        return {"weights": self.weights_.tolist()}

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:
        self.members = [load_forecaster(directory / "members" / str(i)) for i in range(len(self.params.members))]
        self.weights_ = np.asarray(state["weights"], dtype="float64")


@register
class StackingForecaster(_Ensemble):
    name = "stacking"
    params_class = StackingParams
    approach = "stacking: meta-learner fitted on members' forecasts for the validation period"
    params: StackingParams

    intercept_: float = 0.0

    def _learn_combination(self, predictions: np.ndarray, actual: np.ndarray) -> None:
        from sklearn.linear_model import LinearRegression, Ridge

        meta = Ridge(alpha=self.params.ridge_alpha) if self.params.meta_learner == "ridge" else LinearRegression(positive=True)
        meta.fit(predictions, actual)
        self.weights_, self.intercept_ = np.asarray(meta.coef_, dtype="float64"), float(meta.intercept_)
        self._log_weights("meta-learner weights", f", intercept {self.intercept_:.3f}")

    def _combine(self, predictions: np.ndarray) -> np.ndarray:
        return predictions @ self.weights_ + self.intercept_  # the linear meta-learner's prediction

    def fitted_summary(self) -> dict[str, Any]:
        return {**super().fitted_summary(), "meta_intercept": self.intercept_}

    def _save_state(self, directory: Path) -> dict[str, Any]:
        return {**super()._save_state(directory), "intercept": self.intercept_}

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:
        super()._load_state(directory, state)
        self.intercept_ = float(state["intercept"])


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
        self._log_weights("weights")

    def _combine(self, predictions: np.ndarray) -> np.ndarray:
        return predictions @ self.weights_
