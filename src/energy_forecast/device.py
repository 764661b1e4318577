"""Choose where a model runs, explicitly and visibly.

``device: auto`` takes the GPU when one is usable by that model family and the CPU otherwise,
with the reason logged and recorded (MLflow tags ``device``, ``gpu_used``, ``device_reason``).
``device: cuda`` is a demand: if it cannot be met the run fails with a clear error instead of
quietly running elsewhere. Detection never relies on catching arbitrary errors.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["DeviceChoice", "DeviceUnavailableError", "choose_device", "driver_cuda_available", "torch_cuda_available"]

logger = logging.getLogger(__name__)


class DeviceUnavailableError(RuntimeError):
    """``device: cuda`` was requested but this model family or machine cannot use a GPU."""


@dataclass(frozen=True)
class DeviceChoice:
    requested: Literal["auto", "cpu", "cuda"]
    device: Literal["cpu", "cuda"]
    reason: str

    @property
    def gpu_used(self) -> bool:
        return self.device == "cuda"

    def as_tags(self) -> dict[str, str]:
        return {
            "device": self.device,
            "gpu_used": str(self.gpu_used).lower(),
            "device_requested": self.requested,
            "device_reason": self.reason,
        }


def torch_cuda_available() -> tuple[bool, str]:
    """Whether PyTorch can use a CUDA GPU (for the torch-based families), and why not."""
    import torch

    if torch.cuda.is_available():
        return True, f"torch sees {torch.cuda.device_count()} CUDA device(s)"
    if torch.version.cuda is None:
        return False, "this PyTorch build is CPU-only"
    return False, "torch reports no CUDA device"


def driver_cuda_available() -> tuple[bool, str]:
    """Whether the NVIDIA driver lists a GPU (for libraries with their own CUDA build).

    Asks ``nvidia-smi -L`` rather than importing torch, which costs seconds per run.
    """
    nvidia_smi = shutil.which("nvidia-smi")
    if nvidia_smi is None:
        return False, "no NVIDIA driver found (nvidia-smi is not on PATH)"
    listing = subprocess.run([nvidia_smi, "-L"], capture_output=True, text=True, timeout=20, check=False)
    if listing.returncode == 0 and "GPU" in listing.stdout:
        return True, "nvidia-smi lists a GPU"
    return False, "nvidia-smi lists no GPU"


def choose_device(
    requested: Literal["auto", "cpu", "cuda"],
    *,
    family: str,
    family_gpu: bool | str,
    probe: Callable[[], tuple[bool, str]] = driver_cuda_available,
) -> DeviceChoice:
    """Resolve ``requested`` for a model family.

    Args:
        requested: the YAML's ``model.device``.
        family: model family name, for messages.
        family_gpu: True if the family can use a GPU, or a string saying why it cannot.
        probe: how to ask whether a GPU is usable.
    """
    if requested == "cpu":
        return DeviceChoice("cpu", "cpu", "the config asks for the CPU")
    if family_gpu is not True:
        why = family_gpu if isinstance(family_gpu, str) else f"{family} has no GPU support"
        if requested == "cuda":
            raise DeviceUnavailableError(f"model.device is 'cuda' but {why}; use 'auto' or 'cpu'")
        choice = DeviceChoice("auto", "cpu", why)
    else:
        available, how = probe()
        if requested == "cuda" and not available:
            raise DeviceUnavailableError(f"model.device is 'cuda' but no GPU is usable ({how}); use 'auto' or 'cpu'")
        choice = DeviceChoice(requested, "cuda" if available else "cpu", how)
    if requested == "auto" and not choice.gpu_used:
        logger.info("%s: device auto -> CPU (%s)", family, choice.reason)
    else:
        logger.info("%s: device %s -> %s (%s)", family, requested, choice.device, choice.reason)
    return choice
