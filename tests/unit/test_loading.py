"""The loader repairs the steel CSV's quirks and rejects bad files, naming file, column and row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from energy_forecast.config import load_data_config
from energy_forecast.data import DataValidationError, load_series
from energy_forecast.data.synthetic import synthetic_steel_frame
from tests.conftest import STEEL_DATA_CONFIG


def write_steel(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\r\n")
    return path


def load(path: Path, monkeypatch, **changes):
    monkeypatch.setenv("DATA_PATH", str(path))
    config = load_data_config(STEEL_DATA_CONFIG)
    return load_series(config.model_copy(update=changes) if changes else config)


@pytest.fixture
def steel_rows() -> pd.DataFrame:
    return synthetic_steel_frame(days=3, seed=1)


def test_when_the_file_has_bom_crlf_and_midnight_quirk_then_a_regular_start_stamped_grid_results(tmp_path, monkeypatch, steel_rows):
    raw = write_steel(tmp_path / "steel.csv", steel_rows)
    assert raw.read_bytes()[:3] == b"\xef\xbb\xbf" and b"\r\n" in raw.read_bytes()
    series = load(raw, monkeypatch)
    frame = series.frame
    assert frame.index[0] == pd.Timestamp("2018-01-01 00:00") and frame.index[-1] == pd.Timestamp("2018-01-03 23:45")
    assert (np.diff(frame.index.to_numpy()) == np.timedelta64(15, "m")).all()
    # "01/01/2018 00:00" (file row 96) closes 1 January: the interval 23:45-24:00 of that day
    assert steel_rows.loc[95, "date"] == "01/01/2018 00:00"
    assert frame.loc["2018-01-01 23:45", "Usage_kWh"] == steel_rows.loc[95, "Usage_kWh"]
    assert frame.loc["2018-01-01 00:00", "Usage_kWh"] == steel_rows.loc[0, "Usage_kWh"]  # "01/01/2018 00:15"
    assert list(frame.columns) == ["Usage_kWh", *[c.name for c in series.config.covariates]]
    assert isinstance(frame["Load_Type"].dtype, pd.CategoricalDtype)
    assert series.filled_steps == 0 and len(series.sha256) == 64


def test_when_the_real_file_is_loaded_then_it_is_the_documented_gap_free_year(real_data, monkeypatch):
    series = load(real_data, monkeypatch)
    frame = series.frame
    assert len(frame) == 35040
    assert frame.index[0] == pd.Timestamp("2018-01-01 00:00") and frame.index[-1] == pd.Timestamp("2018-12-31 23:45")
    assert series.sha256 == "9b1cee6f9cb9cd9df2b95814ca90a9a2ff15b7f5f1fba0fae3c643e82072eacc"
    # the single zero reading is "07/11/2018 00:00", the last quarter-hour of 7 November
    assert frame.index[frame["Usage_kWh"].to_numpy() == 0].tolist() == [pd.Timestamp("2018-11-07 23:45")]
    assert frame["Usage_kWh"].mean() == pytest.approx(27.3869, abs=1e-4)
    assert frame["Load_Type"].value_counts()["Light_Load"] == 18072


def rejection(tmp_path, monkeypatch, rows: pd.DataFrame, **changes) -> str:
    path = write_steel(tmp_path / "bad.csv", rows)
    with pytest.raises(DataValidationError) as error:
        load(path, monkeypatch, **changes)
    assert str(path) in str(error.value)
    return str(error.value)


def test_when_a_column_is_missing_then_it_is_named(tmp_path, monkeypatch, steel_rows):
    message = rejection(tmp_path, monkeypatch, steel_rows.drop(columns=["Load_Type"]))
    assert "missing columns ['Load_Type']" in message


def test_when_a_timestamp_does_not_parse_then_row_and_value_are_named(tmp_path, monkeypatch, steel_rows):
    steel_rows.loc[10, "date"] = "32/01/2018 02:45"
    message = rejection(tmp_path, monkeypatch, steel_rows)
    assert "column 'date': row 11 (line 12): cannot parse '32/01/2018 02:45'" in message and "%d/%m/%Y %H:%M" in message


def test_when_a_stamp_is_duplicated_then_both_rows_are_named(tmp_path, monkeypatch, steel_rows):
    steel_rows.loc[20, "date"] = steel_rows.loc[19, "date"]
    message = rejection(tmp_path, monkeypatch, steel_rows)
    assert "duplicate timestamp 2018-01-01 04:45:00" in message and "row 20 (line 21)" in message and "row 21 (line 22)" in message


def test_when_a_gap_is_longer_than_the_tolerance_then_it_is_located(tmp_path, monkeypatch, steel_rows):
    message = rejection(tmp_path, monkeypatch, steel_rows.drop(index=range(40, 50)))
    assert "gap of 10 missing step(s) between 2018-01-01 09:45:00" in message and "max_gap_steps=4" in message


def test_when_a_gap_is_within_the_tolerance_then_it_is_filled_and_counted(tmp_path, monkeypatch, steel_rows):
    path = write_steel(tmp_path / "gappy.csv", steel_rows.drop(index=[40, 41, 42]))
    series = load(path, monkeypatch)
    assert series.filled_steps == 3 and len(series.frame) == len(steel_rows)
    before, after = steel_rows.loc[39, "Usage_kWh"], steel_rows.loc[43, "Usage_kWh"]
    filled = series.frame["Usage_kWh"].iloc[40:43].to_numpy()
    np.testing.assert_allclose(filled, before + (after - before) * np.array([1, 2, 3]) / 4)
    assert series.frame["Load_Type"].iloc[40:43].notna().all()


@pytest.mark.parametrize(("value", "expected"), [("", "missing value"), ("n/a", "non-numeric value 'n/a'")])
def test_when_the_target_is_missing_or_not_a_number_then_the_row_is_named(tmp_path, monkeypatch, steel_rows, value, expected):
    steel_rows["Usage_kWh"] = steel_rows["Usage_kWh"].astype(object)
    steel_rows.loc[5, "Usage_kWh"] = value
    message = rejection(tmp_path, monkeypatch, steel_rows)
    assert f"target column 'Usage_kWh': row 6 (line 7): {expected}" in message


def test_when_the_target_is_negative_then_the_row_is_named(tmp_path, monkeypatch, steel_rows):
    steel_rows.loc[7, "Usage_kWh"] = -1.5
    message = rejection(tmp_path, monkeypatch, steel_rows)
    assert "target column 'Usage_kWh': row 8 (line 9): negative value -1.5" in message


def test_when_the_file_is_absent_then_the_fix_is_suggested(tmp_path, monkeypatch):
    with pytest.raises(DataValidationError, match="data file not found. Run `make data`, or set DATA_PATH"):
        load(tmp_path / "absent.csv", monkeypatch)


def test_when_another_schema_is_described_then_only_a_data_yaml_is_needed(tmp_path):
    stamps = pd.date_range("2021-03-01", periods=24 * 20, freq="h")
    rng = np.random.default_rng(0)
    pd.DataFrame({
        "ts": stamps.strftime("%Y-%m-%dT%H:%M:%S"),
        "load_mw": rng.uniform(10, 20, len(stamps)).round(3),
        "temperature": rng.normal(8, 3, len(stamps)).round(1),
        "shift": np.where(stamps.hour < 12, "day", "night"),
    }).to_csv(tmp_path / "grid.csv", index=False)
    data_yaml = tmp_path / "grid.yaml"
    data_yaml.write_text(yaml.safe_dump({
        "name": "grid", "path": str(tmp_path / "grid.csv"), "encoding": "utf-8",
        "timestamp": {"column": "ts"}, "target": "load_mw", "frequency": "1h",
        "covariates": [{"name": "temperature", "role": "past"}, {"name": "shift", "role": "future", "kind": "categorical"}],
    }))
    series = load_series(load_data_config(data_yaml))
    assert len(series.frame) == 480 and series.frame.index.freq is None
    assert list(series.frame.columns) == ["load_mw", "temperature", "shift"]
