"""Calibrated forecast quantiles for families that forecast a single value (split conformal).

After a point-forecast model is fitted, :func:`calibrate` takes its forecasts for the validation
origins, which the model did not train on, and keeps, for each band of horizon steps, the
empirical quantiles of the signed residuals ``actual - prediction``. :meth:`Calibration.quantiles`
adds them to a new forecast: ``q<level> = prediction + offset[band, level]``.

This is split conformal prediction for each one-sided bound (Vovk et al.; Angelopoulos & Bates,
*A Gentle Introduction to Conformal Prediction*, 2021, section 1): with ``n`` exchangeable
residuals, the ``ceil((n + 1) * level)``-th smallest is an upper bound that holds with
probability at least ``level`` (the ``floor((n + 1) * level)``-th for levels below one half, as a
lower bound). Signed residuals keep the asymmetry of load errors: spikes are larger upwards.
Bands of steps (not one quantile per step) keep enough residuals per bound: 30 validation days
give 360 residuals per three-hour band of a day-ahead forecast.

Why not a library: MAPIE's split-conformal regressors want an sklearn estimator and refit it on
their own splits, and mlforecast's conformal intervals refit the model on extra windows; here the
residuals already exist (the rolling-origin validation forecasts), and the whole computation is a
sort per band: microseconds, nothing refitted. Quantiles are monotone in the level by
construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Calibration", "calibrate"]


@dataclass(frozen=True)
class Calibration:
    """Residual quantiles per band of horizon steps."""

    levels: tuple[float, ...]
    band_starts: tuple[int, ...]
    """First step of each band (the first band starts at step 1)."""
    offsets: tuple[tuple[float, ...], ...]
    """``offsets[band][i]``: the residual quantile for ``levels[i]`` in that band."""
    residuals: tuple[int, ...]
    """How many validation residuals each band's quantiles rest on."""

    def quantiles(self, steps: np.ndarray, prediction: np.ndarray) -> dict[float, np.ndarray]:
        """``level -> prediction + offset`` for each row (``steps`` counts from 1)."""
        band = np.searchsorted(np.asarray(self.band_starts), np.asarray(steps), side="right") - 1
        table = np.asarray(self.offsets, dtype="float64")
        return {level: prediction + table[band, i] for i, level in enumerate(self.levels)}

    def to_json(self) -> dict[str, Any]:
        return {"levels": list(self.levels), "band_starts": list(self.band_starts), "offsets": [list(o) for o in self.offsets], "residuals": list(self.residuals)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        return cls(
            levels=tuple(float(v) for v in data["levels"]),
            band_starts=tuple(int(v) for v in data["band_starts"]),
            offsets=tuple(tuple(float(v) for v in row) for row in data["offsets"]),
            residuals=tuple(int(v) for v in data["residuals"]),
        )


def _conformal_quantile(sorted_residuals: np.ndarray, level: float) -> float:
    n = len(sorted_residuals)
    rank = math.ceil((n + 1) * level) if level >= 0.5 else math.floor((n + 1) * level)
    return float(sorted_residuals[min(max(rank, 1), n) - 1])


def calibrate(steps: np.ndarray, residuals: np.ndarray, *, horizon: int, levels: tuple[float, ...], bands: int) -> Calibration:
    """Residual quantiles for ``levels`` in ``bands`` equal bands of the ``horizon`` steps.

    Args:
        steps: the horizon step (1 .. horizon) of each validation forecast row.
        residuals: ``actual - prediction`` of each row; non-finite ones (no actual) are dropped.
        horizon: steps per forecast.
        levels: quantile levels, each strictly between 0 and 1.
        bands: how many bands of steps get their own quantiles (at most one per step).

    Raises:
        ValueError: a band has no finite residual to calibrate on.
    """
    steps, residuals = np.asarray(steps), np.asarray(residuals, dtype="float64")
    bands = max(1, min(bands, horizon))
    starts = tuple(int(s) for s in np.unique(np.floor(np.linspace(0, horizon, bands, endpoint=False)).astype(int) + 1))
    band = np.searchsorted(np.asarray(starts), steps, side="right") - 1
    finite = np.isfinite(residuals)
    offsets, counts = [], []
    for index, start in enumerate(starts):
        chosen = np.sort(residuals[(band == index) & finite])
        if chosen.size == 0:
            raise ValueError(f"no validation residual in the band of steps from {start}: intervals cannot be calibrated")
        offsets.append(tuple(_conformal_quantile(chosen, level) for level in levels))
        counts.append(int(chosen.size))
    return Calibration(levels=tuple(levels), band_starts=starts, offsets=tuple(offsets), residuals=tuple(counts))
