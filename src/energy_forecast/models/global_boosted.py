"""Global gradient-boosted models: one LightGBM or XGBoost model across every series of a panel.

**What a global model learns from.** The rows of every series' direct multi-horizon matrix
(:mod:`energy_forecast.features`, unchanged), plus, when the panel has more than one series, the
series id as a categorical feature (``series_id``, the series' position in the sorted ids).

**Per-series scaling.** Plants differ in size by an order of magnitude, so the target and every
feature read from it (``target_*`` lags and means) are scaled per series, and so is each numeric
past covariate (its lags) by its own statistics. Both are computed on the series' training
history only. ``scaling``:

- ``mean`` (default): divide by the series' mean (a zero mean divides by 1). Zero stays zero, a
  plant at rest stays at rest, and relative errors are comparable across plants;
- ``std``: subtract the mean and divide by the standard deviation;
- ``none``: raw values (the series id alone tells plants apart).

Predictions are mapped back with the same series' statistics. ``bench/scale.py`` measures the
three on the synthetic plants.

**Change or level.** As today's models, a global model learns the change from the last value
before the origin where the recipe's ``relative_to_last`` (or the parameters' ``learn_change``)
says so: the label is the scaled target minus the scaled last value, which is added back before
the prediction is mapped back (``(y - last) / scale`` under every scaling).

**One series equals today's model.** On a single series the id feature is left out (a constant
column would still change which columns ``colsample_bytree`` draws), and scaling by positive
constants changes neither the order of any feature's values (so the histogram bins hold the same
rows) nor, with squared error, the choice of any split: each leaf value scales with the target.
The global model then makes today's trees, up to float32 rounding of the features
(``tests/unit/test_global_boosted.py`` states the tolerance).

**Memory.** The training matrix is never built whole. :class:`PanelMatrix` builds one series'
features at a time (float64 for that series while it is computed, float32 once scaled) and feeds
them to the library's streaming input: LightGBM ``Dataset`` from a list of ``lightgbm.Sequence``
(one per series; LightGBM samples rows for its bins and then reads batches), XGBoost
``QuantileDMatrix`` from a ``DataIter`` yielding one series per batch. Peak memory is the
library's binned matrix (1 byte per value and feature for LightGBM, a compressed quantile matrix
for XGBoost) plus one series' features, instead of the float64 matrix of all series.

:class:`PanelMatrix` is also what a distributed trainer (Dask) calls to build each partition's
rows: ``PanelMatrix(...).series_matrix(id)`` gives one series' float32 features and scaled target.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from energy_forecast.backtest import origins_between
from energy_forecast.config import ForecastProblem
from energy_forecast.features import build_features, feature_name
from energy_forecast.frames import ORIGIN, PREDICTION, STEP, TIMESTAMP
from energy_forecast.models.boosted import learns_change

__all__ = [
    "SERIES_FEATURE",
    "GlobalBoostedModel",
    "PanelMatrix",
    "Scaling",
    "SeriesScale",
    "fit_scales",
    "training_origins",
]

logger = logging.getLogger(__name__)

SERIES_FEATURE = "series_id"
"""The categorical feature naming the series (its position in the sorted ids)."""
SERIES_ID = "series_id"
"""The id column of a panel forecast."""
Scaling = Literal["mean", "std", "none"]
OFFSET = "scaled_last"
"""The keys' column of the scaled value a row's label is relative to (0 when the model learns the level)."""
BLOCK_ROWS = 100_000
"""Rows of float64 features built at once inside a series (the float32 series matrix holds them all)."""


@dataclass(frozen=True)
class SeriesScale:
    """``(x - center) / scale`` and back."""

    center: float = 0.0
    scale: float = 1.0

    def forward(self, values: np.ndarray) -> np.ndarray:
        return (values - self.center) / self.scale

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return values * self.scale + self.center


def _scale_of(values: np.ndarray, how: Scaling) -> SeriesScale:
    values = values[np.isfinite(values)]
    if how == "none" or values.size == 0:
        return SeriesScale()
    if how == "mean":
        mean = float(np.mean(values))
        return SeriesScale(0.0, mean if mean > 0 else 1.0)
    std = float(np.std(values))
    return SeriesScale(float(np.mean(values)), std if std > 0 else 1.0)


def fit_scales(frames: Mapping[str, pd.DataFrame], problem: ForecastProblem, how: Scaling) -> dict[str, dict[str, SeriesScale]]:
    """Per series, the scale of the target and of each numeric past covariate, from ``frames`` (training histories)."""
    numeric_past = [c.name for c in problem.covariates if c.role == "past" and c.kind == "numeric"]
    return {
        sid: {name: _scale_of(frame[name].to_numpy(dtype="float64", na_value=np.nan), how) for name in (problem.target, *numeric_past)}
        for sid, frame in frames.items()
    }


def training_origins(history: pd.DataFrame, problem: ForecastProblem, every: str | None = None) -> pd.DatetimeIndex:
    """The training origins today's tabular models use on ``history`` (``every`` overrides the spacing)."""
    spacing = every or problem.features.train_origin_every or problem.origin_every
    return origins_between(
        history.index, history.index[0], history.index[-1] + problem.step,
        horizon=problem.horizon, every=spacing, at=problem.origin_time, min_history=problem.features.lookback,
    )


class PanelMatrix:
    """The training (or validation) matrix of a panel, built one series at a time in float32.

    Args:
        frames: series id -> frame (``Forecaster.predict``'s input format), each with its origins.
        origins: series id -> origins in that frame.
        problem: the feature recipe.
        scales: from :func:`fit_scales` (training histories).
        codes: series id -> code of the ``series_id`` feature; None leaves the feature out.
        dtype: of the features handed to the library (float32; float64 reproduces today's single-series numbers exactly).
        change: the label is the change from the last value before the origin (both scaled), not the level.
    """

    def __init__(
        self,
        frames: Mapping[str, pd.DataFrame],
        origins: Mapping[str, pd.DatetimeIndex],
        problem: ForecastProblem,
        scales: Mapping[str, Mapping[str, SeriesScale]],
        codes: Mapping[str, int] | None,
        dtype: str = "float32",
        change: bool = False,
    ) -> None:
        self.frames, self.origins, self.problem, self.scales, self.codes = frames, origins, problem, scales, codes
        self.change = change
        self.dtype = np.dtype(dtype)
        self.ids = [sid for sid in frames if len(origins[sid])]
        self.rows = {sid: len(origins[sid]) * problem.horizon for sid in self.ids}
        first = self.ids[0]
        probe = build_features(frames[first], origins[first][:1], problem=problem)
        self.base_columns = list(probe.X.columns)
        self.feature_names = self.base_columns + ([SERIES_FEATURE] if codes is not None else [])
        self.categorical = [SERIES_FEATURE] if codes is not None else []
        self._transforms = self._column_transforms()
        self._cached: tuple[str, np.ndarray, np.ndarray, pd.DataFrame] | None = None

    def _column_transforms(self) -> dict[int, str]:
        """Feature position -> the series column whose scale applies to it."""
        by_column: dict[int, str] = {}
        past = {feature_name(c.name): c.name for c in self.problem.covariates if c.role == "past" and c.kind == "numeric"}
        for position, column in enumerate(self.base_columns):
            if column.startswith("target_"):
                by_column[position] = self.problem.target
            else:
                for short, name in past.items():
                    if column.startswith(f"{short}_lag") and column.endswith("_origin"):
                        by_column[position] = name
        return by_column

    @property
    def n_rows(self) -> int:
        return sum(self.rows.values())

    def series_matrix(self, sid: str) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
        """One series' features (float32, scaled), label (float32: the scaled target, less the scaled last
        value with ``change``) and keys (origin, step, timestamp and that scaled last value, ``OFFSET``)."""
        if self._cached is not None and self._cached[0] == sid:
            return self._cached[1:]
        self._cached = None  # one series in memory at a time
        origins, horizon = self.origins[sid], self.problem.horizon
        X32 = np.empty((len(origins) * horizon, len(self.feature_names)), dtype=self.dtype)
        y = np.empty(len(origins) * horizon, dtype="float32")
        keys = []
        scales = self.scales[sid]
        per_block = max(1, BLOCK_ROWS // horizon)  # origins per block: the float64 features of one block at a time
        for first in range(0, len(origins), per_block):
            built = build_features(self.frames[sid], origins[first : first + per_block], problem=self.problem)
            X = built.X.to_numpy(dtype="float64", copy=True)
            for position, column in self._transforms.items():
                X[:, position] = scales[column].forward(X[:, position])
            rows = slice(first * horizon, first * horizon + len(X))
            X32[rows, : X.shape[1]] = X
            if self.codes is not None:
                X32[rows, -1] = float(self.codes[sid])
            offset = scales[self.problem.target].forward(built.last) if self.change else np.zeros(len(built.y))
            y[rows] = scales[self.problem.target].forward(built.y) - offset
            keys.append(built.keys.assign(**{OFFSET: offset}))
        all_keys = pd.concat(keys, ignore_index=True)
        self._cached = (sid, X32, y, all_keys)
        return X32, y, all_keys

    def chunks(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """``(series id, X, y)`` one series at a time."""
        for sid in self.ids:
            X, y, _ = self.series_matrix(sid)
            yield sid, X, y

    def labels(self) -> np.ndarray:
        """The label of every row (as :meth:`series_matrix`), in :meth:`chunks` order, without building the features."""
        parts = []
        for sid in self.ids:
            frame, positions = self.frames[sid], self.frames[sid].index.get_indexer(self.origins[sid])
            origin = np.repeat(positions, self.problem.horizon)
            stamp = origin + np.tile(np.arange(self.problem.horizon), len(positions))
            y = frame[self.problem.target].to_numpy(dtype="float64", na_value=np.nan)
            scale = self.scales[sid][self.problem.target]
            label = scale.forward(y[stamp]) - (scale.forward(y[origin - 1]) if self.change else 0.0)
            parts.append(label.astype("float32"))
        return np.concatenate(parts)

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole matrix in memory (for small matrices: validation, one day's forecasts)."""
        parts = list(self.chunks())
        return np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])

    def lightgbm_sequences(self) -> list[Any]:
        """One ``lightgbm.Sequence`` per series: LightGBM samples rows from them for its bins, then reads batches."""
        import lightgbm

        matrix = self

        class SeriesRows(lightgbm.Sequence):
            batch_size = 65536

            def __init__(self, sid: str) -> None:
                self.sid = sid

            def __len__(self) -> int:
                return matrix.rows[self.sid]

            def __getitem__(self, idx: int | slice | list[int]) -> np.ndarray:
                rows = matrix.series_matrix(self.sid)[0][idx]
                # single rows feed LightGBM's bin sampling, which takes doubles; batches stay float32
                return rows.astype("float64") if isinstance(idx, (int, np.integer)) else rows

        return [SeriesRows(sid) for sid in self.ids]

    def xgboost_iter(self) -> Any:
        """An ``xgboost.DataIter`` yielding one series per batch (for ``QuantileDMatrix``)."""
        import xgboost

        matrix = self

        class SeriesBatches(xgboost.DataIter):
            def __init__(self) -> None:
                self.position = 0
                super().__init__(release_data=True)

            def next(self, input_data: Any) -> bool:
                if self.position == len(matrix.ids):
                    return False
                X, y, _ = matrix.series_matrix(matrix.ids[self.position])
                input_data(data=X, label=y, feature_names=matrix.feature_names, feature_types=matrix.xgboost_types())
                self.position += 1
                return True

            def reset(self) -> None:
                self.position = 0

        return SeriesBatches()

    def xgboost_types(self) -> list[str]:
        return ["c" if name in self.categorical else "q" for name in self.feature_names]


class GlobalBoostedModel:
    """One LightGBM or XGBoost model for every series of a panel (see the module docstring).

    ``params`` are the family's YAML parameters (``LightGBMParams`` / ``XGBoostParams``: the same
    keys as ``model.params`` of today's single-series models).
    """

    def __init__(
        self,
        family: Literal["lightgbm", "xgboost"],
        params: Mapping[str, Any],
        problem: ForecastProblem,
        *,
        scaling: Scaling = "mean",
        train_origin_every: str | None = None,
        dtype: str = "float32",
    ) -> None:
        from energy_forecast.models.lightgbm import LightGBMForecaster
        from energy_forecast.models.xgboost import XGBoostForecaster

        if family not in ("lightgbm", "xgboost"):
            raise ValueError(f"global models are lightgbm or xgboost, not {family!r}")
        self.family = family
        single = LightGBMForecaster if family == "lightgbm" else XGBoostForecaster
        self.params = single.params_class.model_validate(dict(params))
        self.fitting_only = single.fitting_only
        """Parameters that steer fitting here and are not the library's (as today's model's)."""
        self.problem = problem
        self.scaling: Scaling = scaling
        self.train_origin_every = train_origin_every
        self.dtype = dtype
        self.model_: Any = None
        self.scales_: dict[str, dict[str, SeriesScale]] = {}
        self.codes_: dict[str, int] | None = None
        self.feature_names_: list[str] = []
        self.best_iteration_: int | None = None
        self.training_rows_: int | None = None

    @property
    def learns_change(self) -> bool:
        """Whether the label is the change from the last value (the rule of today's boosters)."""
        return learns_change(self.params, self.problem.features)

    # -- fitting ---------------------------------------------------------------------------------

    def fit(
        self,
        histories: Mapping[str, pd.DataFrame],
        validation: Mapping[str, tuple[pd.DataFrame, pd.DatetimeIndex]] | None = None,
    ) -> GlobalBoostedModel:
        """Fit on every series' training ``histories``; ``validation`` (frame through validation, origins) early-stops."""
        ids = sorted(histories)
        self.codes_ = {sid: code for code, sid in enumerate(ids)} if len(ids) > 1 else None
        self.scales_ = fit_scales(histories, self.problem, self.scaling)
        origins = {sid: training_origins(histories[sid], self.problem, self.train_origin_every) for sid in ids}
        train = PanelMatrix({sid: histories[sid] for sid in ids}, origins, self.problem, self.scales_, self.codes_, self.dtype, self.learns_change)
        val = None
        if validation is not None:
            val = PanelMatrix(
                {sid: validation[sid][0] for sid in ids}, {sid: validation[sid][1] for sid in ids},
                self.problem, self.scales_, self.codes_, self.dtype, self.learns_change,
            )
        self.feature_names_ = train.feature_names
        self.training_rows_ = train.n_rows
        logger.info(
            "global %s: %d series, %d training rows x %d features (float32, %.2f GB if built whole), scaling %s, learning the %s",
            self.family, len(ids), train.n_rows, len(train.feature_names), train.n_rows * len(train.feature_names) * 4 / 1e9, self.scaling,
            "change from the last value" if self.learns_change else "level",
        )
        if self.family == "lightgbm":
            self._fit_lightgbm(train, val)
        else:
            self._fit_xgboost(train, val)
        return self

    def _early_stopping(self, val: PanelMatrix | None) -> int | None:
        return self.params.early_stopping_rounds if val is not None else None

    def _fit_lightgbm(self, train: PanelMatrix, val: PanelMatrix | None) -> None:
        import lightgbm

        estimator = lightgbm.LGBMRegressor(
            **self.params.model_dump(exclude=set(self.fitting_only)), device_type="cpu", random_state=self.problem.seed, verbose=-1
        )
        params = estimator._process_params(stage="fit")  # exactly what LGBMRegressor.fit passes to lightgbm.train
        params["metric"] = [m for m in ([params["metric"]] if isinstance(params["metric"], (str, type(None))) else params["metric"]) if m is not None]
        dataset = lightgbm.Dataset(
            train.lightgbm_sequences(), label=train.labels(), feature_name=train.feature_names,
            categorical_feature=train.categorical or "auto", params=params, free_raw_data=True,
        )
        callbacks: list[Any] = []
        valid_sets: list[Any] = []
        stopping = self._early_stopping(val)
        if val is not None:
            X_val, y_val = val.dense()
            valid_sets.append(lightgbm.Dataset(X_val, label=y_val, reference=dataset, feature_name=val.feature_names,
                                               categorical_feature=val.categorical or "auto", params=params))
            if stopping:
                callbacks.append(lightgbm.early_stopping(stopping, verbose=False))
        every = self.params.log_every

        def log_progress(env: Any) -> None:
            if env.iteration % every == 0 and env.evaluation_result_list:
                logger.info("global lightgbm: round %d: %s", env.iteration, ", ".join(f"{d}-{m} {v:.4f}" for d, m, v, _ in env.evaluation_result_list))

        callbacks.insert(0, log_progress)
        booster = lightgbm.train(params, dataset, num_boost_round=self.params.n_estimators, valid_sets=valid_sets,
                                 valid_names=["valid_0"] if valid_sets else None, callbacks=callbacks)
        booster.free_dataset()
        self.model_ = booster
        self.best_iteration_ = int(booster.best_iteration) or None

    def _fit_xgboost(self, train: PanelMatrix, val: PanelMatrix | None) -> None:
        import xgboost

        estimator = xgboost.XGBRegressor(**self.params.model_dump(exclude=set(self.fitting_only)), tree_method="hist", device="cpu", random_state=self.problem.seed)
        params = estimator.get_xgb_params()  # what XGBRegressor.fit passes to xgboost.train
        params = {k: v for k, v in params.items() if v is not None}
        dtrain = xgboost.QuantileDMatrix(train.xgboost_iter(), max_bin=params.get("max_bin", 256), enable_categorical=bool(train.categorical))
        evals = []
        stopping = self._early_stopping(val)
        if val is not None:
            X_val, y_val = val.dense()
            dval = xgboost.QuantileDMatrix(X_val, label=y_val, ref=dtrain, feature_names=val.feature_names,
                                           feature_types=val.xgboost_types(), enable_categorical=bool(val.categorical))
            evals.append((dval, "validation_0"))
        booster = xgboost.train(params, dtrain, num_boost_round=self.params.n_estimators, evals=evals,
                                early_stopping_rounds=stopping if evals else None, verbose_eval=False)
        self.model_ = booster
        best = getattr(booster, "best_iteration", None) if stopping and evals else None
        self.best_iteration_ = None if best is None else int(best) + 1

    # -- forecasting -----------------------------------------------------------------------------

    def predict(self, frames: Mapping[str, pd.DataFrame], origins: Mapping[str, pd.DatetimeIndex]) -> pd.DataFrame:
        """Point forecasts of every series from its origins, in one library call.

        Returns:
            ``series_id``, ``origin``, ``step``, ``timestamp``, ``prediction`` (in each series' own unit,
            clipped at the target's minimum).
        """
        if self.model_ is None:
            raise ValueError("global model: call fit() before predict()")
        unknown = sorted(set(frames) - set(self.scales_))
        if unknown:
            raise ValueError(f"global model: series {unknown[:5]} were not in training; known series: {sorted(self.scales_)[:10]}")
        ids = [sid for sid in sorted(frames) if len(origins.get(sid, []))]
        matrix = PanelMatrix(
            {sid: frames[sid] for sid in ids}, {sid: origins[sid] for sid in ids}, self.problem, self.scales_, self.codes_, self.dtype, self.learns_change
        )
        parts, keys = [], []
        for sid in ids:
            X, _, key = matrix.series_matrix(sid)
            parts.append(X)
            keys.append(key.assign(**{SERIES_ID: sid}))
        X = np.concatenate(parts)
        raw = self._predict_matrix(X)
        out = pd.concat(keys, ignore_index=True)
        predictions = np.empty(len(out))
        start = 0
        for sid, key in zip(ids, keys, strict=True):
            end = start + len(key)
            scaled = raw[start:end].astype("float64") + key[OFFSET].to_numpy()
            predictions[start:end] = self.scales_[sid][self.problem.target].inverse(scaled)
            start = end
        if self.problem.target_min is not None:
            predictions = np.maximum(predictions, self.problem.target_min)
        out[PREDICTION] = predictions
        return out[[SERIES_ID, ORIGIN, STEP, TIMESTAMP, PREDICTION]]

    def _predict_matrix(self, X: np.ndarray) -> np.ndarray:
        if self.family == "lightgbm":
            return np.asarray(self.model_.predict(X), dtype="float64")
        import xgboost

        data = xgboost.DMatrix(X, feature_names=self.feature_names_,
                               feature_types=["c" if n == SERIES_FEATURE and self.codes_ is not None else "q" for n in self.feature_names_],
                               enable_categorical=self.codes_ is not None)
        rounds = (0, self.best_iteration_) if self.best_iteration_ else (0, 0)
        return np.asarray(self.model_.predict(data, iteration_range=rounds), dtype="float64")

    # -- saving ----------------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """The native model plus ``global.json`` (family, parameters, scales, series codes, features)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        native = "model.txt" if self.family == "lightgbm" else "model.ubj"
        self.model_.save_model(str(directory / native))
        (directory / "global.json").write_text(json.dumps({
            "family": self.family, "params": self.params.model_dump(mode="json"), "problem": self.problem.model_dump(mode="json"),
            "scaling": self.scaling, "dtype": self.dtype, "train_origin_every": self.train_origin_every, "codes": self.codes_,
            "scales": {sid: {c: [s.center, s.scale] for c, s in cols.items()} for sid, cols in self.scales_.items()},
            "feature_names": self.feature_names_, "best_iteration": self.best_iteration_, "native_file": native,
        }, indent=1))

    @classmethod
    def load(cls, directory: Path) -> GlobalBoostedModel:
        directory = Path(directory)
        state = json.loads((directory / "global.json").read_text())
        model = cls(state["family"], state["params"], ForecastProblem.model_validate(state["problem"]),
                    scaling=state["scaling"], train_origin_every=state["train_origin_every"], dtype=state["dtype"])
        model.codes_ = state["codes"]
        model.scales_ = {sid: {c: SeriesScale(*v) for c, v in cols.items()} for sid, cols in state["scales"].items()}
        model.feature_names_ = state["feature_names"]
        model.best_iteration_ = state["best_iteration"]
        if model.family == "lightgbm":
            import lightgbm

            model.model_ = lightgbm.Booster(model_file=str(directory / state["native_file"]))
        else:
            import xgboost

            model.model_ = xgboost.Booster()
            model.model_.load_model(str(directory / state["native_file"]))
        return model
