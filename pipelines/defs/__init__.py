"""The code location's definitions, one module per concern: ingest, models, forecasts, monitoring."""
