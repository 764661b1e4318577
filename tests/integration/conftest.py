"""Real services for integration tests, started by fixtures on loopback.

* PostgreSQL: the machine's server (``TEST_PG_*`` override host, port, user, password); each
  session gets fresh databases, dropped afterwards.
* S3: a moto server (``ThreadedMotoServer``) on a free port.
* MLflow: an ``mlflow server`` subprocess with a PostgreSQL backend and ``--serve-artifacts``
  onto the S3 server, as in the Compose stack.
* Dagster: a ``DAGSTER_HOME`` whose ``dagster.yaml`` puts run, event and schedule storage in
  PostgreSQL through ``dagster-postgres``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import requests
import yaml

from tests.conftest import require

S3_BUCKET = "mlflow-test"
S3_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    password: str

    def connect(self, database: str = "postgres"):
        import psycopg2

        return psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password, dbname=database, connect_timeout=5)

    def url(self, database: str) -> str:
        auth = self.user + (f":{self.password}" if self.password else "")
        return f"postgresql+psycopg2://{auth}@{self.host}:{self.port}/{database}"

    def create_database(self) -> str:
        name = f"ef_test_{uuid.uuid4().hex[:12]}"
        connection = self.connect()
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        connection.close()
        return name

    def drop_database(self, name: str) -> None:
        connection = self.connect()
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.close()


@pytest.fixture(scope="session")
def postgres() -> Postgres:
    import psycopg2

    server = Postgres(
        host=os.environ.get("TEST_PG_HOST", "127.0.0.1"),
        port=int(os.environ.get("TEST_PG_PORT", "5432")),
        user=os.environ.get("TEST_PG_USER", "postgres"),
        password=os.environ.get("TEST_PG_PASSWORD", ""),
    )
    try:
        server.connect().close()
        reachable, why = True, ""
    except psycopg2.OperationalError as error:
        reachable, why = False, str(error).strip()
    require(reachable, f"PostgreSQL is not reachable at {server.host}:{server.port} ({why})")
    return server


@pytest.fixture(scope="session")
def postgres_database(postgres: Postgres) -> Iterator:
    """A factory of fresh databases, all dropped at the end of the session."""
    created: list[str] = []

    def make() -> str:
        created.append(postgres.create_database())
        return created[-1]

    yield make
    for name in created:
        postgres.drop_database(name)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint, **_boto_keys()).create_bucket(Bucket=S3_BUCKET)
    yield endpoint
    server.stop()


def _boto_keys() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_KEYS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_KEYS["AWS_SECRET_ACCESS_KEY"],
        "region_name": S3_KEYS["AWS_DEFAULT_REGION"],
    }


@pytest.fixture(scope="session")
def s3_client(s3_endpoint: str):
    return boto3.client("s3", endpoint_url=s3_endpoint, **_boto_keys())


def s3_keys(client, prefix: str = "") -> list[str]:
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=S3_BUCKET, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return keys


@pytest.fixture(scope="session")
def mlflow_server(postgres: Postgres, postgres_database, s3_endpoint: str, tmp_path_factory) -> Iterator[str]:
    """``mlflow server`` on PostgreSQL, proxying artifacts to the S3 server. Yields its URL."""
    database = postgres_database()
    port = free_port()
    log_path = tmp_path_factory.mktemp("mlflow") / "server.log"
    environment = {
        **os.environ,
        **S3_KEYS,
        "MLFLOW_S3_ENDPOINT_URL": s3_endpoint,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # ~0.9 GB instead of ~2.9 GB of workers
    }
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", postgres.url(database),
        "--serve-artifacts", "--artifacts-destination", f"s3://{S3_BUCKET}/artifacts",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        if process.poll() is not None:
            pytest.fail(f"mlflow server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            # /health answers before the API works; ask the API itself.
            answer = requests.post(f"{url}/api/2.0/mlflow/experiments/search", json={"max_results": 1}, timeout=5)
            if answer.status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            process.terminate()
            pytest.fail(f"mlflow server did not answer within 180 s:\n{log_path.read_text()[-3000:]}")
        time.sleep(1)
    yield url
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def mlflow_client_env(mlflow_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point MLflow clients in this process at the server."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    return mlflow_server


@pytest.fixture(scope="session")
def dagster_postgres_home(postgres: Postgres, postgres_database, tmp_path_factory) -> Path:
    """A ``DAGSTER_HOME`` with PostgreSQL storage (the same shape the Compose stack uses)."""
    database = postgres_database()
    home = tmp_path_factory.mktemp("dagster_home")
    postgres_db = {
        "username": postgres.user,
        "password": postgres.password,
        "hostname": postgres.host,
        "db_name": database,
        "port": postgres.port,
        "scheme": "postgresql+psycopg2",
    }
    (home / "dagster.yaml").write_text(
        yaml.safe_dump({"storage": {"postgres": {"postgres_db": postgres_db}}, "telemetry": {"enabled": False}})
    )
    return home


@pytest.fixture
def dagster_instance(dagster_postgres_home: Path, monkeypatch: pytest.MonkeyPatch):
    from dagster import DagsterInstance

    monkeypatch.setenv("DAGSTER_HOME", str(dagster_postgres_home))
    with DagsterInstance.get() as instance:
        yield instance
