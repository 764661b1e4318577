"""Run tags identify the data exactly: sha256 always, the DVC md5 when the pointer matches the file."""

from __future__ import annotations

import hashlib
import shutil

import yaml

from energy_forecast.data import load_series
from energy_forecast.models import create_model
from energy_forecast.training import load_config, run_tags
from tests.conftest import CONFIGS


def test_when_a_dvc_pointer_sits_beside_the_data_then_its_md5_is_tagged_only_if_it_matches(tmp_path, synthetic_csv, use_data):
    data = use_data(shutil.copy(synthetic_csv, tmp_path / "steel.csv"))
    config = load_config(CONFIGS / "training" / "xgboost.yaml")
    model = create_model(config.model, config.problem)
    md5 = hashlib.md5(data.read_bytes(), usedforsecurity=False).hexdigest()
    pointer = tmp_path / "steel.csv.dvc"

    tags = run_tags(config, model, load_series(config.data))
    assert tags["data_sha256"] == hashlib.sha256(data.read_bytes()).hexdigest() and "data_dvc_md5" not in tags

    pointer.write_text(yaml.safe_dump({"outs": [{"md5": md5, "path": "steel.csv"}]}))
    assert run_tags(config, model, load_series(config.data))["data_dvc_md5"] == md5

    with open(data, "ab") as handle:
        handle.write(b"\r\n")  # the file moved on after `dvc add`
    tags = run_tags(config, model, load_series(config.data))
    assert "data_dvc_md5" not in tags and tags["data_dvc_status"].startswith(f"modified since dvc add (pointer {md5}")
