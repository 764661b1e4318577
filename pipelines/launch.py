"""Launch a training run on the Compose stack through the Dagster webserver's GraphQL API.

    python -m pipelines.launch configs/training/lightgbm.yaml      # `make launch CONFIG=...`

The config is validated here first (the same ``load_config`` the run uses): a missing or invalid
file stops with exit status 2 and a message naming the file and field, and nothing is launched.
It must lie in the folder the stack mounts into the code server and the runs (``CONFIGS_DIR`` in
``.env``, by default ``configs/``), since the run reads it there. Then ``complete_training_job`` is
submitted (the Launchpad's job, run config ``ops.train_model.config.config_path``), its event log
is followed to the end, and the MLflow run link is printed with the host's MLflow URL.

The webserver is reached through the stack's proxy, which requires a login: ``PROXY_USER`` and
``PROXY_PASSWORD`` from ``.env`` (or the environment, which wins). Launching and polling the status
go through ``dagster_graphql.DagsterGraphQLClient``; the run's tags and its event log, which that
client does not offer, through two small GraphQL queries of our own.

Exit status: 0 when the run succeeded, 1 when it failed or the stack is unreachable, 2 on bad input.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError
from dotenv import dotenv_values
from gql.transport.exceptions import TransportConnectionFailed, TransportQueryError, TransportServerError
from requests.auth import HTTPBasicAuth

from energy_forecast.config import ConfigError
from energy_forecast.training import load_config
from pipelines.paths import PROJECT_DIR, resolve_config_path

__all__ = ["LaunchError", "RunOutcome", "StackClient", "container_config_path", "main", "proxy_login"]

logger = logging.getLogger(__name__)

JOB = "complete_training_job"
STALE_CONNECTION = ("server closed the connection unexpectedly", "terminating connection due to administrator command")
"""psycopg2's messages for a pooled connection that PostgreSQL closed (a restart)."""
LOCATION = "energy_forecast"
CONTAINER_CONFIGS = "configs"
"""Where the code server and runs see CONFIGS_DIR, relative to ENERGY_FORECAST_HOME."""
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}
EXIT_FAILED, EXIT_BAD_INPUT = 1, 2

# DagsterGraphQLClient covers launching (submit_job_execution) and the status (get_run_status); it
# has nothing for a run's tags (the container id, the GPU grant) or its event log (the messages
# `make launch` prints, the MLflow run id in the metadata), so these two queries stay ours.
RUN_QUERY = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId status tags { key value } }
    ... on Error { message }
  }
}
"""

LOGS_QUERY = """
query Logs($runId: ID!, $afterCursor: String) {
  logsForRun(runId: $runId, afterCursor: $afterCursor) {
    __typename
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on MessageEvent { message level stepKey }
        ... on ErrorEvent { error { className message cause { className message } } }
        ... on DisplayableEvent {
          metadataEntries {
            label
            ... on TextMetadataEntry { text }
            ... on UrlMetadataEntry { url }
          }
        }
      }
    }
    ... on Error { message }
  }
}
"""


class LaunchError(RuntimeError):
    """The stack could not be reached, or refused the run."""


@dataclass
class RunOutcome:
    run_id: str
    status: str
    tags: dict[str, str]
    metadata: dict[str, str] = field(default_factory=dict)
    """Text and URL metadata of the run's events (``mlflow_run_id``, ``mlflow_run``, ...)."""
    errors: list[str] = field(default_factory=list)


class StackClient:
    """The GraphQL calls ``make launch`` and the system test need: Dagster's own client
    (``DagsterGraphQLClient``) where it has them, two queries of ours where it does not.

    Args:
        dagster_url: the webserver as the host sees it (the stack's proxy).
        auth: the proxy's login (``PROXY_USER``, ``PROXY_PASSWORD``); None for a webserver without one.
        timeout: seconds per HTTP request.
    """

    def __init__(self, dagster_url: str, auth: tuple[str, str] | None = None, timeout: float = 30.0) -> None:
        from urllib.parse import urlparse

        self.url = dagster_url.rstrip("/")
        self.timeout = timeout
        self.auth = auth
        self.session = requests.Session()
        self.session.auth = auth
        parsed = urlparse(self.url)
        # gql's client connects its transport per call and refuses a second connection while one is
        # open: calls from several threads (the system test follows runs in parallel) take turns
        self._client_lock = threading.Lock()
        self.client = DagsterGraphQLClient(
            parsed.hostname or "127.0.0.1", port_number=parsed.port, use_https=parsed.scheme == "https", timeout=int(timeout),
            auth=HTTPBasicAuth(*auth) if auth else None, path_prefix=parsed.path.rstrip("/"),
        )

    def _unreachable(self, error: object) -> LaunchError:
        return LaunchError(f"the Dagster webserver at {self.url} does not answer ({error}); is the stack up (`make up`)?")

    def _refused_login(self) -> LaunchError:
        return LaunchError(
            f"{self.url} refused the login: PROXY_USER / PROXY_PASSWORD "
            f"({'missing' if self.auth is None else 'as given'}) must match the stack's .env"
        )

    def _client_error(self, error: DagsterGraphQLClientError, what: str) -> LaunchError:
        """Our message for an error of Dagster's client: the transport error behind it says why."""
        cause = error.__cause__
        if isinstance(cause, requests.ConnectionError | TransportConnectionFailed):
            return self._unreachable(cause.__cause__ or cause)
        if isinstance(cause, TransportServerError):
            return self._refused_login() if cause.code == 401 else LaunchError(f"{self.url}/graphql answered HTTP {cause.code}: {cause}")
        if isinstance(cause, TransportQueryError):
            return LaunchError(f"GraphQL errors from {self.url}: {cause}")
        return LaunchError(f"{what}: {' '.join(str(part) for part in error.args if part)}")

    def _query(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """One of our own queries (what DagsterGraphQLClient does not cover)."""
        try:
            answer = self.session.post(f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=self.timeout)
        except requests.RequestException as error:
            raise self._unreachable(error) from None
        if answer.status_code == 401:
            raise self._refused_login()
        if answer.status_code != 200:
            raise LaunchError(f"{self.url}/graphql answered HTTP {answer.status_code}: {answer.text[:500]}")
        body = answer.json()
        if body.get("errors"):
            raise LaunchError(f"GraphQL errors from {self.url}: {body['errors']}")
        return body["data"]

    def launch(self, run_config: dict[str, Any], *, job: str = JOB, tags: dict[str, str] | None = None) -> str:
        """Submit ``job``. Retried once, logged, when the webserver's pooled PostgreSQL connection
        was stale (PostgreSQL restarted since its last query): the webserver keeps one open
        connection without a liveness ping, its first statement after a restart fails before
        anything is written, and SQLAlchemy replaces the connection for the next request."""
        for attempt in (1, 2):
            try:
                with self._client_lock:
                    return self.client.submit_job_execution(
                        job, repository_location_name=LOCATION, repository_name="__repository__", run_config=run_config, tags=tags or {},
                    )
            except DagsterGraphQLClientError as error:
                text = " ".join(str(part) for part in error.args if part)
                if attempt == 1 and any(marker in text for marker in STALE_CONNECTION):
                    logger.warning("%s: the webserver's database connection was stale (%s); launching again", job, text[:200])
                    continue
                raise self._client_error(error, f"{job} was not launched") from None
        raise AssertionError("unreachable")

    def status(self, run_id: str) -> str:
        """The run's status (``QUEUED``, ``STARTED``, ``SUCCESS``, ...)."""
        try:
            with self._client_lock:
                return self.client.get_run_status(run_id).value
        except DagsterGraphQLClientError as error:
            raise self._client_error(error, f"run {run_id}") from None

    def run(self, run_id: str) -> tuple[str, dict[str, str]]:
        """The run's status and tags (our query: Dagster's client returns no tags)."""
        result = self._query(RUN_QUERY, {"runId": run_id})["runOrError"]
        if result["__typename"] != "Run":
            raise LaunchError(f"run {run_id}: {result.get('message', result['__typename'])}")
        return result["status"], {tag["key"]: tag["value"] for tag in result["tags"]}

    def events(self, run_id: str, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        result = self._query(LOGS_QUERY, {"runId": run_id, "afterCursor": cursor})["logsForRun"]
        if result["__typename"] != "EventConnection":
            raise LaunchError(f"run {run_id} logs: {result.get('message', result['__typename'])}")
        return result["events"], result["cursor"]

    def follow(self, run_id: str, *, timeout: float = 3600.0, poll: float = 2.0, echo: bool = True) -> RunOutcome:
        """Wait for a terminal status, printing the run's messages as they come."""
        deadline = time.monotonic() + timeout
        cursor: str | None = None
        outcome = RunOutcome(run_id, "", {})
        last_status = ""
        while True:
            status = self.status(run_id)
            if status != last_status and echo:
                print(f"[{status}]", flush=True)
                last_status = status
            events, cursor = self.events(run_id, cursor)
            for event in events:
                self._collect(event, outcome, echo)
            if status in TERMINAL:
                events, cursor = self.events(run_id, cursor)  # what arrived with the last status
                for event in events:
                    self._collect(event, outcome, echo)
                outcome.status, outcome.tags = status, self.run(run_id)[1]
                return outcome
            if time.monotonic() > deadline:
                raise LaunchError(f"run {run_id} still {status} after {timeout:.0f} s; see {self.url}/runs/{run_id}")
            time.sleep(poll)

    @staticmethod
    def _collect(event: dict[str, Any], outcome: RunOutcome, echo: bool) -> None:
        for entry in event.get("metadataEntries") or []:
            value = entry.get("text") or entry.get("url")
            if value:
                outcome.metadata[entry["label"]] = value
        message = event.get("message")
        if not message:
            return
        error = event.get("error")
        while error:  # the exception (and its cause) behind a step or run failure
            message += f"\n          {error.get('className') or 'Error'}: {error['message'].strip()}"
            error = error.get("cause")
        if event.get("level") in ("ERROR", "CRITICAL") or event.get("error"):
            outcome.errors.append(message)
        if echo:
            step = f"{event['stepKey']}: " if event.get("stepKey") else ""
            print(f"  {event.get('level', ''):<7} {step}{message}", flush=True)


def container_config_path(config: Path, configs_dir: Path) -> str:
    """The config's path as the code server and runs see it (``configs/...``)."""
    try:
        relative = config.resolve().relative_to(configs_dir.resolve())
    except ValueError:
        raise ConfigError(
            f"{config}: the stack only sees configs under CONFIGS_DIR ({configs_dir}); copy the file there"
        ) from None
    return f"{CONTAINER_CONFIGS}/{relative.as_posix()}"


def mlflow_link(run_url: str | None, run_id: str | None, mlflow_url: str) -> str | None:
    """The run's MLflow URL for a browser on the host (runs log with the in-stack ``http://mlflow:5000``)."""
    if run_url and "#" in run_url:
        return f"{mlflow_url.rstrip('/')}/#{run_url.split('#', 1)[1]}"
    if run_id:
        return f"{mlflow_url.rstrip('/')}/#/runs/{run_id}"
    return None


SETTINGS = ("DAGSTER_PORT", "MLFLOW_PORT", "CONFIGS_DIR", "PROXY_USER", "PROXY_PASSWORD")
"""What this reads from the stack's .env; the same names in the environment win."""


def _settings(env_file: Path) -> dict[str, str]:
    values = {k: v for k, v in dotenv_values(env_file).items() if v is not None} if env_file.is_file() else {}
    return {**values, **{k: v for k, v in os.environ.items() if k in SETTINGS}}


def proxy_login(settings: dict[str, str]) -> tuple[str, str] | None:
    """``(PROXY_USER, PROXY_PASSWORD)``, or None when either is unset."""
    user, password = settings.get("PROXY_USER"), settings.get("PROXY_PASSWORD")
    return (user, password) if user and password else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipelines.launch", description=__doc__.split("\n")[0])
    parser.add_argument("config", help="training YAML under CONFIGS_DIR, e.g. configs/training/lightgbm.yaml")
    parser.add_argument("--env-file", type=Path, default=PROJECT_DIR / ".env", help="the stack's .env (ports, CONFIGS_DIR, the proxy's login)")
    parser.add_argument("--dagster-url", help="default: http://127.0.0.1:$DAGSTER_PORT")
    parser.add_argument("--mlflow-url", help="default: http://127.0.0.1:$MLFLOW_PORT")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to follow the run")
    args = parser.parse_args(argv)

    settings = _settings(args.env_file)
    dagster_url = args.dagster_url or f"http://127.0.0.1:{settings.get('DAGSTER_PORT', '3000')}"
    mlflow_url = args.mlflow_url or f"http://127.0.0.1:{settings.get('MLFLOW_PORT', '5000')}"
    configs_dir = Path(settings.get("CONFIGS_DIR", "./configs"))
    if not configs_dir.is_absolute():  # as Compose resolves it: against the compose file's folder
        configs_dir = PROJECT_DIR / configs_dir

    try:
        source = resolve_config_path(args.config)
        config = load_config(source)  # validates; raises ConfigError naming file and field
        config_path = container_config_path(source, configs_dir)
    except ConfigError as error:
        print(f"error: {error}\nNothing was launched.", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT) from None
    print(f"ok  {args.config}: {config.model.type}, {config.task.name}")

    client = StackClient(dagster_url, auth=proxy_login(settings))
    try:
        run_id = client.launch({"ops": {"train_model": {"config": {"config_path": config_path}}}})
        print(f"launched {JOB}: {dagster_url}/runs/{run_id}", flush=True)
        outcome = client.follow(run_id, timeout=args.timeout)
    except LaunchError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(EXIT_FAILED) from None

    if outcome.status != "SUCCESS":
        print(f"run {run_id} ended {outcome.status}: {dagster_url}/runs/{run_id}", file=sys.stderr)
        raise SystemExit(EXIT_FAILED)
    link = mlflow_link(outcome.metadata.get("mlflow_run"), outcome.metadata.get("mlflow_run_id"), mlflow_url)
    print(f"Dagster run: {dagster_url}/runs/{run_id}")
    print(f"MLflow run:  {link or 'not reported by the run'}")


if __name__ == "__main__":
    main()
