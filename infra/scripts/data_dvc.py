"""`make data`, after the download or check: version the CSV with DVC and push it when the stack is up.

    python infra/scripts/data_dvc.py data/raw/Steel_industry_data.csv

* A CSV outside ``data/raw/`` (``DATA_PATH=/elsewhere/...``) is copied there first: DVC tracks
  files inside the repository.
* ``dvc add`` writes ``data/raw/<name>.dvc`` (commit it: it pins the data by md5).
* ``dvc push`` sends it to the default remote ``stack`` (s3://dvc/ on the stack's MinIO) when
  that remote's endpoint answers; the endpoint and keys are in ``.dvc/config.local``, written by
  ``make up``. Otherwise it says how to push later.

Without DVC installed (it comes with ``make venv-dev``) it says so and leaves the data as it is.
"""

from __future__ import annotations

import configparser
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[2]
RAW = REPO / "data" / "raw"
REMOTE = "stack"


def dvc_executable() -> str | None:
    beside = Path(sys.executable).parent / "dvc"
    return str(beside) if beside.is_file() else shutil.which("dvc")


def remote_endpoint(config_local: Path) -> str | None:
    """The ``endpointurl`` of the remote ``stack`` in .dvc/config.local, if any."""
    if not config_local.is_file():
        return None
    parser = configparser.ConfigParser(strict=False)
    parser.read_string("\n".join(line.strip() for line in config_local.read_text().splitlines()))
    for section in parser.sections():
        if section.strip().strip("'") == f'remote "{REMOTE}"':
            return parser[section].get("endpointurl")
    return None


def answers(url: str, timeout: float = 2.0) -> bool:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def run_dvc(*args: str) -> None:
    answer = subprocess.run(list(args), cwd=REPO, check=False)
    if answer.returncode != 0:
        raise SystemExit(f"error: `dvc {' '.join(args[1:])}` failed with status {answer.returncode} (its message is above)")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    source = Path(argv[0]).resolve()
    dvc = dvc_executable()
    if dvc is None:
        print("DVC is not installed (`make venv-dev` installs it): the data is not versioned", file=sys.stderr)
        return 0
    tracked = RAW / source.name
    if source != tracked.resolve():
        tracked.parent.mkdir(parents=True, exist_ok=True)
        if not tracked.is_file() or tracked.read_bytes() != source.read_bytes():
            shutil.copyfile(source, tracked)
            print(f"copied {source} to {tracked.relative_to(REPO)} (DVC tracks files inside the repository)")
    relative = str(tracked.relative_to(REPO))
    run_dvc(dvc, "add", "--quiet", relative)
    print(f"dvc: {relative} tracked by {relative}.dvc (commit that file)")
    endpoint = remote_endpoint(REPO / ".dvc" / "config.local")
    if endpoint is None:
        print("dvc: no endpoint for the remote 'stack' yet: `make up` writes it, then `make data` (or `dvc push`) pushes")
        return 0
    if not answers(endpoint):
        print(f"dvc: the stack's S3 API ({endpoint}) does not answer: not pushed; after `make up`, run `make data` or `dvc push`")
        return 0
    run_dvc(dvc, "push", f"{relative}.dvc")
    print(f"dvc: pushed {relative} to the remote 'stack' ({endpoint})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
