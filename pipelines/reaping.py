"""Ownership of MLflow runs by Dagster runs, and the reaper's Dagster side.

Every MLflow run started by a Dagster run carries the tag :data:`DAGSTER_RUN_TAG` (the
``mlflow`` resource's tracker adds it). Whether that Dagster run is finished comes from the
instance's run storage; :mod:`energy_forecast.reaper` decides and marks. Reaping happens at the
start of every run that uses the ``mlflow`` resource and on the ``mlflow_reaper`` sensor
(:mod:`pipelines.defs.reliability`).
"""

import logging
import os
from collections.abc import Callable
from datetime import timedelta

import dagster as dg

from energy_forecast.reaper import OwnerStatus, Reaped, reap_orphans
from energy_forecast.tracking import Tracker

DAGSTER_RUN_TAG = "dagster_run_id"
"""MLflow run tag: the id of the Dagster run that started it (its owner)."""
UNOWNED_AFTER_VARIABLE = "REAPER_UNOWNED_AFTER_HOURS"
DEFAULT_UNOWNED_AFTER_HOURS = 24.0
"""A RUNNING MLflow run with no owner this instance knows is reaped after this long. Every run
the stack starts is owned; unowned ones come from a notebook or ``train()`` called directly, and
nothing can tell whether they are alive: a day is far beyond any training here (a Chronos-2
fine-tuning takes minutes on a GPU). ``off`` never reaps them."""

logger = logging.getLogger(__name__)


def unowned_after() -> timedelta | None:
    """``REAPER_UNOWNED_AFTER_HOURS`` (default 24; ``off`` disables), validated."""
    text = os.environ.get(UNOWNED_AFTER_VARIABLE, "").strip()
    if text.lower() == "off":
        return None
    if not text:
        return timedelta(hours=DEFAULT_UNOWNED_AFTER_HOURS)
    try:
        hours = float(text)
    except ValueError:
        raise ValueError(f"{UNOWNED_AFTER_VARIABLE}={text!r}: give a number of hours (> 0), or 'off'") from None
    if not hours > 0:
        raise ValueError(f"{UNOWNED_AFTER_VARIABLE}={text!r}: give a number of hours (> 0), or 'off'")
    return timedelta(hours=hours)


def dagster_owner_status(instance: dg.DagsterInstance) -> Callable[[str], OwnerStatus | None]:
    """Owner id -> the Dagster run's status from the instance's run storage (None: not in it)."""

    def status(run_id: str) -> OwnerStatus | None:
        run = instance.get_run_by_id(run_id)
        if run is None:
            return None
        return OwnerStatus(finished=run.is_finished, state=run.status.value)

    return status


def reap(tracker: Tracker, instance: dg.DagsterInstance) -> list[Reaped]:
    """End the MLflow runs left RUNNING by Dagster runs that are finished (and old unowned ones)."""
    return reap_orphans(tracker.client, owner_tag=DAGSTER_RUN_TAG, owner_status=dagster_owner_status(instance), unowned_after=unowned_after())
