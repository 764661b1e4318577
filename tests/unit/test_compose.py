"""Static checks of the Compose stack: Dockerfiles, the Compose files and the Dagster instance config.

No Docker engine needed: hadolint and check-jsonschema come with the dev environment, and the
reference checks read the YAML. ``check-jsonschema`` validates the compose-spec schema, which does
not catch a reference to an undefined network, volume, secret or service; the tests below do.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_DIR, require

BIN = Path(sys.executable).parent
COMPOSE_FILE = PROJECT_DIR / "docker-compose.yml"
TEST_OVERRIDE = PROJECT_DIR / "tests" / "system" / "docker-compose.test.yml"
ENV_EXAMPLE = PROJECT_DIR / ".env.example"
DAGSTER_YAML = PROJECT_DIR / "infra" / "dagster" / "dagster.yaml"
DOCKERFILES = sorted([*PROJECT_DIR.glob("services/**/Dockerfile"), *PROJECT_DIR.glob("tests/system/images/**/Dockerfile")])
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?][^}]*)?\}")
SET_BY_COMPOSE_OR_MAKE = {"COMPOSE_PROJECT_NAME", "GIT_COMMIT", "STANDIN_BASE_IMAGE", "STANDIN_TAG_SUFFIX"}
"""Variables that are not settings: the project name (``name:`` / ``-p``), the commit (``make up``),
the stand-ins' base image and tag suffix (test override only)."""


def tool(name: str) -> str:
    path = BIN / name
    if path.is_file():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: `make venv-dev` installs it")
    return found


def compose(path: Path = COMPOSE_FILE) -> dict:
    return yaml.safe_load(path.read_text())


def named_volumes(service: dict) -> list[str]:
    names = []
    for volume in service.get("volumes", []):
        source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
        if isinstance(volume, dict) and volume.get("type") not in (None, "volume"):
            continue
        if source and not source.startswith((".", "/", "$", "~")):
            names.append(source)
    return names


def service_networks(service: dict) -> list[str]:
    networks = service.get("networks", [])
    return list(networks) if isinstance(networks, dict | list) else []


def service_secrets(service: dict) -> list[str]:
    build = service.get("build") if isinstance(service.get("build"), dict) else {}
    entries = [*service.get("secrets", []), *build.get("secrets", [])]
    return [entry if isinstance(entry, str) else entry["source"] for entry in entries]


def depends_on(service: dict) -> dict[str, str]:
    value = service.get("depends_on", {})
    if isinstance(value, list):
        return dict.fromkeys(value, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in value.items()}


# -- Dockerfiles ---------------------------------------------------------------------------------


def test_the_stack_has_its_dockerfiles():
    found = {path.relative_to(PROJECT_DIR).as_posix() for path in DOCKERFILES}
    assert {"services/mlflow/Dockerfile", "services/dagster/Dockerfile", "services/trainer/Dockerfile", "services/proxy/Dockerfile"} <= found
    assert {"tests/system/images/postgres/Dockerfile", "tests/system/images/s3/Dockerfile"} <= found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.relative_to(PROJECT_DIR).as_posix())
def test_when_hadolint_reads_a_dockerfile_then_it_finds_nothing(dockerfile):
    answer = subprocess.run([tool("hadolint"), "--no-color", str(dockerfile)], capture_output=True, text=True, check=False)
    assert answer.returncode == 0, answer.stdout + answer.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.relative_to(PROJECT_DIR).as_posix())
def test_python_images_take_their_base_image_as_a_build_argument(dockerfile):
    text = dockerfile.read_text()
    assert re.search(r"^ARG BASE_IMAGE=\S+:\S+$", text, re.MULTILINE), "base image must be a pinned, overridable ARG"
    assert re.search(r"^FROM \$\{BASE_IMAGE\}", text, re.MULTILINE)


# -- Compose files -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [COMPOSE_FILE, TEST_OVERRIDE], ids=lambda p: p.name)
def test_when_the_compose_file_is_checked_against_the_compose_spec_then_it_is_valid(path):
    answer = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)], capture_output=True, text=True, check=False
    )
    assert answer.returncode == 0, answer.stdout + answer.stderr


TEST_ONLY_SERVICES = {"alert-receiver"}
"""Services only the system test adds: the alert webhook's receiver."""


@pytest.mark.parametrize("path", [COMPOSE_FILE, TEST_OVERRIDE], ids=lambda p: p.name)
def test_every_network_volume_secret_and_dependency_referenced_is_defined(path):
    main, spec = compose(), compose(path)
    services = main["services"]
    networks = set((main.get("networks") or {}).keys()) | {"default"}
    volumes = set((main.get("volumes") or {}).keys())
    secrets = set((main.get("secrets") or {}).keys())
    problems = []
    for name, service in spec["services"].items():
        if name not in services and name not in TEST_ONLY_SERVICES:
            problems.append(f"{path.name}: service {name} is not a service of docker-compose.yml")
            continue
        problems += [f"{name}: network {n} undefined" for n in service_networks(service) if n not in networks]
        problems += [f"{name}: volume {v} undefined" for v in named_volumes(service) if v not in volumes]
        problems += [f"{name}: secret {s} undefined" for s in service_secrets(service) if s not in secrets]
        problems += [f"{name}: depends_on {d} undefined" for d in depends_on(service) if d not in services]
    assert not problems, "\n".join(problems)


def test_dependencies_wait_for_what_their_condition_promises():
    services = compose()["services"]
    problems = []
    for name, service in services.items():
        for target, condition in depends_on(service).items():
            if condition == "service_healthy" and "healthcheck" not in services[target]:
                problems.append(f"{name} waits for {target} to be healthy, but {target} has no healthcheck")
            if condition == "service_completed_successfully" and services[target].get("restart", "no") != "no":
                problems.append(f"{name} waits for one-shot {target}, which restarts")
    assert not problems, "\n".join(problems)


def test_every_long_running_service_has_a_healthcheck_and_one_shot_services_do_not_restart():
    for name, service in compose()["services"].items():
        if service.get("restart") == "no":
            continue
        assert "healthcheck" in service, name


def test_published_ports_are_bound_to_loopback():
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port} is reachable from other machines"


def test_postgres_publishes_no_port():
    assert "ports" not in compose()["services"]["postgres"]


def test_the_uis_are_published_only_through_the_proxy():
    services = compose()["services"]
    assert "ports" not in services["dagster-webserver"] and "ports" not in services["mlflow"]
    proxy = services["proxy"]
    assert proxy["ports"] == ["127.0.0.1:${DAGSTER_PORT:-3000}:3000", "127.0.0.1:${MLFLOW_PORT:-5000}:5000"]
    assert proxy["environment"]["PROXY_USER"].startswith("${PROXY_USER:?")
    assert proxy["environment"]["PROXY_PASSWORD"].startswith("${PROXY_PASSWORD:?")
    assert depends_on(proxy) == {"dagster-webserver": "service_healthy", "mlflow": "service_healthy"}
    # the allowed origins follow the published ports unless set
    assert proxy["environment"]["DAGSTER_PORT"] == "${DAGSTER_PORT:-3000}" and proxy["environment"]["MLFLOW_PORT"] == "${MLFLOW_PORT:-5000}"


def test_the_proxy_checks_origins_and_graphql_methods_before_the_login():
    conf = (PROJECT_DIR / "services" / "proxy" / "nginx.conf").read_text()
    assert conf.count("auth_basic_user_file /run/proxy/htpasswd;") == 2  # Dagster and MLflow
    assert '"POST:0" 1;' in conf and '"GET:1" 1;' in conf  # /graphql: POST, or GET as a websocket upgrade
    assert "application/json" in conf and "return 415" in conf and "return 405" in conf
    assert "$http_sec_fetch_site" in conf and conf.count("return 403") == 2
    entrypoint = (PROJECT_DIR / "services" / "proxy" / "entrypoint.sh").read_text()
    assert "openssl passwd -6 -stdin" in entrypoint  # the password never appears on a command line
    assert "htpasswd" not in {path.name for path in (PROJECT_DIR / "services" / "proxy").iterdir()}


HARDENED_CAPS_FOR = {"postgres": {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"}}
"""Capabilities added back after ``cap_drop: [ALL]``: the postgres entrypoint owns its data
directory as root, then drops to the ``postgres`` user. Nothing else gets any."""


def test_every_service_is_hardened_with_limits_and_rotated_logs():
    for name, service in compose()["services"].items():
        assert service.get("security_opt") == ["no-new-privileges:true"], name
        assert service.get("cap_drop") == ["ALL"], name
        assert set(service.get("cap_add", [])) <= HARDENED_CAPS_FOR.get(name, set()), f"{name}: {service.get('cap_add')}"
        assert re.fullmatch(r"\d+[mg]", str(service.get("mem_limit", ""))), f"{name} has no memory limit"
        logging = service.get("logging", {})
        assert logging.get("driver") == "json-file" and {"max-size", "max-file"} <= set(logging.get("options", {})), name


def test_run_containers_get_the_same_hardening():
    code_server = compose()["services"]["code-server"]
    text = re.sub(r"\$\{COMPOSE_PROJECT_NAME\}", "energy-forecast", code_server["environment"]["DAGSTER_CONTAINER_CONTEXT"])
    kwargs = json.loads(text)["docker"]["container_kwargs"]
    assert kwargs["security_opt"] == ["no-new-privileges:true"] and kwargs["cap_drop"] == ["ALL"]
    assert kwargs["log_config"]["type"] == "json-file" and {"max-size", "max-file"} <= set(kwargs["log_config"]["config"])


def with_defaults(text: str) -> str:
    """``${NAME:-default}`` -> ``default``; ``${NAME}`` -> ``NAME``."""
    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", lambda m: m.group(2) if m.group(2) is not None else m.group(1), text)


DIGEST = re.compile(r"^[\w./-]+@sha256:[0-9a-f]{64}$")


def test_pulled_images_are_pinned_by_digest_with_their_tag_in_a_comment_and_built_ones_by_tag():
    text = COMPOSE_FILE.read_text()
    example = ENV_EXAMPLE.read_text()
    services = compose()["services"]
    built = {service["image"] for service in services.values() if "build" in service}
    for name, service in services.items():
        image = with_defaults(service["image"])
        if "build" in service or service["image"] in built:  # built here (serving runs the trainer image)
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), f"{name}: {service['image']}"
            continue
        assert DIGEST.match(image), f"{name}: {image} is not pinned by digest"
        repository = image.split("@", 1)[0]
        comment = re.search(r"#\s*(\S+)\n\s*image: " + re.escape(service["image"]), text)
        assert comment and comment.group(1).startswith(repository + ":"), f"{name}: no '# {repository}:<tag>' above its image"
        variable = re.match(r"\$\{(\w+)", service["image"]).group(1)
        assert re.search(rf"^# {re.escape(comment.group(1))}\n{variable}={re.escape(image)}$", example, re.MULTILINE), \
            f".env.example: {variable} is not {image} under '# {comment.group(1)}'"


OPTIONAL = re.compile(r"^# ([A-Z][A-Z0-9_]*)=\S", re.MULTILINE)
"""Optional settings, documented in .env.example as a commented example (``# NAME=value``)."""


def test_every_variable_the_compose_files_use_is_in_env_example():
    text = ENV_EXAMPLE.read_text()
    example = {line.split("=", 1)[0] for line in text.splitlines() if "=" in line and not line.startswith("#")}
    optional = set(OPTIONAL.findall(text))
    used = set(VARIABLE.findall(COMPOSE_FILE.read_text() + TEST_OVERRIDE.read_text()))
    missing = used - example - optional - SET_BY_COMPOSE_OR_MAKE
    assert not missing, f"not in .env.example: {sorted(missing)}"
    for name in optional:  # optional ones must be optional in Compose too
        assert re.search(r"\$\{" + name + r":-\}", COMPOSE_FILE.read_text()), f"{name} is optional in .env.example but required by Compose"


def test_secrets_come_from_the_environment_not_from_the_compose_file():
    secretive = re.compile(r"(PASSWORD|SECRET|ACCESS_KEY)", re.IGNORECASE)
    credentials_in_url = re.compile(r"://([^/@]+):([^/@]+)@")
    for name, service in compose()["services"].items():
        environment = service.get("environment") or {}
        for key, value in environment.items():
            value = str(value)
            if secretive.search(key):
                assert re.fullmatch(r"\$\{\w+(:\?[^}]*)?\}", value), f"{name}.{key} = {value!r} is not from .env"
            for user, password in credentials_in_url.findall(value):
                assert user.startswith("${") and password.startswith("${"), f"{name}.{key} holds literal credentials"
    for line in ENV_EXAMPLE.read_text().splitlines():
        if "=" in line and not line.startswith("#") and secretive.search(line.split("=", 1)[0]):
            assert line.split("=", 1)[1] == "change-me", f".env.example: {line} is not a placeholder"


def test_mlflow_serves_artifacts_from_s3_to_postgres_metadata_and_allows_its_service_name():
    mlflow = compose()["services"]["mlflow"]
    command = " ".join(mlflow["command"])
    assert "--serve-artifacts" in command and "--artifacts-destination=s3://mlflow/" in command
    assert re.search(r"--allowed-hosts=\S*\bmlflow:5000\b", command)
    assert mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg2://")
    assert mlflow["environment"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert "/health" not in " ".join(mlflow["healthcheck"]["test"])


def test_the_code_server_names_the_image_runs_launch_in():
    code_server = compose()["services"]["code-server"]
    assert code_server["environment"]["DAGSTER_CURRENT_IMAGE"] == code_server["image"]
    assert code_server["build"]["dockerfile"] == "services/trainer/Dockerfile"
    assert {"BASE_IMAGE", "TORCH_VARIANT"} <= set(code_server["build"]["args"])


def test_the_run_network_is_the_stacks_network():
    spec = compose()
    network = spec["networks"]["backend"]["name"]
    assert spec["services"]["dagster-daemon"]["environment"]["DAGSTER_RUN_NETWORK"] == network


# -- Dagster instance ----------------------------------------------------------------------------

INSTANCE_ENV = {
    "DAGSTER_PG_HOST": "postgres",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": "not-a-secret",
    "DAGSTER_PG_DB": "dagster",
    "DAGSTER_MAX_CONCURRENT_RUNS": "2",
    "DAGSTER_RUN_NETWORK": "energy-forecast_backend",
    "DAGSTER_RUN_GPU": "auto",
}


@pytest.fixture
def instance_env(monkeypatch):
    for key, value in INSTANCE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.syspath_prepend(str(PROJECT_DIR / "services" / "dagster"))


def test_the_dagster_instance_config_is_valid_and_its_launcher_and_coordinator_load(instance_env, tmp_path):
    from dagster._core.instance.config import dagster_instance_config
    from dagster._serdes.config_class import ConfigurableClassData

    rendered = render_instance(tmp_path, "3")
    config, _ = dagster_instance_config(str(rendered.parent))
    storage = config["storage"]["postgres"]["postgres_db"]
    assert storage["scheme"] == "postgresql+psycopg2"

    launcher = ConfigurableClassData(config["run_launcher"]["module"], config["run_launcher"]["class"], yaml.safe_dump(config["run_launcher"]["config"])).rehydrate(object)
    assert type(launcher).__name__ == "GpuAwareDockerRunLauncher"
    assert launcher.networks == ["energy-forecast_backend"] and launcher.gpu_mode == "auto"

    # no private module path: Dagster's default coordinator (the queued one) with the instance's
    # public `concurrency:` block, the run queue's limit written in from the environment
    assert "run_coordinator" not in config
    from dagster._core.instance.ref import InstanceRef

    assert InstanceRef.from_dir(str(rendered.parent)).run_coordinator_data.class_name == "QueuedRunCoordinator"
    assert config["concurrency"]["runs"]["max_concurrent_runs"] == 3
    assert config["run_queue"]["dequeue_interval_seconds"] == 2
    assert config["run_monitoring"]["enabled"] is True


def render_instance(directory: Path, max_runs: str) -> Path:
    """The dagster.yaml the dagster image's entrypoint writes (services/dagster/entrypoint.sh)."""
    template = directory / "template.yaml"
    shutil.copy(DAGSTER_YAML, template)
    script = (PROJECT_DIR / "services" / "dagster" / "entrypoint.sh").read_text()
    script = script.replace("/opt/dagster/dagster.yaml.template", str(template))
    (directory / "entrypoint.sh").write_text(script)
    (directory / "home").mkdir()
    answer = subprocess.run(["sh", str(directory / "entrypoint.sh"), "true"], capture_output=True, text=True, check=False,
                            env={"PATH": os.environ["PATH"], "DAGSTER_HOME": str(directory / "home"), "DAGSTER_MAX_CONCURRENT_RUNS": max_runs})
    assert answer.returncode == 0, answer.stderr
    return directory / "home" / "dagster.yaml"


def test_the_dagster_entrypoint_refuses_a_run_limit_that_is_not_a_number(tmp_path):
    with pytest.raises(AssertionError, match="must be a whole number"):
        render_instance(tmp_path, "two")


def test_at_most_one_gpu_run_at_a_time_under_the_jobs_gpu_tag():
    from pipelines.jobs import GPU_TAG

    limits = yaml.safe_load(DAGSTER_YAML.read_text())["concurrency"]["runs"]["tag_concurrency_limits"]
    assert {"key": GPU_TAG, "value": "true", "limit": 1} in limits
    launcher = yaml.safe_load(DAGSTER_YAML.read_text())["run_launcher"]["config"]
    assert launcher["gpu_tag"] == GPU_TAG


def test_runs_get_what_the_instance_and_training_need(instance_env):
    launcher = yaml.safe_load(DAGSTER_YAML.read_text())["run_launcher"]["config"]
    daemon_env = compose()["services"]["dagster-daemon"]["environment"]
    referenced = set(re.findall(r"\{env: (\w+)\}", DAGSTER_YAML.read_text()))
    given = set(launcher["env_vars"]) | set(launcher["run_env_from"])
    assert referenced <= given, "run workers rebuild the instance: they need its variables"
    for name in [*launcher["env_vars"], *launcher["run_env_from"].values()]:
        assert name in daemon_env, f"{name} is forwarded to runs but the daemon does not have it"


def test_runs_get_their_own_database_login_and_only_the_ops_s3_key():
    launcher = yaml.safe_load(DAGSTER_YAML.read_text())["run_launcher"]["config"]
    assert launcher["run_env_from"] == {"DAGSTER_PG_USER": "DAGSTER_RUN_PG_USER", "DAGSTER_PG_PASSWORD": "DAGSTER_RUN_PG_PASSWORD"}
    assert not {"DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD"} & set(launcher["env_vars"])  # never the owner's
    services = compose()["services"]
    for name in ("code-server", "dagster-daemon"):  # the code server evaluates the sensors; the daemon hands it to runs
        environment = services[name]["environment"]
        assert environment["AWS_ACCESS_KEY_ID"] == "${OPS_S3_ACCESS_KEY_ID:?set OPS_S3_ACCESS_KEY_ID in .env}", name
        assert environment["AWS_SECRET_ACCESS_KEY"] == "${OPS_S3_SECRET_ACCESS_KEY:?set OPS_S3_SECRET_ACCESS_KEY in .env}", name
        assert environment["LANDING_URI"].startswith("s3://ops/") and environment["FORECAST_PLOTS_URI"].startswith("s3://ops/")
        assert environment["DAGSTER_IO_BUCKET"] == "ops" and environment["ENERGY_FORECAST_DEPLOYMENT"] == "stack"
        assert environment["FORECAST_STORE_URL"].startswith("postgresql+psycopg2://${FORECASTS_PG_USER}:")
        assert environment["OPTUNA_STORAGE"] == "postgresql+psycopg2://${OPTUNA_PG_USER}:${OPTUNA_PG_PASSWORD}@postgres:5432/${OPTUNA_PG_DB}"
        # the promotion lock with the runs' own login (an advisory lock needs CONNECT only)
        assert environment["PROMOTION_LOCK_URL"] == "postgresql+psycopg2://${DAGSTER_RUN_PG_USER}:${DAGSTER_RUN_PG_PASSWORD}@postgres:5432/${DAGSTER_PG_DB}"
        assert environment["ALERT_WEBHOOK_URL"] == "${ALERT_WEBHOOK_URL:-}"
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "LANDING_URI", "LIVE_SERIES_PATH", "FORECAST_STORE_URL", "OPTUNA_STORAGE",
                 "FORECAST_PLOTS_URI", "DAGSTER_IO_BUCKET", "PROMOTION_LOCK_URL", "ALERT_WEBHOOK_URL", "ENERGY_FORECAST_DEPLOYMENT"):
        assert name in launcher["env_vars"], f"runs do not get {name}"
    assert not [key for key in services["dagster-webserver"]["environment"] if key.startswith("AWS_")], "the webserver holds an S3 key"
    # the code server evaluates the sensors, which read the instance: with the runs' login, not the owner's
    code_server = services["code-server"]["environment"]
    assert code_server["DAGSTER_PG_USER"].startswith("${DAGSTER_RUN_PG_USER:?") and code_server["DAGSTER_PG_PASSWORD"].startswith("${DAGSTER_RUN_PG_PASSWORD:?")
    assert "DAGSTER_RUN_PG_PASSWORD" not in services["dagster-webserver"]["environment"]  # only the launching daemon
    example = dict(line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if "=" in line and not line.startswith("#"))
    assert example["DAGSTER_RUN_PG_USER"] != example["DAGSTER_PG_USER"]


POLICIES = PROJECT_DIR / "infra" / "minio" / "policies"
ROLE_KEYS = {"mlflow": "MLFLOW_S3_ACCESS_KEY_ID", "dvc": "DVC_S3_ACCESS_KEY_ID", "serving": "SERVING_S3_ACCESS_KEY_ID", "ops": "OPS_S3_ACCESS_KEY_ID"}


def test_one_s3_key_per_role_each_with_its_own_policy_file():
    assert sorted(path.stem for path in POLICIES.glob("*.json")) == sorted(ROLE_KEYS)
    init = (PROJECT_DIR / "infra" / "minio" / "init.sh").read_text()
    services = compose()["services"]
    for role, key in ROLE_KEYS.items():
        policy = json.loads((POLICIES / f"{role}.json").read_text())
        resources = {resource for statement in policy["Statement"] for resource in statement["Resource"]}
        bucket = "mlflow" if role == "serving" else role
        assert resources == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}, f"{role}: {sorted(resources)}"
        assert f'grant {role} "${key}"' in init, f"infra/minio/init.sh does not grant {role} to {key}"
        assert key in services["minio-init"]["environment"]
    serving_actions = {action for statement in json.loads((POLICIES / "serving.json").read_text())["Statement"] for action in statement["Action"]}
    assert not [action for action in serving_actions if action.startswith(("s3:Put", "s3:Delete", "s3:Abort"))]
    assert services["mlflow"]["environment"]["AWS_ACCESS_KEY_ID"] == "${MLFLOW_S3_ACCESS_KEY_ID:?set MLFLOW_S3_ACCESS_KEY_ID in .env}"
    assert services["serving"]["environment"]["AWS_ACCESS_KEY_ID"] == "${SERVING_S3_ACCESS_KEY_ID:?set SERVING_S3_ACCESS_KEY_ID in .env}"
    stand_in = compose(TEST_OVERRIDE)["services"]["minio"]
    assert "./infra/minio:/init:ro" in stand_in["volumes"]  # the stand-in reads the same policy files


def test_compose_resolves_the_files_with_the_example_settings():
    """Interpolation, merge of the test override and the `:?` guards, as Compose itself reads them."""
    docker = shutil.which("docker")
    require(docker is not None and subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode == 0,
            "the docker CLI with the Compose plugin is not installed")
    for files in (["-f", str(COMPOSE_FILE)], ["-f", str(COMPOSE_FILE), "-f", str(TEST_OVERRIDE)]):
        answer = subprocess.run([docker, "compose", *files, "--env-file", str(ENV_EXAMPLE), "config", "--quiet"],
                                capture_output=True, text=True, cwd=PROJECT_DIR, check=False)
        assert answer.returncode == 0, answer.stderr


def test_compose_refuses_to_start_without_the_secrets(tmp_path):
    docker = shutil.which("docker")
    require(docker is not None, "the docker CLI is not installed")
    empty = tmp_path / "empty.env"
    empty.write_text("")
    answer = subprocess.run([docker, "compose", "-f", str(COMPOSE_FILE), "--env-file", str(empty), "config", "--quiet"],
                            capture_output=True, text=True, cwd=PROJECT_DIR, env={"PATH": os.environ["PATH"]}, check=False)
    assert answer.returncode != 0 and "in .env" in answer.stderr


def test_the_serving_service_is_the_fastapi_app_on_loopback_as_non_root_with_the_read_only_key():
    services = compose()["services"]
    serving = services["serving"]
    assert serving["image"] == services["code-server"]["image"]  # every family's libraries
    assert serving["command"][:3] == ["python", "-m", "energy_forecast.serving"]
    assert serving["user"] == "10001"
    assert serving["ports"] == ["127.0.0.1:${SERVING_PORT:-8080}:8080"]
    assert "/health" in " ".join(serving["healthcheck"]["test"])
    environment = serving["environment"]
    assert environment["SERVING_REFRESH_SECONDS"] == "${SERVING_REFRESH_SECONDS:-15}"
    assert environment["SERVING_ARTIFACTS_S3"] == "s3://mlflow"
    assert "--artifacts-destination=s3://mlflow/" in services["mlflow"]["command"]  # the same place
    assert depends_on(serving) == {"mlflow": "service_healthy"}
    assert "scoring server" in COMPOSE_FILE.read_text()  # the choice is justified where it is made


@pytest.mark.parametrize("store", ["forecasts", "optuna"])
def test_the_stack_keeps_forecasts_and_studies_in_their_own_databases(store: str):
    psql = (PROJECT_DIR / "infra" / "postgres" / "initdb" / "databases.psql").read_text()
    assert f'CREATE DATABASE :"{store}_db" OWNER :"{store}_user";' in psql
    assert f'REVOKE ALL ON DATABASE :"{store}_db" FROM PUBLIC;' in psql
    postgres = compose()["services"]["postgres"]["environment"]
    assert {f"{store.upper()}_PG_USER", f"{store.upper()}_PG_PASSWORD", f"{store.upper()}_PG_DB"} <= set(postgres)
    assert f"{store.upper()}_PG_PASSWORD" in (PROJECT_DIR / "infra" / "postgres" / "initdb" / "10-databases.sh").read_text()
