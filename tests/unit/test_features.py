"""Features match a naive reference and cannot see anything at or after the origin."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from energy_forecast.config import Covariate, FeatureConfig, ForecastProblem
from energy_forecast.features import build_features

HORIZON = 96
PAST = ("Lagging_Current_Power_Factor", "Load_Type_past")
FUTURE = ("Load_Type", "NSM")
KINDS = {"Lagging_Current_Power_Factor": "numeric", "Load_Type_past": "categorical", "Load_Type": "categorical", "NSM": "numeric"}


@pytest.fixture
def frame() -> pd.DataFrame:
    index = pd.date_range("2018-01-01", periods=96 * 30, freq="15min", name="timestamp")
    rng = np.random.default_rng(0)
    load_type = pd.Categorical(rng.choice(["Light_Load", "Medium_Load", "Maximum_Load"], len(index)))
    return pd.DataFrame(
        {
            "Usage_kWh": rng.uniform(0, 100, len(index)),
            "Lagging_Current_Power_Factor": rng.uniform(50, 100, len(index)),
            "Load_Type_past": load_type,
            "Load_Type": load_type,
            "NSM": ((index.hour * 3600 + index.minute * 60 + 900) % 86400).astype(float),
        },
        index=index,
    )


@pytest.fixture
def spec() -> ForecastProblem:
    recipe = FeatureConfig(
        origin_lags=[1, 4], seasonal_lags=[96, 672], seasonal_means=[(96, 3)], rolling_windows=[8],
        past_covariate_lags=[1, 96], calendar=["slot_of_day", "day_of_week", "is_weekend"], horizon_summaries=True,
    )
    return problem_with(recipe)


def problem_with(recipe: FeatureConfig, horizon: int = HORIZON) -> ForecastProblem:
    covariates = [Covariate(name=name, role="past", kind=KINDS[name]) for name in PAST]
    covariates += [Covariate(name=name, role="future", kind=KINDS[name]) for name in FUTURE]
    return ForecastProblem(target="Usage_kWh", horizon=horizon, covariates=covariates, features=recipe)


def origins(frame: pd.DataFrame) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(["2018-01-10 00:00", "2018-01-15 13:00", "2018-01-20 00:00"], name="origin")


def test_when_features_are_built_then_each_column_matches_a_naive_reference(frame, spec):
    matrix = build_features(frame, origins(frame), problem=spec)
    y = frame["Usage_kWh"].to_numpy()
    assert len(matrix.X) == 3 * HORIZON
    for row in [0, 37, 95, 96, 200, 287]:
        origin, step = matrix.keys.loc[row, ["origin", "step"]]
        o = frame.index.get_loc(origin)
        t = o + step - 1
        features = matrix.X.iloc[row]
        assert matrix.keys.loc[row, "timestamp"] == frame.index[t]
        assert features["step"] == step
        assert features["target_lag1_origin"] == y[o - 1] and features["target_lag4_origin"] == y[o - 4]
        assert features["target_lag96"] == y[t - 96] and features["target_lag672"] == y[t - 672]
        assert features["target_mean_lag96x3"] == pytest.approx(np.mean([y[t - 96], y[t - 192], y[t - 288]]))
        assert features["target_mean8_origin"] == pytest.approx(y[o - 8 : o].mean())
        assert features["Lagging_Current_Power_Factor_lag96_origin"] == frame["Lagging_Current_Power_Factor"].iloc[o - 96]
        assert features["Load_Type_past_lag1_origin"] == frame["Load_Type_past"].cat.codes.iloc[o - 1]
        assert features["Load_Type"] == frame["Load_Type"].cat.codes.iloc[t]
        assert features["NSM"] == frame["NSM"].iloc[t]
        stamp = frame.index[t]
        assert features["slot_of_day"] == stamp.hour * 4 + stamp.minute // 15
        assert features["day_of_week"] == stamp.day_of_week and features["is_weekend"] == (stamp.day_of_week >= 5)
        assert matrix.y[row] == y[t]


def test_when_horizon_summaries_are_asked_for_then_they_summarise_known_future_values_over_the_horizon(frame, spec):
    summarised = problem_with(spec.features.model_copy(update={"horizon_summaries": True}))
    matrix = build_features(frame, origins(frame), problem=summarised)
    for row in [0, 50, 150]:
        o = frame.index.get_loc(matrix.keys.loc[row, "origin"])
        horizon_rows = frame.iloc[o : o + HORIZON]
        assert matrix.X.loc[row, "NSM_mean_horizon"] == pytest.approx(horizon_rows["NSM"].mean())
        for category in frame["Load_Type"].cat.categories:
            assert matrix.X.loc[row, f"Load_Type_{category}_share_horizon"] == pytest.approx((horizon_rows["Load_Type"] == category).mean())
    assert not any(column.startswith("Load_Type_past_") and "horizon" in column for column in matrix.X)  # past columns never


def test_when_values_at_or_after_the_origin_change_then_no_feature_moves(frame, spec):
    chosen = origins(frame)
    before = build_features(frame, chosen, problem=spec)
    for origin_position, origin in enumerate(chosen):
        perturbed = frame.copy()
        after = perturbed.index >= origin
        perturbed.loc[after, "Usage_kWh"] = perturbed.loc[after, "Usage_kWh"] * -7 + 1000
        perturbed.loc[after, "Lagging_Current_Power_Factor"] = 0.0
        perturbed.loc[after, "Load_Type_past"] = "Light_Load"
        rows = before.keys["origin"] == origin
        changed = build_features(perturbed, chosen[origin_position : origin_position + 1], problem=spec)
        pd.testing.assert_frame_equal(changed.X.reset_index(drop=True), before.X[rows].reset_index(drop=True))


def test_when_known_future_values_change_then_only_their_columns_move(frame, spec):
    """The leak test above can fail: the same perturbation on a future column does show."""
    chosen = origins(frame)[:1]
    before = build_features(frame, chosen, problem=spec).X
    perturbed = frame.copy()
    perturbed.loc[perturbed.index >= chosen[0], "NSM"] = -1.0
    after = build_features(perturbed, chosen, problem=spec).X
    moved = [column for column in before if not before[column].equals(after[column])]
    assert moved == ["NSM", "NSM_mean_horizon"]


def test_when_a_seasonal_lag_is_shorter_than_the_horizon_then_the_spec_refuses(spec):
    with pytest.raises(ValueError, match="shorter than the horizon"):
        ForecastProblem(target="y", horizon=96, features=FeatureConfig(seasonal_lags=[48]))
    with pytest.raises(ValueError, match="shorter than the horizon"):
        ForecastProblem(target="y", horizon=96, features=FeatureConfig(seasonal_lags=[96], seasonal_means=[(24, 7)]))


def test_when_an_origin_lacks_history_or_room_then_it_is_rejected(frame, spec):
    with pytest.raises(ValueError, match="steps of history; the features need 672"):
        build_features(frame, pd.DatetimeIndex(["2018-01-02"]), problem=spec)
    with pytest.raises(ValueError, match="runs past the end of the series"):
        build_features(frame, pd.DatetimeIndex([frame.index[-10]]), problem=spec)


# -- the nowcast's extra features ------------------------------------------------------------------


@pytest.fixture
def nowcast_spec(spec) -> ForecastProblem:
    recipe = spec.features.model_copy(
        update={
            "origin_differences": [1, 3], "future_lags": [1, 2], "seasonal_changes": True, "relative_to_last": True,
            "rolling_stats": ["mean", "max", "min", "std", "steps_since_max", "run"],
        }
    )
    return problem_with(FeatureConfig.model_validate(recipe.model_dump()))


def naive_run(window: np.ndarray) -> int:
    """How many of the latest values lie on the last value's side of the window mean, signed by that side."""
    above = [value > window.mean() for value in window]
    length = 0
    for side in reversed(above):
        if side != above[-1]:
            break
        length += 1
    return length if above[-1] else -length


def test_when_a_run_is_counted_then_it_is_signed_by_the_side_of_the_mean():
    assert naive_run(np.array([0.0, 0, 0, 0, 9, 9])) == 2 and naive_run(np.array([9.0, 9, 0, 0, 0, 0])) == -4
    assert naive_run(np.array([1.0, 1, 1])) == -3  # all at the mean: at or below it, the whole window


def test_when_nowcast_features_are_built_then_each_matches_a_naive_reference(frame, nowcast_spec):
    matrix = build_features(frame, origins(frame), problem=nowcast_spec)
    y = frame["Usage_kWh"].to_numpy()
    codes = frame["Load_Type"].cat.codes.to_numpy()
    for row in [0, 37, 95, 96, 200, 287]:
        origin, step = matrix.keys.loc[row, ["origin", "step"]]
        o = frame.index.get_loc(origin)
        t = o + step - 1
        features = matrix.X.iloc[row]
        assert features["target_diff1_origin"] == y[o - 1] - y[o - 2] and features["target_diff3_origin"] == y[o - 1] - y[o - 4]
        assert features["target_lag96_change"] == pytest.approx(y[t - 96] - y[o - 1 - 96])
        assert features["target_lag672_last_plus_change"] == pytest.approx(y[o - 1] + y[t - 672] - y[o - 1 - 672])
        profile_then = np.mean([y[t - 96 * i] for i in (1, 2, 3)])
        profile_last = np.mean([y[o - 1 - 96 * i] for i in (1, 2, 3)])
        assert features["target_mean_lag96x3_change"] == pytest.approx(profile_then - profile_last)
        assert features["Load_Type_lag1"] == codes[t - 1] and features["Load_Type_lag2"] == codes[t - 2]
        assert matrix.last[row] == y[o - 1]
        window = y[o - 8 : o]
        assert features["target_max8_origin"] == window.max() and features["target_min8_origin"] == window.min()
        assert features["target_std8_origin"] == pytest.approx(window.std())
        assert features["target_steps_since_max8_origin"] == 7 - int(np.argmax(window))
        assert features["target_run8_origin"] == naive_run(window)
    assert nowcast_spec.features.lookback == 673  # the 7-day change reads one step before the origin, a week back


def test_when_values_at_or_after_the_origin_change_then_no_nowcast_feature_moves(frame, nowcast_spec):
    test_when_values_at_or_after_the_origin_change_then_no_feature_moves(frame, nowcast_spec)
    chosen = origins(frame)
    before = build_features(frame, chosen, problem=nowcast_spec)
    perturbed = frame.copy()
    perturbed.loc[perturbed.index >= chosen[0], "Usage_kWh"] = -5.0
    after = build_features(perturbed, chosen[:1], problem=nowcast_spec)
    np.testing.assert_array_equal(after.last, before.last[: len(after.last)])


def test_when_a_known_future_value_changes_then_its_lags_move_too(frame, nowcast_spec):
    chosen = origins(frame)[:1]
    before = build_features(frame, chosen, problem=nowcast_spec).X
    perturbed = frame.copy()
    perturbed.loc[perturbed.index >= chosen[0], "NSM"] = -1.0
    after = build_features(perturbed, chosen, problem=nowcast_spec).X
    assert [column for column in before if not before[column].equals(after[column])] == ["NSM", "NSM_lag1", "NSM_lag2", "NSM_mean_horizon"]
