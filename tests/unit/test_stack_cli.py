"""Bad input to `make up` and `make launch` gets a clear message and changes nothing.

These run the real make targets and scripts, but never reach a Docker engine or a webserver: each
case is refused before that point (an unreachable webserver port proves no launch was tried).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_DIR

STACK_ENV = PROJECT_DIR / "infra" / "scripts" / "stack_env.py"
ENV_EXAMPLE = PROJECT_DIR / ".env.example"
UNREACHABLE = "http://127.0.0.1:9"  # discard port: nothing listens


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    require_make()
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(PROJECT_DIR), *args],
        capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}, check=False,
    )


def require_make() -> None:
    if shutil.which("make") is None:
        pytest.fail("make is not installed")


def stack_env(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(STACK_ENV), *args], capture_output=True, text=True, check=False)


def launch(*args: str, cwd: Path = PROJECT_DIR) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.launch", *args, "--dagster-url", UNREACHABLE],
        capture_output=True, text=True, cwd=cwd, timeout=120, check=False,
    )


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    path = tmp_path / "stack.env"
    assert stack_env("create", str(path), str(ENV_EXAMPLE)).returncode == 0
    return path


# -- .env ----------------------------------------------------------------------------------------


def test_when_env_is_created_then_every_placeholder_is_a_random_secret(env_file, tmp_path):
    text = env_file.read_text()
    values = [line.split("=", 1)[1] for line in text.splitlines() if "=" in line and not line.startswith("#")]
    assert "change-me" not in values
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    other = tmp_path / "other.env"
    stack_env("create", str(other), str(ENV_EXAMPLE))
    assert other.read_text() != text
    assert stack_env("check", str(env_file), str(ENV_EXAMPLE)).returncode == 0


def test_an_existing_env_is_never_overwritten(env_file):
    before = env_file.read_text()
    answer = stack_env("create", str(env_file), str(ENV_EXAMPLE))
    assert answer.returncode == 2 and "not overwritten" in answer.stderr
    assert env_file.read_text() == before


def test_dvc_local_points_the_stack_remote_at_the_host_port_and_keeps_other_settings(env_file, tmp_path):
    config_local = tmp_path / "config.local"
    config_local.write_text("[core]\n    remote = stack\n['remote \"other\"']\n    url = s3://x\n")
    assert stack_env("dvc-local", str(env_file), str(config_local)).returncode == 0
    assert stack_env("dvc-local", str(env_file), str(config_local)).returncode == 0  # idempotent
    text = config_local.read_text()
    assert text.count("['remote \"stack\"']") == 1 and "url = s3://x" in text
    assert "endpointurl = http://127.0.0.1:9000" in text


# -- make up -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda text: text.replace("MLFLOW_PG_PASSWORD=", "#MLFLOW_PG_PASSWORD="), "MLFLOW_PG_PASSWORD is missing"),
        (lambda text: text.replace("DAGSTER_PORT=3000", "DAGSTER_PORT="), "DAGSTER_PORT is empty"),
        (lambda text: text + "MINIO_ROOT_PASSWORD=change-me\n", "MINIO_ROOT_PASSWORD is still 'change-me'"),
    ],
)
def test_when_env_is_incomplete_then_make_up_refuses_naming_the_variable_and_changes_nothing(env_file, edit, named):
    env_file.write_text(edit(env_file.read_text()))
    before = env_file.read_text()
    answer = make("up", f"ENV_FILE={env_file}", "DOCKER=/nonexistent/docker")
    assert answer.returncode != 0
    assert named in answer.stderr and "nothing was started" in answer.stderr
    assert env_file.read_text() == before


def test_when_docker_is_not_installed_then_make_up_says_so_and_creates_no_env(tmp_path):
    env_file = tmp_path / "stack.env"
    answer = make("up", f"ENV_FILE={env_file}", "DOCKER=/nonexistent/docker")
    assert answer.returncode != 0
    assert "'/nonexistent/docker' is not installed" in answer.stderr and "Nothing was changed" in answer.stderr
    assert not env_file.exists()


def test_when_the_docker_engine_does_not_answer_then_make_up_says_so_and_creates_no_env(tmp_path):
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI here: the 'not installed' case covers this machine")
    env_file = tmp_path / "stack.env"
    answer = make("up", f"ENV_FILE={env_file}", env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"})
    assert answer.returncode != 0
    assert "the Docker engine does not answer" in answer.stderr
    assert not env_file.exists()


# -- make launch ---------------------------------------------------------------------------------


def test_when_the_config_is_missing_then_launch_says_so_and_launches_nothing():
    answer = launch("configs/training/no_such_model.yaml")
    assert answer.returncode == 2
    assert "no_such_model.yaml: config file not found" in answer.stderr and "Nothing was launched" in answer.stderr


def test_when_the_config_is_invalid_then_launch_names_the_field_and_launches_nothing(tmp_path):
    configs = tmp_path / "configs"
    shutil.copytree(PROJECT_DIR / "configs", configs)
    bad = configs / "training" / "bad.yaml"
    bad.write_text(yaml.safe_dump({"extends": "xgboost.yaml", "model": {"params": {"n_estimator": 10}}}))
    (tmp_path / ".env").write_text(f"CONFIGS_DIR={configs}\n")
    answer = launch(str(bad), "--env-file", str(tmp_path / ".env"))
    assert answer.returncode == 2
    assert "bad.yaml" in answer.stderr and "n_estimator" in answer.stderr and "Nothing was launched" in answer.stderr


def test_when_the_config_is_outside_the_mounted_configs_then_launch_refuses(tmp_path):
    outside = tmp_path / "xgboost.yaml"
    outside.write_text(yaml.safe_dump({"extends": str(PROJECT_DIR / "configs" / "training" / "xgboost.yaml")}))
    answer = launch(str(outside))
    assert answer.returncode == 2
    assert "only sees configs under CONFIGS_DIR" in answer.stderr


def test_when_the_config_is_valid_but_the_stack_is_down_then_launch_says_how_to_start_it():
    answer = launch("configs/training/xgboost.yaml")
    assert answer.returncode == 1
    assert "does not answer" in answer.stderr and "make up" in answer.stderr


def test_make_launch_validates_before_launching():
    answer = make("launch", "CONFIG=configs/training/no_such_model.yaml", f"ENV_FILE={PROJECT_DIR}/.env.example")
    assert answer.returncode != 0
    assert "config file not found" in answer.stderr and "Nothing was launched" in answer.stderr


class _LoginChecker:
    """A stand-in for the stack's proxy: 401 unless the request carries the expected basic-auth login."""

    def __init__(self, user: str, password: str) -> None:
        import base64
        import http.server
        import threading

        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.seen: list[str | None] = []
        checker = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                checker.seen.append(self.headers.get("Authorization"))
                ok = self.headers.get("Authorization") == expected
                body = b'{"errors": [{"message": "behind the login"}]}' if ok else b"login required"
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def proxy_stand_in():
    checker = _LoginChecker("alice", "s3cret")
    yield checker
    checker.close()


def launch_at(url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("PROXY_USER", "PROXY_PASSWORD")}
    return subprocess.run([sys.executable, "-m", "pipelines.launch", "configs/training/xgboost.yaml", "--dagster-url", url, *args],
                          capture_output=True, text=True, cwd=PROJECT_DIR, timeout=120, env={**clean, **(env or {})}, check=False)


def test_launch_sends_the_proxys_login_from_the_env_file(proxy_stand_in, tmp_path):
    env_file = tmp_path / "stack.env"
    env_file.write_text("PROXY_USER=alice\nPROXY_PASSWORD=s3cret\n")
    answer = launch_at(proxy_stand_in.url, "--env-file", str(env_file))
    assert answer.returncode == 1 and "behind the login" in answer.stderr  # got past the proxy
    assert proxy_stand_in.seen and proxy_stand_in.seen[0].startswith("Basic ")


def test_when_the_login_is_wrong_or_missing_then_launch_says_which_variables_to_check(proxy_stand_in, tmp_path):
    env_file = tmp_path / "stack.env"
    env_file.write_text("PROXY_USER=alice\nPROXY_PASSWORD=wrong\n")
    wrong = launch_at(proxy_stand_in.url, "--env-file", str(env_file))
    assert wrong.returncode == 1 and "refused the login: PROXY_USER / PROXY_PASSWORD" in wrong.stderr
    missing = launch_at(proxy_stand_in.url, "--env-file", str(tmp_path / "absent.env"))
    assert missing.returncode == 1 and "(missing)" in missing.stderr
    from_environment = launch_at(proxy_stand_in.url, "--env-file", str(env_file), env={"PROXY_PASSWORD": "s3cret"})
    assert "behind the login" in from_environment.stderr  # the environment wins over the file
