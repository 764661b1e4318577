"""Sites as dynamic partitions: the new-site-data sensor adds a partition for a site it has not seen,
its ingest run starts the site's series, and a site x day forecast and its accuracy materialize."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml

from energy_forecast.config import FeatureConfig, load_data_config, load_operations_config
from energy_forecast.data.plants import synth_plant
from energy_forecast.models.global_boosted import GlobalBoostedModel
from energy_forecast.models.global_ensemble import GlobalEnsemble
from pipelines.defs.sites import SITES, new_site_data_sensor, site_definitions, site_readings
from pipelines.resources import Operations
from tests.conftest import PROJECT_DIR
from tests.unit.test_panel import steel_base

CONFIGS = PROJECT_DIR / "configs"


def _operations_yaml(tmp_path: Path, model: Path | None = None) -> Path:
    raw = yaml.safe_load((CONFIGS / "operations.yaml").read_text())
    raw |= {
        "data": str(CONFIGS / "data" / "steel_industry.yaml"),
        "task": str(CONFIGS / "tasks" / "day_ahead.yaml"),
        "series": str(tmp_path / "live" / "steel.csv"),
        "landing": str(tmp_path / "landing" / "steel"),
        "models": [str(CONFIGS / "training" / "xgboost.yaml")],
        "alert_webhook": "",
        "sites": {
            "data": str(CONFIGS / "data" / "plants.yaml"),
            "landing": str(tmp_path / "landing" / "sites"),
            "series_folder": str(tmp_path / "live" / "sites"),
            "first_forecast_day": "2018-01-15",
            **({"global_model": str(model)} if model else {}),
        },
    }
    path = tmp_path / "operations.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _deliver(tmp_path: Path, site: str, name: str, rows: pd.DataFrame) -> None:
    folder = tmp_path / "landing" / "sites" / site
    folder.mkdir(parents=True, exist_ok=True)
    rows.to_csv(folder / name, index=False)


def test_sensor_adds_a_dynamic_partition_for_a_new_site_and_its_run_starts_the_series(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DATA_SHA256", "")
    config_path = _operations_yaml(tmp_path)
    resources = {"operations": Operations(config_path=str(config_path))}
    plant = synth_plant(steel_base(days=30), 7, seed=1)
    with dg.DagsterInstance.ephemeral() as instance:
        empty = new_site_data_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert isinstance(empty, dg.SkipReason)

        _deliver(tmp_path, "plant_007", "2018-01-a.csv", plant.iloc[: 20 * 96])
        result = new_site_data_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert [r.partition_keys for r in result.dynamic_partitions_requests] == [["plant_007"]]
        assert result.dynamic_partitions_requests[0].partitions_def_name == SITES.name
        assert [r.partition_key for r in result.run_requests] == ["plant_007"]

        instance.add_dynamic_partitions(SITES.name, ["plant_007"])  # what the daemon does with the request
        outcome = dg.materialize([site_readings], partition_key="plant_007", instance=instance, resources=resources)
        assert outcome.success
        stored = tmp_path / "live" / "sites" / "plant_007.csv"
        assert len(pd.read_csv(stored)) == 20 * 96
        assert (tmp_path / "landing" / "sites" / "plant_007" / "processed" / "2018-01-a.csv").is_file()

        # a known site: no new partition, one more run; a bad file is quarantined, the good one appended
        _deliver(tmp_path, "plant_007", "2018-01-b.csv", plant.iloc[20 * 96 : 30 * 96])
        bad = plant.iloc[30 * 96 - 10 :].assign(Usage_kWh="oops")
        _deliver(tmp_path, "plant_007", "2018-01-c.csv", bad)
        again = new_site_data_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert again.dynamic_partitions_requests == [] and [r.partition_key for r in again.run_requests] == ["plant_007"]
        assert dg.materialize([site_readings], partition_key="plant_007", instance=instance, resources=resources).success
        assert len(pd.read_csv(stored)) == 30 * 96
        assert (tmp_path / "landing" / "sites" / "plant_007" / "quarantine" / "2018-01-c.csv").is_file()
        assert instance.get_dynamic_partitions(SITES.name) == ["plant_007"]


@pytest.mark.parametrize("kind", ["global", "voting"])
def test_site_by_day_forecast_and_accuracy(tmp_path, monkeypatch, kind: str) -> None:
    monkeypatch.setenv("DATA_SHA256", "")
    base = steel_base(days=30)
    plants = {f"plant_00{i}": synth_plant(base, i, seed=1) for i in range(2)}
    data = load_data_config(CONFIGS / "data" / "plants.yaml")
    features = FeatureConfig(origin_lags=[1, 4], seasonal_lags=[96, 672], seasonal_means=[], rolling_windows=[96], past_covariate_lags=[1],
                             horizon_summaries=False, train_origin_every="6h")
    from energy_forecast.config import ForecastProblem

    problem = ForecastProblem(target=data.target, horizon=96, covariates=tuple(data.covariates), available_covariates=tuple(data.covariates), features=features)
    from energy_forecast.data.loading import load_series

    frames = {}
    for site, table in plants.items():
        path = tmp_path / "train" / f"{site}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False)
        frames[site] = load_series(data.model_copy(update={"path": path})).frame
    if kind == "global":
        model = GlobalBoostedModel("lightgbm", {"n_estimators": 20, "num_leaves": 7}, problem)
        model.fit({s: f.iloc[: 25 * 96] for s, f in frames.items()})
    else:  # a panel ensemble saved in the same place is read the same way
        members = [{"type": "lightgbm", "params": {"n_estimators": 20, "num_leaves": 7}}, {"type": "xgboost", "params": {"n_estimators": 20}}]
        model = GlobalEnsemble("voting", {"members": members}, problem)
        model.fit({s: f.iloc[: 21 * 96] for s, f in frames.items()},
                  {s: (f.iloc[: 25 * 96], pd.date_range("2018-01-22", "2018-01-24", freq="D")) for s, f in frames.items()})
    model.save(tmp_path / "global")

    config_path = _operations_yaml(tmp_path, model=tmp_path / "global")
    operations = load_operations_config(config_path)
    definitions = site_definitions(operations)
    assets = {a.key.to_user_string(): a for a in definitions["assets"]}
    assert set(assets) == {"site_readings", "site_forecast", "site_accuracy"}
    resources = {"operations": Operations(config_path=str(config_path))}
    with dg.DagsterInstance.ephemeral() as instance:
        _deliver(tmp_path, "plant_001", "all.csv", plants["plant_001"])
        sensed = new_site_data_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        instance.add_dynamic_partitions(SITES.name, sensed.dynamic_partitions_requests[0].partition_keys)
        assert dg.materialize([site_readings], partition_key="plant_001", instance=instance, resources=resources).success
        key = dg.MultiPartitionKey({"day": "2018-01-28", "site": "plant_001"})
        outcome = dg.materialize([assets["site_forecast"], assets["site_accuracy"]], partition_key=key, instance=instance, resources=resources,
                                 selection=[assets["site_forecast"], assets["site_accuracy"]])
        assert outcome.success
        rows = outcome.output_for_node("site_forecast")
        assert len(rows) == 96 and rows["series_id"].eq("plant_001").all()
        assert str(rows["timestamp"].iloc[0]) == "2018-01-28 00:00:00"
        accuracy = outcome.output_for_node("site_accuracy")
        assert accuracy["site"] == "plant_001" and accuracy["rmse"] > 0
