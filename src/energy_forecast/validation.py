"""Multi-window validation: what a model tunes is chosen on several windows before the test.

::

    train_start        w1        w2        w3 = validation   validation_end      test_end
        |-------------|---------|---------|-------------------|-------- test -------|
        fit ......... > forecast w1                                   (untouched until
        fit ..................... > forecast w2                        the final score)
        fit ............................... > forecast w3
        refit on everything before the test, for the median best round count  -> test

Each window is scored by the same rolling-origin backtest as the test: a model trained only on
data before the window's start (early-stopping on the window) forecasts its origins. The
out-of-window forecasts of every window give the validation score, the early-stopping round
count (their median best iteration), the ensemble weights and the calibrated quantiles. With
``split.refit`` the model is then trained on everything before the test for that round count, with
no early stopping; without, the final model is the last window's. Nothing reads the test period.

Chronos-2 and the baselines choose nothing on windows: they fit on the training period and
validate on the classic validation period (train_end .. validation_end) as before.

    from energy_forecast.validation import validate
    result = validate(config)                # per-window RMSE, rounds, forecasts; no test scoring
    result.window_rmse, result.rmse, result.record.chosen_rounds
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from energy_forecast.backtest import ChronologicalSplit, Window, attach_actuals, split_series
from energy_forecast.config import ConfigError, TrainingConfig
from energy_forecast.data.loading import SeriesData, load_series
from energy_forecast.models import Forecaster, ValidationData, create_model
from energy_forecast.models.base import WINDOW, ValidationRecord, window_key

__all__ = ["ValidationResult", "validate"]

logger = logging.getLogger(__name__)


@dataclass
class ValidationResult:
    """A model fitted on the validation windows (and, with refit, on everything before the test)."""

    model: Forecaster
    split: ChronologicalSplit
    record: ValidationRecord
    windows: tuple[Window, ...]
    """The windows the record's forecasts cover (the classic validation period for families
    that choose nothing on windows)."""

    @property
    def window_rmse(self) -> list[float]:
        return self.record.window_rmse()

    @property
    def rmse(self) -> float:
        """RMSE pooled over every window's out-of-window forecasts."""
        return self.record.rmse()

    @property
    def origins(self) -> pd.DatetimeIndex:
        """Every window's origins, in the record's order."""
        return pd.DatetimeIndex(np.concatenate([w.origins.to_numpy() for w in self.windows]))

    def summary(self) -> dict[str, float]:
        """Flat numbers worth logging: per-window RMSE, rounds, the chosen count."""
        out: dict[str, float] = {f"window{i + 1}_rmse": rmse for i, rmse in enumerate(self.window_rmse)}
        out |= {f"window{i + 1}_rounds": float(r) for i, r in enumerate(self.record.rounds) if r is not None}
        if self.record.chosen_rounds is not None:
            out["chosen_rounds"] = float(self.record.chosen_rounds)
        out["windows"] = float(len(self.windows))
        out["refit"] = float(self.record.refit)
        return out


def _split(config: TrainingConfig, series: SeriesData, model: Forecaster) -> ChronologicalSplit:
    try:
        return split_series(series.frame, config.split, config.task, min_history=model.lookback)
    except ValueError as error:
        raise ConfigError(f"{config.source}: {error}") from None


def validate(
    config: TrainingConfig,
    series: SeriesData | None = None,
    *,
    model: Forecaster | None = None,
    split: ChronologicalSplit | None = None,
    refit: bool | None = None,
    on_window: Callable[[int, float], None] | None = None,
) -> ValidationResult:
    """Fit ``config``'s model on its validation windows; the test period is never read.

    Args:
        series: the loaded data (loaded from ``config.data`` when None).
        model: an unfitted model to fit (an ensemble may hold reused fitted members); built from
            ``config`` when None.
        split: the split to use (built from ``config.split`` when None).
        refit: overrides ``config.split.refit``. ``False`` costs no extra fit: the per-window scores
            are the same either way (what tuning needs).
        on_window: called with (window position, RMSE) after each window, e.g. to prune a trial.

    Returns:
        The fitted model, its out-of-window forecasts and per-window scores.
    """
    series = series if series is not None else load_series(config.data)
    model = model if model is not None else create_model(config.model, config.problem)
    split = split if split is not None else _split(config, series, model)
    refit = config.split.refit if refit is None else refit
    frame = split.through_validation
    if model.windowed:
        record = model.fit_windows(frame, split.windows, refit=refit, on_window=on_window)
        return ValidationResult(model, split, record, split.windows)
    if len(split.windows) > 1 or refit:
        logger.info("%s chooses nothing on validation windows: it fits on the training period and validates on %s..%s",
                    model.name, split.history.index[-1], split.through_validation.index[-1])
    model.fit(split.history, ValidationData(frame, split.validation_origins))
    forecast = attach_actuals(model.predict(frame, split.validation_origins), frame, model.problem.target)
    window = Window(split.validation_origins[0], frame.index[-1] + model.problem.step, split.validation_origins)
    record = ValidationRecord(window_key([window]), forecast.assign(**{WINDOW: 0}), [None], None, False)
    if on_window is not None:
        on_window(0, record.rmse())
    return ValidationResult(model, split, record, (window,))
