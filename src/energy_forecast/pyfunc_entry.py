"""MLflow "model from code" entry point of the contract model (:mod:`energy_forecast.pyfunc`).

MLflow stores this file with the model and runs it on load, instead of unpickling an object; the
package itself travels in the model's ``code/`` folder.
"""

import mlflow

from energy_forecast.pyfunc import ContractModel

mlflow.models.set_model(ContractModel())
