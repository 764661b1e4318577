"""Write requirements/{base,dev,trainer}.lock from a fresh resolution of pyproject.toml (`make lock`)."""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

TARGETS = {"dev": ".[chronos,stack,dev]", "base": ".", "trainer": ".[chronos,stack]"}
"""dev first: the other sets are resolved under its pins, so that every lock agrees on every version
(`make venv` after `make venv-dev` must not move a package). trainer: what the trainer image
(services/trainer) installs: every model family and the stack tools."""
SUPERSET = "dev"


def main() -> None:
    for name, spec in TARGETS.items():
        with tempfile.TemporaryDirectory() as scratch:
            report = Path(scratch) / "report.json"
            constraints = [] if name == SUPERSET else ["--constraint", f"requirements/{SUPERSET}.lock"]
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report), *constraints, spec],
                check=True,
            )
            items = json.loads(report.read_text())["install"]
        pins = sorted(
            (f"{i['metadata']['name']}=={i['metadata']['version'].split('+')[0]}" for i in items if i["metadata"]["name"] != "energy-forecast"),
            key=str.lower,
        )
        header = (
            f"# Fully resolved pins for `pip install -e {spec}` (Python 3.11, Linux).\n"
            "# Regenerate with `make lock`. torch resolves to the local CPU wheel where pip has one (find-links).\n"
        )
        Path(f"requirements/{name}.lock").write_text(header + "\n".join(pins) + "\n")
        print(f"requirements/{name}.lock: {len(pins)} pins")


if __name__ == "__main__":
    main()
