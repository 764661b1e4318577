"""Model families behind one interface, selected by name through the registry.

Importing this package registers every family. Heavy libraries (xgboost, torch …) are imported
only when a model is fitted or loaded.
"""

from energy_forecast.config import ForecastProblem
from energy_forecast.models import baselines, catboost, chronos2, ensembles, lightgbm, mlp, xgboost  # noqa: F401  (registration)
from energy_forecast.models.base import Forecaster, ModelParams, ValidationData
from energy_forecast.models.registry import (
    ModelConfigError,
    available_models,
    create_model,
    load_forecaster,
    model_class,
    parse_params,
    register,
)

__all__ = [
    "ForecastProblem",
    "Forecaster",
    "ModelConfigError",
    "ModelParams",
    "ValidationData",
    "available_models",
    "create_model",
    "load_forecaster",
    "model_class",
    "parse_params",
    "register",
]
