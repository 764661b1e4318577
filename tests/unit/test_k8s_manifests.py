"""Offline validation of infra/k8s (issue 11, scale-out): every manifest against Kubernetes' schema,
and the Job the Helm values make the K8sRunLauncher create for a run (infra/scripts/k8s_validate.py).

The schemas come with the pinned ``kubernetes-validate`` package; nothing is downloaded
(tests/integration/test_k8s_offline.py runs the same checks through the CLI without a network).
"""

from __future__ import annotations

import copy
import importlib.util
import json

import pytest
import yaml

from pipelines.jobs import GPU_TAG, K8S_GPU_CONFIG
from tests.conftest import PROJECT_DIR

SCRIPT = PROJECT_DIR / "infra" / "scripts" / "k8s_validate.py"
_spec = importlib.util.spec_from_file_location("k8s_validate", SCRIPT)
k8s = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(k8s)

MANIFESTS = k8s.manifest_files()
CPU_TAGS = {GPU_TAG: "false", "dagster/partition": "plant_007"}
GPU_TAGS = {GPU_TAG: "true", "dagster-k8s/config": json.dumps(K8S_GPU_CONFIG)}


def container(job: dict) -> dict:
    containers = job["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_there_are_manifests_and_kustomize_applies_all_but_the_secret_placeholders():
    names = {path.name for path in MANIFESTS}
    assert {"namespace.yaml", "limits.yaml", "data-pvc.yaml", "dask.yaml", "secrets.example.yaml"} <= names
    kustomization = yaml.safe_load((k8s.K8S_DIR / "manifests" / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {path.name for path in MANIFESTS if path.parent.name == "manifests"} - {"secrets.example.yaml"}


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: str(path.relative_to(k8s.K8S_DIR)))
def test_every_manifest_validates_against_the_kubernetes_schema(path):
    checked = k8s.validate_manifests([path])
    assert checked, f"{path}: no resources"


def test_every_namespaced_resource_lives_in_the_stack_namespace():
    for path in MANIFESTS:
        for resource in k8s.load_documents(path):
            if resource["kind"] != "Namespace":
                assert resource["metadata"].get("namespace") == k8s.NAMESPACE, f"{path}: {resource['kind']}"


def test_the_secret_manifest_holds_placeholders_only():
    secrets = k8s.load_documents(k8s.K8S_DIR / "manifests" / "secrets.example.yaml")
    assert {secret["metadata"]["name"] for secret in secrets} == {"dagster-postgresql-secret", "energy-forecast-env"}
    values = k8s.load_values()
    assert values["global"]["postgresqlSecretName"] == "dagster-postgresql-secret"
    for secret in secrets:
        assert "data" not in secret
        assert set(secret["stringData"].values()) == {"change-me"}, secret["metadata"]["name"]


DASK = k8s.K8S_DIR / "manifests" / "dask.yaml"


def broken_dask(change) -> list[dict]:
    resources = copy.deepcopy(k8s.load_documents(DASK))
    change(next(r for r in resources if r["metadata"]["name"] == "dask-worker"))
    return resources


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: r["spec"].update(replicas="four"), "spec.replicas"),
        (lambda r: r["spec"]["template"]["spec"].update(contianers=r["spec"]["template"]["spec"].pop("containers")), "'containers' is a required"),
        (lambda r: r["spec"]["template"]["spec"]["containers"][0].update(imagePullPolcy="Always"), "imagePullPolcy"),
        (lambda r: r["spec"]["template"]["spec"]["containers"][0]["resources"].update(limit={"memory": "1Gi"}), "limit"),
        (lambda r: r.update(kind="Deploymnet"), "Couldn't find schema for kind Deploymnet"),
        (lambda r: r.update(apiVersion="apps/v1beta1"), "apps/v1beta1"),
    ],
    ids=["replicas-not-a-number", "misspelled-required-field", "misspelled-optional-field", "unknown-resources-key", "unknown-kind", "removed-api-version"],
)
def test_a_broken_manifest_is_refused_naming_the_place(tmp_path, change, expected):
    path = tmp_path / "dask.yaml"
    path.write_text(yaml.safe_dump_all(broken_dask(change)))
    with pytest.raises(k8s.ManifestError, match="dask-worker") as caught:
        k8s.validate_manifests([path])
    assert expected in str(caught.value) and str(path) in str(caught.value)


def test_a_file_that_is_not_a_resource_is_refused(tmp_path):
    path = tmp_path / "notes.yaml"
    path.write_text("just: a mapping\n")
    with pytest.raises(k8s.ManifestError, match="not a Kubernetes resource"):
        k8s.validate_manifests([path])


# -- the Helm values: the Job a run becomes ------------------------------------------------------


def test_a_cpu_run_becomes_a_valid_job_in_the_trainer_image_with_the_launcher_resources():
    values = k8s.load_values()
    job = k8s.render_run_job(values, CPU_TAGS)
    k8s.validate_resource(job, "values.yaml (CPU run)")
    assert job["kind"] == "Job" and job["apiVersion"] == "batch/v1"
    main = container(job)
    assert main["image"] == k8s.code_location_image(k8s.code_location(values))
    run_config = values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["containerConfig"]["resources"]
    # the run launcher's sizes, not the code server's (a code location's `resources` would win)
    assert main["resources"] == run_config
    env = {item["name"]: item for item in main["env"]}
    assert env["DAGSTER_PG_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "dagster-postgresql-secret", "key": "postgresql-password"}
    assert env["DATA_PATH"]["value"] == "/data/Steel_industry_data.csv"
    assert env["DASK_SCHEDULER_ADDRESS"]["value"].startswith("tcp://dask-scheduler.")
    assert {"secretRef": {"name": "energy-forecast-env"}} in main["envFrom"]
    assert {"mountPath": "/data", "name": "data", "readOnly": True} in main["volumeMounts"]
    assert "nvidia.com/gpu" not in main["resources"].get("limits", {})
    assert not job["spec"]["template"]["spec"].get("tolerations")


def test_a_gpu_job_run_asks_for_one_gpu_and_tolerates_the_gpu_nodes():
    job = k8s.render_run_job(k8s.load_values(), GPU_TAGS, job_name="chronos_zeroshot_job")
    k8s.validate_resource(job, "values.yaml (GPU run)")
    resources = container(job)["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == "1" and resources["limits"]["memory"] == "8Gi"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in job["spec"]["template"]["spec"]["tolerations"]


def test_the_queue_limits_runs_and_gpu_runs():
    config = k8s.validate_run_coordinator(k8s.load_values())
    assert config["max_concurrent_runs"] >= 2
    assert {"key": GPU_TAG, "value": "true", "limit": 2} in config["tag_concurrency_limits"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # a Kubernetes field misspelled inside the run's container config: dagster-k8s refuses it
        (lambda v: v["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["containerConfig"].update(resource={}), "resource"),
        # a volume mount without a name: the launcher's config schema refuses it
        (lambda v: v["runLauncher"]["config"]["k8sRunLauncher"]["volumeMounts"][0].pop("name"), "name"),
        # a quantity Kubernetes cannot read: the rendered Job fails the schema
        (lambda v: v["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["containerConfig"]["resources"]["requests"].update(cpu=[2]), "cpu"),
        (lambda v: v["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"].update(containerConfigs={}), "containerConfigs"),
        (lambda v: v["runLauncher"].update(type="DockerRunLauncher"), "K8sRunLauncher"),
    ],
    ids=["misspelled-container-field", "mount-without-name", "bad-quantity", "key-the-chart-ignores", "not-the-k8s-launcher"],
)
def test_broken_values_are_refused(change, expected):
    values = copy.deepcopy(k8s.load_values())
    change(values)
    with pytest.raises(k8s.ManifestError, match="values") as caught:
        job = k8s.render_run_job(values, CPU_TAGS)
        k8s.validate_resource(job, "values")
    assert expected in str(caught.value)


def test_a_broken_queue_is_refused():
    values = copy.deepcopy(k8s.load_values())
    values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]["maxConcurrentRuns"] = "many"
    with pytest.raises(k8s.ManifestError, match="max_concurrent_runs"):
        k8s.validate_run_coordinator(values)
