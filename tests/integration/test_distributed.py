"""A global LightGBM trained on a Dask cluster (energy_forecast.distributed.fit_dask, issue 11).

A ``distributed.LocalCluster`` of two worker processes on loopback stands in for the cluster of
infra/k8s/manifests/dask.yaml; LightGBM's own data-parallel learning runs between them. The panel:
synthetic plants from the real steel series (energy_forecast.data.plants), written as one CSV per
plant and loaded back through the panel loader (configs/data/plants.yaml), one Dask partition per
plant, built on the workers. Day-ahead features: the same slot 1, 2 and 7 days earlier and the
previous day's mean, calendar, the production calendar (Load_Type, known ahead) and the plant id
as a categorical; target and lags divided by the plant's mean training load (per-series scaling),
so one model serves plants of very different size. Trained Jan-Nov, scored on December in kWh.
"""

from __future__ import annotations

import time

import dask.dataframe as dd
import distributed
import lightgbm
import numpy as np
import pandas as pd
import pytest

from energy_forecast.config import load_data_config
from energy_forecast.data.loading import load_series
from energy_forecast.data.panel import load_panel
from energy_forecast.data.plants import write_plants
from energy_forecast.distributed import fit_dask
from tests.conftest import CONFIGS, STEEL_DATA_CONFIG

PLANTS = 6
DAY = 96
TEST_START = pd.Timestamp("2018-12-01")
PARAMS = {"n_estimators": 150, "learning_rate": 0.05, "num_leaves": 31, "min_child_samples": 50,
          "subsample": 1.0, "colsample_bytree": 1.0, "verbose": -1, "seed": 7}
LABEL = "y"


@pytest.fixture(scope="module")
def plants(real_data, tmp_path_factory) -> dict[str, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("plants")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATA_PATH", str(real_data))
        base = load_series(load_data_config(STEEL_DATA_CONFIG)).frame
        write_plants(base, PLANTS, folder, seed=11)
        patch.setenv("PLANTS_PATH", str(folder))
        panel = load_panel(load_data_config(CONFIGS / "data" / "plants.yaml"))
    assert len(panel.ids) == PLANTS
    return panel.series


def plant_features(site: str, plant: pd.DataFrame, sites: list[str]) -> pd.DataFrame:
    """Day-ahead rows of one plant: features known a day before each target stamp, scaled by the plant's mean."""
    load = plant["Usage_kWh"].astype("float64")
    scale = float(load[load.index < TEST_START].mean())
    scaled = load / scale
    frame = pd.DataFrame(index=plant.index)
    frame["lag_1d"] = scaled.shift(DAY)
    frame["lag_2d"] = scaled.shift(2 * DAY)
    frame["lag_7d"] = scaled.shift(7 * DAY)
    frame["mean_prev_day"] = scaled.shift(DAY).rolling(DAY).mean()
    frame["slot"] = (plant.index.hour * 4 + plant.index.minute // 15).astype("float32")
    frame["weekday"] = plant.index.day_of_week.astype("float32")
    frame["load_type"] = pd.Categorical(plant["Load_Type"].astype(str), categories=["Light_Load", "Medium_Load", "Maximum_Load"]).codes.astype("float32")
    assert (frame["load_type"] >= 0).all(), f"{site}: a Load_Type outside the three known kinds"
    frame["site"] = pd.Categorical([site] * len(frame), categories=sites)
    frame["scale"] = scale
    frame[LABEL] = scaled
    frame = frame.dropna().astype({column: "float32" for column in frame.columns if column not in ("site", "scale")})
    return frame.reset_index()


def split(frame: pd.DataFrame, train: bool) -> pd.DataFrame:
    chosen = frame["timestamp"] < TEST_START if train else frame["timestamp"] >= TEST_START
    return frame.loc[chosen].drop(columns=["timestamp", "scale"])


def train_partition(site: str, plants: dict[str, pd.DataFrame], sites: list[str]) -> pd.DataFrame:
    return split(plant_features(site, plants[site], sites), train=True)


def rmse(actual: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.sqrt(np.mean((actual - predicted) ** 2)))


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, protocol="tcp") as local, distributed.Client(local) as client:
        yield client


@pytest.mark.real_data
def test_a_global_lightgbm_trained_on_a_dask_cluster_forecasts_december_like_a_local_one(plants, cluster):
    sites = sorted(plants)
    whole = {site: plant_features(site, plants[site], sites) for site in sites}
    meta = split(whole[sites[0]].iloc[:0], train=True)
    frame = dd.from_map(train_partition, sites, plants=plants, sites=sites, meta=meta, enforce_metadata=True)
    assert frame.npartitions == PLANTS

    started = time.perf_counter()
    booster = fit_dask(frame, PARAMS, cluster, label=LABEL)
    distributed_seconds = time.perf_counter() - started
    assert isinstance(booster, lightgbm.Booster)
    assert booster.num_trees() == PARAMS["n_estimators"]
    assert booster.feature_name() == [column for column in meta.columns if column != LABEL]

    train = pd.concat([split(whole[site], train=True) for site in sites], ignore_index=True)
    started = time.perf_counter()
    local = lightgbm.LGBMRegressor(**PARAMS, n_jobs=1).fit(train.drop(columns=[LABEL]), train[LABEL]).booster_
    local_seconds = time.perf_counter() - started

    test = pd.concat([whole[site].loc[whole[site]["timestamp"] >= TEST_START] for site in sites], ignore_index=True)
    features = test.drop(columns=["timestamp", "scale", LABEL])
    actual = (test[LABEL] * test["scale"]).to_numpy()
    by_dask = booster.predict(features) * test["scale"].to_numpy()
    by_local = local.predict(features) * test["scale"].to_numpy()
    weekly_naive = (test["lag_7d"] * test["scale"]).to_numpy()

    scores = {"dask": rmse(actual, by_dask), "local": rmse(actual, by_local), "weekly naive": rmse(actual, weekly_naive)}
    print(f"December RMSE over {PLANTS} plants (kWh): {scores}; fit seconds: dask {distributed_seconds:.1f}, local {local_seconds:.1f}")
    # a real forecaster: clearly better than the same slot last week
    assert scores["dask"] < 0.85 * scores["weekly naive"], scores
    # the same model as one machine trains, up to data-parallel histogram differences
    assert abs(scores["dask"] - scores["local"]) <= 0.05 * scores["local"], scores
    # and every plant is forecast at its own scale (per-series scaling undone)
    for site in sites:
        rows = (test["site"] == site).to_numpy()
        assert rmse(actual[rows], by_dask[rows]) < rmse(actual[rows], weekly_naive[rows]), site


def test_fit_dask_refuses_inputs_that_would_train_a_wrong_model(cluster):
    sites = ["a", "b"]
    rows = pd.DataFrame({"x": np.arange(20, dtype="float32"), "y": np.arange(20, dtype="float32"),
                         "site": pd.Categorical(["a"] * 10 + ["b"] * 10, categories=sites)})
    frame = dd.from_pandas(rows, npartitions=2)
    with pytest.raises(ValueError, match="label column 'target'"):
        fit_dask(frame, PARAMS, cluster, label="target")
    unknown = dd.from_pandas(rows.astype({"site": "object"}), npartitions=2).astype({"site": "category"})
    with pytest.raises(ValueError, match="unknown categories"):
        fit_dask(unknown, PARAMS, cluster, label="y")
    with pytest.raises(ValueError, match="no rows"):
        fit_dask(frame.loc[frame["x"] < 0], PARAMS, cluster, label="y")
    with pytest.raises(TypeError, match="dask.dataframe"):
        fit_dask(rows, PARAMS, cluster, label="y")


def test_client_from_env_connects_to_the_named_scheduler_and_refuses_none(cluster, monkeypatch):
    from energy_forecast.distributed import DASK_SCHEDULER_ENV, client_from_env

    monkeypatch.delenv(DASK_SCHEDULER_ENV, raising=False)
    with pytest.raises(RuntimeError, match=DASK_SCHEDULER_ENV):
        client_from_env()
    monkeypatch.setenv(DASK_SCHEDULER_ENV, cluster.scheduler.address)
    with client_from_env(timeout="20s") as client:
        assert len(client.scheduler_info()["workers"]) == 2
