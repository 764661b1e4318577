"""Chronos-2 family (``model.type: chronos2``), in small modules with one job each:

* :mod:`.weights`: find the weights (local directory, ``s3://`` prefix, Hugging Face id);
* :mod:`.frames`: series in chronos' long format, and its answer as a forecast frame;
* :mod:`.finetune`: ``Chronos2Pipeline.fit`` on the training period, full or LoRA;
* :mod:`.forecaster`: the family behind the common :class:`Forecaster` interface.
"""

from energy_forecast.models.chronos2.forecaster import Chronos2Forecaster, Chronos2Params
from energy_forecast.models.chronos2.weights import WeightsUnavailableError

__all__ = ["Chronos2Forecaster", "Chronos2Params", "WeightsUnavailableError"]
