"""Loading and validating series described by a data YAML, and a synthetic stand-in for tests."""

from energy_forecast.data.loading import DataValidationError, SeriesData, file_sha256, load_series

__all__ = ["DataValidationError", "SeriesData", "file_sha256", "load_series"]
