"""The one interface every model family implements.

The base class owns the public methods: :meth:`Forecaster.fit`, :meth:`Forecaster.predict` and
:meth:`Forecaster.save` check their inputs, do the shared work (category codes, calibrated
quantiles, the saved file's layout) and call the family's ``_fit`` / ``_predict`` /
``_save_state``. Families must not override them. A family never imports Dagster, MLflow or
another family (ensembles reach their members through this interface); it declares what it can
do as class attributes.

A saved model is a folder: ``forecaster.json`` (family name, parameters, the forecasting problem,
learned categories, calibration and the family's small state) plus native files the family
writes (an XGBoost ``.ubj``, a LightGBM ``.txt``, a CatBoost ``.cbm``, Chronos-2 safetensors).
No pickle: renaming or moving a class never breaks a saved model, only the registry name matters
(:func:`energy_forecast.models.registry.load_forecaster`).
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self

import numpy as np
import pandas as pd
from pydantic import ConfigDict

from energy_forecast.config import ForecastProblem, StrictModel
from energy_forecast.device import DeviceChoice, driver_cuda_available
from energy_forecast.frames import ACTUAL, KEYS, ORIGIN, PREDICTION, STEP, TIMESTAMP, quantile_column, quantile_columns
from energy_forecast.models.intervals import Calibration, calibrate

__all__ = ["SAVED_FORMAT", "Forecaster", "ModelParams", "ValidationData", "ValidationRecord", "WindowSpan"]

logger = logging.getLogger(__name__)

SAVED_FORMAT = 1
"""Version of the saved-model layout; bumped when ``forecaster.json`` changes incompatibly."""
MANIFEST = "forecaster.json"
VALIDATION_FILE = "validation_forecasts.npz"
WINDOW = "window"


class ModelParams(StrictModel):
    """Base of every family's hyperparameters: defaults as data, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


@dataclass(frozen=True)
class ValidationData:
    """A frame through the end of validation, and the origins to validate on."""

    frame: pd.DataFrame
    origins: pd.DatetimeIndex


class WindowSpan(Protocol):
    """What fitting on validation windows needs of a window (:class:`energy_forecast.backtest.Window`)."""

    start: pd.Timestamp
    end: pd.Timestamp
    origins: pd.DatetimeIndex


@dataclass
class ValidationRecord:
    """What a model learned on the validation windows, kept with it (and saved with it).

    ``forecast`` holds the out-of-window forecasts: for each window, the forecasts of a model
    trained only on data before that window (``window``, ``origin``, ``step``, ``timestamp``,
    ``prediction``, ``actual``). Ensembles learn their weights from their members' records.
    """

    windows: list[tuple[str, str]]
    """(start, end) of each window, as ISO stamps."""
    forecast: pd.DataFrame
    rounds: list[int | None] = field(default_factory=list)
    """Best iteration early stopping found in each window (None: the family has no rounds)."""
    chosen_rounds: int | None = None
    """Rounds the final model uses with ``refit`` (the median of ``rounds``)."""
    refit: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    """Small facts of the combination (ensemble weights ...)."""

    def window_rmse(self) -> list[float]:
        errors = self.forecast[ACTUAL] - self.forecast[PREDICTION]
        return [float(np.sqrt(np.mean(np.square(e)))) for _, e in errors.groupby(self.forecast[WINDOW], sort=True)]

    def rmse(self) -> float:
        return float(np.sqrt(np.mean(np.square(self.forecast[ACTUAL] - self.forecast[PREDICTION]))))

    def to_json(self) -> dict[str, Any]:
        return {"windows": self.windows, "rounds": self.rounds, "chosen_rounds": self.chosen_rounds, "refit": self.refit, "details": self.details}

    @classmethod
    def from_json(cls, state: dict[str, Any], forecast: pd.DataFrame) -> ValidationRecord:
        return cls(
            windows=[tuple(w) for w in state["windows"]], forecast=forecast, rounds=list(state.get("rounds", [])),
            chosen_rounds=state.get("chosen_rounds"), refit=bool(state.get("refit")), details=dict(state.get("details", {})),
        )


_STAMPS = (ORIGIN, TIMESTAMP)


def _save_forecast(forecast: pd.DataFrame, path: Path) -> dict[str, Any]:
    """Out-of-window forecasts as a NumPy archive (nothing beyond NumPy needed to read a model back);
    stamps as nanoseconds since the epoch, their zone in the manifest."""
    zone = forecast[TIMESTAMP].dt.tz
    columns = {WINDOW: forecast[WINDOW].to_numpy(dtype="int64"), STEP: forecast[STEP].to_numpy(dtype="int64")}
    columns |= {name: pd.DatetimeIndex(forecast[name]).as_unit("ns").asi8 for name in _STAMPS}
    columns |= {name: forecast[name].to_numpy(dtype="float64") for name in (PREDICTION, ACTUAL)}
    with path.open("wb") as handle:
        np.savez_compressed(handle, **columns)
    return {"timezone": None if zone is None else str(zone)}


def _load_forecast(path: Path, zone: str | None) -> pd.DataFrame:
    with np.load(path, allow_pickle=False) as archive:
        columns = {name: archive[name] for name in archive.files}
    frame = {}
    for name in (ORIGIN, STEP, TIMESTAMP):
        if name in _STAMPS:
            stamps = pd.DatetimeIndex(columns[name].astype("datetime64[ns]"))
            frame[name] = stamps.tz_localize("UTC").tz_convert(zone) if zone else stamps
        else:
            frame[name] = columns[name]
    return pd.DataFrame(frame | {PREDICTION: columns[PREDICTION], ACTUAL: columns[ACTUAL], WINDOW: columns[WINDOW]})


def window_key(windows: Sequence[WindowSpan]) -> list[tuple[str, str]]:
    return [(pd.Timestamp(w.start).isoformat(), pd.Timestamp(w.end).isoformat()) for w in windows]


class Forecaster(ABC):
    """A model that forecasts ``problem.horizon`` steps from each of many origins.

    Subclasses set ``name`` (the registry key and YAML ``model.type``), ``params_class`` and
    ``approach``, and implement ``_fit`` / ``_predict`` (and, when they learn anything,
    ``_save_state`` / ``_load_state``).
    """

    name: ClassVar[str]
    params_class: ClassVar[type[ModelParams]]
    approach: ClassVar[str]
    mlflow_flavour: ClassVar[str] = "pyfunc"
    """A native MLflow flavour logged beside the contract model (``pyfunc``: none)."""
    is_baseline: ClassVar[bool] = False
    native_quantiles: ClassVar[bool] = False
    """True when ``_predict`` returns the quantile columns itself; otherwise they are calibrated
    on the validation period (:mod:`energy_forecast.models.intervals`)."""
    pip_packages: ClassVar[tuple[str, ...]] = ("numpy", "pandas")
    """Distributions a logged model needs, recorded with their installed versions."""
    windowed: ClassVar[bool] = False
    """True when the family chooses what it tunes (rounds, weights) on several validation windows
    (:meth:`fit_windows`); the others (Chronos-2, baselines) fit on the last window as before."""

    def __init__(self, params: ModelParams, problem: ForecastProblem, device: DeviceChoice) -> None:
        self.params = params
        self.problem = problem
        self.device = device
        self.is_fitted_ = False
        self.categories_: dict[str, list[str]] = {}
        self.calibration_: Calibration | None = None
        self.validation_: ValidationRecord | None = None

    # -- capabilities --------------------------------------------------------------------------

    @classmethod
    def gpu_support(cls, params: ModelParams) -> bool | str:
        """True if this family can use a GPU with these params, else a reason why not."""
        return f"{cls.name} runs on the CPU only"

    @classmethod
    def gpu_probe(cls) -> Callable[[], tuple[bool, str]]:
        """How to ask whether a GPU is usable for this family (torch families ask torch)."""
        return driver_cuda_available

    @classmethod  # noqa: B027  (an optional hook)
    def check_environment(cls, params: ModelParams) -> None:
        """Refuse, before any data is read, parameters this installation cannot honour."""

    @property
    def lookback(self) -> int:
        """Steps of history before an origin the model reads: its minimum input, and all it uses."""
        return 1

    @property
    def member_configs(self) -> list[str]:
        """Training YAMLs whose fitted models this one is built from (ensembles); none by default."""
        return []

    def use_fitted_members(self, fitted: Mapping[str, Forecaster]) -> None:
        """Reuse fitted member models (ensembles only)."""
        raise ValueError(f"{self.name} has no members to reuse")

    @property
    def fitted_rounds(self) -> int | None:
        """Rounds early stopping kept in the last fit (boosted trees); None for other families."""
        return None

    def fix_rounds(self, rounds: int) -> None:
        """Train exactly ``rounds`` rounds from now on, without early stopping (boosted trees only)."""
        raise ValueError(f"{self.name} has no rounds to fix")

    def clone(self) -> Forecaster:
        """A new, unfitted model with the same parameters, problem and device."""
        return type(self)(self.params, self.problem, self.device)

    def prepare(self) -> None:  # noqa: B027  (an optional hook: most families need nothing)
        """Check external prerequisites (weights, say) before any run starts. Cheap; may repeat."""

    # -- public API (not to be overridden) -----------------------------------------------------

    def fit(self, history: pd.DataFrame, validation: ValidationData | None = None) -> Self:
        """Fit on ``history`` (the training period only); ``validation`` may tune, weight and calibrate."""
        self._check_columns(history)
        if len(history) <= self.lookback:
            raise ValueError(f"{self.name}: {len(history)} rows of history; needs more than {self.lookback}")
        self._learn_categories(history)
        history = self._encode(history)
        if validation is not None:
            validation = ValidationData(self._encode(validation.frame), validation.origins)
        self._fit(history, validation)
        self.is_fitted_ = True
        if not self.native_quantiles and validation is not None and len(validation.origins):
            self._calibrate(validation)
        return self

    def fit_windows(
        self,
        frame: pd.DataFrame,
        windows: Sequence[WindowSpan],
        *,
        refit: bool = False,
        on_window: Callable[[int, float], None] | None = None,
    ) -> ValidationRecord:
        """Fit choosing what the family tunes on several validation windows, then the final model.

        For each window (oldest first) a copy of this model is trained on ``frame`` before the
        window's start, early-stopping on the window's origins, and forecasts those origins: the
        out-of-window forecasts. With ``refit`` this model is then trained on all of ``frame`` (all
        data before the test) for the median of the windows' best round counts, with no early
        stopping; without, it is the last window's model. Quantiles are calibrated on the
        out-of-window residuals of every window.

        Args:
            frame: everything before the test period (nothing of it is the test).
            windows: from :func:`energy_forecast.backtest.validation_windows`, oldest first.
            on_window: called with (window position, its RMSE) after each window, e.g. to prune a
                tuning trial by raising.

        Returns:
            The record, also kept as ``validation_`` and saved with the model.
        """
        if not windows:
            raise ValueError(f"{self.name}: no validation window to fit on")
        if not self.windowed:
            raise ValueError(f"{self.name} does not choose anything on validation windows; fit it on the last one")
        record = self._fit_windows(frame, list(windows), refit, on_window)
        self.validation_ = record
        if not self.native_quantiles:
            self.calibrate_from(record.forecast)
        return record

    def _fit_windows(
        self, frame: pd.DataFrame, windows: list[WindowSpan], refit: bool, on_window: Callable[[int, float], None] | None
    ) -> ValidationRecord:
        """One model per window; ensembles override this to combine their members' records."""
        parts, rounds = [], []
        for position, window in enumerate(windows):
            last = position == len(windows) - 1
            model = self if last and not refit else self.clone()
            through = frame.loc[frame.index < window.end]
            model.fit(frame.loc[frame.index < window.start], ValidationData(through, window.origins))
            forecast = model.predict(through, window.origins)[list(KEYS) + [PREDICTION]]
            actual = through[self.problem.target].reindex(pd.DatetimeIndex(forecast[TIMESTAMP])).to_numpy(dtype="float64")
            parts.append(forecast.assign(**{ACTUAL: actual, WINDOW: position}))
            rounds.append(model.fitted_rounds)
            rmse = float(np.sqrt(np.mean(np.square(actual - parts[-1][PREDICTION].to_numpy()))))
            logger.info("%s: window %d/%d %s..%s: RMSE %.3f, rounds %s", self.name, position + 1, len(windows), window.start, window.end, rmse, rounds[-1])
            if on_window is not None:
                on_window(position, rmse)
        chosen = int(np.median([r for r in rounds if r is not None])) if all(r is not None for r in rounds) else None
        if refit:
            if chosen is not None:
                self.fix_rounds(chosen)
                logger.info("%s: refitting on everything before the test (%s..%s) for %d rounds (windows: %s)", self.name, frame.index[0], frame.index[-1], chosen, rounds)
            else:
                logger.info("%s: no round count to choose: refitting on everything before the test as configured", self.name)
            self.fit(frame)
        return ValidationRecord(window_key(windows), pd.concat(parts, ignore_index=True), rounds, chosen, refit)

    def calibrate_from(self, forecast: pd.DataFrame) -> None:
        """Calibrate the quantiles on out-of-sample forecasts (``step``, ``prediction``, ``actual``)."""
        self.calibration_ = calibrate(
            forecast[STEP].to_numpy(),
            forecast[ACTUAL].to_numpy(dtype="float64") - forecast[PREDICTION].to_numpy(dtype="float64"),
            horizon=self.problem.horizon,
            levels=self.problem.quantile_levels,
            bands=self.problem.interval_bands,
        )
        logger.info(
            "%s: quantiles calibrated on %d out-of-sample residuals in %d band(s) of steps",
            self.name, sum(self.calibration_.residuals), len(self.calibration_.band_starts),
        )

    def predict(self, frame: pd.DataFrame, origins: pd.DatetimeIndex) -> pd.DataFrame:
        """Forecast ``horizon`` steps from every origin.

        ``frame`` may hold values at and after an origin (the test actuals, say): a model only
        reads target and past-covariate values strictly before each origin, and known-future
        covariates up to the end of that origin's horizon.

        Returns:
            One row per (origin, step): ``origin``, ``step``, ``timestamp``, ``prediction`` and a
            ``q<level>`` column per quantile level of the problem (NaN when a point-forecast model
            had no validation period to calibrate on).
        """
        if not self.is_fitted_:
            raise ValueError(f"{self.name}: call fit() before predict()")
        self._check_columns(frame)
        frame = self._encode(frame)
        self._check_origins(frame, origins)
        forecast = self._predict(frame, origins)
        if not self.native_quantiles:
            forecast = self._with_quantiles(forecast)
        ordered = [ORIGIN, STEP, TIMESTAMP, PREDICTION, *(quantile_column(q) for q in self.problem.quantile_levels)]
        forecast = forecast[ordered].sort_values([ORIGIN, STEP], ignore_index=True)
        if self.problem.target_min is not None:  # the target cannot go lower (energy use is never negative)
            forecast[ordered[3:]] = forecast[ordered[3:]].clip(lower=self.problem.target_min)
        return forecast

    def save(self, directory: Path) -> None:
        """Write the fitted model to ``directory``: a JSON manifest plus the family's native files."""
        if not self.is_fitted_:
            raise ValueError(f"{self.name}: call fit() before save()")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        manifest = {
            "format": SAVED_FORMAT,
            "family": self.name,
            "params": self.params.model_dump(mode="json", exclude_unset=True),  # as configured; defaults apply on load
            "params_resolved": self.params.model_dump(mode="json"),  # for reading only
            "problem": self.problem.model_dump(mode="json"),
            "device": {"requested": self.device.requested, "device": self.device.device, "reason": self.device.reason},
            "categories": self.categories_,
            "calibration": self.calibration_.to_json() if self.calibration_ else None,
            "state": self._save_state(directory),
        }
        if self.validation_ is not None:  # the out-of-window forecasts: an ensemble reusing this model learns from them
            manifest["validation"] = self.validation_.to_json() | {"file": VALIDATION_FILE, **_save_forecast(self.validation_.forecast, directory / VALIDATION_FILE)}
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=1))

    def restore(self, directory: Path, manifest: dict[str, Any]) -> Self:
        """Fill a new instance with what :meth:`save` wrote (called by ``load_forecaster``)."""
        self.categories_ = {name: list(values) for name, values in manifest.get("categories", {}).items()}
        calibration = manifest.get("calibration")
        self.calibration_ = Calibration.from_json(calibration) if calibration else None
        self._load_state(Path(directory), manifest.get("state") or {})
        if manifest.get("validation"):
            state = manifest["validation"]
            self.validation_ = ValidationRecord.from_json(state, _load_forecast(Path(directory) / state["file"], state.get("timezone")))
        self.is_fitted_ = True
        return self

    # -- for tracking ----------------------------------------------------------------------------

    def native_model(self) -> Any:
        """The library object a native MLflow flavour logs (only for non-pyfunc flavours)."""
        raise NotImplementedError(f"{self.name} has no native MLflow flavour")

    def fitted_summary(self) -> dict[str, Any]:
        """Facts learned in fitting worth logging (best iteration, ensemble weights …)."""
        return {}

    # -- for subclasses --------------------------------------------------------------------------

    @abstractmethod
    def _fit(self, history: pd.DataFrame, validation: ValidationData | None) -> None: ...

    @abstractmethod
    def _predict(self, frame: pd.DataFrame, origins: pd.DatetimeIndex) -> pd.DataFrame:
        """``origin``, ``step``, ``timestamp``, ``prediction`` (and quantiles, if native) per row."""

    def _save_state(self, directory: Path) -> dict[str, Any]:
        """Write native files into ``directory``; return small JSON-able state. Nothing by default."""
        return {}

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:  # noqa: B027  (nothing saved by default)
        """Read back what :meth:`_save_state` wrote."""

    # -- shared work -----------------------------------------------------------------------------

    def _calibrate(self, validation: ValidationData) -> None:
        forecast = self._predict(validation.frame, validation.origins)
        actual = validation.frame[self.problem.target].reindex(pd.DatetimeIndex(forecast[TIMESTAMP])).to_numpy(dtype="float64")
        self.calibrate_from(forecast.assign(**{ACTUAL: actual}))

    def add_quantiles(self, forecast: pd.DataFrame) -> pd.DataFrame:
        """``forecast`` with the calibrated quantile columns for its ``step`` and ``prediction``."""
        return self._with_quantiles(forecast)

    def _with_quantiles(self, forecast: pd.DataFrame) -> pd.DataFrame:
        forecast = forecast.drop(columns=list(quantile_columns(forecast).values()))
        if self.calibration_ is None:
            values = {level: np.full(len(forecast), np.nan) for level in self.problem.quantile_levels}
        else:
            values = self.calibration_.quantiles(forecast[STEP].to_numpy(), forecast[PREDICTION].to_numpy(dtype="float64"))
        return forecast.assign(**{quantile_column(level): column for level, column in values.items()})

    def _learn_categories(self, history: pd.DataFrame) -> None:
        self.categories_ = {
            name: [str(c) for c in history[name].cat.categories] if isinstance(history[name].dtype, pd.CategoricalDtype)
            else sorted(str(v) for v in history[name].dropna().unique())
            for name in self.problem.categorical_covariates
        }

    def _encode(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Categorical covariates as the categories learned in fitting, whatever the input's dtype.

        Raises:
            ValueError: a value the model never saw, naming the column and the known values.
        """
        changed: dict[str, pd.Categorical] = {}
        for name, categories in self.categories_.items():
            column = frame[name]
            if isinstance(column.dtype, pd.CategoricalDtype) and [str(c) for c in column.cat.categories] == categories:
                continue
            text = column.astype("string")
            unknown = sorted(set(text.dropna().unique()) - set(categories))
            if unknown:
                raise ValueError(f"{self.name}: covariate '{name}' has values {unknown[:5]} not seen in training; known values: {categories}")
            changed[name] = pd.Categorical(text.astype(object).where(text.notna(), None), categories=categories)
        return frame.assign(**changed) if changed else frame

    def _check_columns(self, frame: pd.DataFrame) -> None:
        needed = [self.problem.target, *self.problem.covariate_names]
        missing = [column for column in needed if column not in frame.columns]
        if missing:
            raise ValueError(f"{self.name}: the frame lacks columns {missing}")

    def _check_origins(self, frame: pd.DataFrame, origins: pd.DatetimeIndex) -> None:
        """Each origin is a stamp with enough history, and its known-future values cover the horizon."""
        positions = frame.index.get_indexer(origins)
        if (positions < 0).any():
            raise ValueError(f"{self.name}: origins {origins[positions < 0][:3].tolist()} are not stamps of the frame")
        short = positions < self.lookback
        if short.any():
            raise ValueError(
                f"{self.name}: origin {origins[short][0]} has {positions[short][0]} steps of history, needs {self.lookback}"
            )
        horizon = self.problem.horizon
        beyond = positions + horizon > len(frame)
        if beyond.any():
            raise ValueError(
                f"{self.name}: origin {origins[beyond][0]}: the frame ends before the {horizon}-step horizon; "
                f"append the horizon's rows with known-future covariates ({list(self.problem.future_covariates)})"
            )
        window = positions[:, None] + np.arange(horizon)
        for name in self.problem.future_covariates:
            gaps = ~frame[name].notna().to_numpy()[window].all(axis=1)
            if gaps.any():
                raise ValueError(
                    f"{self.name}: known-future covariate '{name}' is missing inside the horizon of origin {origins[gaps][0]}"
                )
