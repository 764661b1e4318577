"""The locks (`make lock`): hashed, in agreement with each other, and installed only hash-checked.

Static checks; `make venv-dev` and the image builds of the system test install them for real.
"""

from __future__ import annotations

import re
import tomllib

import pytest

from tests.conftest import PROJECT_DIR

LOCKS = PROJECT_DIR / "requirements"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")


def entries(path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a requirements file with continuation lines."""
    text = path.read_text().replace("\\\n", " ")
    found = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = PIN.match(line.strip())
        assert match, f"{path.name}: not an exact pin: {line.strip()[:80]}"
        name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
        found[name] = (match.group(3), re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
    return found


ALL_LOCKS = sorted(LOCKS.glob("*.lock"))


def torch_pin() -> str:
    pyproject = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())
    return next(r.split("==")[1] for r in pyproject["project"]["optional-dependencies"]["chronos"] if r.startswith("torch=="))


@pytest.mark.parametrize("lock", ALL_LOCKS, ids=lambda p: p.name)
def test_every_pin_of_every_lock_carries_hashes(lock):
    pins = entries(lock)
    assert pins, lock.name
    assert not [name for name, (_, hashes) in pins.items() if not hashes], f"{lock.name}: pins without --hash"


def test_the_locks_agree_on_every_version():
    dev = entries(LOCKS / "dev.lock")
    for lock in ALL_LOCKS:
        if lock.name in ("dev.lock", "torch-cpu.lock"):
            continue
        other = entries(lock)
        moved = {name: (version, dev[name][0]) for name, (version, _) in other.items() if name in dev and dev[name][0] != version}
        assert not moved, f"{lock.name} disagrees with dev.lock: {moved}"
        if lock.name not in ("torch-cuda.lock", "pip.lock"):
            assert set(other) <= set(dev), f"{lock.name} pins what dev.lock does not: {sorted(set(other) - set(dev))}"


def test_torch_is_installed_from_its_own_lock_per_build():
    version = torch_pin()
    for name in ("dev.lock", "trainer.lock", "base.lock"):
        assert "torch" not in entries(LOCKS / name), f"{name}: torch belongs in torch-cpu.lock / torch-cuda.lock"
    cpu = entries(LOCKS / "torch-cpu.lock")
    assert list(cpu) == ["torch"] and cpu["torch"][0] == f"{version}+cpu"
    cuda = entries(LOCKS / "torch-cuda.lock")
    assert cuda["torch"][0] == version and len(cuda["torch"][1]) > 1  # every PyPI file of that release
    assert not [name for name in entries(LOCKS / "dev.lock") if name.startswith("nvidia-cu") or name == "triton"], \
        "dev.lock pulls CUDA runtime wheels: it must be resolved with torch's CPU build"
    assert "nvidia-cudnn-cu13" in cuda or any(name.startswith("nvidia-") for name in cuda)


INSTALLERS = sorted([*PROJECT_DIR.glob("services/**/Dockerfile"), *PROJECT_DIR.glob("tests/system/images/**/Dockerfile"), PROJECT_DIR / "Makefile"])


@pytest.mark.parametrize("path", INSTALLERS, ids=lambda p: p.relative_to(PROJECT_DIR).as_posix())
def test_every_install_from_an_index_is_hash_checked(path):
    text = path.read_text().replace("\\\n", " ")
    installs = re.findall(r"pip install[^;&|\n]*", text)
    unchecked = [command for command in installs
                 if "--require-hashes" not in command and "$(PIP_HASHED)" not in command
                 and not re.search(r"--no-deps\b.*(-e \.|--no-cache-dir \.|\s\.$)", command.strip())]
    assert not unchecked, f"{path.name}: installs without --require-hashes: {unchecked}"
    hashed_macro = re.search(r"^PIP_HASHED = (.*)$", text, re.MULTILINE)
    if "$(PIP_HASHED)" in text:
        assert hashed_macro and "--require-hashes" in hashed_macro.group(1)
