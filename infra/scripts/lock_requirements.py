"""Write requirements/*.lock, with hashes, from pyproject.toml (`make lock`), with `uv pip compile`.

    python infra/scripts/lock_requirements.py [--upgrade] [--torch-wheels DIR]

| lock (input) | what | installed by |
|---|---|---|
| pip.lock (pip.in) | the pinned pip every venv and image upgrades to first | Makefile, Dockerfiles |
| dev.lock | `.[chronos,stack,dev]` without torch | `make venv-dev`, the S3 test stand-in |
| base.lock | `.` | `make venv`, the MLflow image |
| trainer.lock | `.[chronos,stack]` without torch | the trainer image, the Dagster image (as constraints) |
| dagster.lock, mlflow.lock, s3-standin.lock | the images' own requirements.txt | the Dagster and MLflow images, the S3 test stand-in |
| torch-cpu.lock | torch's CPU build, by the sha256 of the wheel(s) in --torch-wheels | TORCH_VARIANT=cpu |
| torch-cuda.lock (torch-cuda.in) | torch from PyPI with its CUDA runtime wheels (nvidia-*, triton) | TORCH_VARIANT=cuda |

Every lock carries the sha256 of each distribution of each pinned version, and everything installs
with `pip install --require-hashes`. The locks agree on every version: dev.lock is resolved first,
the others under its pins, so `make venv` after `make venv-dev` moves nothing. Existing locks are
the preferences (uv keeps their versions unless a requirement changed); `--upgrade` re-resolves to
the newest releases. Resolution is for CPython 3.11 on x86_64 Linux (manylinux_2_28), against PyPI
only: this machine's pip settings (find-links, extra indexes) do not leak into the locks.

torch is the exception. Its CPU build (`2.13.0+cpu`, from download.pytorch.org or a wheel on disk)
and its PyPI build (`2.13.0`, CUDA-enabled on Linux) share a version but not their dependencies:
the PyPI build pulls about 3 GB of nvidia-* wheels, the CPU build none. So dev.lock and
trainer.lock are resolved with the CPU build's metadata and leave torch out, and torch is installed
first, in its own hashed step, from the lock of the chosen variant (--no-deps: the lock lists
everything). The CPU lock's hash is computed from the wheel file itself (download.pytorch.org is
not reachable from every machine that locks), so `make lock` needs that wheel in --torch-wheels
(default services/trainer/wheels, where the offline image build also finds it).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
LOCKS = PROJECT_DIR / "requirements"
PLATFORM = ["--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28"]
BUILD_INPUT = "requirements/build.in"
"""The build backend (setuptools), locked with the rest, so that `pip install --no-build-isolation`
of this package needs nothing from the index that no hash covers."""
CPU_INPUT = "requirements/torch-cpu.in"
"""A constraint: resolve dev.lock and trainer.lock with the CPU build's dependencies."""
IMAGE_LOCKS = {
    "requirements/dagster.lock": "services/dagster/requirements.txt",
    "requirements/mlflow.lock": "services/mlflow/requirements.txt",
    "requirements/s3-standin.lock": "tests/system/images/s3/requirements.txt",
}
"""Images that install a few packages, each from its own lock, resolved under dev.lock's pins."""
CPU_WHEEL = "torch-{version}+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
COMPILE_COMMAND = "make lock"


def torch_version() -> str:
    """torch's pin in pyproject.toml, checked against the inputs that repeat it."""
    pyproject = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())
    for requirement in pyproject["project"]["optional-dependencies"]["chronos"]:
        match = re.fullmatch(r"torch==([0-9.]+)", requirement.replace(" ", ""))
        if match:
            version = match.group(1)
            break
    else:
        raise SystemExit("pyproject.toml: optional-dependencies.chronos has no exact 'torch==X.Y.Z' pin")
    for path, expected in ((CPU_INPUT, f"torch=={version}+cpu"), ("requirements/torch-cuda.in", f"torch=={version}")):
        pins = [line.strip() for line in (PROJECT_DIR / path).read_text().splitlines() if line.strip() and not line.startswith("#")]
        if pins != [expected]:
            raise SystemExit(f"{path}: expected the single line '{expected}' (pyproject.toml pins torch=={version}), found {pins}")
    return version


def uv() -> str:
    found = shutil.which("uv", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        raise SystemExit("uv is not installed: `make venv-dev` installs it (pinned in pyproject.toml's dev extra)")
    return found


def compile_lock(output: Path, inputs: list[str], *options: str, upgrade: bool) -> None:
    command = [uv(), "pip", "compile", *inputs, *PLATFORM, "--generate-hashes", "--system-certs", "--quiet",
               "--custom-compile-command", COMPILE_COMMAND, "--output-file", str(output), *options]
    if upgrade:
        command.append("--upgrade")
    subprocess.run(command, check=True, cwd=PROJECT_DIR, env={**os.environ, "UV_NO_CONFIG": "1"})
    pins = sum(1 for line in output.read_text().splitlines() if re.match(r"^[A-Za-z0-9]", line))
    print(f"{output.relative_to(PROJECT_DIR)}: {pins} pins")


def cpu_wheels(directories: list[Path], version: str) -> list[Path]:
    name = CPU_WHEEL.format(version=version)
    found = sorted({path.resolve() for directory in directories for path in directory.glob(name)})
    if not found:
        where = ", ".join(str(directory) for directory in directories)
        raise SystemExit(
            f"make lock needs torch's CPU wheel {name} (its sha256 goes into requirements/torch-cpu.lock) in one of: "
            f"{where}. Download it from https://download.pytorch.org/whl/cpu/torch/ into services/trainer/wheels/."
        )
    return found


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_cpu_lock(output: Path, version: str, wheels: list[Path]) -> None:
    hashes = [f"--hash=sha256:{digest}" for digest in sorted({sha256(wheel) for wheel in wheels})]
    header = (
        "# torch's CPU build (TORCH_VARIANT=cpu), installed with --no-deps before dev.lock or trainer.lock,\n"
        "# which hold its dependencies. The hash is the sha256 of the wheel file `make lock` found on disk\n"
        f"# ({CPU_WHEEL.format(version=version)}, the name download.pytorch.org/whl/cpu publishes):\n"
        "# a download installs only if it is that same file. Written by `make lock`.\n"
    )
    output.write_text(header + " \\\n    ".join([f"torch=={version}+cpu", *hashes]) + "\n")
    print(f"{output.relative_to(PROJECT_DIR)}: torch=={version}+cpu, {len(hashes)} hash(es)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--upgrade", action="store_true", help="re-resolve to the newest releases instead of keeping the locks' versions")
    parser.add_argument("--torch-wheels", type=Path, action="append",
                        help="folder holding torch's CPU wheel (repeatable; default services/trainer/wheels and $TORCH_WHEEL_DIR)")
    args = parser.parse_args(argv)
    version = torch_version()
    folders = args.torch_wheels or [PROJECT_DIR / "services" / "trainer" / "wheels",
                                    *([Path(os.environ["TORCH_WHEEL_DIR"])] if os.environ.get("TORCH_WHEEL_DIR") else [])]
    wheels = cpu_wheels(folders, version)

    with tempfile.TemporaryDirectory() as scratch:
        wheel_dir = Path(scratch)  # only the CPU wheel(s): uv sees nothing else from those folders
        for wheel in wheels:  # the same file may lie in two folders
            if not (wheel_dir / wheel.name).exists():
                (wheel_dir / wheel.name).symlink_to(wheel)
        cpu_torch = ["--find-links", str(wheel_dir), "--constraint", CPU_INPUT, "--no-emit-package", "torch"]
        under_dev = ["--constraint", "requirements/dev.lock"]

        compile_lock(LOCKS / "pip.lock", ["requirements/pip.in"], upgrade=args.upgrade)
        compile_lock(LOCKS / "dev.lock", ["pyproject.toml", BUILD_INPUT, "--extra", "chronos", "--extra", "stack", "--extra", "dev"],
                     *cpu_torch, upgrade=args.upgrade)
        compile_lock(LOCKS / "base.lock", ["pyproject.toml", BUILD_INPUT], *under_dev, upgrade=args.upgrade)
        compile_lock(LOCKS / "trainer.lock", ["pyproject.toml", BUILD_INPUT, "--extra", "chronos", "--extra", "stack"],
                     *cpu_torch, *under_dev, upgrade=args.upgrade)
        compile_lock(LOCKS / "torch-cuda.lock", ["requirements/torch-cuda.in"], *under_dev, upgrade=args.upgrade)
        for output, requirements in IMAGE_LOCKS.items():
            compile_lock(PROJECT_DIR / output, [requirements], *under_dev, upgrade=args.upgrade)
    write_cpu_lock(LOCKS / "torch-cpu.lock", version, wheels)


if __name__ == "__main__":
    main()
