"""Global LightGBM / XGBoost across a panel: on one series they reproduce today's model; on many
they train once from a matrix built per series and score per series plus a volume-weighted aggregate.

Tolerances, and why: with float64 features and no scaling the global model makes today's model
bit for bit (the same library call on the same rows). Mean scaling divides each value by a positive
constant: no value changes order, so the same rows fall in the same bins and the same splits win;
leaf values scale with the target, so predictions agree up to the rounding of that division
(well under 1e-4 kWh). float32 features (the default) are exact for XGBoost, which stores float32
anyway; LightGBM bins float64 input, and float32 rounding moves a few bin bounds: predictions then
agree only to a fraction of a kWh and the RMSE to 1 %.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from energy_forecast.backtest import split_series
from energy_forecast.config import SplitConfig
from energy_forecast.data.panel import load_panel
from energy_forecast.data.plants import write_plants
from energy_forecast.models.base import ValidationData
from energy_forecast.models.global_boosted import (
    SERIES_FEATURE,
    GlobalBoostedModel,
    PanelMatrix,
    fit_scales,
    training_origins,
)
from energy_forecast.models.registry import create_model
from energy_forecast.panel_backtest import attach_panel_actuals, score_panel, split_panel
from energy_forecast.training import load_config
from tests.conftest import CONFIGS, SMALL_SPLIT
from tests.unit.test_panel import plants_config, steel_base

FEW_ROUNDS = {"n_estimators": 40, "early_stopping_rounds": 5}


@pytest.fixture(scope="module")
def one_series(synthetic_csv: Path) -> dict[str, object]:
    import os

    previous = os.environ.get("DATA_PATH")
    os.environ["DATA_PATH"] = str(synthetic_csv)
    try:
        configs = {family: load_config(CONFIGS / "training" / f"{family}.yaml", {"split": SMALL_SPLIT, "model": {"params": FEW_ROUNDS}}) for family in ("lightgbm", "xgboost")}
    finally:
        if previous is None:
            os.environ.pop("DATA_PATH")
        else:
            os.environ["DATA_PATH"] = previous
    from energy_forecast.data.loading import load_series

    frame = load_series(configs["lightgbm"].data).frame
    return {"configs": configs, "frame": frame}


@pytest.mark.parametrize(
    ("family", "scaling", "dtype", "tolerance", "learn_change"),
    [
        ("lightgbm", "none", "float64", 0.0, None),
        ("lightgbm", "mean", "float64", 1e-4, None),
        ("xgboost", "none", "float32", 0.0, None),
        ("xgboost", "mean", "float32", 1e-3, None),
        # learning the change from the last value (the nowcast's choice), as today's model does
        ("lightgbm", "none", "float64", 0.0, True),
        ("xgboost", "std", "float32", 1e-3, True),
    ],
)
def test_one_series_reproduces_todays_model(
    one_series: dict, family: str, scaling: str, dtype: str, tolerance: float, learn_change: bool | None
) -> None:
    config = one_series["configs"][family]
    problem = config.problem
    params = {**config.model.params, "learn_change": learn_change}
    today = create_model(config.model.model_copy(update={"params": params}), problem)
    assert today.learns_change is bool(learn_change)
    split = split_series(one_series["frame"], config.split, config.task, min_history=today.lookback)
    today.fit(split.history, ValidationData(split.through_validation, split.validation_origins))
    expected = today.predict(split.through_test, split.test_origins)

    model = GlobalBoostedModel(family, params, problem, scaling=scaling, dtype=dtype)
    assert model.learns_change is today.learns_change
    model.fit({"steel": split.history}, {"steel": (split.through_validation, split.validation_origins)})
    got = model.predict({"steel": split.through_test}, {"steel": split.test_origins})

    assert model.codes_ is None and SERIES_FEATURE not in model.feature_names_  # one series: no id feature
    assert model.best_iteration_ == today.rounds_kept
    pd.testing.assert_frame_equal(got[["origin", "step", "timestamp"]], expected[["origin", "step", "timestamp"]])
    np.testing.assert_allclose(got["prediction"], expected["prediction"], rtol=0, atol=tolerance)


def test_one_series_float32_lightgbm_is_close(one_series: dict) -> None:
    config = one_series["configs"]["lightgbm"]
    today = create_model(config.model, config.problem)
    split = split_series(one_series["frame"], config.split, config.task, min_history=today.lookback)
    today.fit(split.history, ValidationData(split.through_validation, split.validation_origins))
    expected = today.predict(split.through_test, split.test_origins)["prediction"].to_numpy()
    model = GlobalBoostedModel("lightgbm", config.model.params, config.problem).fit(
        {"s": split.history}, {"s": (split.through_validation, split.validation_origins)}
    )
    got = model.predict({"s": split.through_test}, {"s": split.test_origins})["prediction"].to_numpy()
    actual = split.through_test[config.problem.target].reindex(today.predict(split.through_test, split.test_origins)["timestamp"]).to_numpy()
    rmse = lambda p: float(np.sqrt(np.mean((p - actual) ** 2)))  # noqa: E731
    assert abs(rmse(got) - rmse(expected)) <= 0.01 * rmse(expected)


@pytest.fixture(scope="module")
def panel(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("plants")
    write_plants(steel_base(days=70), 3, folder, seed=11)
    return load_panel(plants_config(folder))


def panel_problem(family: str = "lightgbm"):
    config = load_config(CONFIGS / "training" / f"{family}.yaml", {"split": SMALL_SPLIT})
    # the plants' own covariates: the steel training YAML's recipe on the plants data YAML
    return config.model_copy(update={"data": plants_config(Path("."))}).problem.replace(
        covariates=tuple(plants_config(Path(".")).covariates), available_covariates=tuple(plants_config(Path(".")).covariates)
    ), config


def test_matrix_is_built_per_series_in_float32(panel) -> None:
    problem, _ = panel_problem()
    origins = {sid: training_origins(frame.iloc[: 40 * 96], problem) for sid, frame in panel.series.items()}
    histories = {sid: frame.iloc[: 40 * 96] for sid, frame in panel.series.items()}
    scales = fit_scales(histories, problem, "mean")
    matrix = PanelMatrix(histories, origins, problem, scales, {sid: i for i, sid in enumerate(panel.ids)})
    chunks = list(matrix.chunks())
    assert [c[0] for c in chunks] == panel.ids
    assert all(X.dtype == np.float32 and X.shape[1] == len(matrix.feature_names) for _, X, _ in chunks)
    assert matrix.feature_names[-1] == SERIES_FEATURE
    np.testing.assert_array_equal(np.concatenate([y for _, _, y in chunks]), matrix.labels())
    # scaled: each series' target lags sit around 1 whatever the plant's size
    lag = matrix.feature_names.index("target_lag672")
    assert all(0.5 < np.nanmean(X[:, lag]) < 2.0 for _, X, _ in chunks)
    assert len({round(s[problem.target].scale, 3) for s in scales.values()}) == 3


@pytest.mark.parametrize("family", ["lightgbm", "xgboost"])
def test_global_model_on_a_panel_scores_per_series(panel, family: str, tmp_path: Path) -> None:
    problem, config = panel_problem(family)
    bounds = SplitConfig.model_validate(SMALL_SPLIT)
    splits = split_panel(panel.series, bounds, config.task, min_history=problem.features.lookback)
    model = GlobalBoostedModel(family, {**config.model.params, **FEW_ROUNDS}, problem)
    model.fit({s: sp.history for s, sp in splits.items()}, {s: (sp.through_validation, sp.validation_origins) for s, sp in splits.items()})
    assert model.codes_ == {sid: i for i, sid in enumerate(panel.ids)}
    forecast = model.predict({s: sp.through_test for s, sp in splits.items()}, {s: sp.test_origins for s, sp in splits.items()})
    assert sorted(forecast["series_id"].unique()) == panel.ids
    assert len(forecast) == sum(len(sp.test_origins) for sp in splits.values()) * problem.horizon
    forecast = attach_panel_actuals(forecast, panel.series, problem.target)
    per_series, aggregate = score_panel(forecast, {s: sp.history for s, sp in splits.items()}, problem.target, problem.steps_per("7D"))
    assert list(per_series.index) == panel.ids
    weights = per_series["volume"] / per_series["volume"].sum()
    assert aggregate["volume_weighted_rmse"] == pytest.approx(float((per_series["rmse"] * weights).sum()))
    # each series is forecast in its own unit: a plant's forecasts track its own level
    for sid, rows in forecast.groupby("series_id"):
        assert 0.5 < rows["prediction"].mean() / rows["actual"].mean() < 2.0, sid
    model.save(tmp_path / "m")
    again = GlobalBoostedModel.load(tmp_path / "m").predict(
        {s: sp.through_test for s, sp in splits.items()}, {s: sp.test_origins for s, sp in splits.items()}
    )
    np.testing.assert_allclose(again["prediction"], forecast.sort_values(["series_id", "origin", "step"])["prediction"], rtol=1e-6)


def test_unknown_series_is_refused(panel) -> None:
    problem, config = panel_problem("xgboost")
    bounds = SplitConfig.model_validate(SMALL_SPLIT)
    splits = split_panel(panel.series, bounds, config.task, min_history=problem.features.lookback)
    two = dict(list(splits.items())[:2])
    model = GlobalBoostedModel("xgboost", {**config.model.params, **FEW_ROUNDS}, problem).fit({s: sp.history for s, sp in two.items()})
    with pytest.raises(ValueError, match="series \\['plant_002'\\] were not in training"):
        model.predict({s: sp.through_test for s, sp in splits.items()}, {s: sp.test_origins for s, sp in splits.items()})


def test_train_global_command_backtests_saves_and_tracks(panel, tmp_path: Path, monkeypatch, capsys, mlflow_client_env: str) -> None:
    from mlflow.tracking import MlflowClient

    from pipelines.cli import main

    folder = Path(next(iter(panel.files.values()))).parent
    monkeypatch.setenv("PLANTS_PATH", str(folder))
    config = tmp_path / "global.yaml"
    config.write_text(
        f"extends: {CONFIGS / 'training' / 'lightgbm.yaml'}\n"
        f"split: {{train_end: {SMALL_SPLIT['train_end']}, validation_end: {SMALL_SPLIT['validation_end']}, test_end: {SMALL_SPLIT['test_end']}, validation_windows: 1}}\n"
        "model:\n  params: {n_estimators: 30, early_stopping_rounds: 5}\n"
    )
    main(["train-global", str(config), "--data", str(CONFIGS / "data" / "plants.yaml"), "--out", str(tmp_path / "model"), "--origin-every", "6h"])
    printed = capsys.readouterr().out
    assert "3 series: volume-weighted test RMSE" in printed and "plant_002" in printed
    saved = GlobalBoostedModel.load(tmp_path / "model")
    assert saved.codes_ == {"plant_000": 0, "plant_001": 1, "plant_002": 2} and saved.train_origin_every == "6h"
    assert (tmp_path / "model" / "per_series_test_metrics.csv").is_file()
    # one MLflow run on the real server: parameters, the aggregate, the per-series table and plot, the saved model
    client = MlflowClient(mlflow_client_env)
    experiment = client.get_experiment_by_name(load_config(config).tracking.experiment)
    runs = client.search_runs([experiment.experiment_id], "tags.kind = 'global'", order_by=["attributes.start_time DESC"], max_results=1)
    run = runs[0]
    assert run.info.status == "FINISHED" and run.data.tags["series"] == "3" and run.data.tags["model_type"] == "lightgbm"
    metrics = json.loads((tmp_path / "model" / "test_metrics.json").read_text())
    assert run.data.metrics["volume_weighted_rmse"] == pytest.approx(metrics["volume_weighted_rmse"])
    assert run.data.params["train_origin_every"] == "6h" and run.data.params["model.params.n_estimators"] == "30"
    logged = {a.path for a in client.list_artifacts(run.info.run_id)} | {a.path for a in client.list_artifacts(run.info.run_id, "global_model")}
    assert {"per_series_test_metrics.csv", "per_series_nrmse.png", "global_model/global.json", "global_model/model.txt"} <= logged


@pytest.mark.parametrize(("kind", "weights_by"), [("voting", "panel"), ("stacking", "series")])
def test_panel_ensemble_trains_members_once_and_scores_against_them(panel, kind: str, weights_by: str, tmp_path: Path) -> None:
    from energy_forecast.global_training import train_global
    from energy_forecast.models.global_ensemble import GlobalEnsemble, load_global_model

    folder = Path(next(iter(panel.files.values()))).parent
    config = load_config(CONFIGS / "training" / f"{kind}.yaml", {"split": SMALL_SPLIT})
    members = [{"type": "xgboost", "params": FEW_ROUNDS}, {"type": "lightgbm", "params": {**FEW_ROUNDS, "num_leaves": 7}}]
    config = config.model_copy(update={"model": config.model.model_copy(update={"params": {**config.model.params, "members": members}})})
    result = train_global(config, plants_config(folder), weights_by=weights_by, train_origin_every="6h", out=tmp_path / "model")  # type: ignore[arg-type]

    model = result.model
    assert isinstance(model, GlobalEnsemble) and [m.family for m in model.members] == ["xgboost", "lightgbm"]
    assert set(model.weights_) == ({"*"} if weights_by == "panel" else set(panel.ids))
    assert all((w >= 0).all() for w in model.weights_.values())
    assert set(result.members) == {"xgboost_0", "lightgbm_1"}
    assert result.aggregate["series"] == 3.0 and len(result.per_series) == 3
    # on the validation rows the panel weights were chosen on, the combination is no worse than its best member
    # (per-series weights optimise each series' own rows, not the panel's raw-unit RMSE)
    rmses = model.validation_rmse_
    if weights_by == "panel":
        assert rmses[kind] <= min(rmses["xgboost_0"], rmses["lightgbm_1"]) * 1.01

    # the forecast is the members' forecasts combined with the weights, and the saved folder reproduces it
    splits = split_panel(panel.series, config.split, config.task, min_history=model.problem.features.lookback)
    frames, origins = {s: sp.through_test for s, sp in splits.items()}, {s: sp.test_origins for s, sp in splits.items()}
    by_member = model.member_forecasts(frames, origins)
    combined = model.predict(frames, origins)
    for sid, rows in by_member.groupby("series_id"):
        weights = model.weights_.get("*", model.weights_.get(str(sid)))
        expected = np.maximum(rows[["xgboost_0", "lightgbm_1"]].to_numpy() @ weights, 0.0)
        np.testing.assert_allclose(combined.loc[rows.index, "prediction"], expected, rtol=1e-12)
    again = load_global_model(tmp_path / "model")
    assert isinstance(again, GlobalEnsemble)
    np.testing.assert_allclose(again.predict(frames, origins)["prediction"], combined["prediction"], rtol=1e-6)
    saved = json.loads((tmp_path / "model" / "test_metrics.json").read_text())
    assert set(saved["members"]) == {"xgboost_0", "lightgbm_1"}
