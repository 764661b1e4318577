"""Multi-window validation, refit and the ensembles' weights (energy_forecast.validation).

On the 70-day synthetic series with a short feature lookback: two 14-day windows before the test
fortnight. The windows stay before the test, refit trains on everything before it for the chosen
round count, perturbing the test period changes nothing chosen, and an ensemble of two members
with independent errors beats both.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from energy_forecast.backtest import validation_windows
from energy_forecast.config import ConfigError, SplitConfig, TaskConfig
from energy_forecast.data import load_series
from energy_forecast.frames import ACTUAL, PREDICTION, STEP, TIMESTAMP
from energy_forecast.models import registry as registry_module
from energy_forecast.models.base import Forecaster, ModelParams
from energy_forecast.models.ensembles import greedy_selection, nnls_shrunk
from energy_forecast.models.xgboost import XGBoostForecaster
from energy_forecast.training import evaluate, load_config
from energy_forecast.validation import validate
from tests.conftest import CONFIGS, SMALL_SPLIT

WINDOWED = {"validation_windows": 2, "refit": True}
FAST_FEATURES = {
    "origin_lags": [1, 2, 4, 96],
    "seasonal_lags": ["1d", "2d"],
    "seasonal_means": [],
    "rolling_windows": ["4h", "1d"],
    "past_covariate_lags": [1],
    "train_origin_every": "4h",
}
SMALL_XGBOOST = {"n_estimators": 60, "learning_rate": 0.2, "early_stopping_rounds": 5, "max_depth": 3}
SMALL_LIGHTGBM = {"n_estimators": 60, "learning_rate": 0.2, "early_stopping_rounds": 5, "num_leaves": 7}
ENSEMBLE = {"members": [{"type": "xgboost", "params": SMALL_XGBOOST}, {"type": "lightgbm", "params": SMALL_LIGHTGBM}]}


@pytest.fixture
def series_and_config(synthetic_csv, use_data):
    use_data(synthetic_csv)

    def config(yaml_name: str, params: dict, **split: object):
        overrides = {"split": {**SMALL_SPLIT, **WINDOWED, **split}, "features": FAST_FEATURES, "model": {"params": params}}
        return load_config(CONFIGS / "training" / yaml_name, overrides)

    loaded = config("xgboost.yaml", SMALL_XGBOOST)
    return load_series(loaded.data), config


def test_when_windows_are_counted_on_month_bounds_then_they_are_the_calendar_months_before_the_test():
    index = pd.date_range("2018-01-01", "2018-12-31 23:45", freq="15min", name="timestamp")
    frame = pd.DataFrame({"y": 1.0}, index=index)
    bounds = SplitConfig(train_end="2018-11-01", validation_end="2018-12-01", validation_windows=3)
    windows = validation_windows(frame.loc[index < "2018-12-01"], bounds, TaskConfig(name="day", horizon=96), min_history=96)
    assert [(w.start, w.end) for w in windows] == [
        (pd.Timestamp("2018-09-01"), pd.Timestamp("2018-10-01")),
        (pd.Timestamp("2018-10-01"), pd.Timestamp("2018-11-01")),
        (pd.Timestamp("2018-11-01"), pd.Timestamp("2018-12-01")),
    ]
    assert [len(w.origins) for w in windows] == [30, 31, 30]
    assert all(w.origins[-1] + pd.Timedelta(minutes=15 * 95) < pd.Timestamp("2018-12-01") for w in windows)


def test_when_a_listed_window_reaches_into_the_test_period_then_the_split_is_refused():
    with pytest.raises(ValueError, match="may not overlap the test period"):
        SplitConfig(train_end="2018-11-01", validation_end="2018-12-01", validation_windows=[{"start": "2018-11-15", "end": "2018-12-02"}])
    with pytest.raises(ValueError, match="overlap"):
        SplitConfig(
            train_end="2018-11-01", validation_end="2018-12-01",
            validation_windows=[{"start": "2018-10-01", "end": "2018-11-02"}, {"start": "2018-11-01", "end": "2018-12-01"}],
        )


def test_when_windows_leave_too_little_history_then_the_config_names_the_field(series_and_config):
    series, config = series_and_config
    with pytest.raises(ConfigError, match="split.validation_windows"):
        validate(config("xgboost.yaml", SMALL_XGBOOST, validation_windows=4), series)


def test_when_refit_then_windows_train_before_each_window_and_the_final_model_on_everything_before_the_test(series_and_config, monkeypatch):
    series, config = series_and_config
    calls = []
    original = XGBoostForecaster.fit

    def spy(self, history, validation=None):
        calls.append((history.index[-1], None if validation is None else (validation.origins[0], validation.frame.index[-1]), self.params.early_stopping_rounds))
        return original(self, history, validation)

    monkeypatch.setattr(XGBoostForecaster, "fit", spy)
    result = validate(config("xgboost.yaml", SMALL_XGBOOST), series)
    split, record = result.split, result.record

    step = pd.Timedelta(minutes=15)
    first, second = split.windows
    assert calls[0] == (first.start - step, (first.origins[0], first.end - step), 5)
    assert calls[1] == (second.start - step, (second.origins[0], second.end - step), 5)
    assert second.end == pd.Timestamp(SMALL_SPLIT["validation_end"])
    assert calls[2] == (pd.Timestamp(SMALL_SPLIT["validation_end"]) - step, None, None)  # everything before the test, no early stopping
    assert len(calls) == 3 and all(r is not None for r in record.rounds)
    assert record.chosen_rounds == int(np.median(record.rounds)) == result.model.params.n_estimators
    assert len(result.window_rmse) == 2 and np.isfinite(result.rmse)
    assert record.forecast["timestamp"].max() < pd.Timestamp(SMALL_SPLIT["validation_end"])


def _perturbed(series, after: str, seed: int = 0):
    frame = series.frame.copy()
    test = frame.index >= pd.Timestamp(after)
    target = series.config.target
    frame.loc[test, target] = frame.loc[test, target] * np.random.default_rng(seed).uniform(0.0, 3.0, test.sum()) + 50.0
    return dataclasses.replace(series, frame=frame)


@pytest.mark.parametrize("yaml_name", ["stacking.yaml", "voting.yaml"])
def test_when_the_test_period_changes_then_nothing_chosen_on_the_windows_changes(series_and_config, yaml_name):
    series, config = series_and_config
    ensemble = config(yaml_name, ENSEMBLE)
    chosen = []
    for data in (series, _perturbed(series, SMALL_SPLIT["validation_end"])):
        result = validate(ensemble, data)
        members = [m.validation_ for m in result.model.members]
        chosen.append((result.model.weights_.copy(), [(m.rounds, m.chosen_rounds) for m in members], result.record.forecast))
    (weights, rounds, forecast), (weights_after, rounds_after, forecast_after) = chosen
    np.testing.assert_array_equal(weights, weights_after)
    assert rounds == rounds_after
    pd.testing.assert_frame_equal(forecast, forecast_after)


def test_when_the_test_period_changes_then_only_the_test_scores_move(series_and_config):
    series, config = series_and_config
    model_config = config("xgboost.yaml", SMALL_XGBOOST)
    before = evaluate(model_config, series)
    after = evaluate(model_config, _perturbed(series, SMALL_SPLIT["validation_end"]))
    assert before.validation_metrics == after.validation_metrics
    assert before.model.params == after.model.params
    assert before.metrics["rmse"] != after.metrics["rmse"]


# -- ensembles that earn their place ---------------------------------------------------------------


def rmse(actual, predicted) -> float:
    return float(np.sqrt(np.mean((np.asarray(actual, dtype="float64") - np.asarray(predicted, dtype="float64")) ** 2)))


class NoisyTruthParams(ModelParams):
    seed: int = 0
    sigma: float = 5.0


class NoisyTruth(Forecaster):
    """A test-only member: the actual value plus its own independent noise (it reads the future on
    purpose, so that two members have independent errors of a known size)."""

    name = "noisy_truth"
    params_class = NoisyTruthParams
    approach = "test only"
    windowed: ClassVar[bool] = True
    params: NoisyTruthParams

    def _fit(self, history, validation):
        pass

    def _predict(self, frame, origins):
        positions = np.repeat(frame.index.get_indexer(origins), self.problem.horizon) + np.tile(np.arange(self.problem.horizon), len(origins))
        noise = np.random.default_rng(self.params.seed).normal(0.0, self.params.sigma, len(frame) + self.problem.horizon)
        actual = frame[self.problem.target].to_numpy(dtype="float64")[positions]
        return pd.DataFrame({
            "origin": np.repeat(origins, self.problem.horizon), STEP: np.tile(np.arange(1, self.problem.horizon + 1), len(origins)),
            TIMESTAMP: frame.index[positions], PREDICTION: actual + noise[positions],
        })


def test_combination_rules_beat_two_members_with_independent_errors():
    rng = np.random.default_rng(7)
    actual = rng.uniform(20, 150, 4000)
    members = np.column_stack([actual + rng.normal(0, 6, 4000), actual + rng.normal(0, 5, 4000)])
    fit, held = slice(0, 2000), slice(2000, None)
    best_member = min(rmse(actual[held], members[held, i]) for i in range(2))
    rules = (greedy_selection(members[fit], actual[fit], 100), nnls_shrunk(members[fit], actual[fit], 0.0), nnls_shrunk(members[fit], actual[fit], 0.1),
             nnls_shrunk(members[fit], actual[fit], 0.0, sum_to_one=True), nnls_shrunk(members[fit], actual[fit], 0.1, sum_to_one=True))
    for weights in rules:
        assert (weights > 0.2).all()
        assert rmse(actual[held], members[held] @ weights) < 0.85 * best_member


def test_sum_to_one_stacking_is_the_best_convex_combination_and_scales_no_level():
    """Members that both run 8 % high: free NNLS weights shrink the total below 1 to fit the
    training rows' level; weights adding up to 1 are the least-squares convex combination (found
    by a fine grid), and leave each member's level alone."""
    rng = np.random.default_rng(3)
    actual = rng.uniform(20, 150, 3000)
    members = np.column_stack([1.08 * actual + rng.normal(0, 6, 3000), 1.08 * actual + rng.normal(0, 9, 3000)])
    free = nnls_shrunk(members, actual, 0.0)
    assert free.sum() < 0.97
    convex = nnls_shrunk(members, actual, 0.0, sum_to_one=True)
    assert convex.sum() == pytest.approx(1.0, abs=1e-12) and (convex >= 0).all()
    grid = np.linspace(0, 1, 10001)
    errors = [np.mean((members @ np.array([w, 1 - w]) - actual) ** 2) for w in grid]
    assert convex[0] == pytest.approx(grid[int(np.argmin(errors))], abs=2e-4)
    shrunk = nnls_shrunk(members, actual, 1.0, sum_to_one=True)  # strong shrinkage: toward equal weights, still adding up to 1
    assert shrunk.sum() == pytest.approx(1.0, abs=1e-12) and abs(shrunk[0] - 0.5) < abs(convex[0] - 0.5)


@pytest.mark.parametrize("yaml_name", ["stacking.yaml", "voting.yaml"])
def test_when_two_members_have_independent_errors_then_the_fitted_ensemble_beats_both_on_the_test(series_and_config, yaml_name, monkeypatch):
    monkeypatch.setitem(registry_module._REGISTRY, NoisyTruth.name, NoisyTruth)
    series, config = series_and_config
    members = {"members": [{"type": "noisy_truth", "params": {"seed": 1, "sigma": 6.0}}, {"type": "noisy_truth", "params": {"seed": 2, "sigma": 5.0}}]}
    evaluation = evaluate(config(yaml_name, members), series)
    split = evaluation.split
    member_rmse = []
    for member in evaluation.model.members:
        forecast = member.predict(split.through_test, split.test_origins)
        member_rmse.append(rmse(evaluation.forecast[ACTUAL], forecast[PREDICTION]))
    assert evaluation.metrics["rmse"] < 0.85 * min(member_rmse)
    assert (evaluation.model.weights_ > 0.2).all()


def test_when_an_ensemble_reuses_saved_members_then_it_learns_from_their_windows_without_refitting(series_and_config, tmp_path, monkeypatch):
    import yaml

    from energy_forecast.models import create_model, load_forecaster
    from energy_forecast.models.lightgbm import LightGBMForecaster

    series, config = series_and_config
    members = {"small_xgboost": ("xgboost.yaml", SMALL_XGBOOST), "small_lightgbm": ("lightgbm.yaml", SMALL_LIGHTGBM)}
    for name, (base, params) in members.items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({"extends": str(CONFIGS / "training" / base), "model": {"params": params}}))
    ensemble_members = [{"config": f"{name}.yaml"} for name in members]
    (tmp_path / "vote.yaml").write_text(yaml.safe_dump({"extends": str(CONFIGS / "training" / "voting.yaml"), "model": {"params": {"members": ensemble_members}}}))
    overrides = {"split": {**SMALL_SPLIT, **WINDOWED}, "features": FAST_FEATURES}
    saved = {}
    for name in members:
        result = validate(load_config(tmp_path / f"{name}.yaml", overrides), series)
        result.model.save(tmp_path / "saved" / name)
        saved[name] = load_forecaster(tmp_path / "saved" / name)
        pd.testing.assert_frame_equal(saved[name].validation_.forecast, result.record.forecast, check_dtype=False)
        assert saved[name].validation_.rounds == result.record.rounds and saved[name].validation_.refit

    fits = []
    for family in (XGBoostForecaster, LightGBMForecaster):
        monkeypatch.setattr(family, "fit", lambda self, *args, **kwargs: fits.append(self.name))
    voting = load_config(tmp_path / "vote.yaml", overrides)
    model = create_model(voting.model, voting.problem)
    model.use_fitted_members(saved)
    result = validate(voting, series, model=model)
    assert fits == []  # nothing refitted: the weights come from the saved members' windows
    assert result.model.weights_.sum() == pytest.approx(1.0) and len(result.window_rmse) == 2
