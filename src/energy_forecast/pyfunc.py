"""The contract model MLflow logs, registers and serves: any family behind the forecast contract.

``mlflow.pyfunc.load_model("models:/steel_industry-day_ahead@champion").predict(frame)`` takes
and returns the frames of :mod:`energy_forecast.contract`, whichever family is champion. The
model folder carries what it needs to stand on its own:

* ``artifacts/forecaster/``: the saved model (JSON manifest and native files, no pickle);
* ``code/energy_forecast/``: this package (``code_paths``), so loading needs no checkout;
* ``python_model.py``: the "model from code" entry point (:mod:`energy_forecast.pyfunc_entry`);
* the signature: the contract's input and output schema, the same for every family of a data
  set and task, and the model's lookback in its metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from energy_forecast.config import ForecastProblem
from energy_forecast.contract import forecast, output_columns
from energy_forecast.frames import ORIGIN, STEP, TIMESTAMP
from energy_forecast.models.registry import load_forecaster

__all__ = ["ContractModel", "contract_signature"]

ARTIFACT = "forecaster"


def contract_signature(problem: ForecastProblem) -> ModelSignature:
    """Input and output schema of the contract (the same for every model of this problem's data)."""
    inputs = [ColSpec("datetime", ORIGIN, required=False), ColSpec("datetime", TIMESTAMP), ColSpec("double", problem.target)]
    inputs += [ColSpec("string" if c.kind == "categorical" else "double", c.name) for c in problem.inputs]
    outputs = [ColSpec("datetime", ORIGIN), ColSpec("long", STEP), ColSpec("datetime", TIMESTAMP)]
    outputs += [ColSpec("double", column) for column in output_columns(problem)[3:]]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


class ContractModel(mlflow.pyfunc.PythonModel):
    """MLflow's view of a saved :class:`~energy_forecast.models.base.Forecaster`."""

    def load_context(self, context: Any) -> None:
        self.forecaster = load_forecaster(Path(context.artifacts[ARTIFACT]))

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return forecast(self.forecaster, model_input)
