"""The tuning: block: inherited and replaced as documented, and its storage URL (which may hold a
password) never reaches a dump, so never a logged parameter or resolved_config.yaml."""

from __future__ import annotations

import yaml

from energy_forecast.tracking import flatten
from energy_forecast.training import load_config
from energy_forecast.tuning import load_tuning_config, tuned_path
from tests.conftest import CONFIGS


def write(tmp_path, body: dict):
    path = tmp_path / "child.yaml"
    path.write_text(yaml.safe_dump({"extends": str(CONFIGS / "training" / "xgboost.yaml"), **body}))
    return path


def test_when_a_child_gives_a_search_space_then_it_replaces_the_parents_whole(tmp_path):
    inherited = load_config(write(tmp_path, {}))
    assert "reg_lambda" in inherited.tuning.search_space
    child = load_config(write(tmp_path, {"tuning": {"trials": 3, "search_space": {"subsample": {"type": "categorical", "choices": [0.5, 1.0]}}}}))
    assert list(child.tuning.search_space) == ["subsample"] and child.tuning.trials == 3
    assert child.tuning.sampler_seed == inherited.tuning.sampler_seed  # the rest of the block is still inherited


def test_when_the_storage_holds_a_password_then_no_dump_carries_it(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTUNA_STORAGE", "postgresql+psycopg2://tuner:s3cret@db:5432/optuna")
    config = load_config(CONFIGS / "training" / "xgboost.yaml")
    assert config.tuning.storage == "postgresql+psycopg2://tuner:s3cret@db:5432/optuna"
    assert "s3cret" not in str(flatten(config.model_dump(mode="json"))) and "s3cret" not in config.model_dump_json()
    overridden = load_tuning_config(CONFIGS / "training" / "xgboost.yaml", trials=7, timeout=60)
    assert (overridden.tuning.trials, overridden.tuning.timeout, overridden.tuning.storage) == (7, 60, config.tuning.storage)


def test_when_the_storage_is_empty_then_the_default_is_used_and_the_tuned_yaml_sits_beside_the_original(monkeypatch):
    monkeypatch.setenv("OPTUNA_STORAGE", "")
    assert load_config(CONFIGS / "training" / "lightgbm.yaml").tuning.storage is None
    assert tuned_path(CONFIGS / "training" / "lightgbm.yaml") == CONFIGS / "training" / "lightgbm_tuned.yaml"
