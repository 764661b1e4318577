"""Reap MLflow runs whose owner is gone: mark them FAILED, with a tag saying why.

A training run's context manager (:meth:`energy_forecast.tracking.Tracker.run`) ends its MLflow
run FINISHED or FAILED, except when it cannot: the process is SIGKILLed (``docker rm -f``, the OOM
killer), or the MLflow server is down when the run fails. Such a run stays RUNNING forever, since
MLflow has no heartbeat. The reaper finds them.

Ownership: the orchestrator tags every MLflow run it starts with its own run id (the tag key is
the caller's, e.g. ``dagster_run_id``; this module knows no orchestrator) and answers "is this
owner finished?" through ``owner_status``. A RUNNING MLflow run is reaped when

* its owner is finished (success, failure or cancellation): nothing will ever end the MLflow
  run, since the process that would have is gone;
* it has no owner tag, or an owner the orchestrator does not know (another instance, a deleted
  run), and it started more than ``unowned_after`` ago. MLflow runs started outside the
  orchestrator (a notebook, ``train()`` called directly) have no one to ask, so only their age can
  tell; ``unowned_after=None`` never reaps them.

A run whose owner is still running is never touched, whatever its age.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta

from mlflow.entities import Run, RunStatus, ViewType
from mlflow.tracking import MlflowClient

__all__ = ["REAPED_TAG", "OwnerStatus", "Reaped", "find_orphans", "reap_orphans"]

logger = logging.getLogger(__name__)

REAPED_TAG = "energy_forecast.reaped"
"""Set on every run the reaper ends: why it was ended (the owner's state, or the run's age)."""
_RUNNING = "attributes.status = 'RUNNING'"
_EXPERIMENTS_PER_SEARCH = 100  # MLflow's stores cap the experiment ids of one search


@dataclass(frozen=True)
class OwnerStatus:
    """What the orchestrator says about one of its runs."""

    finished: bool
    state: str
    """The orchestrator's name for it (``FAILURE``, ``STARTED``, ...), written into the reason."""


@dataclass(frozen=True)
class Reaped:
    run_id: str
    experiment_id: str
    reason: str


def _running_runs(client: MlflowClient, experiment_ids: Iterable[str] | None) -> Iterator[Run]:
    if experiment_ids is None:
        experiment_ids = [experiment.experiment_id for experiment in _all_experiments(client)]
    ids = list(experiment_ids)
    for start in range(0, len(ids), _EXPERIMENTS_PER_SEARCH):
        token = None
        while True:
            page = client.search_runs(ids[start : start + _EXPERIMENTS_PER_SEARCH], _RUNNING, run_view_type=ViewType.ACTIVE_ONLY,
                                      max_results=1000, page_token=token)
            yield from page
            token = page.token
            if not token:
                break


def _all_experiments(client: MlflowClient) -> Iterator:
    token = None
    while True:
        page = client.search_experiments(view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=token)
        yield from page
        token = page.token
        if not token:
            break


def _reason(run: Run, owner_tag: str, owner_status: Callable[[str], OwnerStatus | None], unowned_after: timedelta | None,
            now_ms: int) -> str | None:
    owner = run.data.tags.get(owner_tag)
    status = owner_status(owner) if owner else None
    if status is not None:
        if status.finished:
            return f"owner {owner_tag}={owner} ended {status.state} while this run was still RUNNING"
        return None  # the owner is alive: the run may still end itself
    if unowned_after is None:
        return None
    age = timedelta(milliseconds=now_ms - run.info.start_time)
    if age <= unowned_after:
        return None
    who = f"owner {owner_tag}={owner} is unknown" if owner else f"no {owner_tag} tag"
    return f"{who} and RUNNING for {age.total_seconds() / 3600:.1f} h (more than {unowned_after.total_seconds() / 3600:g} h)"


def find_orphans(
    client: MlflowClient,
    *,
    owner_tag: str,
    owner_status: Callable[[str], OwnerStatus | None],
    unowned_after: timedelta | None,
    experiment_ids: Iterable[str] | None = None,
    now_ms: int | None = None,
) -> list[Reaped]:
    """The RUNNING runs the reaper would end, and why (see the module's rules). Changes nothing.

    Args:
        owner_tag: the run tag holding the owner's id.
        owner_status: owner id -> its status, or None when the orchestrator does not know it.
        unowned_after: age after which a run without a known owner is reaped; None: never.
        experiment_ids: where to look (default: every active experiment).
        now_ms: the clock, in epoch milliseconds (default: now).
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    orphans = []
    for run in _running_runs(client, experiment_ids):
        reason = _reason(run, owner_tag, owner_status, unowned_after, now_ms)
        if reason is not None:
            orphans.append(Reaped(run.info.run_id, run.info.experiment_id, reason))
    return orphans


def reap_orphans(
    client: MlflowClient,
    *,
    owner_tag: str,
    owner_status: Callable[[str], OwnerStatus | None],
    unowned_after: timedelta | None,
    experiment_ids: Iterable[str] | None = None,
    now_ms: int | None = None,
) -> list[Reaped]:
    """Mark every orphan (:func:`find_orphans`) FAILED with :data:`REAPED_TAG`; returns them.

    The tag is written first, then the status: a crash in between leaves a tagged RUNNING run that
    the next pass ends. A run that ended itself meanwhile is left as it is.
    """
    reaped = []
    for orphan in find_orphans(client, owner_tag=owner_tag, owner_status=owner_status, unowned_after=unowned_after,
                               experiment_ids=experiment_ids, now_ms=now_ms):
        if client.get_run(orphan.run_id).info.status != RunStatus.to_string(RunStatus.RUNNING):
            continue
        client.set_tag(orphan.run_id, REAPED_TAG, orphan.reason)
        client.set_terminated(orphan.run_id, status=RunStatus.to_string(RunStatus.FAILED))
        logger.warning("MLflow run %s (experiment %s) marked FAILED: %s", orphan.run_id, orphan.experiment_id, orphan.reason)
        reaped.append(orphan)
    return reaped
