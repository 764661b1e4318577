"""Time zones and durations: a plant on Europe/Berlin time whose meter writes UTC stamps.

The synthetic plant runs shifts by its local wall clock, so its load pattern moves by an hour in
UTC when daylight saving starts (2021-03-28, a 23-hour local day) and ends (2021-10-31, 25 hours).
Declared with its zone, the data's days, daily origins and calendar features are local; the day-ahead
horizon ``1d`` covers the longest local day (100 quarter-hours); and a model forecasts the days
across the change as well as any other day, while the same data read as naive UTC misses the shift.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from energy_forecast.config import ConfigError, FeatureConfig, load_training_config
from energy_forecast.data.loading import DataValidationError, load_series
from energy_forecast.features import build_features
from energy_forecast.training import evaluate, preflight

ZONE = "Europe/Berlin"


def plant_csv(path: Path, start: str, days: int, *, stamps: str = "utc_z", seed: int = 0) -> Path:
    """15-minute load of a plant on Berlin wall-clock shifts (06:00-22:00 on weekdays), stamped at interval start.

    ``stamps``: ``utc_z`` ISO with Z, ``offsets`` local time with its +01:00/+02:00 offset, ``naive_utc`` UTC
    without a marker.
    """
    rng = np.random.default_rng(seed)
    utc = pd.date_range(pd.Timestamp(start, tz="UTC"), periods=days * 96, freq="15min")
    local = utc.tz_convert(ZONE)
    working = (local.hour >= 6) & (local.hour < 22) & (local.day_of_week < 5)
    peak = (local.hour >= 9) & (local.hour < 12)
    load = np.clip(5.0 + 40.0 * working + 20.0 * (working & peak) + rng.normal(0.0, 2.0, len(utc)), 0.0, None)
    written = {
        "utc_z": utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "offsets": [stamp.isoformat() for stamp in local],
        "naive_utc": utc.strftime("%Y-%m-%d %H:%M:%S"),
    }[stamps]
    pd.DataFrame({"time": written, "load": load.round(3)}).to_csv(path, index=False)
    return path


def training_yaml(folder: Path, csv: Path, split: dict, *, zone: str | None = ZONE, stamp_zone: str | None = "UTC", horizon="1d", features=None) -> Path:
    timestamp = {"column": "time", **({"timezone": stamp_zone} if stamp_zone else {})}
    data = {"name": "plant", "path": str(csv), "timestamp": timestamp, "target": "load", "frequency": "15min", **({"timezone": zone} if zone else {})}
    body = {
        "name": "plant_xgboost",
        "data": data,
        "task": {"name": "day_ahead", "horizon": horizon, "origin_every": "1D", "origin_time": "00:00"},
        "split": split,
        "covariates": "none",
        "features": features
        or {
            "origin_lags": ["15min", "1h", "1d"],
            "seasonal_lags": ["2d", "7d"],
            "rolling_windows": ["4h", "1d"],
            "past_covariate_lags": [],
            "calendar": ["slot_of_day", "day_of_week", "is_weekend"],
            "train_origin_every": "1h",
        },
        "model": {"type": "xgboost", "params": {"n_estimators": 150, "max_depth": 6, "learning_rate": 0.2}},
        "tracking": {"experiment": "tz-test", "registered_model": None},
    }
    path = folder / "plant.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


SPRING = {"train_end": "2021-03-15", "validation_end": "2021-03-22", "test_end": "2021-04-05"}
AUTUMN = {"train_end": "2021-10-18", "validation_end": "2021-10-25", "test_end": "2021-11-08"}


@pytest.mark.parametrize("stamps", ["utc_z", "offsets", "naive_utc"])
def test_when_stamps_are_utc_or_carry_offsets_then_the_index_is_continuous_local_time(tmp_path, stamps):
    csv = plant_csv(tmp_path / "plant.csv", "2021-03-20", 14, stamps=stamps)
    config = load_training_config(training_yaml(tmp_path, csv, SPRING, stamp_zone="UTC" if stamps == "naive_utc" else None))

    index = load_series(config.data).frame.index

    assert str(index.tz) == ZONE
    assert ((index[1:] - index[:-1]) == pd.Timedelta("15min")).all()  # no gap or duplicate across the change
    assert index[0] == pd.Timestamp("2021-03-20 01:00", tz=ZONE)
    day = index[index.normalize() == pd.Timestamp("2021-03-28", tz=ZONE)]
    assert len(day) == 92 and 2 not in set(day.hour)  # 02:00-03:00 does not exist that day


def test_when_the_plant_zone_has_daylight_saving_then_1d_is_its_longest_day_and_durations_become_steps(tmp_path):
    csv = plant_csv(tmp_path / "plant.csv", "2021-03-01", 7)
    config = load_training_config(training_yaml(tmp_path, csv, SPRING))
    assert config.task.horizon == 100  # a 25-hour day in October
    assert config.features.origin_lags == [1, 4, 96] and config.features.seasonal_lags == [192, 672]
    assert config.problem.features.lookback == 672
    naive = load_training_config(training_yaml(tmp_path, csv, SPRING, zone=None, stamp_zone=None))
    assert naive.task.horizon == 96


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"features": {"origin_lags": ["20min"]}}, r"features.origin_lags: 20min is not a whole number of 15-minute steps \(it is 1.33333\)"),
        ({"features": {"seasonal_lags": ["1d"]}}, r"seasonal_lags / seasonal_means lags \[96\] are shorter than the horizon \(100\)"),
        ({"horizon": "90min 7s"}, r"horizon: 90min 7s is not a whole number of 15-minute steps"),
        ({"horizon": "soon"}, r"'soon' is neither a number of steps nor a duration"),
        ({"zone": "Mars/Olympus"}, r"'Mars/Olympus' is not an IANA time zone"),
    ],
)
def test_when_a_duration_or_zone_is_wrong_then_the_config_error_names_the_field(tmp_path, change, expected):
    csv = plant_csv(tmp_path / "plant.csv", "2021-03-01", 7)
    kwargs = {}
    if "features" in change:
        kwargs["features"] = {"seasonal_lags": ["2d"], **change["features"]}
    if "horizon" in change:
        kwargs["horizon"] = change["horizon"]
    if "zone" in change:
        kwargs["zone"] = change["zone"]
    with pytest.raises(ConfigError, match=expected):
        load_training_config(training_yaml(tmp_path, csv, SPRING, **kwargs))


def test_when_a_30_minute_data_set_uses_durations_then_lags_keep_their_length_in_time():
    features = FeatureConfig(origin_lags=["30min", "1d"], seasonal_lags=["7d"], rolling_windows=["1d"], past_covariate_lags=["1h"], seasonal_means=[("1d", 7)])
    in_steps = features.in_steps(pd.Timedelta("30min"))
    assert in_steps.origin_lags == [1, 48] and in_steps.seasonal_lags == [336] and in_steps.rolling_windows == [48]
    assert in_steps.past_covariate_lags == [2] and in_steps.seasonal_means == [(48, 7)]
    with pytest.raises(ValueError, match="15min is not a whole number of 30-minute steps"):
        FeatureConfig(origin_lags=["15min"]).in_steps(pd.Timedelta("30min"))


@pytest.mark.parametrize(
    ("stamps", "yaml_zone", "expected"),
    [
        ("offsets", None, r"plant.csv: column 'time': the stamps carry UTC offsets .* declares no time zone: set `timezone:`"),
        ("mixed", ZONE, r"plant.csv: column 'time': row 5 \(line 6\): '2021-03-20 00:00:00' has no UTC offset while row 1 \(line 2\)"),
        ("local_gap", None, r"declared as Europe/Berlin local time .* daylight saving"),
    ],
)
def test_when_stamps_and_zones_disagree_then_the_loader_says_which_line(tmp_path, stamps, yaml_zone, expected):
    csv = tmp_path / "plant.csv"
    if stamps == "offsets":
        plant_csv(csv, "2021-03-20", 2, stamps="offsets")
        path = training_yaml(tmp_path, csv, SPRING, zone=None, stamp_zone=None)
    elif stamps == "mixed":
        plant_csv(csv, "2021-03-20", 2, stamps="offsets")
        lines = csv.read_text().splitlines()
        lines[5] = "2021-03-20 00:00:00," + lines[5].split(",")[1]
        csv.write_text("\n".join(lines) + "\n")
        path = training_yaml(tmp_path, csv, SPRING, zone=yaml_zone, stamp_zone=None)
    else:  # local wall-clock stamps through the spring gap: 02:15 on 28 March does not exist in Berlin
        local = pd.date_range("2021-03-28 00:00", periods=16, freq="15min")
        pd.DataFrame({"time": local.strftime("%Y-%m-%d %H:%M:%S"), "load": 1.0}).to_csv(csv, index=False)
        path = training_yaml(tmp_path, csv, SPRING, zone=None, stamp_zone=ZONE)
    with pytest.raises(DataValidationError, match=expected):
        load_series(load_training_config(path).data)


def test_when_split_bounds_carry_offsets_against_naive_data_then_preflight_names_the_bound(tmp_path):
    csv = plant_csv(tmp_path / "plant.csv", "2021-02-20", 40, stamps="naive_utc")
    aware = {key: f"{value}T00:00:00+01:00" for key, value in SPRING.items()}
    config = load_training_config(training_yaml(tmp_path, csv, aware, zone=None, stamp_zone=None))
    with pytest.raises(ConfigError, match=r"split.test_end=2021-04-05 00:00:00\+01:00 carries a UTC offset but the data's stamps are naive"):
        preflight(config)


@pytest.mark.parametrize(("start", "split", "change_day", "day_length"), [("2021-02-10", SPRING, "2021-03-28", 92), ("2021-09-12", AUTUMN, "2021-10-31", 100)])
def test_when_daylight_saving_changes_then_origins_calendar_and_forecasts_follow_local_time(tmp_path, start, split, change_day, day_length):
    csv = plant_csv(tmp_path / "plant.csv", start, 57, seed=1)
    config = load_training_config(training_yaml(tmp_path, csv, split))
    checked = preflight(config)
    origins = checked.split.test_origins

    assert (origins.hour == 0).all() and (origins.minute == 0).all()  # local midnight, before and after the change
    change = pd.Timestamp(change_day, tz=ZONE)
    next_midnight = change + pd.DateOffset(days=1)
    assert change in origins and (origins[origins.get_loc(change) + 1] - change) == pd.Timedelta(minutes=15 * day_length)
    matrix = build_features(checked.split.through_test, pd.DatetimeIndex([change]), problem=config.problem)
    seven = (matrix.keys["timestamp"] == change + pd.Timedelta(hours=6 if day_length == 92 else 8)).to_numpy()  # 6 or 8 hours after midnight
    assert matrix.keys.loc[seven, "timestamp"].item().hour == 7
    assert matrix.X.loc[seven, "slot_of_day"].item() == 28.0  # 07:00 on the local wall clock

    evaluation = evaluate(config, checked.series, checked.model, checked.split)
    forecast = evaluation.forecast
    on_change_day = forecast[(forecast["origin"] == change) & (forecast["timestamp"] < next_midnight)]
    assert len(on_change_day) == day_length  # the whole local day is forecast, 23 or 25 hours
    error = forecast.assign(day=forecast["origin"]).groupby("day").apply(lambda rows: np.sqrt(((rows["prediction"] - rows["actual"]) ** 2).mean()))
    assert error[change] < 1.5 * error.drop(change).median()  # the change day is forecast like any other

    # The same data read as naive UTC wall clock: the shifts move by an hour at the change and the model misses it.
    naive = load_training_config(training_yaml(tmp_path, plant_csv(tmp_path / "naive.csv", start, 57, stamps="naive_utc", seed=1), split, zone=None, stamp_zone=None, horizon=96))
    naive_check = preflight(naive)
    naive_forecast = evaluate(naive, naive_check.series, naive_check.model, naive_check.split).forecast
    after = forecast["timestamp"] >= next_midnight
    naive_after = naive_forecast["timestamp"] >= pd.Timestamp(change_day) + pd.Timedelta(days=1)
    local_rmse = np.sqrt(((forecast.loc[after, "prediction"] - forecast.loc[after, "actual"]) ** 2).mean())
    naive_rmse = np.sqrt(((naive_forecast.loc[naive_after, "prediction"] - naive_forecast.loc[naive_after, "actual"]) ** 2).mean())
    assert local_rmse < 0.8 * naive_rmse, (local_rmse, naive_rmse)


def test_when_the_data_declares_a_zone_then_daily_partitions_and_the_day_ahead_horizon_follow_it():
    from pydantic import ValidationError

    from energy_forecast.config import OperationsConfig, load_operations_config
    from pipelines.defs.forecasts import daily_partitions

    shipped = load_operations_config("configs/operations.yaml")
    assert shipped.timezone == "Asia/Seoul" and shipped.task.horizon == 96  # naive wall-clock steel data: no daylight saving
    raw = shipped.model_dump() | {"timezone": None, "task": shipped.task.model_copy(update={"horizon": "1d"}).model_dump()}
    raw["data"]["timezone"] = ZONE
    berlin = OperationsConfig.model_validate(raw)
    assert berlin.timezone == ZONE and berlin.task.horizon == 100
    partitions = daily_partitions(berlin)
    assert partitions.timezone == ZONE
    window = partitions.time_window_for_partition_key("2021-03-28")
    assert window.start.hour == 0 and window.end.timestamp() - window.start.timestamp() == 23 * 3600  # the local day
    with pytest.raises(ValidationError, match="timezone: Asia/Seoul differs from the data's zone Europe/Berlin"):
        OperationsConfig.model_validate(raw | {"timezone": "Asia/Seoul"})
