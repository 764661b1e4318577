"""The Compose stack, for real: build every image, bring it up, train through Dagster, check, tear down.

1. ``../shared/tools/docker-offline-setup.sh`` makes the engine, Compose and the local base image
   available (on a user's machine with Docker it only reports).
2. Every image is built from the Dockerfiles users build, with the base image pointed at the local
   stand-in and the host's CA bundle passed as the BuildKit secret ``ca_bundle``; the trainer is
   the CPU variant from the local torch wheel. Layers and pip downloads stay cached between runs.
3. ``docker-compose.yml`` + ``tests/system/docker-compose.test.yml``: PostgreSQL and MinIO are
   locally built stand-ins (official env contract; moto's S3 server), the rest is as users run it.
4. ``complete_training_job`` is launched over GraphQL with a small config and must succeed.
5. Checks: the run had its own container, made by the DockerRunLauncher from the trainer image;
   the MLflow run and its metrics are visible through the REST API from the host and its artifacts
   download there; the model files are in the bucket; runs launched around a daemon restart all
   complete; GPU-tagged Chronos-2 runs (a tiny random checkpoint) start on this CPU-only host
   without a device request, one at a time; DVC reaches the remote from the host and from inside
   the stack; idle memory.
6. ``down -v`` (images are kept: they are the cache).

The project name and ports are the test's own, so a user's `make up` stack is left alone.
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
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import numpy as np
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
PROJECT = "efsystest"
IMAGE_TAG = "systest"
TRAINER_IMAGE = f"energy-forecast/trainer:{IMAGE_TAG}"
DATA_FILE = "Steel_industry_data.csv"
TINY_CHRONOS = "chronos-tiny"
GIT_COMMIT = "systest-" + uuid.uuid4().hex[:8]
BUILD_TIMEOUT = 1500
UP_TIMEOUT = 600
RUN_TIMEOUT = 600
IDLE_MEMORY_LIMIT = 3 * 1024**3
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
    def dagster(self) -> StackClient:
        return StackClient(self.url("DAGSTER_PORT"))

    def s3(self):
        return boto3.client(
            "s3", endpoint_url=self.url("MINIO_API_PORT"), region_name="us-east-1",
            aws_access_key_id=self.env["S3_ACCESS_KEY_ID"], aws_secret_access_key=self.env["S3_SECRET_ACCESS_KEY"],
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
    """configs/ plus small XGBoost and Chronos-2 configs; returns the experiment name."""
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
    return experiment


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
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.energy-forecast.project={PROJECT}"], capture_output=True, text=True, check=False).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, check=False)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, request) -> Iterator[Stack]:
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
    ports = free_ports(4)
    base_image = facts.get("BASE_IMAGE", "local/python:3.11-bookworm")
    env = write_env(workdir / "stack.env", {
        "COMPOSE_PROJECT_NAME": PROJECT,
        "IMAGE_TAG": IMAGE_TAG,
        "PYTHON_BASE_IMAGE": base_image,
        "TRAINER_BASE_IMAGE": base_image,
        "STANDIN_BASE_IMAGE": base_image,
        "TORCH_VARIANT": "cpu",
        "BUILD_CA_BUNDLE": facts.get("HOST_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"),
        "DAGSTER_PORT": ports[0],
        "MLFLOW_PORT": ports[1],
        "MINIO_API_PORT": ports[2],
        "MINIO_CONSOLE_PORT": ports[3],
        "CONFIGS_DIR": str(workdir / "configs"),
        "DATA_DIR": str(workdir / "data"),
        "DATA_FILE": DATA_FILE,
        "HF_HUB_OFFLINE": "1",
        "CHRONOS2_PRETRAINED": f"/data/{TINY_CHRONOS}",
        "MLFLOW_WORKERS": "1",
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
    return {"run_id": run_id, "tags": outcome.tags, "metadata": outcome.metadata}


# -- the stack -----------------------------------------------------------------------------------


def test_every_service_is_healthy_and_minio_init_completed(stack):
    states = [json.loads(line) for line in stack.run("ps", "--all", "--format", "json").stdout.splitlines() if line.strip()]
    by_service = {state["Service"]: state for state in states}
    assert set(by_service) == {"postgres", "minio", "minio-init", "mlflow", "code-server", "dagster-webserver", "dagster-daemon"}
    for name, state in by_service.items():
        if name == "minio-init":
            assert state["State"] == "exited" and state["ExitCode"] == 0, state
        else:
            assert state["State"] == "running" and state["Health"] == "healthy", state


def test_the_databases_have_their_own_owners(stack):
    query = "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname IN ('dagster', 'mlflow') ORDER BY 1"
    answer = stack.run("exec", "-T", "postgres", "psql", "-U", stack.env["POSTGRES_USER"], "-d", "postgres", "-At", "-c", query)
    assert answer.stdout.split() == [f"dagster|{stack.env['DAGSTER_PG_USER']}", f"mlflow|{stack.env['MLFLOW_PG_USER']}"]


def test_mlflow_refuses_unknown_host_headers(stack):
    answer = requests.get(f"{stack.url('MLFLOW_PORT')}/api/2.0/mlflow/experiments/search?max_results=1", headers={"Host": "evil.example"}, timeout=10)
    assert answer.status_code == 403


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


def test_the_mlflow_run_and_its_metrics_are_visible_from_the_host(stack, training_run):
    mlflow_url = stack.url("MLFLOW_PORT")
    run_id = training_run["metadata"]["mlflow_run_id"]
    run = requests.get(f"{mlflow_url}/api/2.0/mlflow/runs/get", params={"run_id": run_id}, timeout=30).json()["run"]
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
    history = requests.get(f"{mlflow_url}/api/2.0/mlflow/metrics/get-history", params={"run_id": run_id, "metric_key": "test_rmse_by_step_model"}, timeout=30).json()
    assert len(history["metrics"]) == 96


def test_artifacts_download_on_the_host(stack, training_run, tmp_path):
    run_id = training_run["metadata"]["mlflow_run_id"]
    script = (
        "import mlflow, sys\n"
        f"path = mlflow.artifacts.download_artifacts(run_id='{run_id}', artifact_path='config/resolved_config.yaml', "
        f"tracking_uri='{stack.url('MLFLOW_PORT')}', dst_path=sys.argv[1])\n"
        "print(path)\n"
    )
    answer = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=120,
                            env={**os.environ, **HOST_MLFLOW_CLIENT}, check=False)
    assert answer.returncode == 0, answer.stderr[-2000:]
    assert yaml.safe_load(Path(answer.stdout.strip().splitlines()[-1]).read_text())["model"]["type"] == "xgboost"


def test_the_model_artifacts_are_in_the_bucket(stack, training_run):
    run_id = training_run["metadata"]["mlflow_run_id"]
    keys = [item["Key"] for page in stack.s3().get_paginator("list_objects_v2").paginate(Bucket="mlflow") for item in page.get("Contents", [])]
    for artifact in ("plots/forecast_vs_actual.png", "predictions/test_forecast.parquet", "config/resolved_config.yaml"):
        assert any(key.endswith(f"{run_id}/artifacts/{artifact}") for key in keys), artifact
    model_files = [key for key in keys if re.search(r"/models/m-[0-9a-f]+/artifacts/", key)]
    assert any(key.endswith("/MLmodel") for key in model_files) and any(key.endswith("/model.ubj") for key in model_files)


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
        run = requests.get(f"{stack.url('MLFLOW_PORT')}/api/2.0/mlflow/runs/get", params={"run_id": outcome.metadata["mlflow_run_id"]}, timeout=30).json()["run"]
        tags = {tag["key"]: tag["value"] for tag in run["data"]["tags"]}
        assert tags["model_type"] == "chronos2" and tags["device"] == "cpu" and tags["gpu_used"] == "false"


def test_dvc_reaches_the_remote_from_the_host_and_from_inside_the_stack(stack, tmp_path):
    dvc = Path(sys.executable).parent / "dvc"
    require(dvc.is_file(), "dvc is not installed in this environment (make venv-dev)")
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([str(dvc), "init", "-q"], cwd=repo, check=True)
    shutil.copyfile(PROJECT_DIR / ".dvc" / "config", repo / ".dvc" / "config")  # the committed remote
    subprocess.run([sys.executable, str(STACK_ENV), "dvc-local", str(stack.env_file), str(repo / ".dvc" / "config.local")], check=True, capture_output=True)
    shutil.copyfile(stack.data_dir / DATA_FILE, repo / "data" / DATA_FILE)
    subprocess.run([str(dvc), "add", "-q", f"data/{DATA_FILE}"], cwd=repo, check=True)
    push = subprocess.run([str(dvc), "push"], cwd=repo, capture_output=True, text=True, timeout=120, check=False)
    assert push.returncode == 0, push.stderr
    pointer = (repo / "data" / f"{DATA_FILE}.dvc").read_text()

    # inside the stack: the trainer image's DVC, endpoint and key from the environment (AWS_ENDPOINT_URL_S3)
    script = (
        'set -e; d=$(mktemp -d); cd "$d"; dvc init --no-scm -q; dvc remote add -q -d stack s3://dvc/energy-forecast; '
        f"printf '%s' \"$POINTER\" > {DATA_FILE}.dvc; dvc pull -q; sha256sum {DATA_FILE}"
    )
    answer = stack.run("exec", "-T", "-e", f"POINTER={pointer}", "code-server", "bash", "-c", script, timeout=120)
    assert answer.stdout.split()[0] == file_sha256(stack.data_dir / DATA_FILE)


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
