"""Per-site partition runs start in parallel up to the stack's run limit, and no further (issue 11).

The Compose stack's own instance config (infra/dagster/dagster.yaml: the queue and its limits) with
Dagster's real queue daemon; only the storage (a temporary SQLite instance instead of PostgreSQL)
and the launcher (Dagster's recording test launcher instead of Docker containers, which the system
test starts) differ. A launched run counts as in progress until it ends, as a run container does.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.conftest import PROJECT_DIR

DAGSTER_YAML = PROJECT_DIR / "infra" / "dagster" / "dagster.yaml"
LIMIT = 3
GPU_TAG = "energy_forecast/gpu"


def queue_config(limit: int) -> dict:
    """dagster.yaml without storage and launcher, the run limit set to ``limit`` as the deployment sets it."""
    config = copy.deepcopy(yaml.safe_load(DAGSTER_YAML.read_text()))
    for key in ("storage", "run_launcher", "run_monitoring", "telemetry"):
        config.pop(key, None)
    runs = (config.get("concurrency") or {}).get("runs")
    if runs is not None:  # the `concurrency:` block: the image's entrypoint writes the limit in
        runs["max_concurrent_runs"] = limit
    else:  # the run coordinator reads DAGSTER_MAX_CONCURRENT_RUNS (set by the test)
        assert config["run_coordinator"]["config"]["max_concurrent_runs"] == {"env": "DAGSTER_MAX_CONCURRENT_RUNS"}
    config["run_launcher"] = {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"}
    return config


@pytest.fixture
def queue(monkeypatch, tmp_path):
    from dagster._core.test_utils import create_test_daemon_workspace_context, instance_for_test
    from dagster._core.workspace.load_target import EmptyWorkspaceTarget
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

    monkeypatch.setenv("DAGSTER_MAX_CONCURRENT_RUNS", str(LIMIT))
    with instance_for_test(overrides=queue_config(LIMIT), temp_dir=str(tmp_path)) as instance:
        with create_test_daemon_workspace_context(EmptyWorkspaceTarget(), instance) as context:
            daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)

            def tick() -> None:
                list(daemon.run_iteration(context))

            yield instance, tick


def queued_partition_runs(instance, sites, tags=None):
    """One QUEUED run per site, as a backfill or the sensor submits them, from the stack's code location."""
    from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
    from dagster._core.storage.dagster_run import DagsterRunStatus
    from dagster._core.test_utils import create_run_for_test

    origin = RemoteJobOrigin(RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("energy_forecast"), "__repository__"),
                             "site_forecast_job")
    return [
        create_run_for_test(instance, job_name="site_forecast_job", status=DagsterRunStatus.QUEUED, remote_job_origin=origin,
                            tags={"dagster/partition": site, GPU_TAG: "false", **(tags or {})}).run_id
        for site in sites
    ]


def statuses(instance, run_ids):
    return [instance.get_run_by_id(run_id).status.value for run_id in run_ids]


def test_site_partitions_run_in_parallel_up_to_the_limit_and_the_rest_wait(queue):
    from dagster._core.storage.dagster_run import DagsterRunStatus

    instance, tick = queue
    assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == LIMIT
    runs = queued_partition_runs(instance, [f"plant_{number:03d}" for number in range(7)])
    tick()
    assert statuses(instance, runs).count("STARTING") == LIMIT
    assert statuses(instance, runs).count("QUEUED") == 7 - LIMIT
    tick()  # nothing ended: nothing more starts
    assert statuses(instance, runs).count("STARTING") == LIMIT

    started = [run_id for run_id in runs if instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTING]
    for run_id in started[:2]:
        instance.report_run_failed(instance.get_run_by_id(run_id))  # two sites end (how does not matter)
    tick()
    assert statuses(instance, runs).count("STARTING") == LIMIT
    assert statuses(instance, runs).count("QUEUED") == 7 - LIMIT - 2


def test_gpu_runs_take_one_slot_at_a_time_and_cpu_partitions_fill_the_others(queue):
    instance, tick = queue
    gpu = queued_partition_runs(instance, ["plant_000", "plant_001"], tags={GPU_TAG: "true"})
    cpu = queued_partition_runs(instance, ["plant_002", "plant_003", "plant_004"])
    tick()
    assert statuses(instance, gpu).count("STARTING") == 1
    assert statuses(instance, cpu).count("STARTING") == LIMIT - 1
