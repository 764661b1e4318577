"""Ensembles on a panel: ``model.type: voting`` or ``stacking`` over global members.

The members are global models (:class:`~energy_forecast.models.global_boosted.GlobalBoostedModel`,
LightGBM or XGBoost), each trained once across every series and early-stopped on the validation
period. Their combination is learned from their forecasts of that validation period, with the
single-series ensembles' own methods (:mod:`energy_forecast.models.ensembles`): greedy ensemble
selection for voting, non-negative least squares shrunk toward equal weights for stacking. As in
AutoGluon, the period that early-stops the members also weighs them; the test period is never seen.

**Whose errors count.** Plants differ in size by an order of magnitude, and raw squared errors
would hand the weights to the largest plant. Each validation row is divided by the square root of
its series' training mean, so a series counts by its volume times its relative squared error,
the way the panel's backtest aggregates (volume-weighted). Stacking's shrinkage is chosen by
leave-one-series-out over the panel.

**Panel or series weights** (``weights_by``):

- ``panel`` (default): one set of weights for every series;
- ``series``: each series its own weights, learned on its own validation rows only (about 30
  days); a series unknown to the ensemble is refused, as the members refuse it.

``bench/scale.py`` measures both against the members on the synthetic plants.

A saved ensemble is ``ensemble.json`` (kind, weights, members' folders) plus each member saved by
itself under ``members/<i>/``; :func:`load_global_model` opens either kind of folder.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from energy_forecast.config import ForecastProblem
from energy_forecast.frames import ORIGIN, PREDICTION, STEP, TIMESTAMP
from energy_forecast.models.ensembles import StackingParams, VotingParams, stacking_nnls_weights, voting_weights
from energy_forecast.models.global_boosted import SERIES_ID, GlobalBoostedModel, fit_scales

__all__ = ["GLOBAL_FAMILIES", "GlobalEnsemble", "WeightsBy", "load_global_model", "panel_weights", "volume_row_scale"]

logger = logging.getLogger(__name__)

GLOBAL_FAMILIES = ("lightgbm", "xgboost")
"""Families that train one model across a panel."""
WeightsBy = Literal["panel", "series"]
_KEYS = [SERIES_ID, ORIGIN, STEP, TIMESTAMP]
_PANEL_META = ("meta_learner {!r} is not supported on a panel; use nnls_shrunk (no intercept: an intercept in one plant's unit is "
               "wrong for every other plant)")


def _weights(kind: str, params: VotingParams | StackingParams, predictions: np.ndarray, actual: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """One set of member weights from out-of-sample ``predictions`` (rows x members)."""
    if kind == "voting":
        assert isinstance(params, VotingParams)
        return voting_weights(params, predictions, actual)
    assert isinstance(params, StackingParams)
    if params.meta_learner != "nnls_shrunk":
        raise ValueError(f"model.params.{_PANEL_META.format(params.meta_learner)}")
    return stacking_nnls_weights(params, predictions, actual, groups)[0]


def panel_weights(
    kind: Literal["voting", "stacking"],
    params: VotingParams | StackingParams,
    predictions: np.ndarray,
    actual: np.ndarray,
    series: np.ndarray,
    row_scale: np.ndarray,
    by: WeightsBy = "panel",
) -> dict[str, np.ndarray]:
    """Member weights learned on a panel's out-of-sample forecasts.

    Args:
        predictions: rows x members, in each series' own unit.
        actual: the observed value of each row.
        series: the series id of each row.
        row_scale: each row is divided by it before weighing (the square root of its series' mean:
            see the module docstring).
        by: ``panel``: one set (key ``"*"``); ``series``: one set per series id.

    Returns:
        ``{"*": weights}`` or ``{series id: weights}``.
    """
    finite = np.isfinite(actual) & np.isfinite(predictions).all(axis=1)
    scaled_p, scaled_a = predictions[finite] / row_scale[finite, None], actual[finite] / row_scale[finite]
    ids = series[finite]
    if by == "panel":
        return {"*": _weights(kind, params, scaled_p, scaled_a, ids)}
    return {str(sid): _weights(kind, params, scaled_p[ids == sid], scaled_a[ids == sid], None) for sid in np.unique(ids)}


def volume_row_scale(histories: Mapping[str, pd.DataFrame], problem: ForecastProblem, ids: np.ndarray) -> np.ndarray:
    """Each row's ``row_scale`` for :func:`panel_weights`: the square root of its series' training mean."""
    means = {sid: cols[problem.target].scale for sid, cols in fit_scales(histories, problem, "mean").items()}
    return np.sqrt(np.array([means[str(sid)] for sid in ids], dtype="float64"))


class GlobalEnsemble:
    """Voting or stacking over global members (see the module docstring).

    Args:
        kind: ``voting`` or ``stacking``.
        params: the ensemble's YAML parameters (``VotingParams`` / ``StackingParams``); every member
            must be a global family (:data:`GLOBAL_FAMILIES`).
        problem: the feature recipe, shared by every member.
        scaling / train_origin_every / dtype: passed to every member.
    """

    def __init__(
        self,
        kind: Literal["voting", "stacking"],
        params: Mapping[str, Any] | VotingParams | StackingParams,
        problem: ForecastProblem,
        *,
        weights_by: WeightsBy = "panel",
        scaling: Literal["mean", "std", "none"] = "mean",
        train_origin_every: str | None = None,
        dtype: str = "float32",
    ) -> None:
        self.kind = kind
        self.params = self.check_params(kind, params)
        self.problem = problem
        self.weights_by: WeightsBy = weights_by
        self.members = [
            GlobalBoostedModel(m.type, m.params, problem, scaling=scaling, train_origin_every=train_origin_every, dtype=dtype)  # type: ignore[arg-type]
            for m in self.params.members
        ]
        self.member_names = [f"{m.type}_{i}" for i, m in enumerate(self.params.members)]
        self.weights_: dict[str, np.ndarray] = {}
        self.validation_rmse_: dict[str, float] = {}

    @staticmethod
    def check_params(kind: str, params: Mapping[str, Any] | VotingParams | StackingParams) -> VotingParams | StackingParams:
        """The ensemble's parameters validated, every member a global family.

        Raises:
            ValueError: naming the field (``model.params.members.<i>.type``).
        """
        if kind not in ("voting", "stacking"):
            raise ValueError(f"model.type: panel ensembles are voting or stacking, not {kind!r}")
        params_class = VotingParams if kind == "voting" else StackingParams
        checked = params if isinstance(params, params_class) else params_class.model_validate(dict(params))  # type: ignore[arg-type]
        for position, member in enumerate(checked.members):
            if member.type not in GLOBAL_FAMILIES:
                raise ValueError(f"model.params.members.{position}.type: {member.type!r} has no global model; panel members are {' or '.join(GLOBAL_FAMILIES)}")
        if isinstance(checked, StackingParams) and checked.meta_learner != "nnls_shrunk":
            raise ValueError(f"model.params.{_PANEL_META.format(checked.meta_learner)}")
        return checked

    # -- fitting ---------------------------------------------------------------------------------

    def fit(
        self, histories: Mapping[str, pd.DataFrame], validation: Mapping[str, tuple[pd.DataFrame, pd.DatetimeIndex]]
    ) -> GlobalEnsemble:
        """Fit every member on ``histories`` (early-stopped on ``validation``), then weigh them on their validation forecasts."""
        for name, member in zip(self.member_names, self.members, strict=True):
            logger.info("panel %s: fitting member %s on %d series", self.kind, name, len(histories))
            member.fit(histories, validation)
        frames = {sid: frame for sid, (frame, _) in validation.items()}
        origins = {sid: found for sid, (_, found) in validation.items()}
        forecasts = self.member_forecasts(frames, origins)
        ids = forecasts[SERIES_ID].to_numpy()
        actual = _actuals(forecasts, frames, self.problem.target)
        row_scale = volume_row_scale(histories, self.problem, ids)
        predictions = forecasts[self.member_names].to_numpy(dtype="float64")
        self.weights_ = panel_weights(self.kind, self.params, predictions, actual, ids, row_scale, self.weights_by)  # type: ignore[arg-type]
        combined = self._combine(predictions, ids)
        self.validation_rmse_ = {
            name: _rmse(values, actual) for name, values in [*zip(self.member_names, predictions.T, strict=True), (self.kind, combined)]
        }
        shown = {k: np.round(v, 3).tolist() for k, v in list(self.weights_.items())[:5]}
        logger.info("panel %s: weights by %s %s%s; validation RMSE %s", self.kind, self.weights_by, shown,
                    " ..." if len(self.weights_) > 5 else "", {k: round(v, 3) for k, v in self.validation_rmse_.items()})
        return self

    # -- forecasting -----------------------------------------------------------------------------

    def member_forecasts(self, frames: Mapping[str, pd.DataFrame], origins: Mapping[str, pd.DatetimeIndex]) -> pd.DataFrame:
        """The keys plus one column per member (named as :attr:`member_names`), rows in the same order."""
        forecasts = [member.predict(frames, origins) for member in self.members]
        out = forecasts[0][_KEYS].copy()
        for name, forecast in zip(self.member_names, forecasts, strict=True):
            if not forecast[_KEYS].equals(out[_KEYS]):
                raise ValueError(f"panel {self.kind}: member {name} forecast different series, origins or steps")
            out[name] = forecast[PREDICTION].to_numpy()
        return out

    def predict(self, frames: Mapping[str, pd.DataFrame], origins: Mapping[str, pd.DatetimeIndex]) -> pd.DataFrame:
        """The combined forecast: ``series_id``, ``origin``, ``step``, ``timestamp``, ``prediction``."""
        return self.combine(self.member_forecasts(frames, origins))

    def combine(self, member_forecasts: pd.DataFrame) -> pd.DataFrame:
        """The combined forecast from :meth:`member_forecasts`' frame."""
        if not self.weights_:
            raise ValueError(f"panel {self.kind}: call fit() before predict()")
        ids = member_forecasts[SERIES_ID].to_numpy()
        combined = self._combine(member_forecasts[self.member_names].to_numpy(dtype="float64"), ids)
        if self.problem.target_min is not None:
            combined = np.maximum(combined, self.problem.target_min)
        return member_forecasts[_KEYS].assign(**{PREDICTION: combined})

    def _combine(self, predictions: np.ndarray, ids: np.ndarray) -> np.ndarray:
        if "*" in self.weights_:
            return predictions @ self.weights_["*"]
        unknown = sorted({str(s) for s in ids} - set(self.weights_))
        if unknown:
            raise ValueError(f"panel {self.kind}: series {unknown[:5]} have no weights (weights_by: series; known: {sorted(self.weights_)[:10]})")
        weights = np.stack([self.weights_[str(s)] for s in ids])
        return np.einsum("ij,ij->i", predictions, weights)

    @property
    def training_rows_(self) -> int | None:
        return self.members[0].training_rows_

    @property
    def feature_names_(self) -> list[str]:
        return self.members[0].feature_names_

    # -- saving ----------------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        for position, member in enumerate(self.members):
            member.save(directory / "members" / str(position))
        (directory / "ensemble.json").write_text(json.dumps({
            "kind": self.kind, "params": self.params.model_dump(mode="json"), "weights_by": self.weights_by,
            "member_names": self.member_names, "weights": {k: v.tolist() for k, v in self.weights_.items()},
            "validation_rmse": self.validation_rmse_,
        }, indent=1))

    @classmethod
    def load(cls, directory: Path) -> GlobalEnsemble:
        directory = Path(directory)
        state = json.loads((directory / "ensemble.json").read_text())
        members = [GlobalBoostedModel.load(directory / "members" / str(i)) for i in range(len(state["member_names"]))]
        ensemble = cls(state["kind"], state["params"], members[0].problem, weights_by=state["weights_by"])
        ensemble.members = members
        ensemble.weights_ = {k: np.asarray(v, dtype="float64") for k, v in state["weights"].items()}
        ensemble.validation_rmse_ = state["validation_rmse"]
        return ensemble


def load_global_model(directory: Path | str) -> GlobalBoostedModel | GlobalEnsemble:
    """A saved global model or panel ensemble, whichever ``directory`` holds.

    Raises:
        FileNotFoundError: naming the folder and the two files looked for.
    """
    directory = Path(directory)
    if (directory / "ensemble.json").is_file():
        return GlobalEnsemble.load(directory)
    if (directory / "global.json").is_file():
        return GlobalBoostedModel.load(directory)
    raise FileNotFoundError(f"{directory}: neither global.json nor ensemble.json; save one with `energy-forecast train-global`")


def _actuals(forecast: pd.DataFrame, frames: Mapping[str, pd.DataFrame], target: str) -> np.ndarray:
    actual = np.empty(len(forecast))
    ids = forecast[SERIES_ID].to_numpy()
    for sid in pd.unique(ids):
        rows = ids == sid
        actual[rows] = frames[str(sid)][target].reindex(pd.DatetimeIndex(forecast.loc[rows, TIMESTAMP])).to_numpy(dtype="float64", na_value=np.nan)
    return actual


def _rmse(prediction: np.ndarray, actual: np.ndarray) -> float:
    ok = np.isfinite(actual)
    return float(np.sqrt(np.mean((prediction[ok] - actual[ok]) ** 2)))

