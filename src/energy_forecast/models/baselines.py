"""Baselines every run reports beside its model: seasonal naive and last value.

They read only values before each origin. For a horizon longer than the season, the seasonal
naive repeats the last full season before the origin.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from energy_forecast.config import Steps, check_steps, to_steps
from energy_forecast.frames import ORIGIN, PREDICTION, STEP, TIMESTAMP
from energy_forecast.models.base import Forecaster, ModelParams, ValidationData
from energy_forecast.models.registry import ModelConfigError, register

__all__ = ["LastValueForecaster", "SeasonalNaiveForecaster", "SeasonalNaiveParams"]


class SeasonalNaiveParams(ModelParams):
    season_length: Steps = Field(672, description="steps per season (96 = one day, 672 = one week at 15 min), or a duration: 1d, 7d")

    @field_validator("season_length")
    @classmethod
    def _positive(cls, value: Steps) -> Steps:
        check_steps([value])
        return value


class LastValueParams(ModelParams):
    pass


class _LookupForecaster(Forecaster):
    """A forecast that copies one earlier value; nothing is learned, so nothing is saved but params."""

    is_baseline = True

    def _fit(self, history: pd.DataFrame, validation: ValidationData | None) -> None:
        """Nothing to learn."""

    def _source_positions(self, origin_pos: np.ndarray, step: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _predict(self, frame: pd.DataFrame, origins: pd.DatetimeIndex) -> pd.DataFrame:
        horizon = self.problem.horizon
        origin_pos = np.repeat(frame.index.get_indexer(origins), horizon)
        step = np.tile(np.arange(1, horizon + 1), len(origins))
        source = self._source_positions(origin_pos, step)
        assert (source < origin_pos).all(), "a baseline must only read values before the origin"
        values = frame[self.problem.target].to_numpy(dtype="float64")[source]
        return pd.DataFrame(
            {ORIGIN: frame.index[origin_pos], STEP: step, TIMESTAMP: frame.index[origin_pos + step - 1], PREDICTION: values}
        )


@register
class SeasonalNaiveForecaster(_LookupForecaster):
    name = "seasonal_naive"
    params_class = SeasonalNaiveParams
    approach = "baseline: the value one season before the forecast stamp"
    params: SeasonalNaiveParams

    @property
    def season(self) -> int:
        """The season in steps of the data."""
        try:
            return to_steps(self.params.season_length, self.problem.step, "model.params.season_length")
        except ValueError as error:
            raise ModelConfigError(str(error)) from None

    @property
    def lookback(self) -> int:
        season = self.season
        return season * -(-self.problem.horizon // season)

    def _source_positions(self, origin_pos: np.ndarray, step: np.ndarray) -> np.ndarray:
        season = self.season
        seasons_back = -(-step // season)  # ceil: never reach the origin or beyond
        return origin_pos + step - 1 - seasons_back * season


@register
class LastValueForecaster(_LookupForecaster):
    name = "last_value"
    params_class = LastValueParams
    approach = "baseline: the last value before the origin, held flat"

    def _source_positions(self, origin_pos: np.ndarray, step: np.ndarray) -> np.ndarray:
        return origin_pos - 1
