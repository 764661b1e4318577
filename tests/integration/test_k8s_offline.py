"""infra/scripts/k8s_validate.py as CI runs it: every manifest and the values' run Jobs, with no network.

In a network namespace of its own (``unshare -rn``: only a loopback, down) where the machine allows
one, so a schema fetched from the internet would fail the test. Slower than the unit tests of
tests/unit/test_k8s_manifests.py only by the start-up of a fresh interpreter importing Dagster.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

from tests.conftest import PROJECT_DIR
from tests.unit.test_k8s_manifests import MANIFESTS, SCRIPT, k8s


def test_the_cli_validates_everything_without_a_network():
    command = [sys.executable, str(SCRIPT)]
    if shutil.which("unshare") and subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0:
        command = ["unshare", "-rn", *command]
    result = subprocess.run(command, capture_output=True, text=True, cwd=PROJECT_DIR, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ok  ") == sum(len(k8s.load_documents(path)) for path in MANIFESTS) + 2, result.stdout
