"""The reaper against a real MLflow server and a Dagster instance in PostgreSQL.

The orphan is made the way it happens: a process opens an MLflow run through the library's
tracker, tagged with its Dagster run's id, and is SIGKILLed inside it, so nothing ends the run.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import dagster as dg
import pytest
from mlflow.tracking import MlflowClient

from energy_forecast.reaper import REAPED_TAG
from pipelines.defs.reliability import mlflow_reaper
from pipelines.reaping import DAGSTER_RUN_TAG
from pipelines.resources import MlflowTracking
from tests.conftest import PROJECT_DIR
from tests.integration.helpers import FAST_PARAMS, small_config
from tests.integration.test_training_job import run_training_job

pytestmark = pytest.mark.integration

KILLED_INSIDE_A_RUN = """
import os, signal, sys
from energy_forecast.tracking import Tracker

tracker = Tracker(sys.argv[1], run_tags={"dagster_run_id": sys.argv[2]})
with tracker.run(experiment=sys.argv[3], run_name="killed", tags={"purpose": "orphan"}) as active:
    print(active.info.run_id, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def orphan_of(tracking_uri: str, owner: str, experiment: str) -> str:
    """An MLflow run left RUNNING by a process SIGKILLed inside it; returns its id."""
    answer = subprocess.run([sys.executable, "-c", KILLED_INSIDE_A_RUN, tracking_uri, owner, experiment], capture_output=True,
                            text=True, timeout=300, cwd=PROJECT_DIR, check=False)
    assert answer.returncode == -9, answer.stderr[-2000:]
    return answer.stdout.split()[-1]


def dagster_run(instance: dg.DagsterInstance, status: dg.DagsterRunStatus) -> str:
    """A run in the instance's run storage with ``status``."""
    run = instance.add_run(dg.DagsterRun(job_name="complete_training_job", run_id=str(uuid.uuid4()), status=status))
    return run.run_id


def status_and_tags(client: MlflowClient, run_id: str) -> tuple[str, dict[str, str]]:
    run = client.get_run(run_id)
    return run.info.status, run.data.tags


def test_when_the_owner_is_finished_then_the_sensor_reaps_its_run_and_leaves_live_ones(mlflow_server, dagster_instance):
    client = MlflowClient(mlflow_server)
    experiment = f"reaper-{uuid.uuid4().hex[:8]}"
    failed_owner = dagster_run(dagster_instance, dg.DagsterRunStatus.FAILURE)
    live_owner = dagster_run(dagster_instance, dg.DagsterRunStatus.STARTED)
    orphan = orphan_of(mlflow_server, failed_owner, experiment)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    live = client.create_run(experiment_id, tags={DAGSTER_RUN_TAG: live_owner}).info.run_id
    day = 24 * 3600 * 1000
    live_for_two_days = client.create_run(experiment_id, start_time=int(time.time() * 1000) - 2 * day, tags={DAGSTER_RUN_TAG: live_owner}).info.run_id
    unowned_young = client.create_run(experiment_id).info.run_id
    unowned_old = client.create_run(experiment_id, start_time=int(time.time() * 1000) - 2 * day).info.run_id
    unknown_owner_young = client.create_run(experiment_id, tags={DAGSTER_RUN_TAG: str(uuid.uuid4())}).info.run_id
    assert status_and_tags(client, orphan)[0] == "RUNNING"  # what SIGKILL leaves

    context = dg.build_sensor_context(instance=dagster_instance, resources={"mlflow": MlflowTracking(tracking_uri=mlflow_server)})
    skip = mlflow_reaper(context)

    status, tags = status_and_tags(client, orphan)
    assert status == "FAILED"
    assert tags[REAPED_TAG] == f"owner {DAGSTER_RUN_TAG}={failed_owner} ended FAILURE while this run was still RUNNING"
    assert client.get_run(orphan).info.end_time is not None
    status, tags = status_and_tags(client, unowned_old)
    assert status == "FAILED" and tags[REAPED_TAG].startswith(f"no {DAGSTER_RUN_TAG} tag and RUNNING for 48.0 h")
    for kept in (live, live_for_two_days, unowned_young, unknown_owner_young):
        status, tags = status_and_tags(client, kept)
        assert status == "RUNNING" and REAPED_TAG not in tags, kept
    assert orphan in skip.skip_message and unowned_old in skip.skip_message

    # a second pass finds nothing of ours; the live runs end on their own and are left as they ended
    assert not {orphan, unowned_old} & set(mlflow_reaper(context).skip_message.split())
    client.set_terminated(live)
    assert status_and_tags(client, live)[0] == "FINISHED"


def test_when_a_training_run_starts_then_it_reaps_and_its_own_mlflow_run_names_its_owner(
    tmp_path, synthetic_csv, use_data, mlflow_client_env, dagster_instance
):
    use_data(synthetic_csv)
    client = MlflowClient(mlflow_client_env)
    config_path, experiment = small_config(tmp_path, "xgboost.yaml", params=FAST_PARAMS["xgboost"])
    canceled_owner = dagster_run(dagster_instance, dg.DagsterRunStatus.CANCELED)
    orphan = orphan_of(mlflow_client_env, canceled_owner, experiment)

    outcome = run_training_job(config_path, dagster_instance)  # no sensor in between

    assert outcome.success
    status, tags = status_and_tags(client, orphan)
    assert status == "FAILED" and tags[REAPED_TAG].endswith("ended CANCELED while this run was still RUNNING")
    trained = outcome.output_for_node("train_model")
    status, tags = status_and_tags(client, trained.run_id)
    assert status == "FINISHED" and tags[DAGSTER_RUN_TAG] == outcome.run_id and REAPED_TAG not in tags
