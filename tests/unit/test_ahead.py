"""Known-future covariates beyond the data: each calendar rule reproduces the file's own column,
and the weekly repeat is exactly last week's value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from energy_forecast.config import ConfigError, load_data_config
from energy_forecast.data import load_series
from energy_forecast.data.ahead import CALENDAR_RULES, KnownFutureError, extend_known_future
from tests.conftest import STEEL_DATA_CONFIG


def calendar_columns(config):
    return [c for c in config.covariates if c.ahead and c.ahead.startswith("calendar:")]


@pytest.mark.parametrize("source", ["synthetic", "real"])
def test_each_calendar_rule_reproduces_its_column_on_every_row(source, synthetic_csv, use_data, request):
    use_data(synthetic_csv if source == "synthetic" else request.getfixturevalue("real_data"))
    config = load_data_config(STEEL_DATA_CONFIG)
    frame = load_series(config).frame
    checked = calendar_columns(config)
    assert [c.name for c in checked] == ["NSM", "WeekStatus", "Day_of_week"]
    for covariate in checked:
        derived = CALENDAR_RULES[covariate.ahead.removeprefix("calendar:")](frame.index, config.step)
        np.testing.assert_array_equal(np.asarray(derived).astype(str), frame[covariate.name].astype(str).to_numpy(), err_msg=covariate.name)


def test_when_the_horizon_runs_past_the_data_then_rules_fill_it_and_say_how(synthetic_csv, use_data):
    use_data(synthetic_csv)
    config = load_data_config(STEEL_DATA_CONFIG)
    frame = load_series(config).frame
    until = frame.index[-1] + 96 * config.step

    extended, sources = extend_known_future(frame, config, until)

    new = extended.index[extended.index > frame.index[-1]]
    assert len(new) == 96 and extended.index[-1] == until
    assert sources == {"NSM": "calendar:seconds_since_midnight_end", "WeekStatus": "calendar:week_status", "Day_of_week": "calendar:day_name", "Load_Type": "same_slot_last_week"}
    np.testing.assert_array_equal(extended.loc[new, "Load_Type"].astype(str), frame["Load_Type"].loc[new - pd.Timedelta(days=7)].astype(str))
    assert extended.loc[new, "Usage_kWh"].isna().all() and extended.loc[new, "CO2(tCO2)"].isna().all()
    assert extended.loc[new[0], "NSM"] == 900.0 and extended.loc[new[-1], "NSM"] == 0.0
    assert isinstance(extended["Load_Type"].dtype, pd.CategoricalDtype)


def test_when_a_known_future_covariate_has_no_rule_then_extending_names_it(synthetic_csv, use_data, tmp_path):
    use_data(synthetic_csv)
    text = STEEL_DATA_CONFIG.read_text().replace(", ahead: same_slot_last_week", "")
    (tmp_path / "data.yaml").write_text(text)
    config = load_data_config(tmp_path / "data.yaml")
    frame = load_series(config).frame
    with pytest.raises(KnownFutureError, match=r"known-future covariate 'Load_Type' ends at .* declare an `ahead:` rule"):
        extend_known_future(frame, config, frame.index[-1] + 4 * config.step)
    extended, sources = extend_known_future(frame, config, frame.index[-1])
    assert extended is frame and set(sources.values()) == {"data"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{name: NSM, role: future, kind: numeric, ahead: \"calendar:moon_phase\"}", "ahead 'calendar:moon_phase' is not one of"),
        ("{name: NSM, role: past, kind: numeric, ahead: same_slot_last_week}", "ahead applies to role: future only"),
    ],
)
def test_when_an_ahead_rule_is_unknown_or_misplaced_then_the_data_yaml_is_refused(tmp_path, line, message):
    text = STEEL_DATA_CONFIG.read_text()
    start = text.index("  - {name: NSM")
    end = text.index("\n", start)
    (tmp_path / "data.yaml").write_text(text[:start] + "  - " + line + text[end:])
    with pytest.raises(ConfigError, match=message):
        load_data_config(tmp_path / "data.yaml")
