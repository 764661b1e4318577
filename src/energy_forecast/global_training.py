"""Train, backtest and save a global model on a panel: ``energy-forecast train-global``.

The training YAML gives the feature recipe, split, task and the family's parameters (its
``model.type`` must be ``lightgbm`` or ``xgboost``); the data YAML gives the panel. Every series is
cut at the YAML's split bounds; the model is fitted on every series' training period, early-stopped
on validation, and scored on the test period per series and volume-weighted
(:mod:`energy_forecast.panel_backtest`). The saved folder is what Dagster's ``sites.global_model``
reads.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from energy_forecast.config import DataConfig, TrainingConfig
from energy_forecast.data.panel import load_panel
from energy_forecast.models.global_boosted import GlobalBoostedModel, Scaling
from energy_forecast.panel_backtest import attach_panel_actuals, score_panel, split_panel

__all__ = ["GlobalResult", "train_global"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GlobalResult:
    model: GlobalBoostedModel
    per_series: pd.DataFrame
    aggregate: dict[str, float]
    fit_seconds: float


def train_global(
    config: TrainingConfig, data: DataConfig, *, scaling: Scaling = "mean", train_origin_every: str | None = None, out: Path | None = None
) -> GlobalResult:
    """Fit one model across the panel ``data`` with ``config``'s recipe; backtest; save to ``out``.

    Raises:
        ValueError: the model family is not a GBDT, or a series does not fit the split (named).
    """
    if config.model.type not in ("lightgbm", "xgboost"):
        raise ValueError(f"{config.source}: model.type {config.model.type!r}: global models are lightgbm or xgboost")
    panel = load_panel(data)
    problem = config.problem.replace(target=data.target, target_min=data.target_min, frequency=data.frequency,
                                     covariates=tuple(data.covariates), available_covariates=tuple(data.covariates))
    splits = split_panel(panel.series, config.split, config.task, min_history=problem.features.lookback)
    model = GlobalBoostedModel(config.model.type, config.model.params, problem, scaling=scaling, train_origin_every=train_origin_every)  # type: ignore[arg-type]
    started = time.perf_counter()
    model.fit({s: sp.history for s, sp in splits.items()}, {s: (sp.through_validation, sp.validation_origins) for s, sp in splits.items()})
    fit_seconds = time.perf_counter() - started
    forecast = model.predict({s: sp.through_test for s, sp in splits.items()}, {s: sp.test_origins for s, sp in splits.items()})
    forecast = attach_panel_actuals(forecast, panel.series, problem.target)
    per_series, aggregate = score_panel(forecast, {s: sp.history for s, sp in splits.items()}, problem.target, problem.steps_per("7D"))
    if out is not None:
        model.save(out)
        per_series.to_csv(Path(out) / "per_series_test_metrics.csv")
        (Path(out) / "test_metrics.json").write_text(json.dumps({**aggregate, "fit_seconds": fit_seconds}, indent=1))
    logger.info("global %s on %d series: volume-weighted test RMSE %.3f, fitted in %.1f s",
                config.model.type, len(panel), aggregate["volume_weighted_rmse"], fit_seconds)
    return GlobalResult(model=model, per_series=per_series, aggregate=aggregate, fit_seconds=fit_seconds)
