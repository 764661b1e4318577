"""Energy-use forecasting for industrial sites: a plain library under a thin Dagster layer.

    from energy_forecast.training import load_config, train
    result = train(load_config("configs/training/xgboost.yaml"))
"""

__version__ = "0.1.0"
