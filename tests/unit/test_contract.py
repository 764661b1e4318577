"""The forecast contract's input checks, its batching, and the calibrated intervals, on small frames.

A seasonal-naive model stands in for every family here (the shared suite in test_models.py runs
the contract over all of them): it is exact, so a forecast read from the wrong rows shows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from energy_forecast.config import Covariate, ForecastProblem, ModelConfig
from energy_forecast.contract import ContractError, build_input, describe_lookback, forecast, requests_from_input
from energy_forecast.frames import ORIGIN, PREDICTION, TIMESTAMP
from energy_forecast.models import ValidationData, create_model
from energy_forecast.models.intervals import calibrate

HORIZON = 8
STEP = pd.Timedelta("15min")


@pytest.fixture(scope="module")
def series() -> pd.DataFrame:
    index = pd.date_range("2018-01-01", periods=96 * 10, freq="15min", name=TIMESTAMP)
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "y": 20 + 10 * np.sin(np.arange(len(index)) * 2 * np.pi / 96) + rng.normal(0, 1, len(index)),
            "past": rng.normal(0, 1, len(index)),
            "plan": pd.Categorical(np.where(index.hour < 8, "low", "high")),
        },
        index=index,
    )


@pytest.fixture(scope="module")
def problem() -> ForecastProblem:
    return ForecastProblem(
        target="y",
        horizon=HORIZON,
        covariates=(Covariate(name="past", role="past"), Covariate(name="plan", role="future", kind="categorical")),
        features={"seasonal_lags": [], "seasonal_means": []},
    )


@pytest.fixture(scope="module")
def model(series, problem):
    fitted = create_model(ModelConfig(type="seasonal_naive", params={"season_length": 96}), problem)
    origins = pd.DatetimeIndex(series.index[96 * 5 : 96 * 7 : 4])
    return fitted.fit(series.iloc[: 96 * 5], ValidationData(series.iloc[: 96 * 7 + HORIZON], origins))


def request(series, problem, model, origins) -> pd.DataFrame:
    return build_input(series, pd.DatetimeIndex(origins), problem, model.lookback)


def test_when_a_request_has_no_origin_column_then_its_origin_follows_the_last_observed_value(series, problem, model):
    origin = series.index[96 * 8 + 5]
    one = request(series, problem, model, [origin]).drop(columns=[ORIGIN])
    answer = forecast(model, one)
    assert (answer[ORIGIN] == origin).all() and len(answer) == HORIZON
    np.testing.assert_allclose(answer[PREDICTION], series["y"].to_numpy()[96 * 7 + 5 : 96 * 7 + 5 + HORIZON])


def test_when_requests_overlap_consistently_then_they_are_forecast_in_one_call(series, problem, model):
    origins = series.index[[96 * 7, 96 * 7 + 3, 96 * 8 + 10]]
    batches = requests_from_input(request(series, problem, model, origins), problem, model.lookback)
    assert len(batches) == 1 and list(batches[0].origins) == list(origins)
    pd.testing.assert_frame_equal(forecast(model, request(series, problem, model, origins)), model.predict(series, pd.DatetimeIndex(origins)))


def test_when_requests_disagree_where_they_overlap_then_each_is_forecast_from_its_own_history(series, problem, model):
    origins = series.index[[96 * 8, 96 * 8 + 4]]
    both = request(series, problem, model, origins)
    second = both[ORIGIN] == origins[1]
    edited_stamp = origins[1] - 96 * STEP  # read by the second origin's first step, and in the first one's history too
    both.loc[second & (both[TIMESTAMP] == edited_stamp), "y"] = 500.0

    assert len(requests_from_input(both, problem, model.lookback)) == 2
    answer = forecast(model, both)
    alone = [forecast(model, both[both[ORIGIN] == origin]) for origin in origins]
    pd.testing.assert_frame_equal(answer, pd.concat(alone, ignore_index=True))
    assert answer.loc[answer[ORIGIN] == origins[1], PREDICTION].iloc[0] == 500.0


def test_the_lookback_is_described_in_steps_and_time():
    assert describe_lookback(2688, STEP) == "2688 steps (28 days)"
    assert describe_lookback(100, STEP) == "100 steps (1 day 1 h)"
    assert describe_lookback(1, STEP) == "1 steps (0.25 h)"


BAD_REQUESTS = {
    "a missing column": (lambda r: r.drop(columns=["plan"]), r"lacks columns \['plan'\]"),
    "no rows": (lambda r: r.iloc[:0], "has no rows"),
    "unparseable stamps": (lambda r: r.assign(timestamp="yesterday"), "column 'timestamp' must hold timestamps"),
    "a duplicated stamp": (lambda r: pd.concat([r, r.iloc[[10]]]), "appears more than once"),
    "a gap": (lambda r: r.drop(index=r.index[50]), "must be contiguous on the 15min grid"),
    "too little history": (lambda r: r.iloc[10:], r"holds 86 steps \(21.5 h\) before the origin; this model needs at least 96 steps \(1 day\)"),
    "a short horizon": (lambda r: r.iloc[:-3], r"covers 5 of the 8 horizon steps; add rows up to"),
    "no future plan": (lambda r: r.assign(plan=r["plan"].where(r[TIMESTAMP] < r[ORIGIN], None)), r"known-future covariate 'plan' is missing at .* and 7 more"),
    "an infinite value": (lambda r: r.assign(y=r["y"].replace(r["y"].iloc[3], np.inf)), "'y' holds infinite values"),
    "text in a number": (lambda r: r.assign(past=r["past"].astype(object).where(r.index != 4, "n/a")), "'past' must be numeric; got 'n/a'"),
    "an origin off the grid": (lambda r: r.assign(origin=r[ORIGIN] + pd.Timedelta(minutes=7)), "is not on the 15min grid"),
    "partly empty origins": (lambda r: r.assign(origin=r[ORIGIN].where(r.index > 0)), "'origin' is empty on 1 row"),
    "no observed target": (lambda r: r.drop(columns=[ORIGIN]).assign(y=np.nan), "has no observed value"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_when_a_request_breaks_the_contract_then_it_is_refused_naming_what_is_wrong(series, problem, model, case):
    change, message = BAD_REQUESTS[case]
    good = request(series, problem, model, [series.index[96 * 8]])
    with pytest.raises(ContractError, match=message):
        forecast(model, change(good))


def test_when_residuals_are_calibrated_then_each_band_takes_its_own_conformal_quantiles():
    steps = np.tile(np.arange(1, 5), 99)
    residuals = np.where(steps <= 2, 1.0, 10.0) * np.tile(np.repeat(np.arange(-49, 50), 1), 4)[: len(steps)].astype(float)
    calibration = calibrate(steps, residuals, horizon=4, levels=(0.1, 0.5, 0.9), bands=2)
    assert calibration.band_starts == (1, 3) and calibration.residuals == (198, 198)
    lower, _, upper = calibration.offsets[0]
    assert lower < 0 < upper and calibration.offsets[1][2] > 5 * upper  # the later band is wider
    quantiles = calibration.quantiles(np.array([1, 4]), np.array([100.0, 100.0]))
    assert quantiles[0.9][0] == 100 + upper and quantiles[0.9][1] == 100 + calibration.offsets[1][2]


def test_conformal_quantiles_use_the_finite_sample_rank():
    residuals = np.arange(1.0, 10.0)  # n = 9: the 0.9 bound is the ceil(10 * 0.9) = 9th smallest
    calibration = calibrate(np.ones(9, dtype=int), residuals, horizon=1, levels=(0.1, 0.9), bands=1)
    assert calibration.offsets[0] == (1.0, 9.0)


def test_when_a_band_has_no_residual_then_calibration_says_so():
    with pytest.raises(ValueError, match="no validation residual in the band of steps from 3"):
        calibrate(np.array([1, 2]), np.array([0.5, np.nan]), horizon=4, levels=(0.5,), bands=2)
