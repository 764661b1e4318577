"""Name -> class registry of model families.

Families register with :func:`register`; configs name them by ``model.type``. An unknown name or
parameter raises :class:`ModelConfigError` listing the valid choices. Nothing here branches on a
model name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from energy_forecast.config import ForecastProblem, ModelConfig
from energy_forecast.device import DeviceChoice, choose_device
from energy_forecast.models.base import MANIFEST, SAVED_FORMAT, Forecaster, ModelParams

__all__ = [
    "ModelConfigError",
    "available_models",
    "create_model",
    "load_forecaster",
    "model_class",
    "parse_params",
    "register",
]

_REGISTRY: dict[str, type[Forecaster]] = {}

F = TypeVar("F", bound=type[Forecaster])


class ModelConfigError(ValueError):
    """``model.type`` or ``model.params`` is invalid. ``field`` is the dotted location."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def register(cls: F) -> F:
    """Class decorator: make ``cls`` selectable as ``model.type: <cls.name>``."""
    name = cls.name
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"model type '{name}' is registered twice: {_REGISTRY[name].__qualname__} and {cls.__qualname__}")
    _REGISTRY[name] = cls
    return cls


def available_models(*, include_baselines: bool = True) -> list[str]:
    return sorted(name for name, cls in _REGISTRY.items() if include_baselines or not cls.is_baseline)


def model_class(name: str, field: str = "model.type") -> type[Forecaster]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelConfigError(field, f"unknown model type '{name}'; valid types: {', '.join(available_models())}") from None


def parse_params(name: str, params: dict[str, Any], field: str = "model") -> ModelParams:
    """Validate ``params`` against the family's schema, merged onto its defaults."""
    cls = model_class(name, f"{field}.type")
    try:
        return cls.params_class.model_validate(params)
    except ValidationError as error:
        problems, unknown = [], []
        for problem in error.errors():
            location = ".".join(str(part) for part in problem["loc"])
            if problem["type"] == "extra_forbidden":
                unknown.append(f"'{location}'")
            else:
                message = problem["msg"].removeprefix("Value error, ")
                prefixed = not location or message.startswith(f"{location}.")
                problems.append(message if prefixed else f"{location}: {message}")
        if unknown:
            valid = ", ".join(sorted(cls.params_class.model_fields))
            noun = "parameter" if len(unknown) == 1 else "parameters"
            problems.insert(0, f"unknown {noun} {', '.join(unknown)} for {name}; valid parameters: {valid}")
        raise ModelConfigError(f"{field}.params", "; ".join(problems)) from None


def create_model(model: ModelConfig, problem: ForecastProblem) -> Forecaster:
    """Validate params, choose the device, and build an unfitted model. Cheap: no data, no weights."""
    cls = model_class(model.type)
    params = parse_params(model.type, model.params)
    cls.check_environment(params)
    device = choose_device(
        model.device, family=model.type, family_gpu=cls.gpu_support(params), probe=cls.gpu_probe()
    )
    return cls(params, problem, device)


def load_forecaster(directory: Path | str) -> Forecaster:
    """A model saved by :meth:`Forecaster.save`, rebuilt from its JSON manifest and native files.

    The manifest names the family by its registry name, never by a Python class, so renaming or
    moving a class does not break saved models. The model is restored for the CPU; families that
    can use a GPU for forecasting (Chronos-2) choose their device when their weights load.

    Raises:
        ValueError: the folder holds no saved model, or one of an unknown format or family.
    """
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise ValueError(f"{directory}: no saved model here ({MANIFEST} is missing)")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != SAVED_FORMAT:
        raise ValueError(f"{path}: saved-model format {manifest.get('format')!r}; this version reads format {SAVED_FORMAT}")
    cls = model_class(manifest["family"], f"{path}: family")
    params = cls.params_class.model_validate(manifest["params"])
    problem = ForecastProblem.model_validate(manifest["problem"])
    device = DeviceChoice("cpu", "cpu", "restored from a saved model; forecasting on the CPU")
    return cls(params, problem, device).restore(directory, manifest)
