"""Ensembles: ``model.type: stacking`` and ``model.type: voting``.

Members are built through the registry from ``params.members`` and used only through their public
interface (``fit``, ``fit_windows``, ``predict``, ``save``), like any caller would. A member is
either inline (``{type: xgboost, params: {...}}``) or another training YAML (``{config:
xgboost.yaml}``: fitted exactly as that YAML says, and reused when already fitted, so the
operating loop and ``make demo`` fit each booster once).

How the members are combined is learned from forecasts no member trained on:

* with validation windows (:meth:`Forecaster.fit_windows`, what training does), from the
  members' out-of-window forecasts over every window: each member forecasts each window from a
  model trained only before it. A reused member brings its own record of those forecasts (saved
  with it); one without a record for these windows is fitted again on them, and the log says so;
* with a plain ``fit(history, validation)``, inline members train on the history only and the
  combination is learned on the validation period (members from YAMLs early-stop on it).

* stacking: non-negative least squares with weights adding up to 1, shrunk toward equal weights
  (``nnls_shrunk``, the default; the amount is chosen by leave-one-window-out across the
  windows; ``sum_to_one: false`` frees the total), or the older
  ``linear_positive`` / ``ridge`` meta-learners with an intercept;
* voting: greedy ensemble selection with replacement (Caruana et al., 2004, as AutoGluon does:
  ``greedy``, the default), inverse-MSE or equal weights.

A saved ensemble holds each member saved by the member itself (``members/<i>/``) and the weights.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from energy_forecast.config import ForecastProblem, StrictModel
from energy_forecast.device import DeviceChoice
from energy_forecast.frames import ACTUAL, KEYS, PREDICTION, TIMESTAMP
from energy_forecast.models.base import (
    WINDOW,
    Forecaster,
    ModelParams,
    ValidationData,
    ValidationRecord,
    WindowSpan,
    window_key,
)
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


SHRINKAGE_GRID = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
"""Shrinkage toward equal weights tried by leave-one-window-out (``shrinkage: null``)."""


class StackingParams(EnsembleParams):
    meta_learner: Literal["nnls_shrunk", "linear_positive", "ridge"] = Field(
        "nnls_shrunk",
        description="nnls_shrunk: non-negative weights, no intercept, shrunk toward equal weights; linear_positive: least "
        "squares with non-negative weights and an intercept; ridge: ridge regression with an intercept",
    )
    shrinkage: float | None = Field(
        None,
        ge=0,
        description="nnls_shrunk: penalty on the distance from equal weights, relative to the members' mean square "
        "forecast; null: chosen by leave-one-window-out over the validation windows (0.1 with a single window)",
    )
    sum_to_one: bool = Field(
        True,
        description="nnls_shrunk: weights that add up to 1 (a convex combination, so no member's level is scaled); false: "
        "any non-negative weights. Measured on the steel data: unconstrained weights summed to 1.05 and cost 0.38 kWh of "
        "December day-ahead RMSE (README)",
    )
    ridge_alpha: float = Field(1.0, gt=0)


class VotingParams(EnsembleParams):
    weighting: Literal["greedy", "inverse_mse", "equal"] = Field(
        "greedy", description="greedy: ensemble selection with replacement (Caruana et al., 2004); inverse_mse; equal"
    )
    selection_rounds: int = Field(100, ge=1, description="greedy: members added (with replacement); weights are counts / rounds")


def _same_rows(forecast: pd.DataFrame, keys: pd.DataFrame) -> bool:
    """The same windows, origins, steps and stamps, row by row (whatever the stamps' time unit)."""
    if len(forecast) != len(keys):
        return False
    same = [np.array_equal(forecast[c].to_numpy(dtype="int64"), keys[c].to_numpy(dtype="int64")) for c in (WINDOW, KEYS[1])]
    same += [np.array_equal(pd.DatetimeIndex(forecast[c]).as_unit("ns").asi8, pd.DatetimeIndex(keys[c]).as_unit("ns").asi8) for c in (KEYS[0], KEYS[2])]
    return all(same)


def greedy_selection(predictions: np.ndarray, actual: np.ndarray, rounds: int) -> np.ndarray:
    """Ensemble selection with replacement (Caruana et al., 2004): add, ``rounds`` times, the member
    that most lowers the squared error of the running average; weights are the counts / rounds."""
    counts = np.zeros(predictions.shape[1])
    total = np.zeros(len(actual))
    for added in range(1, rounds + 1):
        errors = np.mean(((total[:, None] + predictions) / added - actual[:, None]) ** 2, axis=0)
        best = int(np.argmin(errors))
        counts[best] += 1
        total += predictions[:, best]
    return counts / rounds


SUM_TO_ONE_PENALTY = 1e6
"""Weight of the row that asks the weights to add up to 1, relative to the data rows (then normalised exactly)."""


def nnls_shrunk(predictions: np.ndarray, actual: np.ndarray, shrinkage: float, sum_to_one: bool = False) -> np.ndarray:
    """Non-negative least squares, no intercept, penalised by ``shrinkage`` x (mean square forecast)
    x n x ||w - equal||²: 0 is plain NNLS, large values give equal weights. ``sum_to_one``: the
    weights also add up to 1 (a convex combination), enforced by one heavily weighted row of ones
    (scipy's NNLS has no equality constraint) and then normalised exactly."""
    from scipy.optimize import nnls

    rows, members = predictions.shape
    equal = np.full(members, 1.0 / members)
    power = rows * np.mean(predictions**2)
    blocks, targets = [predictions], [actual]
    if shrinkage > 0:
        scale = np.sqrt(shrinkage * power)
        blocks.append(scale * np.eye(members))
        targets.append(scale * equal)
    if sum_to_one:
        weight = np.sqrt(SUM_TO_ONE_PENALTY * power)
        blocks.append(np.full((1, members), weight))
        targets.append(np.array([weight]))
    weights = nnls(np.vstack(blocks), np.concatenate(targets))[0] if len(blocks) > 1 else nnls(predictions, actual)[0]
    return weights / weights.sum() if sum_to_one and weights.sum() > 0 else weights


def choose_shrinkage(
    predictions: np.ndarray, actual: np.ndarray, groups: np.ndarray, sum_to_one: bool = False
) -> tuple[float, dict[float, float]]:
    """The shrinkage of :data:`SHRINKAGE_GRID` with the lowest leave-one-window-out RMSE."""
    scores = {}
    for shrinkage in SHRINKAGE_GRID:
        squared = []
        for group in np.unique(groups):
            held = groups == group
            weights = nnls_shrunk(predictions[~held], actual[~held], shrinkage, sum_to_one)
            squared.append((predictions[held] @ weights - actual[held]) ** 2)
        scores[shrinkage] = float(np.sqrt(np.mean(np.concatenate(squared))))
    return min(scores, key=lambda k: (scores[k], -k)), scores


def voting_weights(params: VotingParams, predictions: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Voting's weights (adding up to 1) from out-of-sample ``predictions`` (rows x members)."""
    if params.weighting == "equal":
        weights = np.ones(predictions.shape[1])
    elif params.weighting == "greedy":
        weights = greedy_selection(predictions, actual, params.selection_rounds)
    else:
        mse = np.mean((predictions - actual[:, None]) ** 2, axis=0)
        weights = 1.0 / np.maximum(mse, 1e-12)
    return weights / weights.sum()


def stacking_nnls_weights(
    params: StackingParams, predictions: np.ndarray, actual: np.ndarray, groups: np.ndarray | None
) -> tuple[np.ndarray, float, dict[float, float]]:
    """``nnls_shrunk`` stacking: weights, the shrinkage used (the YAML's; else chosen by leaving out
    one group of ``groups`` at a time; else 0.1) and the held-out RMSE by shrinkage when chosen."""
    shrinkage, scores = params.shrinkage, {}
    if shrinkage is None and groups is not None and len(np.unique(groups)) > 1:
        shrinkage, scores = choose_shrinkage(predictions, actual, groups, params.sum_to_one)
    shrinkage = 0.1 if shrinkage is None else shrinkage
    return nnls_shrunk(predictions, actual, shrinkage, params.sum_to_one), shrinkage, scores


class _Ensemble(Forecaster):
    params: EnsembleParams
    windowed = True
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
        self._learn_combination(np.column_stack([f[PREDICTION] for f in forecasts]), actual.to_numpy(dtype="float64"), None)

    def _fit_windows(
        self, frame: pd.DataFrame, windows: list[WindowSpan], refit: bool, on_window: Callable[[int, float], None] | None
    ) -> ValidationRecord:
        key = window_key(windows)
        records = []
        for position, (spec, member) in enumerate(zip(self.params.members, self.members, strict=True)):
            if position in self.prefitted_:
                record = member.validation_
                if record is not None and record.windows == key and record.refit == refit:
                    logger.info("%s: member %s reused from %s with its forecasts for the %d windows", self.name, member.name, spec.config, len(key))
                    records.append(record)
                    continue
                logger.warning(
                    "%s: member %s from %s was reused but has no forecasts for these windows (refit %s): it is fitted on them again",
                    self.name, member.name, spec.config, refit,
                )
                member = self.members[position] = member.clone()
                self.prefitted_.discard(position)
            logger.info("%s: fitting member %s on %d validation windows (refit %s)", self.name, member.name, len(windows), refit)
            records.append(member.fit_windows(frame, windows, refit=refit))
        keys = records[0].forecast[[WINDOW, *KEYS]]
        for record in records[1:]:
            if not _same_rows(record.forecast, keys):
                raise ValueError(f"{self.name}: the members' validation forecasts are for different origins or steps")
        predictions = np.column_stack([r.forecast[PREDICTION].to_numpy(dtype="float64") for r in records])
        actual = records[0].forecast[ACTUAL].to_numpy(dtype="float64")
        groups = records[0].forecast[WINDOW].to_numpy()
        self._learn_categories(frame)
        self._learn_combination(predictions, actual, groups)
        self.is_fitted_ = True
        combined = keys.assign(**{PREDICTION: self._combine(predictions), ACTUAL: actual})
        record = ValidationRecord(key, combined, [], None, refit, {"weights": self.weights_.tolist(), "members": [m.name for m in self.members]})
        for position, rmse in enumerate(record.window_rmse()):
            logger.info("%s: window %d/%d: RMSE %.3f (members %s)", self.name, position + 1, len(windows), rmse, [round(r.window_rmse()[position], 3) for r in records])
            if on_window is not None:
                on_window(position, rmse)
        return record

    def _predict(self, frame: pd.DataFrame, origins: pd.DatetimeIndex) -> pd.DataFrame:
        forecasts = self._member_forecasts(frame, origins)
        combined = self._combine(np.column_stack([f[PREDICTION] for f in forecasts]))
        return forecasts[0][list(KEYS)].assign(**{PREDICTION: combined})

    def _member_forecasts(self, frame: pd.DataFrame, origins: pd.DatetimeIndex) -> list[pd.DataFrame]:
        """Each member's forecast, all in the same (origin, step) order."""
        return [member.predict(frame, origins) for member in self.members]

    def _learn_combination(self, predictions: np.ndarray, actual: np.ndarray, groups: np.ndarray | None) -> None:
        """Weights from the members' out-of-sample forecasts; ``groups``: the window of each row, if several."""
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
    approach = "stacking: non-negative weights adding up to 1, fitted on the members' out-of-sample forecasts, shrunk toward equal weights"
    params: StackingParams

    intercept_: float = 0.0

    shrinkage_: float | None = None

    def _learn_combination(self, predictions: np.ndarray, actual: np.ndarray, groups: np.ndarray | None) -> None:
        if self.params.meta_learner == "nnls_shrunk":
            self.weights_, self.shrinkage_, scores = stacking_nnls_weights(self.params, predictions, actual, groups)
            self.intercept_ = 0.0
            extra = f" (leave-one-window-out RMSE by shrinkage: { {k: round(v, 3) for k, v in scores.items()} })" if scores else ""
            self._log_weights("non-negative weights" + (" adding up to 1" if self.params.sum_to_one else ""), f", shrinkage {self.shrinkage_}{extra}")
            return
        from sklearn.linear_model import LinearRegression, Ridge

        meta = Ridge(alpha=self.params.ridge_alpha) if self.params.meta_learner == "ridge" else LinearRegression(positive=True)
        meta.fit(predictions, actual)
        self.weights_, self.intercept_ = np.asarray(meta.coef_, dtype="float64"), float(meta.intercept_)
        self._log_weights("meta-learner weights", f", intercept {self.intercept_:.3f}")

    def _combine(self, predictions: np.ndarray) -> np.ndarray:
        return predictions @ self.weights_ + self.intercept_  # the linear meta-learner's prediction

    def fitted_summary(self) -> dict[str, Any]:
        shrinkage = {} if self.shrinkage_ is None else {"meta_shrinkage": self.shrinkage_}
        return {**super().fitted_summary(), "meta_intercept": self.intercept_, **shrinkage}

    def _save_state(self, directory: Path) -> dict[str, Any]:
        return {**super()._save_state(directory), "intercept": self.intercept_}

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:
        super()._load_state(directory, state)
        self.intercept_ = float(state["intercept"])


@register
class VotingForecaster(_Ensemble):
    name = "voting"
    params_class = VotingParams
    approach = "voting: members averaged with weights chosen on their out-of-sample forecasts (greedy ensemble selection)"
    params: VotingParams

    def _learn_combination(self, predictions: np.ndarray, actual: np.ndarray, groups: np.ndarray | None) -> None:
        self.weights_ = voting_weights(self.params, predictions, actual)
        self._log_weights("weights")

    def _combine(self, predictions: np.ndarray) -> np.ndarray:
        return predictions @ self.weights_
