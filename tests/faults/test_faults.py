"""Fault injection on the Compose stack (the system test's stack and stand-ins, shared per session).

Each fault hits a real training run launched through Dagster (``complete_training_job``, a small
XGBoost config in its own experiment and registered model), once its MLflow run is RUNNING:

* the daemon restarted;
* the run container SIGKILLed (what ``docker rm -f`` does);
* the MLflow server stopped (and started again once the run has ended);
* the S3 server stopped as the run's first artifact lands in the bucket (started again after);
* PostgreSQL restarted (Dagster's and MLflow's databases).

For each: the Dagster run ends FAILURE, or is retried by Dagster's run retries and the retry
succeeds, or survives the fault and succeeds; no MLflow run of the experiment is left RUNNING
(orphans are marked FAILED by the reaper, with its tag); every registered version is READY and no
alias moved unless a run succeeded (then ``champion`` is a version whose run FINISHED); after
recovery the next run succeeds. The outcomes are printed as a table at the end (README,
"Reliability").

Timing: runs' MLflow clients give up after about 7 s of retries and the reaper looks every 5 s
(``FAULT_SETTINGS`` in the stack's .env); run monitoring polls every 15 s (infra/dagster/dagster.yaml).
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import requests
import yaml

from energy_forecast.reaper import REAPED_TAG
from pipelines.launch import LaunchError
from pipelines.reaping import DAGSTER_RUN_TAG
from tests.conftest import SMALL_SPLIT
from tests.system.test_stack import Stack

pytestmark = [pytest.mark.system, pytest.mark.faults]

CONFIG = "faults_small.yaml"
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}
RUN_TIMEOUT = 600
SETTLE_TIMEOUT = 180
WILL_RETRY, ROOT_RUN, PARENT_RUN = "dagster/will_retry", "dagster/root_run_id", "dagster/parent_run_id"

RUNS_QUERY = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId status tags { key value } } }
    ... on PythonError { message }
  }
}
"""


@dataclass
class Faults:
    stack: Stack
    experiment: str
    model: str
    experiment_id: str = ""
    outcomes: dict[str, dict] = field(default_factory=dict)

    # -- Dagster ---------------------------------------------------------------------------------

    def launch(self, **tags: str) -> str:
        return self.stack.dagster.launch({"ops": {"train_model": {"config": {"config_path": f"configs/training/{CONFIG}"}}}}, tags=tags)

    def status(self, run_id: str) -> tuple[str, dict[str, str]] | None:
        """The run's status and tags; None while the webserver cannot answer (a fault in progress)."""
        try:
            return self.stack.dagster.run(run_id)
        except LaunchError:
            return None

    def wait_terminal(self, run_id: str, timeout: float = RUN_TIMEOUT) -> tuple[str, dict[str, str]]:
        deadline = time.monotonic() + timeout
        while True:
            answer = self.status(run_id)
            if answer is not None and answer[0] in TERMINAL:
                return answer
            assert time.monotonic() < deadline, f"run {run_id} still {answer and answer[0]} after {timeout:.0f} s"
            time.sleep(1)

    def retries_of(self, run_id: str) -> list[tuple[str, str, dict[str, str]]]:
        answer = requests.post(f"{self.stack.url('DAGSTER_PORT')}/graphql", auth=self.stack.login, timeout=30, json={
            "query": RUNS_QUERY, "variables": {"filter": {"tags": [{"key": ROOT_RUN, "value": run_id}]}}})
        answer.raise_for_status()
        runs = answer.json()["data"]["runsOrError"]["results"]
        return [(run["runId"], run["status"], {t["key"]: t["value"] for t in run["tags"]}) for run in runs]

    def settle(self, run_id: str) -> list[tuple[str, str]]:
        """Follow the run and its retries (run retries) to the end: [(run id, final status), ...]."""
        status, tags = self.wait_terminal(run_id)
        group = [(run_id, status)]
        while status == "FAILURE":
            deadline = time.monotonic() + SETTLE_TIMEOUT
            while WILL_RETRY not in tags:  # the daemon decides right after the failure
                assert time.monotonic() < deadline, f"run {run_id}: no retry decision ({WILL_RETRY}) within {SETTLE_TIMEOUT} s"
                time.sleep(2)
                tags = self.wait_terminal(group[-1][0])[1]
            if tags[WILL_RETRY] != "true":
                break
            while not (children := [r for r in self.retries_of(run_id) if r[2].get(PARENT_RUN) == group[-1][0]]):
                assert time.monotonic() < deadline, f"run {group[-1][0]} was to be retried, no retry within {SETTLE_TIMEOUT} s"
                time.sleep(2)
            child = children[0][0]
            status, tags = self.wait_terminal(child)
            group.append((child, status))
        return group

    # -- MLflow, through the proxy ---------------------------------------------------------------

    def mlflow(self, method: str, path: str, **body) -> dict:
        call = requests.get if method == "GET" else requests.post
        keyword = "params" if method == "GET" else "json"
        answer = call(f"{self.stack.url('MLFLOW_PORT')}/api/2.0/mlflow/{path}", auth=self.stack.login, timeout=30, **{keyword: body})
        answer.raise_for_status()
        return answer.json()

    def mlflow_runs(self, filter_string: str = "") -> list[dict]:
        found = self.mlflow("POST", "runs/search", experiment_ids=[self.experiment_id], filter=filter_string, max_results=1000)
        return found.get("runs", [])

    def wait_mlflow_run(self, run_id: str, timeout: float = RUN_TIMEOUT) -> dict:
        """The RUNNING MLflow run the Dagster run ``run_id`` started (tag ``dagster_run_id``)."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.experiment_id:
                found = requests.get(f"{self.stack.url('MLFLOW_PORT')}/api/2.0/mlflow/experiments/get-by-name", auth=self.stack.login,
                                     params={"experiment_name": self.experiment}, timeout=30)
                if found.status_code == 200:
                    self.experiment_id = found.json()["experiment"]["experiment_id"]
            runs = self.mlflow_runs(f"tags.{DAGSTER_RUN_TAG} = '{run_id}'") if self.experiment_id else []
            if runs and runs[0]["info"]["status"] == "RUNNING":
                return runs[0]
            status = self.status(run_id)
            assert not (status and status[0] in TERMINAL), f"run {run_id} ended {status[0]} before its MLflow run was seen RUNNING"
            assert time.monotonic() < deadline, f"no RUNNING MLflow run for {run_id} within {timeout:.0f} s"
            time.sleep(0.3)

    def wait_none_running(self, timeout: float = SETTLE_TIMEOUT) -> float:
        """Seconds until no MLflow run of the experiment is RUNNING (the reaper's work)."""
        begun = time.monotonic()
        while running := [run["info"]["run_id"] for run in self.mlflow_runs("attributes.status = 'RUNNING'")]:
            assert time.monotonic() - begun < timeout, f"MLflow runs still RUNNING after {timeout:.0f} s: {running}"
            time.sleep(1)
        return round(time.monotonic() - begun, 1)

    def registry(self) -> tuple[dict[str, str], list[dict]]:
        """The registered model's aliases and versions (none before the first registration)."""
        answer = requests.get(f"{self.stack.url('MLFLOW_PORT')}/api/2.0/mlflow/registered-models/get", params={"name": self.model},
                              auth=self.stack.login, timeout=30)
        if answer.status_code == 404:
            return {}, []
        answer.raise_for_status()
        aliases = {alias["alias"]: alias["version"] for alias in answer.json()["registered_model"].get("aliases", [])}
        versions = self.mlflow("GET", "model-versions/search", filter=f"name = '{self.model}'", max_results=1000).get("model_versions", [])
        return aliases, versions

    # -- services --------------------------------------------------------------------------------

    def wait_healthy(self, *services: str, timeout: float = 300) -> None:
        """Until ``services`` run and pass their healthchecks (the others' health is the next run's
        business: on a loaded machine the daemon's liveness check can time out while it works)."""
        deadline = time.monotonic() + timeout
        while True:
            states = [json.loads(line) for line in self.stack.run("ps", "--all", "--format", "json").stdout.splitlines() if line.strip()]
            unhealthy = {s["Service"]: s.get("Health") or s["State"] for s in states if s["Service"] in services
                         and not (s["State"] == "running" and s.get("Health") in ("healthy", ""))}
            if not unhealthy:
                return
            assert time.monotonic() < deadline, f"services not healthy after {timeout:.0f} s: {unhealthy}"
            time.sleep(2)


@pytest.fixture(scope="module")
def faults(compose_stack: Stack, request) -> Faults:
    """Its own experiment and registered model, and a first successful run (the champion the faults
    must not move)."""
    experiment = f"faults-{uuid.uuid4().hex[:8]}"
    body = {
        "extends": "xgboost.yaml",
        "model": {"device": "auto", "params": {"n_estimators": 60, "early_stopping_rounds": 10}},
        "tracking": {"experiment": experiment, "registered_model": f"{experiment}-{{task}}"},
        "split": SMALL_SPLIT,  # ten weeks, real or synthetic data: each run trains in seconds
    }
    (compose_stack.configs_dir / "training" / CONFIG).write_text(yaml.safe_dump(body, sort_keys=False))
    faults = Faults(compose_stack, experiment, model="")
    begun = time.monotonic()
    first = faults.launch(faults="baseline")
    status, _ = faults.wait_terminal(first)
    assert status == "SUCCESS", f"the baseline run ended {status}"
    faults.experiment_id = faults.mlflow("GET", "experiments/get-by-name", experiment_name=experiment)["experiment"]["experiment_id"]
    run = faults.mlflow_runs(f"tags.{DAGSTER_RUN_TAG} = '{first}'")
    assert run and run[0]["info"]["status"] == "FINISHED", run
    versions = faults.mlflow("GET", "model-versions/search", filter=f"run_id = '{run[0]['info']['run_id']}'")["model_versions"]
    faults.model = versions[0]["name"]
    aliases, _ = faults.registry()
    assert "champion" in aliases, f"the baseline run left no champion in {faults.model}: {aliases}"
    compose_stack.report["faults_baseline_run_s"] = round(time.monotonic() - begun, 1)
    started = time.monotonic()
    yield faults
    compose_stack.report["faults_s"] = round(time.monotonic() - started, 1)
    compose_stack.report["faults"] = faults.outcomes
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\nfault | Dagster run | retried | MLflow run | aliases | recovery run")
        for name, outcome in faults.outcomes.items():
            print(f"{name} | {outcome['dagster']} | {outcome['retried']} | {outcome['mlflow']} | {outcome['aliases']} | {outcome['recovery']}")


def check_and_recover(faults: Faults, name: str, group: list[tuple[str, str]], before: dict[str, str], notes: str = "") -> dict:
    """The assertions every fault shares; records the outcome for the README's table."""
    statuses = [status for _, status in group]
    assert statuses[-1] in ("SUCCESS", "FAILURE"), group
    assert all(status == "FAILURE" for status in statuses[:-1]), group  # only failures are retried
    succeeded = statuses[-1] == "SUCCESS"

    reaper_s = faults.wait_none_running()
    mlflow_states = []
    for run_id, status in group:
        runs = faults.mlflow_runs(f"tags.{DAGSTER_RUN_TAG} = '{run_id}'")
        for run in runs:
            tags = {t["key"]: t["value"] for t in run["data"].get("tags", [])}
            expected = "FINISHED" if status == "SUCCESS" else "FAILED"
            assert run["info"]["status"] == expected, (run_id, status, run["info"]["status"], tags.get(REAPED_TAG))
            if REAPED_TAG in tags:
                assert tags[REAPED_TAG] == f"owner {DAGSTER_RUN_TAG}={run_id} ended {status} while this run was still RUNNING"
            mlflow_states.append(run["info"]["status"] + (" (reaped)" if REAPED_TAG in tags else ""))

    aliases, versions = faults.registry()
    assert versions and all(version["status"] == "READY" for version in versions), [(v["version"], v["status"]) for v in versions]
    if succeeded:
        champion = next(v for v in versions if v["version"] == aliases["champion"])
        assert faults.mlflow("GET", "runs/get", run_id=champion["run_id"])["run"]["info"]["status"] == "FINISHED"
    else:
        assert aliases == before, f"aliases moved although no run succeeded: {before} -> {aliases}"

    recovery = "not needed (the run or its retry succeeded after the fault)"
    if not succeeded:
        after = faults.launch(faults=f"{name}-recovery")
        status, _ = faults.wait_terminal(after)
        assert status == "SUCCESS", f"the run after {name} ended {status}"
        assert faults.mlflow_runs(f"tags.{DAGSTER_RUN_TAG} = '{after}'")[0]["info"]["status"] == "FINISHED"
        recovery = "SUCCESS"
    faults.outcomes[name] = {
        "dagster": " -> ".join(statuses),
        "retried": "yes" if len(group) > 1 else "no",
        "mlflow": ", ".join(mlflow_states) + (f"; none RUNNING {reaper_s} s after the end" if mlflow_states else ""),
        "aliases": "champion kept" if aliases.get("champion") == before.get("champion") else f"champion v{before.get('champion')} -> v{aliases.get('champion')}",
        "recovery": recovery,
        "notes": notes,
    }
    return faults.outcomes[name]


def inject(faults: Faults, name: str, fault: Callable[[str, dict], str], heal: str | None = None) -> dict:
    """Launch a run, inject ``fault`` once its MLflow run is RUNNING, let the run end, start the
    service ``heal`` again, follow retries, then check and recover."""
    before, _ = faults.registry()
    run_id = faults.launch(faults=name)
    mlflow_run = faults.wait_mlflow_run(run_id)
    notes = fault(run_id, mlflow_run)
    if heal is not None:
        faults.wait_terminal(run_id)  # the service stays down until the run has ended
        faults.stack.run("start", heal, timeout=180)
        faults.wait_healthy(heal)
    group = faults.settle(run_id)
    return check_and_recover(faults, name, group, before, notes)


def test_daemon_restarted_mid_run(faults):
    def restart(run_id: str, mlflow_run: dict) -> str:
        faults.stack.run("restart", "dagster-daemon", timeout=180)
        return ""

    outcome = inject(faults, "daemon restarted", restart)
    # the run lives in its own container: the daemon is not in its path once it has launched
    assert outcome["dagster"] == "SUCCESS"


def test_run_container_sigkilled_mid_run(faults):
    def kill(run_id: str, mlflow_run: dict) -> str:
        container = faults.stack.dagster.run(run_id)[1]["docker/container_id"]
        subprocess.run(["docker", "kill", "--signal", "KILL", container], capture_output=True, check=True, timeout=60)
        inspected = json.loads(subprocess.run(["docker", "inspect", container], capture_output=True, text=True, check=True).stdout)[0]
        assert inspected["State"]["ExitCode"] == 137
        return "container exit code 137"

    outcome = inject(faults, "run container SIGKILLed", kill)
    # run monitoring marks the run FAILURE (no step failure): run retries re-execute it once
    assert outcome["dagster"] == "FAILURE -> SUCCESS" and outcome["retried"] == "yes"
    assert "(reaped)" in outcome["mlflow"]


def test_mlflow_stopped_mid_run(faults):
    def stop(run_id: str, mlflow_run: dict) -> str:
        faults.stack.run("stop", "mlflow", timeout=180)
        return ""

    outcome = inject(faults, "MLflow stopped", stop, heal="mlflow")
    # an op failure (MLflow unreachable after the client's retries): not retried; the MLflow run
    # could not be ended by the run itself, the reaper ends it once MLflow is back
    assert outcome["dagster"] == "FAILURE" and outcome["retried"] == "no"
    assert "FAILED (reaped)" in outcome["mlflow"]


def test_s3_stopped_mid_artifact_upload(faults):
    def stop_at_first_artifact(run_id: str, mlflow_run: dict) -> str:
        s3, mlflow_run_id = faults.stack.s3("mlflow"), mlflow_run["info"]["run_id"]
        deadline = time.monotonic() + RUN_TIMEOUT
        while True:
            keys = [item["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="mlflow")
                    for item in page.get("Contents", []) if f"{mlflow_run_id}/artifacts/" in item["Key"]]
            if keys:
                break
            assert time.monotonic() < deadline, "no artifact of the run reached the bucket"
            time.sleep(0.1)
        faults.stack.run("stop", "minio", timeout=180)
        return f"stopped with {len(keys)} artifact(s) of the run in the bucket ({', '.join(k.split('/artifacts/')[1] for k in keys)})"

    outcome = inject(faults, "S3 stopped mid-upload", stop_at_first_artifact, heal="minio")
    assert outcome["dagster"] == "FAILURE" and outcome["retried"] == "no"


def test_postgres_restarted_mid_run(faults):
    def restart(run_id: str, mlflow_run: dict) -> str:
        faults.stack.run("restart", "postgres", timeout=180)
        faults.wait_healthy("postgres")
        return ""

    outcome = inject(faults, "PostgreSQL restarted", restart)
    faults.wait_healthy("postgres", "mlflow")
    assert outcome["dagster"] in ("SUCCESS", "FAILURE", "FAILURE -> SUCCESS")
