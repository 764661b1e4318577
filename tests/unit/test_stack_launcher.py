"""The stack's run launcher grants the GPU per run: only to GPU-tagged jobs, only where there is one.

A fake Docker client stands in for the engine's ``docker info``; no Docker needed.
"""

from __future__ import annotations

import sys
import uuid

import docker.errors
import pytest
from dagster import DagsterInstance
from dagster._core.storage.dagster_run import DagsterRun

from pipelines.jobs import GPU_TAG
from tests.conftest import PROJECT_DIR

sys.path.insert(0, str(PROJECT_DIR / "services" / "dagster"))
import stack_launcher  # noqa: E402  (lives in the Dagster image's /opt/dagster/lib)
from stack_launcher import GPU_GRANTED_TAG, GpuAwareDockerRunLauncher  # noqa: E402

CPU_HOST = {"Runtimes": {"runc": {}, "io.containerd.runc.v2": {}}}
GPU_HOST = {"Runtimes": {"runc": {}, "nvidia": {"path": "nvidia-container-runtime"}}}


class FakeDocker:
    def __init__(self, info: dict | Exception) -> None:
        self._info = info
        self.asked = 0

    def info(self) -> dict:
        self.asked += 1
        if isinstance(self._info, Exception):
            raise self._info
        return self._info

    def close(self) -> None:
        pass


@pytest.fixture
def docker_host(monkeypatch):
    def use(info):
        fake = FakeDocker(info)
        monkeypatch.setattr(stack_launcher.docker.client, "from_env", lambda: fake)
        return fake

    return use


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as instance:
        yield instance


def a_run(instance: DagsterInstance, gpu: str | None) -> DagsterRun:
    tags = {GPU_TAG: gpu} if gpu is not None else {}
    return instance.add_run(DagsterRun(job_name="some_job", run_id=str(uuid.uuid4()), tags=tags))


def launcher(instance: DagsterInstance, **config) -> GpuAwareDockerRunLauncher:
    made = GpuAwareDockerRunLauncher(network="stack_backend", **config)
    made.register_instance(instance)
    return made


def device_requests(made: GpuAwareDockerRunLauncher, run: DagsterRun):
    return made.get_container_context(run).container_kwargs.get("device_requests")


def test_the_launchers_default_tag_is_the_jobs_gpu_tag():
    assert stack_launcher.DEFAULT_GPU_TAG == GPU_TAG


@pytest.mark.parametrize(
    ("host", "gpu_tag", "mode", "granted"),
    [
        (GPU_HOST, "true", "auto", True),
        (CPU_HOST, "true", "auto", False),   # no NVIDIA runtime: container creation would fail
        (GPU_HOST, "false", "auto", False),  # a job that does not benefit never holds the GPU
        (GPU_HOST, None, "auto", False),
        (CPU_HOST, "true", "on", True),
        (GPU_HOST, "true", "off", False),
    ],
)
def test_when_a_run_is_launched_then_the_gpu_is_requested_only_for_gpu_jobs_on_gpu_hosts(
    docker_host, instance, host, gpu_tag, mode, granted
):
    docker_host(host)
    made = launcher(instance, gpu=mode)
    run = made._record_decision(a_run(instance, gpu_tag))

    assert run.tags[GPU_GRANTED_TAG] == str(granted).lower()
    requests = device_requests(made, run)
    if granted:
        assert requests == [{"driver": "nvidia", "count": -1, "capabilities": [["gpu"]]}]
    else:
        assert requests is None
    assert made.get_container_context(run).networks == ["stack_backend"]
    messages = [event.message for event in instance.all_logs(run.run_id)]
    assert any("GPU: " in message for message in messages), messages


def test_the_host_is_asked_once_per_process(docker_host, instance):
    fake = docker_host(GPU_HOST)
    made = launcher(instance)
    for _ in range(3):
        made._record_decision(a_run(instance, "true"))
    assert fake.asked == 1


def test_when_the_engine_cannot_be_asked_then_the_run_starts_on_the_cpu(docker_host, instance):
    docker_host(docker.errors.DockerException("socket unreachable"))
    made = launcher(instance)
    run = made._record_decision(a_run(instance, "true"))
    assert run.tags[GPU_GRANTED_TAG] == "false"
    assert device_requests(made, run) is None
    assert "cannot ask the Docker host" in made.gpu_decision(run).reason


def test_a_recorded_decision_is_kept_for_the_runs_lifetime(docker_host, instance):
    docker_host(CPU_HOST)
    made = launcher(instance)
    run = made._record_decision(a_run(instance, "true"))
    made._host_runtimes = frozenset({"nvidia"})  # the host changed after launch
    assert device_requests(made, run) is None    # termination and health checks see the launch's choice


def test_an_unknown_gpu_mode_is_rejected_with_the_choices():
    with pytest.raises(ValueError, match="auto, on, off"):
        GpuAwareDockerRunLauncher(gpu="sometimes")


# -- the runs' own credentials -------------------------------------------------------------------


def test_runs_get_their_own_login_in_place_of_the_daemons(monkeypatch, instance):
    monkeypatch.setenv("DAGSTER_PG_USER", "owner")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "owner-secret")
    monkeypatch.setenv("DAGSTER_RUN_PG_USER", "runs")
    monkeypatch.setenv("DAGSTER_RUN_PG_PASSWORD", "runs-secret")
    made = launcher(instance, env_vars=["DAGSTER_PG_HOST=postgres"],
                    run_env_from={"DAGSTER_PG_USER": "DAGSTER_RUN_PG_USER", "DAGSTER_PG_PASSWORD": "DAGSTER_RUN_PG_PASSWORD"})
    env = dict(entry.split("=", 1) for entry in made.get_container_context(a_run(instance, None)).env_vars)
    assert env == {"DAGSTER_PG_HOST": "postgres", "DAGSTER_PG_USER": "runs", "DAGSTER_PG_PASSWORD": "runs-secret"}
    assert "owner-secret" not in env.values()


def test_when_the_runs_login_is_missing_then_the_launch_fails_naming_it(monkeypatch, instance):
    monkeypatch.delenv("DAGSTER_RUN_PG_PASSWORD", raising=False)
    made = launcher(instance, run_env_from={"DAGSTER_PG_PASSWORD": "DAGSTER_RUN_PG_PASSWORD"})
    assert made.get_container_context(a_run(instance, None)).env_vars == []  # terminating needs none of it
    with pytest.raises(ValueError, match="DAGSTER_RUN_PG_PASSWORD not set"):
        made.run_env(required=True)


def test_a_variable_in_both_env_vars_and_run_env_from_is_rejected():
    with pytest.raises(ValueError, match="DAGSTER_PG_USER in both env_vars and run_env_from"):
        GpuAwareDockerRunLauncher(env_vars=["DAGSTER_PG_USER"], run_env_from={"DAGSTER_PG_USER": "DAGSTER_RUN_PG_USER"})
