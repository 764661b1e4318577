"""The forecasts store on both of its databases: PostgreSQL (the stack's) and SQLite (embedded).

A forecast round-trips exactly; re-running an origin replaces its rows; a write that fails half
way leaves the previous rows as they were (one transaction); versions and origins stay apart.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from energy_forecast.frames import forecast_frame
from energy_forecast.store import ForecastStore, PlotStore

pytestmark = pytest.mark.integration

MODEL = "steel_industry-day_ahead"
LEVELS = (0.1, 0.5, 0.9)


@pytest.fixture(params=["postgresql", "sqlite"])
def store(request, tmp_path) -> ForecastStore:
    if request.param == "sqlite":
        return ForecastStore(f"sqlite:///{tmp_path / 'forecasts.db'}")
    postgres = request.getfixturevalue("postgres")
    return ForecastStore(postgres.url(request.getfixturevalue("postgres_database")()))


def day(origin: str, level: float, horizon: int = 96) -> pd.DataFrame:
    start = pd.Timestamp(origin)
    stamps = pd.date_range(start, periods=horizon, freq="15min")
    prediction = level + np.sin(np.arange(horizon) / 10)
    return forecast_frame([start] * horizon, np.arange(1, horizon + 1), stamps, prediction, {q: prediction + 10 * (q - 0.5) for q in LEVELS})


def test_a_forecast_round_trips_exactly(store):
    written = day("2019-01-01", 30.0)
    assert store.write(written, registered_model=MODEL, model_version="3", model_type="catboost") == 96

    read = store.read(registered_model=MODEL, model_version="3")

    assert len(read) == 96 and set(read["model_type"]) == {"catboost"}
    pd.testing.assert_frame_equal(read[written.columns.tolist()], written, check_dtype=False)


def test_when_an_origin_is_forecast_again_then_its_rows_are_replaced_and_others_kept(store):
    store.write(day("2019-01-01", 30.0), registered_model=MODEL, model_version="3")
    store.write(day("2019-01-02", 40.0), registered_model=MODEL, model_version="3")
    store.write(day("2019-01-01", 35.0, horizon=90), registered_model=MODEL, model_version="3")  # a shorter re-run
    store.write(day("2019-01-01", 99.0), registered_model=MODEL, model_version="4")

    first = store.read(registered_model=MODEL, model_version="3", origin=pd.Timestamp("2019-01-01"))
    assert len(first) == 90 and first["prediction"].iloc[0] == pytest.approx(35.0)  # no row of the old run survives
    assert len(store.read(registered_model=MODEL, model_version="3", origin=pd.Timestamp("2019-01-02"))) == 96
    assert store.read(registered_model=MODEL, model_version="4")["prediction"].iloc[0] == pytest.approx(99.0)
    assert len(store.read(registered_model=MODEL, start=pd.Timestamp("2019-01-02"), end=pd.Timestamp("2019-01-02 06:00"))) == 24


def test_when_a_write_fails_half_way_then_the_previous_rows_are_untouched(store):
    store.write(day("2019-01-01", 30.0), registered_model=MODEL, model_version="3")
    broken = day("2019-01-01", 50.0)
    broken = pd.concat([broken, broken.iloc[[40]]], ignore_index=True)  # the same key twice: the insert fails after the delete

    with pytest.raises(sa.exc.IntegrityError):
        store.write(broken, registered_model=MODEL, model_version="3")

    kept = store.read(registered_model=MODEL, model_version="3")
    assert len(kept) == 96 and kept["prediction"].iloc[0] == pytest.approx(30.0)


def test_the_location_names_the_database_without_its_password(postgres, postgres_database):
    database = postgres_database()
    store = ForecastStore(f"postgresql+psycopg2://{postgres.user}:secret-pw@{postgres.host}:{postgres.port}/{database}")  # trust auth ignores it
    assert store.location == f"postgresql+psycopg2://{postgres.user}:***@{postgres.host}:{postgres.port}/{database}"
    assert store.read().empty


def test_plots_go_to_a_folder_or_an_s3_prefix(tmp_path, s3_endpoint, s3_client, monkeypatch):
    from tests.integration.conftest import S3_BUCKET, S3_KEYS

    assert PlotStore(str(tmp_path / "plots")).put("m/v1/2019-01-01T0000.png", b"png") == str(tmp_path / "plots" / "m/v1/2019-01-01T0000.png")
    for name, value in S3_KEYS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    location = PlotStore(f"s3://{S3_BUCKET}/forecast-plots").put("m/v1/2019-01-01T0000.png", b"png")
    assert location == f"s3://{S3_BUCKET}/forecast-plots/m/v1/2019-01-01T0000.png"
    assert s3_client.get_object(Bucket=S3_BUCKET, Key="forecast-plots/m/v1/2019-01-01T0000.png")["Body"].read() == b"png"
