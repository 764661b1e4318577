"""Point-forecast metrics and their per-horizon breakdown.

MAPE is computed on non-zero actuals only and is named ``mape_nonzero`` to say so: the steel
series has a zero reading, where a percentage error is undefined. MASE divides MAE by the
in-sample MAE of the weekly seasonal naive forecast on the training period (Hyndman & Koehler).

Probabilistic forecasts (columns ``q<level>``, e.g. ``q0.1``) are also scored by the pinball
(quantile) loss averaged over their levels and, when ``q0.1`` and ``q0.9`` exist, by the share of
actuals inside that 80 % interval (``coverage_80``; well calibrated is 0.8) and its mean width
(``width_80``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from energy_forecast.frames import ACTUAL, PREDICTION, STEP, quantile_columns

__all__ = ["METRIC_NAMES", "mase_scale", "quantile_scores", "rmse_by_step", "score"]

METRIC_NAMES = ("rmse", "mae", "r2", "mape_nonzero", "smape", "mase")


def mase_scale(history: np.ndarray, season: int) -> float:
    """Mean absolute error of the seasonal naive forecast inside ``history``."""
    history = np.asarray(history, dtype="float64")
    if len(history) <= season:
        raise ValueError(f"MASE needs more than one season ({season} steps) of history, got {len(history)}")
    return float(np.mean(np.abs(history[season:] - history[:-season])))


def score(actual: np.ndarray, predicted: np.ndarray, *, scale: float) -> dict[str, float]:
    """RMSE, MAE, R², MAPE on non-zero actuals (%), sMAPE (%) and MASE."""
    actual = np.asarray(actual, dtype="float64")
    predicted = np.asarray(predicted, dtype="float64")
    if actual.shape != predicted.shape:
        raise ValueError(f"shape mismatch: actual {actual.shape} vs predicted {predicted.shape}")
    if not np.isfinite(actual).all() or not np.isfinite(predicted).all():
        raise ValueError("actuals and predictions must be finite")
    error = predicted - actual
    absolute = np.abs(error)
    variance = np.sum((actual - actual.mean()) ** 2)
    nonzero = actual != 0
    denominator = np.abs(actual) + np.abs(predicted)
    ratio = np.divide(2.0 * absolute, denominator, out=np.zeros_like(absolute), where=denominator > 0)
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(absolute.mean()),
        "r2": float(1.0 - np.sum(error**2) / variance) if variance > 0 else float("nan"),
        "mape_nonzero": float(100.0 * np.mean(absolute[nonzero] / np.abs(actual[nonzero]))) if nonzero.any() else float("nan"),
        "smape": float(100.0 * ratio.mean()),
        "mase": float(absolute.mean() / scale) if scale > 0 else float("nan"),
    }


def rmse_by_step(forecast: pd.DataFrame, prediction_column: str = PREDICTION) -> pd.Series:
    """RMSE of each horizon step across origins, indexed by ``step``."""
    squared = (forecast[prediction_column] - forecast[ACTUAL]) ** 2
    return np.sqrt(squared.groupby(forecast[STEP]).mean()).rename("rmse")


def quantile_scores(forecast: pd.DataFrame, actual_column: str = ACTUAL) -> dict[str, float]:
    """``pinball_loss`` (mean over levels), ``coverage_80`` and ``width_80``; empty for point forecasts.

    ``coverage_80`` is the share of actuals inside [``q0.1``, ``q0.9``] (well calibrated: 0.8),
    ``width_80`` that interval's mean width, in the target's unit.
    """
    columns = quantile_columns(forecast)
    if not columns or forecast[list(columns.values())].isna().all().all():
        return {}
    actual = forecast[actual_column].to_numpy(dtype="float64")
    losses = []
    for level, column in columns.items():
        error = actual - forecast[column].to_numpy(dtype="float64")
        losses.append(np.mean(np.maximum(level * error, (level - 1.0) * error)))
    scores = {"pinball_loss": float(np.mean(losses))}
    if 0.1 in columns and 0.9 in columns:
        lower, upper = forecast[columns[0.1]].to_numpy(dtype="float64"), forecast[columns[0.9]].to_numpy(dtype="float64")
        scores["coverage_80"] = float(((actual >= lower) & (actual <= upper)).mean())
        scores["width_80"] = float(np.mean(upper - lower))
    return scores
