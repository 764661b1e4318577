"""Chronological split and rolling origins."""

from __future__ import annotations

import pandas as pd
import pytest

from energy_forecast.backtest import origins_between, split_series
from energy_forecast.config import SplitConfig, TaskConfig

DAY_AHEAD = TaskConfig(name="day_ahead", horizon=96, origin_every="1D", origin_time="00:00")
NOWCAST = TaskConfig(name="nowcast", horizon=1, origin_every="15min")


@pytest.fixture
def frame() -> pd.DataFrame:
    index = pd.date_range("2018-01-01", "2018-03-31 23:45", freq="15min", name="timestamp")
    return pd.DataFrame({"y": range(len(index))}, index=index, dtype=float)


def test_when_origins_are_placed_then_they_are_daily_at_midnight_and_the_horizon_fits(frame):
    origins = origins_between(frame.index, pd.Timestamp("2018-03-01"), pd.Timestamp("2018-04-01"), horizon=96, every="1D")
    assert len(origins) == 31 and origins[0] == pd.Timestamp("2018-03-01") and origins[-1] == pd.Timestamp("2018-03-31")
    assert (origins.hour == 0).all() and (origins.minute == 0).all()


def test_when_origins_have_a_time_of_day_then_they_are_phase_aligned(frame):
    origins = origins_between(frame.index, pd.Timestamp("2018-03-01"), pd.Timestamp("2018-03-04"), horizon=4, every="12h", at="06:00")
    assert origins.strftime("%d %H:%M").tolist() == ["01 06:00", "01 18:00", "02 06:00", "02 18:00", "03 06:00", "03 18:00"]


def test_when_split_then_periods_are_chronological_and_forecasts_stay_inside_their_period(frame):
    bounds = SplitConfig(train_end="2018-02-15", validation_end="2018-03-01", test_end="2018-04-01")
    split = split_series(frame, bounds, DAY_AHEAD, min_history=672)
    assert split.history.index[-1] < pd.Timestamp("2018-02-15") <= split.validation_origins[0]
    assert split.validation_origins[-1] + pd.Timedelta(minutes=15 * 95) < pd.Timestamp("2018-03-01") <= split.test_origins[0]
    assert len(split.test_origins) == 31 and split.through_test.index[-1] == pd.Timestamp("2018-03-31 23:45")
    nowcast = split_series(frame, bounds, NOWCAST, min_history=672)
    assert len(nowcast.test_origins) == 31 * 96


def test_when_a_period_has_no_room_for_an_origin_then_the_bound_is_named(frame):
    bounds = SplitConfig(train_end="2018-02-15", validation_end="2018-02-15 12:00", test_end="2018-04-01")
    with pytest.raises(ValueError, match="split.validation_end: no day_ahead origin"):
        split_series(frame, bounds, DAY_AHEAD, min_history=672)
    with pytest.raises(ValueError, match="split.train_end=2018-01-03.*the features need more than 672"):
        split_series(frame, SplitConfig(train_end="2018-01-03", validation_end="2018-02-01"), DAY_AHEAD, min_history=672)
