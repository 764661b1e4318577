"""The Compose stack, for real: build every image, bring it up, train through Dagster, check, tear down.

1. ``../shared/tools/docker-offline-setup.sh`` makes the engine, Compose and the local base image
   available (on a user's machine with Docker it only reports).
2. Every image is built from the Dockerfiles users build, with the base image pointed at the local
   stand-in and the host's CA bundle passed as the BuildKit secret ``ca_bundle``; the trainer is
   the CPU variant from the local torch wheel. Layers and pip downloads stay cached between runs.
3. ``docker-compose.yml`` + ``tests/system/docker-compose.test.yml``: PostgreSQL and MinIO are
   locally built stand-ins (official env contract; moto's S3 server), the rest is as users run it.
4. ``complete_training_job`` is launched over GraphQL with a small config and must succeed.
5. Checks: the run had its own container, made by the DockerRunLauncher from the trainer image,
   hardened, with the runs' own database login and no S3 key; the MLflow run and its metrics are
   visible through the REST API from the host and its artifacts download there; the model files are
   in the bucket; runs launched around a daemon restart all complete; GPU-tagged Chronos-2 runs (a
   tiny random checkpoint) start on this CPU-only host without a device request, one at a time; DVC
   reaches the remote from the host with its own key; idle memory.
6. Access: the proxy refuses requests without its login, cross-origin state-changing requests, GET
   and non-JSON mutations on /graphql and unknown Host headers, and lets the UI, its websocket and
   same-origin mutations through; each S3 key is refused outside its bucket (the S3 stand-in
   enforces the policies); the runs' database login cannot change the schema or reach MLflow's.
7. Serving and the operating loop: the ``serving`` service answers over HTTP what the batch
   ``energy-forecast forecast`` (run in the code server, into the stack's PostgreSQL) stored for the
   same origin, and follows a promotion within 60 s; two real days replayed into the S3 landing
   prefix are picked up by the daemon's new-data sensor and forecast rows appear in the
   ``forecasts`` database; a run made to fail reaches the alert webhook (a receiver container) as JSON.
8. ``down -v`` (images are kept: they are the cache).

The project name and ports are the test's own, so a user's `make up` stack is left alone; set
``SYSTEM_TEST_PROJECT`` to run two of these side by side (its images are tagged with it too).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import botocore.exceptions
import numpy as np
import pandas as pd
import pytest
import requests
import yaml

from energy_forecast.data.loading import file_sha256
from energy_forecast.data.synthetic import write_synthetic_steel_csv
from pipelines.launch import StackClient
from tests.conftest import PROJECT_DIR, SMALL_SPLIT, real_data_path, require

pytestmark = pytest.mark.system

SETUP_SCRIPT = PROJECT_DIR.parent / "shared" / "tools" / "docker-offline-setup.sh"
OVERRIDE = PROJECT_DIR / "tests" / "system" / "docker-compose.test.yml"
STACK_ENV = PROJECT_DIR / "infra" / "scripts" / "stack_env.py"
WHEELS = PROJECT_DIR / "services" / "trainer" / "wheels"
PROJECT = os.environ.get("SYSTEM_TEST_PROJECT", "efsystest")
IMAGE_TAG = "systest" if PROJECT == "efsystest" else PROJECT
TRAINER_IMAGE = f"energy-forecast/trainer:{IMAGE_TAG}"
DATA_FILE = "Steel_industry_data.csv"
TINY_CHRONOS = "chronos-tiny"
GIT_COMMIT = "systest-" + uuid.uuid4().hex[:8]
BUILD_TIMEOUT = 1500
UP_TIMEOUT = 600
RUN_TIMEOUT = 600
IDLE_MEMORY_LIMIT = 3 * 1024**3
FAULT_SETTINGS = {
    "REAPER_SENSOR_SECONDS": "5",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}
"""For the fault suite (tests/faults): the reaper looks every 5 s, and runs give up on an
unreachable MLflow server after about 7 s of retries instead of about 4 minutes."""
ALERT_URL = "http://alert-receiver:8099/alerts"
"""The receiver container of the test override (tests/system/images/receiver)."""
LOOP_TIMEOUT = 600
HOST_MLFLOW_CLIENT = {"MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false", "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "false"}
"""Host-side MLflow clients stream artifacts through the server: presigned URLs name http://minio:9000."""


@dataclass
class Stack:
    env_file: Path
    env: dict[str, str]
    configs_dir: Path
    data_dir: Path
    tiny_chronos: bool
    report: dict[str, object] = field(default_factory=dict)

    @property
    def compose(self) -> list[str]:
        return ["docker", "compose", "-p", PROJECT, "-f", str(PROJECT_DIR / "docker-compose.yml"), "-f", str(OVERRIDE), "--env-file", str(self.env_file)]

    def run(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        answer = subprocess.run([*self.compose, *args], capture_output=True, text=True, timeout=timeout, cwd=PROJECT_DIR, check=False)
        if check and answer.returncode != 0:
            pytest.fail(f"docker compose {' '.join(args)} failed ({answer.returncode}):\n{answer.stdout[-4000:]}\n{answer.stderr[-4000:]}")
        return answer

    def url(self, port_variable: str) -> str:
        return f"http://127.0.0.1:{self.env[port_variable]}"

    @property
    def login(self) -> tuple[str, str]:
        """The proxy's login (HTTP basic auth) for the Dagster and MLflow ports."""
        return self.env["PROXY_USER"], self.env["PROXY_PASSWORD"]

    @property
    def dagster(self) -> StackClient:
        return StackClient(self.url("DAGSTER_PORT"), auth=self.login)

    def mlflow_get(self, path: str, **params) -> dict:
        """An MLflow REST GET through the proxy, with its login."""
        answer = requests.get(f"{self.url('MLFLOW_PORT')}{path}", params=params, auth=self.login, timeout=30)
        answer.raise_for_status()
        return answer.json()

    def s3(self, role: str):
        """A client with one role's key (mlflow, dvc, serving, ops), from the host."""
        prefix = role.upper()
        return boto3.client(
            "s3", endpoint_url=self.url("MINIO_API_PORT"), region_name="us-east-1",
            aws_access_key_id=self.env[f"{prefix}_S3_ACCESS_KEY_ID"], aws_secret_access_key=self.env[f"{prefix}_S3_SECRET_ACCESS_KEY"],
        )


def free_ports(count: int) -> list[str]:
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for probe in sockets:
        probe.bind(("127.0.0.1", 0))
    ports = [str(probe.getsockname()[1]) for probe in sockets]
    for probe in sockets:
        probe.close()
    return ports


def setup_docker() -> dict[str, str]:
    """Run the offline setup script (installs nothing where Docker already works) and read its facts."""
    require(SETUP_SCRIPT.is_file(), f"{SETUP_SCRIPT} is absent: the system test needs it to set up Docker")
    answer = subprocess.run([str(SETUP_SCRIPT)], capture_output=True, text=True, timeout=900, check=False)
    require(answer.returncode == 0, f"{SETUP_SCRIPT.name} failed ({answer.returncode}): {answer.stderr[-2000:]}")
    engine = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, check=False)
    require(engine.returncode == 0, f"the Docker engine does not answer: {engine.stderr.strip()}")
    return dict(re.findall(r"^([A-Z_]+)=(.*)$", answer.stdout, re.MULTILINE))


def write_data(directory: Path) -> bool:
    """The real CSV (with its DVC pointer when it matches), else 70 synthetic days. True when real."""
    directory.mkdir(parents=True)
    real = real_data_path()
    if real is None:
        write_synthetic_steel_csv(directory / DATA_FILE, days=70, seed=3)
        return False
    shutil.copyfile(real, directory / DATA_FILE)
    pointer = PROJECT_DIR / "data" / "raw" / f"{DATA_FILE}.dvc"
    if pointer.is_file():
        shutil.copyfile(pointer, directory / pointer.name)
    return True


def write_tiny_chronos(data_dir: Path) -> bool:
    """A tiny random Chronos-2 checkpoint in the data folder (runs see it at /data/chronos-tiny)."""
    try:
        from tests.chronos_tiny import build_chronos2
    except ImportError:
        return False
    if importlib.util.find_spec("chronos") is None:
        return False
    directory = build_chronos2(data_dir / TINY_CHRONOS)
    for path in directory.iterdir():  # safetensors writes 0600; runs read as the image's user (uid 10001)
        path.chmod(0o644)
    return True


def write_configs(directory: Path, real_data: bool) -> str:
    """configs/ plus small XGBoost and Chronos-2 configs, and the operations YAML pointed at their
    registered model (retraining thresholds out of reach: no retrain in the middle of the test);
    returns the experiment name."""
    shutil.copytree(PROJECT_DIR / "configs", directory)
    experiment = f"systest-{uuid.uuid4().hex[:8]}"
    tracking = {"experiment": experiment, "registered_model": f"{experiment}-{{task}}"}
    small = {
        "extends": "xgboost.yaml",
        "model": {"device": "auto", "params": {"n_estimators": 40, "early_stopping_rounds": 10}},
        "tracking": tracking,
    }
    chronos = {"extends": "chronos2_zeroshot.yaml", "model": {"params": {"context_length": 256, "batch_size": 64}}, "tracking": tracking}
    for name, body in (("systest_small.yaml", small), ("systest_chronos.yaml", chronos)):
        if not real_data:
            body["split"] = SMALL_SPLIT
        (directory / "training" / name).write_text(yaml.safe_dump(body, sort_keys=False))
    operations = yaml.safe_load((directory / "operations.yaml").read_text())
    operations["registered_model"] = registered_model(experiment)
    operations["retraining"].update({"accuracy_factor": 1000.0, "drift_psi": 1000.0})
    (directory / "operations.yaml").write_text(yaml.safe_dump(operations, sort_keys=False))
    return experiment


def registered_model(experiment: str) -> str:
    """The test configs' registered model (tracking.registered_model ``{experiment}-{task}``)."""
    return f"{experiment}-day_ahead"


def write_env(path: Path, overrides: dict[str, str]) -> dict[str, str]:
    subprocess.run([sys.executable, str(STACK_ENV), "create", str(path), str(PROJECT_DIR / ".env.example")], check=True, capture_output=True)
    lines = []
    for line in path.read_text().splitlines():
        key = line.split("=", 1)[0] if "=" in line and not line.startswith("#") else None
        lines.append(f"{key}={overrides.pop(key)}" if key in overrides else line)
    lines += [f"{key}={value}" for key, value in overrides.items()]
    path.write_text("\n".join(lines) + "\n")
    return dict(re.findall(r"^([A-Z_0-9]+)=(.*)$", path.read_text(), re.MULTILINE))


def remove_run_containers() -> None:
    """Stop (SIGTERM, as `make down` does, with a short grace) and remove the project's run containers."""
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.energy-forecast.project={PROJECT}"], capture_output=True, text=True, check=False).stdout.split()
    if ids:
        subprocess.run(["docker", "stop", "-t", "10", *ids], capture_output=True, check=False)
        subprocess.run(["docker", "rm", *ids], capture_output=True, check=False)


@contextmanager
def running_stack(tmp_path_factory, request) -> Iterator[Stack]:
    """The stack, up and healthy, for the whole session (tests/conftest.py's ``compose_stack``:
    the system and fault suites share it); torn down with its volumes at the end."""
    started = time.monotonic()
    facts = setup_docker()
    wheel_dir = facts.get("TORCH_WHEEL_DIR")
    if wheel_dir:  # the CPU torch wheel, bind-mounted into the trainer build (services/trainer/wheels is git-ignored)
        for wheel in Path(wheel_dir).glob("torch-*+cpu-cp311-*.whl"):
            if not (WHEELS / wheel.name).is_file():
                shutil.copyfile(wheel, WHEELS / wheel.name)

    workdir = tmp_path_factory.mktemp("stack")
    real_data = write_data(workdir / "data")
    tiny_chronos = write_tiny_chronos(workdir / "data")
    experiment = write_configs(workdir / "configs", real_data)
    ports = free_ports(5)
    base_image = facts.get("BASE_IMAGE", "local/python:3.11-bookworm")
    env = write_env(workdir / "stack.env", {
        "COMPOSE_PROJECT_NAME": PROJECT,
        "IMAGE_TAG": IMAGE_TAG,
        "PYTHON_BASE_IMAGE": base_image,
        "TRAINER_BASE_IMAGE": base_image,
        "STANDIN_BASE_IMAGE": base_image,
        "STANDIN_TAG_SUFFIX": "" if PROJECT == "efsystest" else f"-{PROJECT}",  # another test's stand-ins stay apart
        "TORCH_VARIANT": "cpu",
        "BUILD_CA_BUNDLE": facts.get("HOST_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"),
        "DAGSTER_PORT": ports[0],
        "MLFLOW_PORT": ports[1],
        "MINIO_API_PORT": ports[2],
        "MINIO_CONSOLE_PORT": ports[3],
        "SERVING_PORT": ports[4],
        "SERVING_MODEL": registered_model(experiment),
        "SERVING_REFRESH_SECONDS": "5",
        "ALERT_WEBHOOK_URL": ALERT_URL,
        "CONFIGS_DIR": str(workdir / "configs"),
        "DATA_DIR": str(workdir / "data"),
        "DATA_FILE": DATA_FILE,
        "HF_HUB_OFFLINE": "1",
        "CHRONOS2_PRETRAINED": f"/data/{TINY_CHRONOS}",
        "MLFLOW_WORKERS": "1",
        **FAULT_SETTINGS,
    })
    stack = Stack(workdir / "stack.env", env, workdir / "configs", workdir / "data", tiny_chronos)
    stack.report.update({"real_data": real_data, "experiment": experiment, "setup_s": round(time.monotonic() - started, 1)})

    remove_run_containers()  # a previous run that died midway
    stack.run("down", "--volumes", "--remove-orphans", check=False)
    try:
        begun = time.monotonic()
        answer = subprocess.run([*stack.compose, "build"], capture_output=True, text=True, timeout=BUILD_TIMEOUT, cwd=PROJECT_DIR,
                                env={**os.environ, "GIT_COMMIT": GIT_COMMIT}, check=False)
        if answer.returncode != 0:
            pytest.fail(f"image build failed:\n{answer.stdout[-6000:]}\n{answer.stderr[-6000:]}")
        stack.report["build_s"] = round(time.monotonic() - begun, 1)
        begun = time.monotonic()
        up = stack.run("up", "--detach", "--no-build", "--pull", "never", "--wait", "--wait-timeout", str(UP_TIMEOUT), timeout=UP_TIMEOUT + 60, check=False)
        if up.returncode != 0:
            logs = stack.run("logs", "--tail", "60", check=False).stdout
            pytest.fail(f"the stack did not become healthy:\n{up.stderr[-3000:]}\n{logs[-8000:]}")
        stack.report["up_s"] = round(time.monotonic() - begun, 1)
        yield stack
    finally:
        (workdir / "compose.log").write_text(stack.run("logs", "--no-color", check=False).stdout)
        remove_run_containers()  # first: they hold the model-cache volume (volumes_from)
        stack.run("down", "--volumes", "--remove-orphans", timeout=300, check=False)
        leftovers = subprocess.run(["docker", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"],
                                   capture_output=True, text=True, check=False).stdout.split()
        stack.report["volumes_left_after_down"] = leftovers
        stack.report["total_s"] = round(time.monotonic() - started, 1)
        summary = json.dumps(stack.report, indent=1)
        (workdir / "report.json").write_text(summary)
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print(f"\nsystem test report ({workdir / 'report.json'}; logs in compose.log):\n{summary}", flush=True)


@pytest.fixture(scope="module")
def stack(compose_stack) -> Stack:
    return compose_stack


def run_config(config: str = "systest_small.yaml") -> dict:
    return {"ops": {"train_model": {"config": {"config_path": f"configs/training/{config}"}}}}


def gpu_training_job() -> str:
    """A job tagged energy_forecast/gpu=true that trains one config (the Chronos jobs)."""
    from pipelines.definitions import defs
    from pipelines.jobs import GPU_TAG

    for job in defs.resolve_all_job_defs():
        if job.tags.get(GPU_TAG) == "true" and [node.name for node in job.graph.node_defs] == ["train_model"]:
            return job.name
    pytest.fail(f"no single-step training job is tagged {GPU_TAG}=true")


@pytest.fixture(scope="module")
def training_run(stack: Stack) -> dict:
    begun = time.monotonic()
    run_id = stack.dagster.launch(run_config())
    outcome = stack.dagster.follow(run_id, timeout=RUN_TIMEOUT, echo=False)
    stack.report["training_run_s"] = round(time.monotonic() - begun, 1)
    assert outcome.status == "SUCCESS", "\n".join(outcome.errors) or outcome.status
    stack.report["training_promotion"] = outcome.metadata.get("promotion")
    return {"run_id": run_id, "tags": outcome.tags, "metadata": outcome.metadata}


# -- the stack -----------------------------------------------------------------------------------


def test_every_service_is_healthy_and_minio_init_completed(stack):
    states = [json.loads(line) for line in stack.run("ps", "--all", "--format", "json").stdout.splitlines() if line.strip()]
    by_service = {state["Service"]: state for state in states}
    assert set(by_service) == {"postgres", "minio", "minio-init", "mlflow", "code-server", "serving", "dagster-webserver", "dagster-daemon",
                               "proxy", "alert-receiver"}
    for name, state in by_service.items():
        if name == "minio-init":
            assert state["State"] == "exited" and state["ExitCode"] == 0, state
        else:
            assert state["State"] == "running" and state["Health"] == "healthy", state


def test_the_databases_have_their_own_owners(stack):
    query = "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname IN ('dagster', 'mlflow', 'forecasts', 'optuna') ORDER BY 1"
    answer = stack.run("exec", "-T", "postgres", "psql", "-U", stack.env["POSTGRES_USER"], "-d", "postgres", "-At", "-c", query)
    assert answer.stdout.split() == [f"dagster|{stack.env['DAGSTER_PG_USER']}", f"forecasts|{stack.env['FORECASTS_PG_USER']}",
                                     f"mlflow|{stack.env['MLFLOW_PG_USER']}", f"optuna|{stack.env['OPTUNA_PG_USER']}"]


def test_only_the_proxy_serving_and_s3_publish_ports_and_every_service_is_hardened(stack):
    published = {}
    for container in stack.run("ps", "-q").stdout.split():
        inspected = json.loads(subprocess.run(["docker", "inspect", container], capture_output=True, text=True, check=True).stdout)[0]
        service = inspected["Config"]["Labels"]["com.docker.compose.service"]
        host = inspected["HostConfig"]
        published[service] = sorted(binding["HostIp"] + ":" + binding["HostPort"] for bindings in (host["PortBindings"] or {}).values() for binding in bindings)
        assert "no-new-privileges:true" in (host["SecurityOpt"] or []), service
        assert host["CapDrop"] == ["ALL"], service
        assert host["Memory"] > 0, f"{service} has no memory limit"
        assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "10m"}}, service
    assert published["proxy"] == sorted(f"127.0.0.1:{stack.env[port]}" for port in ("DAGSTER_PORT", "MLFLOW_PORT"))
    assert published["serving"] == [f"127.0.0.1:{stack.env['SERVING_PORT']}"]
    assert {service for service, ports in published.items() if ports} == {"proxy", "minio", "serving"}


# -- a training run ------------------------------------------------------------------------------


def test_the_run_had_its_own_container_from_the_docker_run_launcher(stack, training_run):
    container_id = training_run["tags"]["docker/container_id"]
    inspected = json.loads(subprocess.run(["docker", "inspect", container_id], capture_output=True, text=True, check=True).stdout)[0]
    labels = inspected["Config"]["Labels"]
    assert inspected["Config"]["Image"] == TRAINER_IMAGE == training_run["tags"]["dagster/image"]
    assert labels["dagster/run_id"] == training_run["run_id"]
    assert labels["com.energy-forecast.project"] == PROJECT
    # not one of the stack's services (it inherits the image's compose labels, but Compose only
    # counts containers it created: `ps` does not list it, `up` does not touch it)
    assert container_id not in stack.run("ps", "--all", "--quiet", "--no-trunc").stdout.split()
    assert "com.docker.compose.oneoff" not in labels and "com.docker.compose.container-number" not in labels
    assert inspected["State"]["ExitCode"] == 0
    assert list(inspected["NetworkSettings"]["Networks"]) == [f"{PROJECT}_backend"]
    mounts = {mount["Destination"]: mount for mount in inspected["Mounts"]}
    assert mounts["/data"]["RW"] is False and mounts["/opt/energy-forecast/configs"]["RW"] is False
    assert mounts["/home/trainer/.cache"]["RW"] is True  # the shared model cache
    assert "DeviceRequests" not in inspected["HostConfig"] or not inspected["HostConfig"]["DeviceRequests"]
    assert training_run["tags"]["energy_forecast/gpu_granted"] == "false"  # not a GPU job, and no GPU here
    # hardened like the services (DAGSTER_CONTAINER_CONTEXT)
    assert "no-new-privileges:true" in inspected["HostConfig"]["SecurityOpt"] and inspected["HostConfig"]["CapDrop"] == ["ALL"]
    assert inspected["HostConfig"]["LogConfig"]["Config"] == {"max-file": "3", "max-size": "10m"}


def test_the_run_had_only_the_credentials_it_needs(stack, training_run):
    container_id = training_run["tags"]["docker/container_id"]
    inspected = json.loads(subprocess.run(["docker", "inspect", container_id], capture_output=True, text=True, check=True).stdout)[0]
    env = dict(item.split("=", 1) for item in inspected["Config"]["Env"])
    assert env["DAGSTER_PG_USER"] == stack.env["DAGSTER_RUN_PG_USER"] != stack.env["DAGSTER_PG_USER"]
    assert env["DAGSTER_PG_PASSWORD"] == stack.env["DAGSTER_RUN_PG_PASSWORD"]
    secrets = {stack.env[name] for name in stack.env if name.endswith(("_PASSWORD", "_SECRET_ACCESS_KEY", "_ACCESS_KEY_ID"))}
    own = {stack.env["DAGSTER_RUN_PG_PASSWORD"], stack.env["OPS_S3_ACCESS_KEY_ID"], stack.env["OPS_S3_SECRET_ACCESS_KEY"]}
    leaked = sorted(name for name, value in env.items() if value in secrets - own)
    assert not leaked, f"the run container holds other services' secrets: {leaked}"
    # its one S3 key is the ops key (bucket `ops`); its forecasts login is the forecasts database's
    assert env["AWS_ACCESS_KEY_ID"] == stack.env["OPS_S3_ACCESS_KEY_ID"]
    assert env["FORECAST_STORE_URL"].endswith(f"@postgres:5432/{stack.env['FORECASTS_PG_DB']}")
    assert env["OPTUNA_STORAGE"].endswith(f"@postgres:5432/{stack.env['OPTUNA_PG_DB']}")  # studies resume across runs
    assert f"//{stack.env['DAGSTER_RUN_PG_USER']}:" in env["PROMOTION_LOCK_URL"]  # the lock with the runs' own login
    assert env["LANDING_URI"] == "s3://ops/landing" and env["ALERT_WEBHOOK_URL"] == ALERT_URL


def test_the_runs_database_login_changes_rows_only(stack, training_run):
    def as_runs(database: str, sql: str) -> subprocess.CompletedProcess:
        dsn = f"host=127.0.0.1 dbname={database} user={stack.env['DAGSTER_RUN_PG_USER']}"
        return stack.run("exec", "-T", "-e", f"PGPASSWORD={stack.env['DAGSTER_RUN_PG_PASSWORD']}", "postgres",
                         "psql", "-v", "ON_ERROR_STOP=1", "-At", dsn, "-c", sql, check=False)

    dagster = stack.env["DAGSTER_PG_DB"]
    counted = as_runs(dagster, f"SELECT count(*) FROM runs WHERE run_id = '{training_run['run_id']}'")
    assert counted.returncode == 0 and counted.stdout.strip() == "1", counted.stderr
    for sql in ("CREATE TABLE intruder (id int)", "DROP TABLE runs", "ALTER TABLE runs ADD COLUMN intruder int",
                "TRUNCATE event_logs", "CREATE TEMP TABLE scratch (id int)"):
        refused = as_runs(dagster, sql)
        assert refused.returncode != 0 and ("permission denied" in refused.stderr or "must be owner" in refused.stderr), (sql, refused.stderr)
    other = as_runs(stack.env["MLFLOW_PG_DB"], "SELECT 1")
    assert other.returncode != 0 and "permission denied" in other.stderr, other.stderr


def test_the_mlflow_run_and_its_metrics_are_visible_from_the_host(stack, training_run):
    run_id = training_run["metadata"]["mlflow_run_id"]
    run = stack.mlflow_get("/api/2.0/mlflow/runs/get", run_id=run_id)["run"]
    tags = {tag["key"]: tag["value"] for tag in run["data"]["tags"]}
    metrics = {metric["key"]: metric["value"] for metric in run["data"]["metrics"]}
    assert run["info"]["status"] == "FINISHED"
    assert tags["model_type"] == "xgboost" and tags["device"] == "cpu"
    assert tags["git_commit"] == GIT_COMMIT  # the build argument reached the image
    assert tags["data_sha256"] == file_sha256(stack.data_dir / DATA_FILE)
    if (stack.data_dir / f"{DATA_FILE}.dvc").is_file():
        pointer = yaml.safe_load((stack.data_dir / f"{DATA_FILE}.dvc").read_text())
        assert tags["data_dvc_md5"] == pointer["outs"][0]["md5"]
    for name in ("test_rmse", "test_mae", "val_rmse", "baseline_seasonal_naive_weekly_test_rmse"):
        assert np.isfinite(metrics[name]), name
    history = stack.mlflow_get("/api/2.0/mlflow/metrics/get-history", run_id=run_id, metric_key="test_rmse_by_step_model")
    assert len(history["metrics"]) == 96


def test_artifacts_download_on_the_host(stack, training_run, tmp_path):
    run_id = training_run["metadata"]["mlflow_run_id"]
    script = (
        "import mlflow, sys\n"
        f"path = mlflow.artifacts.download_artifacts(run_id='{run_id}', artifact_path='config/resolved_config.yaml', "
        f"tracking_uri='{stack.url('MLFLOW_PORT')}', dst_path=sys.argv[1])\n"
        "print(path)\n"
    )
    login = {"MLFLOW_TRACKING_USERNAME": stack.login[0], "MLFLOW_TRACKING_PASSWORD": stack.login[1]}  # as `make client-env`
    answer = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=120,
                            env={**os.environ, **HOST_MLFLOW_CLIENT, **login}, check=False)
    assert answer.returncode == 0, answer.stderr[-2000:]
    assert yaml.safe_load(Path(answer.stdout.strip().splitlines()[-1]).read_text())["model"]["type"] == "xgboost"


def test_the_model_artifacts_are_in_the_bucket(stack, training_run):
    run_id = training_run["metadata"]["mlflow_run_id"]
    serving = stack.s3("serving")  # the read-only key a model server would hold
    keys = [item["Key"] for page in serving.get_paginator("list_objects_v2").paginate(Bucket="mlflow") for item in page.get("Contents", [])]
    for artifact in ("plots/forecast_vs_actual.png", "predictions/test_forecast.parquet", "config/resolved_config.yaml"):
        assert any(key.endswith(f"{run_id}/artifacts/{artifact}") for key in keys), artifact
    model_files = [key for key in keys if re.search(r"/models/m-[0-9a-f]+/artifacts/", key)]
    assert any(key.endswith("/MLmodel") for key in model_files) and any(key.endswith("/model.ubj") for key in model_files)


# -- serving and the operating loop ----------------------------------------------------------------

SERVED_ORIGIN = "2018-12-01 00:00"


def psql_forecasts(stack: Stack, sql: str) -> list[str]:
    """Rows of a query on the `forecasts` database, as its owner (the login the runs write with)."""
    answer = stack.run("exec", "-T", "-e", f"PGPASSWORD={stack.env['FORECASTS_PG_PASSWORD']}", "postgres", "psql", "-v", "ON_ERROR_STOP=1",
                       "-At", f"host=127.0.0.1 dbname={stack.env['FORECASTS_PG_DB']} user={stack.env['FORECASTS_PG_USER']}", "-c", sql, check=False)
    assert answer.returncode == 0, answer.stderr
    return [line for line in answer.stdout.splitlines() if line.strip()]


def serving_ready(stack: Stack, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        answer = requests.get(f"{stack.url('SERVING_PORT')}/ready", timeout=10)
        if answer.status_code == 200 or time.monotonic() > deadline:
            assert answer.status_code == 200, answer.text
            return answer.json()
        time.sleep(1)


def contract_request(stack: Stack, origin: pd.Timestamp, lookback: int, monkeypatch) -> pd.DataFrame:
    """The contract's input for one origin, built on the host from the same CSV the stack reads."""
    from energy_forecast.contract import build_input
    from energy_forecast.data.loading import load_series
    from energy_forecast.training import load_config

    monkeypatch.setenv("DATA_PATH", str(stack.data_dir / DATA_FILE))
    config = load_config(stack.configs_dir / "training" / "systest_small.yaml")
    frame = load_series(config.data).frame
    return build_input(frame, pd.DatetimeIndex([origin]), config.problem, lookback).drop(columns=["origin"])


def test_the_serving_service_answers_what_the_batch_forecast_stored(stack, training_run, monkeypatch):
    require(stack.report["real_data"], "the real CSV is not here: its December days are what is served and replayed")
    served_model = serving_ready(stack)
    name, origin = registered_model(stack.report["experiment"]), pd.Timestamp(SERVED_ORIGIN)
    assert served_model["registered_model"] == name and served_model["lookback_steps"] > 0
    request = contract_request(stack, origin, int(served_model["lookback_steps"]), monkeypatch)
    payload = {"dataframe_split": json.loads(request.to_json(orient="split", date_format="iso", index=False, double_precision=15))}

    begun = time.monotonic()
    answer = requests.post(f"{stack.url('SERVING_PORT')}/invocations", json=payload, timeout=120)
    stack.report["serving_request_s"] = round(time.monotonic() - begun, 2)
    assert answer.status_code == 200, answer.text[:2000]
    version = answer.headers["X-Model-Version"]
    served = pd.DataFrame(answer.json()["predictions"])

    # the batch path: `energy-forecast forecast` in the code server, into the stack's PostgreSQL
    batch = stack.run("exec", "-T", "code-server", "energy-forecast", "forecast", "--model", name, "--origin", SERVED_ORIGIN, timeout=300, check=False)
    assert batch.returncode == 0, batch.stdout[-2000:] + batch.stderr[-3000:]
    rows = psql_forecasts(stack, f"SELECT step, prediction, quantiles FROM forecasts WHERE registered_model = '{name}' "
                                 f"AND model_version = '{version}' AND origin = '{origin}' ORDER BY step")
    stored = pd.DataFrame([row.split("|", 2) for row in rows], columns=["step", "prediction", "quantiles"])
    assert len(stored) == len(served) > 0
    np.testing.assert_allclose(served["prediction"].to_numpy(dtype=float), stored["prediction"].to_numpy(dtype=float), rtol=1e-9)
    low = [json.loads(q)["0.1"] for q in stored["quantiles"]]
    np.testing.assert_allclose(served["q0.1"].to_numpy(dtype=float), np.asarray(low, dtype=float), rtol=1e-9)
    # it read the model's files from the bucket with the read-only serving key, not through MLflow
    logs = stack.run("logs", "--no-color", "serving").stdout
    assert re.search(rf"loading {re.escape(name)} v{version} from s3://mlflow/", logs), logs[-3000:]


def alerts_received(stack: Stack) -> list[dict]:
    logs = stack.run("logs", "--no-color", "--no-log-prefix", "alert-receiver").stdout
    return [json.loads(line.split("ALERT ", 1)[1]) for line in logs.splitlines() if line.startswith("ALERT ")]


def test_two_replayed_days_in_the_s3_landing_prefix_become_forecast_rows_in_postgresql(stack, training_run):
    require(stack.report["real_data"], "the real CSV is not here: its December days are what is replayed")
    name = registered_model(stack.report["experiment"])
    begun = time.monotonic()
    # the live series starts with the rows before December (the stack's live-data volume), and two
    # day files go to s3://ops/landing/; the daemon's sensors do the rest
    replay = stack.run("exec", "-T", "code-server", "energy-forecast", "replay", "--from", "2018-12-01", "--days", "2", "--every", "0",
                       "--deliver-only", timeout=300, check=False)
    assert replay.returncode == 0, replay.stdout[-2000:] + replay.stderr[-3000:]
    expected = ["2018-12-02", "2018-12-03"]  # the day after each delivered day, forecast at its origin
    deadline, origins = time.monotonic() + LOOP_TIMEOUT, []
    while time.monotonic() < deadline:
        if psql_forecasts(stack, "SELECT to_regclass('public.forecasts') IS NOT NULL") != ["t"]:  # run alone (-k): its first writer makes the table
            time.sleep(5)
            continue
        origins = psql_forecasts(stack, f"SELECT to_char(origin, 'YYYY-MM-DD') || ':' || count(*) FROM forecasts "
                                        f"WHERE registered_model = '{name}' AND origin >= '2018-12-02' GROUP BY origin ORDER BY origin")
        if [origin.split(":")[0] for origin in origins] == expected:
            break
        time.sleep(5)
    stack.report["replay_to_rows_s"] = round(time.monotonic() - begun, 1)
    assert [origin.split(":")[0] for origin in origins] == expected, origins
    assert all(int(origin.split(":")[1]) == 96 for origin in origins), origins  # a day of quarter-hours each
    ops = stack.s3("ops")
    processed = [item["Key"] for item in ops.list_objects_v2(Bucket="ops", Prefix="landing/processed/").get("Contents", [])]
    assert len(processed) == 2, processed
    # the run stores the rows first, then uploads the plot, then hands its output to the S3 IO manager
    plots = keys_once_present(ops, "plots/", lambda key: "2018-12-03" in key or "20181203" in key)
    assert any("2018-12-03" in key or "20181203" in key for key in plots), plots
    io = keys_once_present(ops, "dagster-io/", lambda key: "daily_forecast/2018-12-03" in key)
    assert any("daily_forecast/2018-12-03" in key for key in io), io  # asset outputs through the S3 IO manager


def keys_once_present(client, prefix: str, wanted, timeout: float = 120) -> list[str]:
    """The keys under s3://ops/<prefix>, listed until one is ``wanted`` or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        keys = [item["Key"] for item in client.list_objects_v2(Bucket="ops", Prefix=prefix).get("Contents", [])]
        if any(wanted(key) for key in keys) or time.monotonic() > deadline:
            return keys
        time.sleep(5)


def test_a_failed_run_reaches_the_alert_webhook_as_json(stack, training_run):
    run_id = stack.dagster.launch(run_config("no_such_config.yaml"), tags={"systest": "made-to-fail"})
    assert stack.dagster.follow(run_id, timeout=RUN_TIMEOUT, echo=False).status == "FAILURE"
    begun, deadline = time.monotonic(), time.monotonic() + 120
    while time.monotonic() < deadline:
        failures = [alert for alert in alerts_received(stack) if alert["body"].get("kind") == "run_failure"
                    and alert["body"].get("details", {}).get("run_id") == run_id]
        if failures:
            break
        time.sleep(2)
    stack.report["alert_after_failure_s"] = round(time.monotonic() - begun, 1)
    assert failures, alerts_received(stack)
    alert = failures[0]
    assert alert["content_type"] == "application/json" and alert["path"] == "/alerts"
    assert alert["body"]["source"] == "energy-forecast" and "complete_training_job" in alert["body"]["summary"]
    assert alert["body"]["details"]["tags"]["systest"] == "made-to-fail"


# -- robustness ----------------------------------------------------------------------------------


def test_runs_launched_around_a_daemon_restart_are_not_lost(stack, training_run):
    client = stack.dagster
    before = client.launch(run_config(), tags={"systest": "before-restart"})
    stack.run("stop", "dagster-daemon", timeout=120)
    during = client.launch(run_config(), tags={"systest": "daemon-down"})
    time.sleep(6)
    assert client.run(during)[0] == "QUEUED"  # waits in PostgreSQL, nobody dequeues
    stack.run("start", "dagster-daemon", timeout=120)

    outcomes: dict[str, str] = {}

    def follow(run_id: str) -> None:
        outcomes[run_id] = client.follow(run_id, timeout=RUN_TIMEOUT, echo=False).status

    threads = [threading.Thread(target=follow, args=(run_id,)) for run_id in (before, during)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(RUN_TIMEOUT + 60)
    assert outcomes == {before: "SUCCESS", during: "SUCCESS"}


def test_gpu_jobs_start_on_a_cpu_only_host_one_at_a_time(stack, training_run):
    require(stack.tiny_chronos, "chronos-forecasting is not installed here: no tiny Chronos-2 checkpoint for the stack")
    client, job = stack.dagster, gpu_training_job()
    runs = [client.launch(run_config("systest_chronos.yaml"), job=job) for _ in range(2)]
    active = {"STARTING", "STARTED", "CANCELING"}
    overlap, held_back, deadline = [], False, time.monotonic() + RUN_TIMEOUT
    while True:
        states = [client.run(run_id)[0] for run_id in runs]
        if all(state in active for state in states):
            overlap.append(states)
        held_back |= "QUEUED" in states and any(state in active for state in states)
        if all(state in {"SUCCESS", "FAILURE", "CANCELED"} for state in states) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    outcomes = [client.follow(run_id, timeout=60, echo=False) for run_id in runs]
    assert [o.status for o in outcomes] == ["SUCCESS", "SUCCESS"], [o.errors for o in outcomes]
    assert not overlap, f"two GPU runs were active at once: {overlap}"
    assert held_back, "the second GPU run was never seen waiting for the first"
    for outcome in outcomes:
        assert outcome.tags["energy_forecast/gpu_granted"] == "false"  # no NVIDIA runtime: no device request
        container = json.loads(subprocess.run(["docker", "inspect", outcome.tags["docker/container_id"]], capture_output=True, text=True, check=True).stdout)[0]
        assert not container["HostConfig"].get("DeviceRequests")
        run = stack.mlflow_get("/api/2.0/mlflow/runs/get", run_id=outcome.metadata["mlflow_run_id"])["run"]
        tags = {tag["key"]: tag["value"] for tag in run["data"]["tags"]}
        assert tags["model_type"] == "chronos2" and tags["device"] == "cpu" and tags["gpu_used"] == "false"


def test_the_serving_service_follows_a_promotion_within_60_seconds(stack, training_run):
    require(stack.report["real_data"], "needs the served model of the serving test")
    name = registered_model(stack.report["experiment"])
    current = serving_ready(stack)["version"]
    own = f"http://127.0.0.1:{stack.env['MLFLOW_PORT']}"
    # a new version of the same files (whatever the tests before made), promoted by hand
    served = stack.mlflow_get("/api/2.0/mlflow/model-versions/get", name=name, version=current)["model_version"]
    created = requests.post(f"{stack.url('MLFLOW_PORT')}/api/2.0/mlflow/model-versions/create", auth=stack.login, timeout=60,
                            headers={"Origin": own}, json={"name": name, "source": served["source"], "run_id": served.get("run_id", ""),
                                                                          "model_id": served["source"].rsplit("/", 1)[-1]})
    assert created.status_code == 200, created.text
    other = created.json()["model_version"]["version"]
    promoted = requests.post(f"{stack.url('MLFLOW_PORT')}/api/2.0/mlflow/registered-models/alias", auth=stack.login, timeout=30,
                             headers={"Origin": own}, json={"name": name, "alias": "champion", "version": other})
    assert promoted.status_code == 200, promoted.text
    begun = time.monotonic()
    while time.monotonic() - begun < 60:
        if requests.get(f"{stack.url('SERVING_PORT')}/model", timeout=10).json().get("version") == other:
            break
        time.sleep(1)
    took = time.monotonic() - begun
    stack.report["promotion_served_after_s"] = round(took, 1)
    assert requests.get(f"{stack.url('SERVING_PORT')}/model", timeout=10).json().get("version") == other, f"still v{current} after {took:.0f} s"


def test_dvc_reaches_the_remote_from_the_host_with_its_own_key(stack, tmp_path):
    dvc = Path(sys.executable).parent / "dvc"
    require(dvc.is_file(), "dvc is not installed in this environment (make venv-dev)")
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([str(dvc), "init", "-q"], cwd=repo, check=True)
    shutil.copyfile(PROJECT_DIR / ".dvc" / "config", repo / ".dvc" / "config")  # the committed remote
    subprocess.run([sys.executable, str(STACK_ENV), "dvc-local", str(stack.env_file), str(repo / ".dvc" / "config.local")], check=True, capture_output=True)
    assert f"access_key_id = {stack.env['DVC_S3_ACCESS_KEY_ID']}" in (repo / ".dvc" / "config.local").read_text()
    shutil.copyfile(stack.data_dir / DATA_FILE, repo / "data" / DATA_FILE)
    subprocess.run([str(dvc), "add", "-q", f"data/{DATA_FILE}"], cwd=repo, check=True)
    push = subprocess.run([str(dvc), "push"], cwd=repo, capture_output=True, text=True, timeout=120, check=False)
    assert push.returncode == 0, push.stderr
    (repo / "data" / DATA_FILE).unlink()
    shutil.rmtree(repo / ".dvc" / "cache")
    pull = subprocess.run([str(dvc), "pull"], cwd=repo, capture_output=True, text=True, timeout=120, check=False)
    assert pull.returncode == 0, pull.stderr
    assert file_sha256(repo / "data" / DATA_FILE) == file_sha256(stack.data_dir / DATA_FILE)


def test_the_code_servers_s3_key_reaches_the_ops_bucket_only(stack):
    script = (
        "import boto3, botocore.exceptions\n"
        "s3 = boto3.client('s3')\n"  # the environment's endpoint and key, as the sensors use them
        "s3.list_objects_v2(Bucket='ops', MaxKeys=1)\n"
        "try:\n"
        "    s3.list_objects_v2(Bucket='mlflow', MaxKeys=1)\n"
        "except botocore.exceptions.ClientError as error:\n"
        "    print(error.response['Error']['Code'])\n"
    )
    answer = stack.run("exec", "-T", "code-server", "python", "-c", script, timeout=120)
    assert answer.stdout.strip() == "AccessDenied"


# -- access: the proxy ---------------------------------------------------------------------------

NUX_QUERY = {"query": "{ shouldShowNux }"}
NUX_MUTATION = {"query": "mutation { setNuxSeen }"}


def graphql(stack: Stack, body: dict, *, origin: str | None = None, content_type: str = "application/json",
            auth: bool = True, extra: dict[str, str] | None = None) -> requests.Response:
    headers = {"Content-Type": content_type, **(extra or {})}
    if origin is not None:
        headers["Origin"] = origin
    return requests.post(f"{stack.url('DAGSTER_PORT')}/graphql", data=json.dumps(body), headers=headers,
                         auth=stack.login if auth else None, timeout=30)


def should_show_nux(stack: Stack) -> bool:
    answer = graphql(stack, NUX_QUERY)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]["shouldShowNux"]


def websocket_handshake(stack: Stack, origin: str) -> str:
    """The status line the proxy answers a websocket upgrade on /graphql with, as a browser sends it."""
    import base64
    import socket

    key = base64.b64encode(os.urandom(16)).decode()
    token = base64.b64encode(":".join(stack.login).encode()).decode()
    port = int(stack.env["DAGSTER_PORT"])
    request = (
        f"GET /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-ws\r\n"
        f"Origin: {origin}\r\nAuthorization: Basic {token}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request.encode())
        return connection.recv(4096).decode(errors="replace").split("\r\n", 1)[0]


def test_the_proxy_refuses_requests_without_the_login(stack):
    dagster, mlflow = stack.url("DAGSTER_PORT"), stack.url("MLFLOW_PORT")
    assert requests.get(f"{dagster}/", timeout=10).status_code == 401
    assert graphql(stack, NUX_QUERY, auth=False).status_code == 401
    assert requests.post(f"{dagster}/graphql", json=NUX_QUERY, auth=(stack.login[0], "wrong"), timeout=10).status_code == 401
    assert requests.get(f"{mlflow}/api/2.0/mlflow/experiments/search", params={"max_results": 1}, timeout=10).status_code == 401
    assert requests.get(f"{mlflow}/", auth=("someone", stack.login[1]), timeout=10).status_code == 401
    # with it, both answer
    assert requests.get(f"{dagster}/server_info", auth=stack.login, timeout=10).status_code == 200
    assert stack.mlflow_get("/api/2.0/mlflow/experiments/search", max_results=1) is not None


def test_the_dagster_ui_loads_through_the_proxy(stack):
    page = requests.get(f"{stack.url('DAGSTER_PORT')}/", auth=stack.login, timeout=30)
    assert page.status_code == 200 and "<html" in page.text.lower()
    scripts = re.findall(r'src="([^"]+\.js)"', page.text)
    assert scripts, page.text[:500]
    asset = requests.get(f"{stack.url('DAGSTER_PORT')}{scripts[0] if scripts[0].startswith('/') else '/' + scripts[0]}", auth=stack.login, timeout=30)
    assert asset.status_code == 200
    # the UI's own requests: queries by POST from its origin, subscriptions over a websocket
    own = f"http://127.0.0.1:{stack.env['DAGSTER_PORT']}"
    answer = graphql(stack, {"query": "{ version }"}, origin=own, extra={"Sec-Fetch-Site": "same-origin"})
    assert answer.status_code == 200 and answer.json()["data"]["version"], answer.text
    assert websocket_handshake(stack, own).startswith("HTTP/1.1 101"), "the UI's websocket did not upgrade"
    assert websocket_handshake(stack, "http://evil.example").startswith("HTTP/1.1 403")
    mlflow = requests.get(f"{stack.url('MLFLOW_PORT')}/", auth=stack.login, timeout=30)
    assert mlflow.status_code == 200 and "<html" in mlflow.text.lower()


def test_a_get_mutation_through_the_proxy_changes_nothing(stack, training_run):
    run_id = training_run["run_id"]
    mutation = f'mutation {{ deleteRun(runId: "{run_id}") {{ __typename }} }}'
    answer = requests.get(f"{stack.url('DAGSTER_PORT')}/graphql", params={"query": mutation}, auth=stack.login, timeout=30)
    assert answer.status_code == 405, answer.text
    nux = requests.head(f"{stack.url('DAGSTER_PORT')}/graphql", params={"query": NUX_MUTATION["query"]}, auth=stack.login, timeout=30)
    assert nux.status_code == 405
    assert stack.dagster.run(run_id)[0] == "SUCCESS"  # the run is still there


def test_cross_origin_mutations_are_refused_and_same_origin_ones_succeed(stack):
    own = f"http://127.0.0.1:{stack.env['DAGSTER_PORT']}"
    assert should_show_nux(stack) is True
    refused = [
        graphql(stack, NUX_MUTATION, origin="http://evil.example"),                       # another site
        graphql(stack, NUX_MUTATION, origin="null"),                                      # a sandboxed or opaque origin
        graphql(stack, NUX_MUTATION, origin=f"http://localhost:{int(stack.env['DAGSTER_PORT']) + 1}"),  # another local port
        graphql(stack, NUX_MUTATION, origin="http://evil.example", content_type="text/plain"),  # a "simple" request
        graphql(stack, NUX_MUTATION, origin=own, extra={"Sec-Fetch-Site": "cross-site"}),
    ]
    assert [answer.status_code for answer in refused] == [403] * len(refused), [answer.text for answer in refused]
    assert graphql(stack, NUX_MUTATION, origin=own, content_type="text/plain").status_code == 415
    assert graphql(stack, NUX_MUTATION, content_type="application/x-www-form-urlencoded").status_code == 415
    assert should_show_nux(stack) is True  # nothing above changed state

    accepted = graphql(stack, NUX_MUTATION, origin=own, extra={"Sec-Fetch-Site": "same-origin"})
    assert accepted.status_code == 200 and accepted.json()["data"]["setNuxSeen"] is True, accepted.text
    assert should_show_nux(stack) is False


def test_mlflow_refuses_cross_origin_changes_and_unknown_host_headers(stack):
    mlflow = stack.url("MLFLOW_PORT")
    create = {"name": f"systest-cors-{uuid.uuid4().hex[:8]}"}
    foreign = requests.post(f"{mlflow}/api/2.0/mlflow/experiments/create", json=create, auth=stack.login,
                            headers={"Origin": "http://localhost:8888"}, timeout=30)  # MLflow itself admits any localhost port
    assert foreign.status_code == 403
    missing = requests.get(f"{mlflow}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": create["name"]}, auth=stack.login, timeout=30)
    assert missing.status_code == 404, missing.text
    own = requests.post(f"{mlflow}/api/2.0/mlflow/experiments/create", json=create, auth=stack.login,
                        headers={"Origin": f"http://127.0.0.1:{stack.env['MLFLOW_PORT']}"}, timeout=30)
    assert own.status_code == 200, own.text
    rebinding = requests.get(f"{mlflow}/api/2.0/mlflow/experiments/search?max_results=1", headers={"Host": "evil.example"}, auth=stack.login, timeout=10)
    assert rebinding.status_code == 421
    assert requests.get(f"{stack.url('DAGSTER_PORT')}/server_info", headers={"Host": "evil.example"}, auth=stack.login, timeout=10).status_code == 421


# -- access: S3 keys -----------------------------------------------------------------------------


def denied(call, **kwargs) -> bool:
    try:
        call(**kwargs)
    except botocore.exceptions.ClientError as error:
        return error.response["Error"]["Code"] in ("AccessDenied", "403")
    return False


def test_each_s3_key_is_refused_outside_its_bucket(stack, training_run):
    for role, own, other in (("mlflow", "mlflow", "dvc"), ("dvc", "dvc", "mlflow"), ("serving", "mlflow", "dvc"), ("ops", "ops", "mlflow"),
                             ("mlflow", "mlflow", "ops"), ("serving", "mlflow", "ops")):
        s3 = stack.s3(role)
        s3.list_objects_v2(Bucket=own, MaxKeys=1)
        assert denied(s3.list_objects_v2, Bucket=other, MaxKeys=1), f"{role} may list {other}"
        assert denied(s3.put_object, Bucket=other, Key=f"from-{role}.txt", Body=b"x"), f"{role} may write to {other}"
        assert denied(s3.create_bucket, Bucket=f"{role}-made-this"), f"{role} may create buckets"
    serving = stack.s3("serving")
    some_key = serving.list_objects_v2(Bucket="mlflow", MaxKeys=1)["Contents"][0]["Key"]
    serving.get_object(Bucket="mlflow", Key=some_key)
    assert denied(serving.put_object, Bucket="mlflow", Key="from-serving.txt", Body=b"x"), "the serving key may write"
    assert denied(serving.delete_object, Bucket="mlflow", Key=some_key), "the serving key may delete"
    serving.head_object(Bucket="mlflow", Key=some_key)  # still there
    unknown = boto3.client("s3", endpoint_url=stack.url("MINIO_API_PORT"), region_name="us-east-1",
                           aws_access_key_id="AKIAUNKNOWNKEY000000", aws_secret_access_key="not-a-secret")
    with pytest.raises(botocore.exceptions.ClientError, match="InvalidAccessKeyId"):
        unknown.list_objects_v2(Bucket="mlflow")


def test_idle_memory_of_the_whole_stack(stack, training_run):
    time.sleep(10)  # let the last run's container exit and the servers settle
    ids = stack.run("ps", "-q").stdout.split()
    answer = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}", *ids], capture_output=True, text=True, check=True)
    units = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "kB": 1000, "MB": 1000**2, "GB": 1000**3}
    usage = {}
    for line in answer.stdout.splitlines():
        name, used = line.split("\t")
        number, unit = re.match(r"([\d.]+)\s*([A-Za-z]+)", used.split("/")[0].strip()).groups()
        usage[name] = float(number) * units[unit]
    total = sum(usage.values())
    stack.report["idle_memory_MiB"] = {name: round(value / 1024**2) for name, value in sorted(usage.items())}
    stack.report["idle_memory_total_MiB"] = round(total / 1024**2)
    assert total <= IDLE_MEMORY_LIMIT, stack.report["idle_memory_MiB"]
