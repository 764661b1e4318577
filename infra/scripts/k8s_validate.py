"""Validate infra/k8s offline, with no cluster, no helm and no network.

    python infra/scripts/k8s_validate.py            # every manifest, and the run Job the values produce

1. Every manifest under ``infra/k8s`` (all YAML files but the Helm values and kustomize's own
   ``kustomization.yaml``) against Kubernetes' OpenAPI schema, strictly (unknown fields are errors),
   for each version in ``K8S_VERSIONS``. The schemas come with the ``kubernetes-validate`` package
   (pinned in the dev extra), so nothing is downloaded; a kind without a schema is an error too.
2. The Helm values (``infra/k8s/values.yaml``). The chart itself and its ``values.schema.json`` are
   not on PyPI, and helm cannot render here, so this checks what the values are *for*: the run
   launcher's block becomes the instance config the chart writes (``run_config``, mirroring the
   chart's ``dagsterYaml.runLauncher.k8s`` template at 1.13.27), which dagster-k8s's own config
   schema must accept; the code location's env, secrets, volumes and resources become the container
   context the chart hands to launched runs (``includeConfigInLaunchedRuns``); then dagster-k8s's
   K8sRunLauncher code builds the Kubernetes Job it would create for a run with given tags
   (``render_run_job``), and that Job is validated like a manifest. The queued run coordinator's
   block is checked against Dagster's schema the same way. Keys of the values that the chart does
   not read are NOT caught (only the chart's schema knows them).
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

PROJECT_DIR = Path(__file__).resolve().parents[2]
K8S_DIR = PROJECT_DIR / "infra" / "k8s"
VALUES = K8S_DIR / "values.yaml"
K8S_VERSIONS = ("1.32", "1.37")
"""The oldest minor a managed Kubernetes still commonly offers, and the newest kubernetes-validate knows."""
NOT_RESOURCES = {"values.yaml", "kustomization.yaml"}
RELEASE = "energy-forecast"
NAMESPACE = "energy-forecast"
DAGSTER_HOME = "/opt/dagster/dagster_home"
"""The chart's default ``global.dagsterHome``."""


QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)(([KMGTPE]i)|[numkMGTPE]|[eE][+-]?\d+)?$")
"""Kubernetes' resource quantity (``resource.Quantity``); the OpenAPI schema only says string or number."""


class ManifestError(ValueError):
    """A manifest or the values do not validate; the message names the file and the place."""


def manifest_files(directory: Path = K8S_DIR) -> list[Path]:
    return sorted(path for path in directory.rglob("*.y*ml") if path.name not in NOT_RESOURCES)


def load_documents(path: Path) -> list[dict[str, Any]]:
    try:
        documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    except yaml.YAMLError as error:
        raise ManifestError(f"{path}: not YAML: {error}") from error
    for index, doc in enumerate(documents):
        if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
            raise ManifestError(f"{path}: document {index + 1} is not a Kubernetes resource (apiVersion and kind)")
    return documents


def validate_resource(resource: Mapping[str, Any], where: str, versions: Iterable[str] = K8S_VERSIONS) -> None:
    """Raise :class:`ManifestError` unless ``resource`` validates strictly for every version."""
    import kubernetes_validate

    name = f"{resource.get('kind')}/{(resource.get('metadata') or {}).get('name', '?')}"
    for version in versions:
        try:
            kubernetes_validate.validate(dict(resource), version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(item) for item in error.path) or "(top)"
            raise ManifestError(f"{where}: {name}: Kubernetes {version}: {path}: {error.message}") from error
        except kubernetes_validate.SchemaNotFoundError as error:
            raise ManifestError(f"{where}: {name}: {error.message}") from error
    for path, quantity in _quantities(resource):
        if not QUANTITY.match(str(quantity)):
            raise ManifestError(f"{where}: {name}: {path}: {quantity!r} is not a Kubernetes quantity (e.g. 500m, 2, 4Gi)")


def _quantities(node: Any, path: str = "") -> Iterable[tuple[str, Any]]:
    """Every value under a ``resources.requests``/``limits`` (containers) or ``storage`` request."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            if key in ("requests", "limits", "default", "defaultRequest", "max", "min") and isinstance(value, Mapping):
                yield from ((f"{here}.{name}", amount) for name, amount in value.items())
            else:
                yield from _quantities(value, here)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _quantities(item, f"{path}.{index}")


def validate_manifests(paths: Iterable[Path] | None = None, versions: Iterable[str] = K8S_VERSIONS) -> list[str]:
    """Validate every resource of every file; returns ``file: Kind/name`` of each."""
    versions = tuple(versions)
    checked = []
    for path in manifest_files() if paths is None else paths:
        for resource in load_documents(path):
            validate_resource(resource, str(path), versions)
            checked.append(f"{path.relative_to(PROJECT_DIR) if path.is_relative_to(PROJECT_DIR) else path}: "
                           f"{resource['kind']}/{resource['metadata']['name']}")
    return checked


# -- the Helm values ------------------------------------------------------------------------------


def load_values(path: Path = VALUES) -> dict[str, Any]:
    values = yaml.safe_load(path.read_text())
    if not isinstance(values, dict):
        raise ManifestError(f"{path}: not a mapping")
    return values


def _dig(values: Mapping[str, Any], *keys: str) -> Any:
    node: Any = values
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            raise ManifestError(f"values: missing {'.'.join(keys)}")
        node = node[key]
    return node


def _names(entries: Iterable[Mapping[str, Any]] | None) -> list[str]:
    return [entry["name"] for entry in entries or [] if "name" in entry]


def run_launcher_config(values: Mapping[str, Any]) -> dict[str, Any]:
    """The K8sRunLauncher's instance config the chart renders from the values (its ``_run-launcher.tpl``)."""
    if _dig(values, "runLauncher", "type") != "K8sRunLauncher":
        raise ManifestError("values: runLauncher.type must be K8sRunLauncher (one Kubernetes Job per run)")
    k8s = _dig(values, "runLauncher", "config", "k8sRunLauncher")
    config: dict[str, Any] = {
        "load_incluster_config": k8s.get("loadInclusterConfig", True),
        "job_namespace": k8s.get("jobNamespace") or NAMESPACE,
        "image_pull_policy": k8s.get("imagePullPolicy", "Always"),
        "service_account_name": f"{RELEASE}-dagster",
        "dagster_home": DAGSTER_HOME,
        "instance_config_map": f"{RELEASE}-dagster-instance",
        "postgres_password_secret": _dig(values, "global", "postgresqlSecretName"),
    }
    if values.get("imagePullSecrets"):
        config["image_pull_secrets"] = values["imagePullSecrets"]
    for key, target in (("envSecrets", "env_secrets"), ("envConfigMaps", "env_config_maps")):
        if k8s.get(key):
            config[target] = _names(k8s[key])
    for key, target in (("envVars", "env_vars"), ("volumeMounts", "volume_mounts"), ("volumes", "volumes"),
                        ("labels", "labels"), ("resources", "resources"), ("schedulerName", "scheduler_name"),
                        ("securityContext", "security_context")):
        if k8s.get(key):
            config[target] = k8s[key]
    if k8s.get("failPodOnRunFailure"):
        config["fail_pod_on_run_failure"] = True
    run_k8s = k8s.get("runK8sConfig") or {}
    unknown = set(run_k8s) - {"containerConfig", "podSpecConfig", "podTemplateSpecMetadata", "jobSpecConfig", "jobMetadata"}
    if unknown:
        raise ManifestError(f"values: runLauncher.config.k8sRunLauncher.runK8sConfig: keys the chart ignores: {sorted(unknown)}")
    if run_k8s:
        config["run_k8s_config"] = {
            snake: run_k8s[camel] for camel, snake in (
                ("containerConfig", "container_config"), ("podSpecConfig", "pod_spec_config"),
                ("podTemplateSpecMetadata", "pod_template_spec_metadata"), ("jobSpecConfig", "job_spec_config"),
                ("jobMetadata", "job_metadata")) if run_k8s.get(camel)
        }
    return config


def code_location(values: Mapping[str, Any], name: str | None = None) -> dict[str, Any]:
    deployments = _dig(values, "dagster-user-deployments", "deployments")
    for deployment in deployments:
        if name is None or deployment.get("name") == name:
            return deployment
    raise ManifestError(f"values: no user deployment named {name!r}")


def code_location_image(deployment: Mapping[str, Any]) -> str:
    image = deployment["image"]
    return f"{image['repository']}:{image['tag']}"


def code_location_container_context(values: Mapping[str, Any], deployment: Mapping[str, Any]) -> dict[str, Any]:
    """What the chart passes to launched runs from a code location (``includeConfigInLaunchedRuns``)."""
    if not (deployment.get("includeConfigInLaunchedRuns") or {}).get("enabled", True):
        return {}
    k8s: dict[str, Any] = {
        "image_pull_policy": deployment["image"].get("pullPolicy", "Always"),
        "env_config_maps": [f"{RELEASE}-dagster-user-deployments-{deployment['name']}-user-env", *_names(deployment.get("envConfigMaps"))],
        "namespace": NAMESPACE,
        "service_account_name": f"{RELEASE}-dagster-user-deployments-user-deployments",
    }
    if values.get("imagePullSecrets"):
        k8s["image_pull_secrets"] = values["imagePullSecrets"]
    if deployment.get("envSecrets"):
        k8s["env_secrets"] = _names(deployment["envSecrets"])
    for key, target in (("volumeMounts", "volume_mounts"), ("volumes", "volumes"), ("labels", "labels"),
                        ("resources", "resources"), ("schedulerName", "scheduler_name")):
        if deployment.get(key):
            k8s[target] = deployment[key]
    if isinstance(deployment.get("env"), list):
        k8s["env"] = deployment["env"]
    return {"k8s": k8s}


def _fake_kubeconfig(directory: Path) -> Path:
    """A kubeconfig naming an address nothing listens on: the launcher loads it and never connects."""
    path = directory / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "offline",
        "clusters": [{"name": "offline", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "offline", "user": {"token": "unused"}}],
        "contexts": [{"name": "offline", "context": {"cluster": "offline", "user": "offline"}}],
    }))
    return path


def render_run_job(values: Mapping[str, Any], tags: Mapping[str, str] | None = None,
                   job_name: str = "complete_training_job", deployment_name: str | None = None) -> dict[str, Any]:
    """The Kubernetes Job the K8sRunLauncher configured by ``values`` creates for one run with ``tags``.

    Built by dagster-k8s's own code (config schema, container-context merge, job construction), as
    in ``K8sRunLauncher.launch_run``, without a cluster: nothing is sent anywhere.
    """
    from dagster._config import process_config, resolve_to_config_type
    from dagster._core.code_pointer import ModuleCodePointer
    from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
    from dagster._core.storage.dagster_run import DagsterRun
    from dagster_k8s import K8sRunLauncher
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import construct_dagster_k8s_job, get_job_name_from_run_id
    from kubernetes.client import ApiClient

    config = run_launcher_config(values)
    processed = process_config(resolve_to_config_type(K8sRunLauncher.config_type()), config)
    if not processed.success:
        raise ManifestError("values: runLauncher.config.k8sRunLauncher: "
                            + "; ".join(error.message for error in processed.errors or []))
    deployment = code_location(values, deployment_name)
    image = code_location_image(deployment)
    with tempfile.TemporaryDirectory() as scratch:
        launcher_config = {**processed.value, "load_incluster_config": False, "kubeconfig_file": str(_fake_kubeconfig(Path(scratch)))}
        launcher = K8sRunLauncher(**launcher_config)
    origin = JobPythonOrigin(job_name, RepositoryPythonOrigin(
        executable_path="/opt/venv/bin/python",
        code_pointer=ModuleCodePointer("pipelines.definitions", "defs", None),
        container_image=image,
        container_context=code_location_container_context(values, deployment),
    ))
    run = DagsterRun(job_name=job_name, run_id=str(uuid.uuid4()), tags=dict(tags or {}), job_code_origin=origin)
    try:
        context = K8sContainerContext.create_for_run(run, launcher, include_run_tags=True)
        job = construct_dagster_k8s_job(
            job_config=context.get_k8s_job_config(job_image=image, run_launcher=launcher),
            args=["dagster", "api", "execute_run", "{}"],  # the serialized run arguments at launch
            job_name=get_job_name_from_run_id(run.run_id),
            pod_name=get_job_name_from_run_id(run.run_id),
            component="run_worker",
            user_defined_k8s_config=context.run_k8s_config,
            labels={"dagster/job": job_name, "dagster/run-id": run.run_id},
            env_vars=[{"name": "DAGSTER_RUN_JOB_NAME", "value": job_name}],
        )
    except Exception as error:  # noqa: BLE001 - dagster-k8s raises plain errors for unknown Kubernetes fields
        raise ManifestError(f"values: the run Job cannot be built: {type(error).__name__}: {error}") from error
    return ApiClient().sanitize_for_serialization(job)


def validate_run_coordinator(values: Mapping[str, Any]) -> dict[str, Any]:
    """The queued run coordinator's block against Dagster's config schema; returns the instance config."""
    from dagster._config import process_config, resolve_to_config_type
    from dagster._core.run_coordinator import QueuedRunCoordinator

    coordinator = _dig(values, "dagsterDaemon", "runCoordinator")
    if coordinator.get("type") != "QueuedRunCoordinator":
        raise ManifestError("values: dagsterDaemon.runCoordinator.type must be QueuedRunCoordinator (runs queue, limits apply)")
    queued = _dig(coordinator, "config", "queuedRunCoordinator")
    config = {snake: queued[camel] for camel, snake in (
        ("maxConcurrentRuns", "max_concurrent_runs"), ("tagConcurrencyLimits", "tag_concurrency_limits"),
        ("dequeueIntervalSeconds", "dequeue_interval_seconds")) if camel in queued}
    processed = process_config(resolve_to_config_type(QueuedRunCoordinator.config_type()), config)
    if not processed.success:
        raise ManifestError("values: dagsterDaemon.runCoordinator.config.queuedRunCoordinator: "
                            + "; ".join(error.message for error in processed.errors or []))
    return processed.value


def main(argv: list[str] | None = None) -> int:
    del argv
    try:
        for line in validate_manifests():
            print(f"ok  {line}")
        values = load_values()
        validate_run_coordinator(values)
        from pipelines.jobs import GPU_TAG, K8S_GPU_CONFIG

        for label, tags in (("CPU run", {GPU_TAG: "false"}),
                            ("GPU run", {GPU_TAG: "true", "dagster-k8s/config": json.dumps(K8S_GPU_CONFIG)})):
            job = render_run_job(values, tags)
            validate_resource(job, f"{VALUES.relative_to(PROJECT_DIR)} ({label})")
            print(f"ok  {VALUES.relative_to(PROJECT_DIR)}: the Job of a {label}")
    except ManifestError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(PROJECT_DIR))
    raise SystemExit(main())
