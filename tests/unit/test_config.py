"""Config validation: every error names the file and the field, before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from energy_forecast.config import ConfigError, load_comparison_config
from energy_forecast.models import model_class
from energy_forecast.training import load_config, member_configs
from tests.conftest import CONFIGS, PROJECT_DIR

TRAINING_CONFIGS = sorted(p for p in (CONFIGS / "training").glob("*.yaml") if not p.name.startswith("_"))


def write(directory: Path, body: dict, name: str = "config.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def extending(directory: Path, base: str, **override) -> Path:
    return write(directory, {"extends": str(CONFIGS / "training" / base), **override})


@pytest.mark.parametrize("path", TRAINING_CONFIGS, ids=lambda p: p.stem)
def test_when_a_shipped_config_is_loaded_then_its_model_type_picks_its_own_class(path):
    config = load_config(path)
    declared = yaml.safe_load(path.read_text()).get("model", {}).get("type") or load_config(path).model.type
    assert config.model.type == declared
    assert model_class(declared).name == declared


def test_when_model_type_changes_then_a_different_class_is_selected(tmp_path):
    xgboost = load_config(CONFIGS / "training" / "xgboost.yaml")
    switched = load_config(extending(tmp_path, "xgboost.yaml", model={"type": "catboost", "params": {}}))
    assert model_class(xgboost.model.type).__name__ == "XGBoostForecaster"
    assert model_class(switched.model.type).__name__ == "CatBoostForecaster"


def test_when_model_type_is_unknown_then_the_error_names_file_field_and_choices(tmp_path):
    path = extending(tmp_path, "xgboost.yaml", model={"type": "xgbost", "params": {}})
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert str(path) in message and "model.type" in message and "'xgbost'" in message
    for valid in ("xgboost", "lightgbm", "catboost", "stacking", "voting"):
        assert valid in message


def test_when_a_model_param_is_unknown_then_the_error_lists_valid_params(tmp_path):
    path = extending(tmp_path, "xgboost.yaml", model={"params": {"n_estimator": 10}})
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert str(path) in message and "model.params" in message and "'n_estimator'" in message
    assert "n_estimators" in message and "learning_rate" in message


def test_when_a_param_has_a_bad_value_then_the_error_names_it(tmp_path):
    with pytest.raises(ConfigError, match=r"model.params: learning_rate: Input should be greater than 0"):
        load_config(extending(tmp_path, "lightgbm.yaml", model={"params": {"learning_rate": -1}}))


def test_when_an_ensemble_member_is_invalid_then_the_member_is_named(tmp_path):
    members = [{"type": "xgboost", "params": {"depth": 3}}, {"type": "lightgbm"}]
    with pytest.raises(ConfigError, match=r"members\.0\.params: unknown parameter 'depth' for xgboost"):
        load_config(extending(tmp_path, "stacking.yaml", model={"params": {"members": members}}))
    members = [{"type": "stacking"}, {"type": "lightgbm"}]
    with pytest.raises(ConfigError, match=r"members\.0\.type.*cannot be an ensemble member"):
        load_config(extending(tmp_path, "voting.yaml", model={"params": {"members": members}}))


def test_when_a_section_has_an_unknown_field_then_valid_fields_are_listed(tmp_path):
    path = extending(tmp_path, "xgboost.yaml", split={"trian_end": "2018-10-01"})
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert f"{path}: split.trian_end: unknown field; valid fields here: refit, test_end, train_end, train_start, validation_end, validation_windows" in str(error.value)


def test_when_device_is_invalid_then_choices_are_listed(tmp_path):
    with pytest.raises(ConfigError, match=r"model.device: Input should be 'auto', 'cpu' or 'cuda' \(got 'gpu'\)"):
        load_config(extending(tmp_path, "xgboost.yaml", model={"device": "gpu"}))


def test_when_split_bounds_do_not_increase_then_rejected(tmp_path):
    with pytest.raises(ConfigError, match=r"train_end .* must come before validation_end"):
        load_config(extending(tmp_path, "xgboost.yaml", split={"train_end": "2018-12-15"}))


def test_when_a_seasonal_lag_is_shorter_than_the_horizon_then_rejected_as_a_leak(tmp_path):
    with pytest.raises(ConfigError, match=r"\[48\] are shorter than the horizon \(96\): they would read values at or after the origin"):
        load_config(extending(tmp_path, "xgboost.yaml", features={"seasonal_lags": [48, 672]}))


def test_when_the_training_origins_spacing_is_not_a_duration_then_it_is_refused_before_any_work_and_a_lower_case_day_is_kept_as_pandas_reads_it(tmp_path):
    with pytest.raises(ConfigError, match=r"features.train_origin_every: .*'1x' is neither a number of steps nor a duration"):
        load_config(extending(tmp_path, "xgboost.yaml", features={"train_origin_every": "1x"}))
    assert load_config(extending(tmp_path, "xgboost.yaml", features={"train_origin_every": "1d"})).features.train_origin_every == "1D"


def test_when_a_covariate_is_not_declared_then_rejected_with_the_declared_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"covariates \['Temperature'\] are not declared.*Load_Type"):
        load_config(extending(tmp_path, "xgboost.yaml", covariates=["Temperature", "Load_Type"]))


def test_when_data_path_is_in_the_environment_then_it_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_PATH", str(tmp_path / "elsewhere.csv"))
    assert load_config(CONFIGS / "training" / "xgboost.yaml").data.path == tmp_path / "elsewhere.csv"
    monkeypatch.delenv("DATA_PATH")
    assert load_config(CONFIGS / "training" / "xgboost.yaml").data.path == PROJECT_DIR / "data" / "raw" / "Steel_industry_data.csv"  # relative to the data YAML


def test_when_extends_forms_a_cycle_then_the_chain_is_reported(tmp_path):
    write(tmp_path, {"extends": "b.yaml"}, "a.yaml")
    write(tmp_path, {"extends": "a.yaml"}, "b.yaml")
    with pytest.raises(ConfigError, match="'extends' forms a cycle"):
        load_config(tmp_path / "a.yaml")


def test_when_the_file_is_missing_or_not_yaml_then_the_path_is_named(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [unclosed")
    with pytest.raises(ConfigError, match=f"{broken}: not valid YAML"):
        load_config(broken)


def test_when_the_data_yaml_is_invalid_then_the_error_names_the_data_file(tmp_path):
    data = write(tmp_path, {"name": "x", "path": "x.csv", "timestamp": {"column": "t"}, "target": "y", "frequency": "fortnightly"}, "data.yaml")
    with pytest.raises(ConfigError, match=f"{data}: frequency: 'fortnightly' is not a pandas frequency"):
        load_config(extending(tmp_path, "xgboost.yaml", data=str(data)))


@pytest.mark.parametrize("path", sorted((CONFIGS / "comparisons").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_comparison_ranks_one_task_and_lists_each_ensembles_members(path):
    configs = [load_config(member) for member in load_comparison_config(path).configs]
    assert len({config.task.name for config in configs}) == 1
    listed = {config.name for config in configs}
    assert all(set(member_configs(config)) <= listed for config in configs)  # so the ensembles reuse them


def test_when_a_comparison_lists_a_missing_config_then_it_is_named(tmp_path):
    path = write(tmp_path, {"configs": ["nope.yaml"]}, "comparison.yaml")
    with pytest.raises(ConfigError, match=r"configs: files not found: \['nope.yaml'\]"):
        load_comparison_config(path)
    assert len(load_comparison_config(CONFIGS / "comparisons" / "traditional.yaml").configs) == 5
