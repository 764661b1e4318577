"""Shared test conventions.

Tests that need a service (PostgreSQL, Docker) or the real data call :func:`require` instead of
``pytest.skip``: on a user's machine they skip with the reason; with ``REQUIRE_SERVICES=1``
(set by ``.ci/run``) the same condition fails the test, so CI always runs them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from energy_forecast.data.synthetic import write_synthetic_steel_csv

PROJECT_DIR = Path(__file__).resolve().parent.parent
CONFIGS = PROJECT_DIR / "configs"
STEEL_DATA_CONFIG = CONFIGS / "data" / "steel_industry.yaml"


def services_required() -> bool:
    return os.environ.get("REQUIRE_SERVICES", "") not in ("", "0", "false")


def require(condition: bool, reason: str) -> None:
    """Skip (or, under ``REQUIRE_SERVICES=1``, fail) unless ``condition`` holds."""
    if condition:
        return
    if services_required():
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


def real_data_path() -> Path | None:
    """The real CSV: ``DATA_PATH`` if it exists, else ``../shared/data`` beside the checkout."""
    candidates = [os.environ.get("DATA_PATH"), PROJECT_DIR.parent / "shared" / "data" / "Steel_industry_data.csv"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session", autouse=True)
def unpinned_data() -> Iterator[None]:
    """Tests point the steel data YAML at synthetic files (DATA_PATH): the YAML pins the UCI file's
    sha256, so the pin is lifted for the session (DATA_SHA256 set and empty). The test of the pin
    itself removes the variable."""
    previous = os.environ.get("DATA_SHA256")
    os.environ["DATA_SHA256"] = ""
    yield
    if previous is None:
        os.environ.pop("DATA_SHA256", None)
    else:
        os.environ["DATA_SHA256"] = previous


@pytest.fixture(scope="session")
def real_data() -> Path:
    path = real_data_path()
    require(path is not None, "the real steel CSV is absent (set DATA_PATH or provide ../shared/data)")
    return path


@pytest.fixture(scope="session")
def synthetic_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """70 days of synthetic steel-format data (BOM, CRLF, quirky midnight stamps)."""
    return write_synthetic_steel_csv(tmp_path_factory.mktemp("data") / "steel_synthetic.csv", days=70, seed=3)


@pytest.fixture
def use_data(monkeypatch: pytest.MonkeyPatch):
    """Point ``configs/data/steel_industry.yaml`` at a file through ``DATA_PATH``."""

    def point_at(path: Path) -> Path:
        monkeypatch.setenv("DATA_PATH", str(path))
        return path

    return point_at


SMALL_SPLIT = {"train_end": "2018-02-12", "validation_end": "2018-02-26", "test_end": "2018-03-12", "validation_windows": 1}
"""Split of the 70-day synthetic series: six weeks train, two validate, two test (one validation
window: three would leave too little history before the first for the 28-day features)."""


@pytest.fixture(scope="session")
def compose_stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    """The Compose stack with the test stand-ins, brought up once per session and shared by the
    system suite (tests/system) and the fault suite (tests/faults); see tests/system/test_stack.py.
    ``SYSTEM_TEST_PROJECT`` names its Compose project (default ``efsystest``)."""
    from tests.system.test_stack import running_stack

    with running_stack(tmp_path_factory, request) as stack:
        yield stack
