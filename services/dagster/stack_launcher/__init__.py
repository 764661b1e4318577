"""A ``DockerRunLauncher`` that grants the GPU only to runs that benefit, and only where there is one.

Dagster's ``DockerRunLauncher`` has no GPU setting; a ``device_requests`` entry in its
``container_kwargs`` applies to every run, and on a Docker host without the NVIDIA runtime it makes
container creation fail. This subclass decides per run, at launch time:

* a run whose job carries the tag ``energy_forecast/gpu: "true"`` (``GPU_TAG`` in
  ``pipelines/jobs.py``; the Chronos jobs) gets ``device_requests`` for the GPUs,
* but only when the Docker host it launches on has the ``nvidia`` runtime (``docker info``), or
  when ``gpu: on`` forces it; ``gpu: off`` never requests one;
* every other run starts without a device request and trains on the CPU; the library's own
  ``device: auto`` then picks the CPU, and says so in the run's tags.

The decision is written to the run's event log and as the run tag ``energy_forecast/gpu_granted``.
The queue (``tag_concurrency_limits`` in ``dagster.yaml``) keeps at most one GPU run at a time.

It also gives runs credentials of their own. A run rebuilds the Dagster instance from its config
and reads the same variables the daemon reads (``DAGSTER_PG_USER``, ``DAGSTER_PG_PASSWORD``), so
``env_vars`` would hand it the daemon's, the database owner's. ``run_env_from`` sets such a variable
in the run container from ANOTHER variable of the launcher's environment instead (the runs' own,
DML-only login); it is read when the run launches, so the webserver, which also builds this
launcher (to terminate runs), needs none of it.

Configured in ``dagster.yaml`` like ``DockerRunLauncher``, plus::

    gpu: auto | on | off     # default auto (StringSource: {env: DAGSTER_RUN_GPU} works)
    gpu_tag: energy_forecast/gpu
    gpu_count: -1            # GPUs per run (-1: all)
    run_env_from:            # variable in the run container: variable of the launcher's environment
      DAGSTER_PG_USER: DAGSTER_RUN_PG_USER
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import docker
import docker.errors
from dagster import Field, IntSource, Map, StringSource
from dagster._core.launcher.base import LaunchRunContext, ResumeRunContext
from dagster._core.storage.dagster_run import DagsterRun
from dagster._serdes.config_class import ConfigurableClassData
from dagster_docker import DockerRunLauncher
from dagster_docker.container_context import DockerContainerContext
from dagster_docker.utils import DOCKER_CONFIG_SCHEMA

__all__ = ["DEFAULT_GPU_TAG", "GPU_GRANTED_TAG", "GPU_MODES", "GpuAwareDockerRunLauncher", "GpuDecision"]

DEFAULT_GPU_TAG = "energy_forecast/gpu"
GPU_GRANTED_TAG = "energy_forecast/gpu_granted"
GPU_MODES = ("auto", "on", "off")
NVIDIA_RUNTIME = "nvidia"


class GpuDecision:
    """Whether a run gets the GPU, and why (shown in the run's event log)."""

    def __init__(self, granted: bool, reason: str) -> None:
        self.granted = granted
        self.reason = reason

    def __repr__(self) -> str:
        return f"GpuDecision(granted={self.granted}, reason={self.reason!r})"


class GpuAwareDockerRunLauncher(DockerRunLauncher):
    """``DockerRunLauncher`` plus a per-run GPU device request (see the module docstring)."""

    def __init__(
        self,
        inst_data: ConfigurableClassData | None = None,
        gpu: str = "auto",
        gpu_tag: str = DEFAULT_GPU_TAG,
        gpu_count: int = -1,
        run_env_from: Mapping[str, str] | None = None,
        **docker_config: Any,
    ) -> None:
        mode = str(gpu).strip().lower()
        if mode not in GPU_MODES:
            raise ValueError(f"run_launcher.config.gpu: '{gpu}' is not one of {', '.join(GPU_MODES)}")
        self.gpu_mode = mode
        self.gpu_tag = gpu_tag
        self.gpu_count = int(gpu_count)
        self.run_env_from = dict(run_env_from or {})
        forwarded = {name.split("=", 1)[0] for name in docker_config.get("env_vars") or []}
        both = sorted(forwarded & set(self.run_env_from))
        if both:
            raise ValueError(
                f"run_launcher.config: {', '.join(both)} in both env_vars and run_env_from; a run gets one value: "
                "keep it in run_env_from only"
            )
        self._host_runtimes: frozenset[str] | None = None
        super().__init__(inst_data=inst_data, **docker_config)

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            **DOCKER_CONFIG_SCHEMA,
            "gpu": Field(
                StringSource,
                is_required=False,
                default_value="auto",
                description="auto: GPU runs get the GPU when the Docker host has the NVIDIA runtime; on: always; off: never",
            ),
            "gpu_tag": Field(
                StringSource,
                is_required=False,
                default_value=DEFAULT_GPU_TAG,
                description="runs whose tag of this name is 'true' benefit from a GPU",
            ),
            "gpu_count": Field(IntSource, is_required=False, default_value=-1, description="GPUs per run; -1 for all"),
            "run_env_from": Field(
                Map(str, str),
                is_required=False,
                default_value={},
                description="variables set in each run container from other variables of the launcher's environment",
            ),
        }

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]):
        return cls(inst_data=inst_data, **config_value)

    # -- the decision ------------------------------------------------------------------------------

    def wants_gpu(self, run: DagsterRun) -> bool:
        return str(run.tags.get(self.gpu_tag, "false")).strip().lower() == "true"

    def host_runtimes(self) -> frozenset[str]:
        """The Docker host's container runtimes (``docker info``), asked once per process."""
        if self._host_runtimes is None:
            client = docker.client.from_env()
            try:
                self._host_runtimes = frozenset((client.info().get("Runtimes") or {}).keys())
            finally:
                client.close()
        return self._host_runtimes

    def gpu_decision(self, run: DagsterRun) -> GpuDecision:
        if not self.wants_gpu(run):
            return GpuDecision(False, f"job '{run.job_name}' is not tagged {self.gpu_tag}=true: CPU only")
        if self.gpu_mode == "off":
            return GpuDecision(False, "the launcher's gpu setting is off: the run uses the CPU")
        if self.gpu_mode == "on":
            return GpuDecision(True, "the launcher's gpu setting is on: GPU requested")
        try:
            runtimes = self.host_runtimes()
        except docker.errors.DockerException as error:
            return GpuDecision(False, f"cannot ask the Docker host for its runtimes ({error}): the run uses the CPU")
        if NVIDIA_RUNTIME in runtimes:
            return GpuDecision(True, "the Docker host has the NVIDIA runtime: GPU requested")
        return GpuDecision(
            False,
            f"the Docker host has no NVIDIA runtime (runtimes: {', '.join(sorted(runtimes)) or 'none'}): the run uses the CPU",
        )

    def device_requests(self) -> list[dict[str, Any]]:
        return [{"driver": NVIDIA_RUNTIME, "count": self.gpu_count, "capabilities": [["gpu"]]}]

    # -- the runs' own credentials ----------------------------------------------------------------

    def run_env(self, *, required: bool) -> list[str]:
        """``NAME=value`` for each ``run_env_from`` entry whose source is set; all must be when launching."""
        missing = sorted(source for source in self.run_env_from.values() if not os.environ.get(source))
        if missing and required:
            raise ValueError(
                f"run_launcher.config.run_env_from: {', '.join(missing)} not set in the launcher's environment "
                "(the daemon's; see docker-compose.yml and .env): the run would get no credentials of its own"
            )
        return [f"{name}={os.environ[source]}" for name, source in self.run_env_from.items() if os.environ.get(source)]

    # -- DockerRunLauncher hooks -------------------------------------------------------------------

    def get_container_context(self, dagster_run: DagsterRun) -> DockerContainerContext:
        context = super().get_container_context(dagster_run)
        run_env = self.run_env(required=False)
        if run_env:  # after env_vars and the code location's: these values win
            context = context.merge(DockerContainerContext(env_vars=run_env))
        granted = dagster_run.tags.get(GPU_GRANTED_TAG)
        if granted is None:  # not launched yet: decide now
            granted = str(self.gpu_decision(dagster_run).granted).lower()
        if granted == "true":
            context = context.merge(DockerContainerContext(container_kwargs={"device_requests": self.device_requests()}))
        return context

    def _record_decision(self, run: DagsterRun) -> DagsterRun:
        decision = self.gpu_decision(run)
        self._instance.add_run_tags(run.run_id, {GPU_GRANTED_TAG: str(decision.granted).lower()})
        self._instance.report_engine_event(message=f"GPU: {decision.reason}", dagster_run=run, cls=self.__class__)
        return self._instance.get_run_by_id(run.run_id) or run

    def launch_run(self, context: LaunchRunContext) -> None:
        self.run_env(required=True)
        run = self._record_decision(context.dagster_run)
        super().launch_run(context._replace(dagster_run=run))

    def resume_run(self, context: ResumeRunContext) -> None:
        self.run_env(required=True)
        run = self._record_decision(context.dagster_run)
        super().resume_run(context._replace(dagster_run=run))
