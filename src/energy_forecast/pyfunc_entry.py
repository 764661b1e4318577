"""MLflow "models from code" entry point for families logged as pyfunc (ensembles, Chronos-2).

MLflow stores this file with the model and runs it on load, instead of unpickling an object.
"""

import mlflow

from energy_forecast.tracking import ForecasterPyfunc

mlflow.models.set_model(ForecasterPyfunc())
