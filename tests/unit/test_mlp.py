"""The MLP family: early stopping watches the validation window and keeps the best epoch, the
epoch count is its rounds (a refit trains exactly that many), and weights survive a restore."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from energy_forecast.backtest import split_series
from energy_forecast.data import load_series
from energy_forecast.features import build_features
from energy_forecast.frames import PREDICTION
from energy_forecast.models import ValidationData, create_model, load_forecaster
from energy_forecast.training import load_config
from tests.conftest import CONFIGS, SMALL_SPLIT

PARAMS = {"hidden_layers": [16, 8], "max_epochs": 30, "early_stopping_rounds": 2, "learning_rate": 0.003, "batch_size": 64}


@pytest.fixture(scope="module")
def problem_and_split(synthetic_csv):
    with pytest.MonkeyPatch.context() as patch:  # module scope: the function-scoped use_data cannot serve
        patch.setenv("DATA_PATH", str(synthetic_csv))
        overrides = {"split": SMALL_SPLIT, "features": {"train_origin_every": "1d"}, "model": {"type": "mlp", "params": PARAMS}}
        config = load_config(CONFIGS / "training" / "xgboost.yaml", overrides)
        series = load_series(config.data)
    model = create_model(config.model, config.problem)
    return config, split_series(series.frame, config.split, config.task, min_history=model.lookback)


def _validation_rmse(model, split) -> float:
    """What early stopping watches, as the boosters' does: the net's RMSE on the validation rows
    before ``predict`` clips at the target's floor."""
    rows = build_features(model._encode(split.through_validation), split.validation_origins, problem=model.problem)
    return float(np.sqrt(np.mean((model.native_model().predict(rows.X[model.feature_names_]) - rows.y) ** 2)))


def test_when_early_stopping_watches_the_validation_window_then_it_keeps_the_best_epoch_and_a_refit_of_that_many_epochs_is_the_same_net(problem_and_split):
    config, split = problem_and_split
    stopped = create_model(config.model, config.problem)
    stopped.fit(split.history, ValidationData(split.through_validation, split.validation_origins))
    kept = stopped.fitted_rounds
    assert kept is not None and 1 <= kept < PARAMS["max_epochs"]

    by_epochs = {}
    for epochs in range(1, kept + PARAMS["early_stopping_rounds"] + 1):
        fixed = create_model(config.model, config.problem)
        fixed.fix_rounds(epochs)
        fixed.fit(split.history)
        assert fixed.fitted_rounds is None  # no early stopping: nothing chosen
        by_epochs[epochs] = fixed
    scores = {epochs: _validation_rmse(model, split) for epochs, model in by_epochs.items()}
    assert min(scores, key=scores.get) == kept  # the best of the epochs it saw, and it saw patience more after it
    pd.testing.assert_series_equal(  # point forecasts: only the stopped model has validation residuals to calibrate quantiles on
        stopped.predict(split.through_test, split.test_origins[:2])[PREDICTION], by_epochs[kept].predict(split.through_test, split.test_origins[:2])[PREDICTION]
    )


def test_when_nets_are_bagged_then_the_forecast_is_their_mean_and_a_restore_reproduces_it(problem_and_split, tmp_path):
    config, split = problem_and_split
    origins = split.test_origins[:2]
    nets = []
    for params in ({"bagging": 2, "max_epochs": 3}, {"bagging": 1, "max_epochs": 3}):
        model = create_model(config.model.model_copy(update={"params": {**PARAMS, **params}}), config.problem)
        nets.append(model.fit(split.history))
    bagged, first = nets
    assert bagged.fitted_summary() == {"epochs": [3, 3]}
    second = create_model(config.model.model_copy(update={"params": {**PARAMS, "max_epochs": 3}}), config.problem.model_copy(update={"seed": config.problem.seed + 1}))
    second.fit(split.history)
    rows = build_features(bagged._encode(split.through_test), origins, problem=bagged.problem).X[bagged.feature_names_]
    raw = {name: model.native_model().predict(rows) for name, model in (("bagged", bagged), ("first", first), ("second", second))}
    np.testing.assert_allclose(raw["bagged"], (raw["first"] + raw["second"]) / 2, rtol=1e-12, atol=1e-9)  # before the clip at the floor
    bagged.save(tmp_path / "saved")
    restored = load_forecaster(tmp_path / "saved")
    pd.testing.assert_frame_equal(restored.predict(split.through_test, origins), bagged.predict(split.through_test, origins), check_exact=True)
