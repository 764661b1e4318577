"""The stack's .env: create it with random secrets, or check that it is complete (`make up`).

    python3 infra/scripts/stack_env.py create .env .env.example
    python3 infra/scripts/stack_env.py check .env .env.example
    python3 infra/scripts/stack_env.py get .env MLFLOW_PORT
    python3 infra/scripts/stack_env.py dvc-local .env .dvc/config.local

Standard library only: it runs before any virtual environment exists. Every variable that
.env.example lists must be present and non-empty in .env, and no value may still be the
placeholder `change-me`. Exit status 2 and a message naming each variable otherwise; nothing is
written then.

`dvc-local` points the DVC remote `stack` (.dvc/config) at the stack's S3 API as the host sees it
(MinIO's published port on 127.0.0.1, or S3_ENDPOINT_URL itself when that is not the in-stack
MinIO) with DVC's own access key (DVC_S3_ACCESS_KEY_ID: the bucket `dvc` only). Only that
remote's section of the file is rewritten.
"""

from __future__ import annotations

import re
import secrets
import sys
from pathlib import Path

PLACEHOLDER = "change-me"
LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
EXIT_BAD_ENV = 2
DVC_REMOTE = "stack"
IN_STACK_MINIO = "http://minio:9000"


def parse(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; comments and blank lines skipped; surrounding quotes removed."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = LINE.match(line)
        if match:
            key, value = match.groups()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[key] = value
    return values


def problems(env: dict[str, str], example: dict[str, str]) -> list[str]:
    found = []
    for key in example:
        if key not in env:
            found.append(f"{key} is missing")
        elif not env[key]:
            found.append(f"{key} is empty")
        elif env[key] == PLACEHOLDER:
            found.append(f"{key} is still '{PLACEHOLDER}'")
    return found


def generated(key: str) -> str:
    """An identifier for user names and access keys, a URL-safe secret for everything else."""
    if key.endswith(("_USER", "_ACCESS_KEY_ID")):
        return "ef" + secrets.token_hex(8)
    return secrets.token_urlsafe(24)


def create(env_path: Path, example_path: Path) -> None:
    lines = []
    for line in example_path.read_text().splitlines():
        match = LINE.match(line) if not line.lstrip().startswith("#") else None
        if match and match.group(2) == PLACEHOLDER:
            line = f"{match.group(1)}={generated(match.group(1))}"
        lines.append(line)
    env_path.write_text("\n".join(lines) + "\n")
    env_path.chmod(0o600)


def host_s3_endpoint(env: dict[str, str]) -> str:
    endpoint = env.get("S3_ENDPOINT_URL", IN_STACK_MINIO).rstrip("/")
    if endpoint == IN_STACK_MINIO:
        return f"http://127.0.0.1:{env.get('MINIO_API_PORT', '9000')}"
    return endpoint


def write_dvc_local(env: dict[str, str], path: Path) -> None:
    """Replace the ``remote "stack"`` section of a DVC config file, keeping everything else."""
    header = re.compile(r"^\s*\[")
    ours = re.compile(r"^\s*\[\s*['\"]?remote\s+" + re.escape(f'"{DVC_REMOTE}"') + r"['\"]?\s*\]")
    kept: list[str] = []
    skipping = False
    for line in path.read_text().splitlines() if path.is_file() else []:
        if header.match(line):
            skipping = bool(ours.match(line))
        if not skipping:
            kept.append(line)
    section = [
        f"['remote \"{DVC_REMOTE}\"']",
        f"    endpointurl = {host_s3_endpoint(env)}",
        f"    access_key_id = {env['DVC_S3_ACCESS_KEY_ID']}",
        f"    secret_access_key = {env['DVC_S3_SECRET_ACCESS_KEY']}",
        f"    region = {env.get('S3_REGION', 'us-east-1')}",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([*kept, *section]) + "\n")
    path.chmod(0o600)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] not in ("create", "check", "get", "dvc-local"):
        print(__doc__, file=sys.stderr)
        return EXIT_BAD_ENV
    command, env_path = argv[0], Path(argv[1])
    if command == "get":
        values = parse(env_path)
        if argv[2] not in values:
            print(f"error: {env_path} has no {argv[2]}", file=sys.stderr)
            return EXIT_BAD_ENV
        print(values[argv[2]])
        return 0
    if command == "dvc-local":
        env = parse(env_path)
        missing = [key for key in ("DVC_S3_ACCESS_KEY_ID", "DVC_S3_SECRET_ACCESS_KEY") if not env.get(key)]
        if missing:
            print(f"error: {env_path} lacks {', '.join(missing)}", file=sys.stderr)
            return EXIT_BAD_ENV
        write_dvc_local(env, Path(argv[2]))
        print(f"DVC remote '{DVC_REMOTE}' -> {host_s3_endpoint(env)} ({argv[2]})")
        return 0
    example_path = Path(argv[2])
    if not example_path.is_file():
        print(f"error: {example_path} not found", file=sys.stderr)
        return EXIT_BAD_ENV
    if command == "create":
        if env_path.exists():
            print(f"error: {env_path} exists; not overwritten", file=sys.stderr)
            return EXIT_BAD_ENV
        create(env_path, example_path)
        print(f"created {env_path} with random secrets (keep it; it is git-ignored)")
        return 0
    if not env_path.is_file():
        print(f"error: {env_path} not found", file=sys.stderr)
        return EXIT_BAD_ENV
    found = problems(parse(env_path), parse(example_path))
    if found:
        print(f"error: {env_path} is incomplete; nothing was started:", file=sys.stderr)
        for item in found:
            print(f"  - {item}", file=sys.stderr)
        print(f"Add them as in {example_path}, or move {env_path} away and run `make up` to generate a new one.", file=sys.stderr)
        return EXIT_BAD_ENV
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
