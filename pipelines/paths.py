"""Where relative paths given to jobs are resolved."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_DIR = Path(os.environ.get("ENERGY_FORECAST_HOME", Path(__file__).resolve().parent.parent))
"""The checkout (or, in the images, the installed project directory) holding ``configs/``."""


def resolve_config_path(path: str) -> Path:
    """An absolute path, a path relative to the working directory, or one relative to the project."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or candidate.exists():
        return candidate
    return PROJECT_DIR / candidate
