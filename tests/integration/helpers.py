"""Small helpers shared by the integration tests."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import CONFIGS, SMALL_SPLIT

FAST_PARAMS: dict[str, dict[str, Any]] = {
    "xgboost": {"n_estimators": 40},
    "lightgbm": {"n_estimators": 40},
    "catboost": {"iterations": 40},
    "stacking": {"members": [{"type": "xgboost", "params": {"n_estimators": 30}}, {"type": "lightgbm", "params": {"n_estimators": 30}}, {"type": "catboost", "params": {"iterations": 30}}]},
    "voting": {"members": [{"type": "xgboost", "params": {"n_estimators": 30}}, {"type": "lightgbm", "params": {"n_estimators": 30}}, {"type": "catboost", "params": {"iterations": 30}}]},
}


def small_config(directory: Path, base_config: str, *, params: dict[str, Any] | None = None, experiment: str | None = None, **extra: Any) -> tuple[Path, str]:
    """A YAML extending ``configs/training/<base_config>`` for the 70-day synthetic data.

    Returns the path and the experiment name (unique, so runs of different tests never mix).
    """
    experiment = experiment or f"test-{uuid.uuid4().hex[:8]}"
    body: dict[str, Any] = {
        "extends": str(CONFIGS / "training" / base_config),
        "split": SMALL_SPLIT,
        "tracking": {"experiment": experiment, "registered_model": f"{experiment}-{{task}}"},
        **extra,
    }
    if params is not None:
        body["model"] = {"params": params}
    path = directory / f"{Path(base_config).stem}_small.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path, experiment
