"""Panels: many series from one data YAML (a glob of files or an id column), each validated on its
own with the series named in every error; synthetic plants deterministic by seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from energy_forecast.config import DataConfig, load_data_config
from energy_forecast.data.loading import DataValidationError, load_series
from energy_forecast.data.panel import SERIES_ID, load_panel
from energy_forecast.data.plants import PLANT_COLUMNS, synth_plant, write_plants
from energy_forecast.data.synthetic import synthetic_steel_frame

PLANTS_YAML = Path(__file__).parents[2] / "configs" / "data" / "plants.yaml"


def steel_base(days: int = 40) -> pd.DataFrame:
    raw = synthetic_steel_frame(days=days)
    index = pd.date_range("2018-01-01", periods=len(raw), freq="15min", name="timestamp")
    return raw.drop(columns="date").set_index(index)


@pytest.fixture
def plants_dir(tmp_path: Path) -> Path:
    write_plants(steel_base(), 3, tmp_path / "plants", seed=7)
    return tmp_path / "plants"


def plants_config(folder: Path, **changes: object) -> DataConfig:
    config = load_data_config(PLANTS_YAML)
    return config.model_copy(update={"path": folder / "*.csv", **changes})


def test_synth_plants_are_deterministic_and_differ(tmp_path: Path) -> None:
    base = steel_base()
    first, again = synth_plant(base, 2, seed=3), synth_plant(base, 2, seed=3)
    pd.testing.assert_frame_equal(first, again)
    assert list(first.columns) == PLANT_COLUMNS
    other = synth_plant(base, 1, seed=3)
    assert not np.allclose(first["Usage_kWh"], other["Usage_kWh"])
    assert not np.allclose(synth_plant(base, 2, seed=4)["Usage_kWh"], first["Usage_kWh"])
    assert (first["Usage_kWh"] >= 0).all()
    # plant i depends only on (seed, i): 2 plants are the first 2 of 3
    small, large = write_plants(base, 2, tmp_path / "a", seed=3), write_plants(base, 3, tmp_path / "b", seed=3)
    assert [p.read_bytes() for p in small] == [p.read_bytes() for p in large[:2]]


def test_glob_panel_loads_every_series_on_one_grid(plants_dir: Path) -> None:
    panel = load_panel(plants_config(plants_dir))
    assert panel.ids == ["plant_000", "plant_001", "plant_002"]
    for frame in panel.series.values():
        assert frame.index.freq is None or frame.index.freqstr == "15min"
        assert list(frame.columns) == ["Usage_kWh", "Reactive_kVarh", "Load_Type"]
        assert len(frame) == 40 * 96
        # one category list for every series, so codes agree across series
        assert list(frame["Load_Type"].cat.categories) == ["Light_Load", "Maximum_Load", "Medium_Load"]
    long = panel.long()
    assert list(long.columns[:2]) == [SERIES_ID, "timestamp"] and len(long) == 3 * 40 * 96
    means = [panel.target(i).mean() for i in panel.ids]
    assert len({round(m, 3) for m in means}) == 3  # own scales


def test_id_column_panel_equals_the_glob_panel(plants_dir: Path, tmp_path: Path) -> None:
    frames = [pd.read_csv(p).assign(site=p.stem) for p in sorted(plants_dir.glob("*.csv"))]
    mixed = pd.concat(frames).sample(frac=1.0, random_state=0)  # rows of all sites interleaved
    one_file = tmp_path / "all.csv"
    mixed.to_csv(one_file, index=False)
    by_column = load_panel(plants_config(plants_dir, path=one_file, id_column="site"))
    by_files = load_panel(plants_config(plants_dir))
    assert by_column.ids == by_files.ids
    for sid in by_files.ids:
        pd.testing.assert_frame_equal(by_column.series[sid], by_files.series[sid])


def test_errors_name_the_series_glob(plants_dir: Path) -> None:
    path = plants_dir / "plant_001.csv"
    lines = path.read_text().splitlines()
    lines[5] = lines[5].replace(lines[5].split(",")[1], "oops", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataValidationError, match=r"^series 'plant_001': .*plant_001\.csv: target column 'Usage_kWh': row 5 \(line 6\): non-numeric value 'oops'"):
        load_panel(plants_config(plants_dir))


def test_errors_name_the_series_and_the_file_line_with_an_id_column(plants_dir: Path, tmp_path: Path) -> None:
    frames = [pd.read_csv(p).assign(site=p.stem) for p in sorted(plants_dir.glob("*.csv"))]
    table = pd.concat(frames, ignore_index=True)
    row = 2 * 40 * 96 + 10  # plant_002's 11th row
    table.loc[row, "Usage_kWh"] = -5.0
    one_file = tmp_path / "all.csv"
    table.to_csv(one_file, index=False)
    with pytest.raises(DataValidationError, match=rf"^series 'plant_002': .*all\.csv: target column 'Usage_kWh': row {row + 1} \(line {row + 2}\): negative value"):
        load_panel(plants_config(plants_dir, path=one_file, id_column="site"))
    table = pd.concat(frames, ignore_index=True)
    table = table.drop(index=range(40 * 96 + 100, 40 * 96 + 110))  # plant_001 misses 10 steps (> max_gap_steps 4)
    table.to_csv(one_file, index=False)
    with pytest.raises(DataValidationError, match=r"^series 'plant_001': .*gap of 10 missing step"):
        load_panel(plants_config(plants_dir, path=one_file, id_column="site"))


def test_series_off_the_shared_grid_is_named(plants_dir: Path) -> None:
    path = plants_dir / "plant_002.csv"
    table = pd.read_csv(path)
    table["timestamp"] = (pd.to_datetime(table["timestamp"]) + pd.Timedelta(minutes=5)).dt.strftime("%Y-%m-%d %H:%M")
    table.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=r"^series 'plant_002': .* not on the 15min grid of series 'plant_000'"):
        load_panel(plants_config(plants_dir))


def test_empty_glob_and_conflicting_declarations(tmp_path: Path, plants_dir: Path) -> None:
    with pytest.raises(DataValidationError, match="no file matches this glob"):
        load_panel(plants_config(tmp_path / "nothing"))
    with pytest.raises(ValueError, match="either id_column .* or a glob path"):
        DataConfig.model_validate({**plants_config(plants_dir).model_dump(), "id_column": "site"})
    with pytest.raises(DataValidationError, match="describes a panel"):
        load_series(plants_config(plants_dir))


def test_single_series_yaml_is_a_panel_of_one(synthetic_csv: Path) -> None:
    config = load_data_config(Path(__file__).parents[2] / "configs" / "data" / "steel_industry.yaml")
    config = config.model_copy(update={"path": synthetic_csv, "sha256": None})
    panel = load_panel(config)
    assert panel.ids == [config.name]
    pd.testing.assert_frame_equal(panel.series[config.name], load_series(config).frame)
