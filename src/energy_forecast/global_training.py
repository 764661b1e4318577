"""Train, backtest and save a global model on a panel: ``energy-forecast train-global``.

The training YAML gives the feature recipe, split, task and the family's parameters (its
``model.type`` is ``lightgbm`` or ``xgboost``, or ``voting`` / ``stacking`` over members of those
two: :mod:`energy_forecast.models.global_ensemble`); the data YAML gives the panel. Every series is
cut at the YAML's split bounds; the model is fitted on every series' training period, early-stopped
on validation, and scored on the test period per series and volume-weighted
(:mod:`energy_forecast.panel_backtest`); an ensemble's members are scored on the same rows, so its
gain over its best member is measured. The saved folder is what Dagster's ``sites.global_model``
reads.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from energy_forecast.config import DataConfig, TrainingConfig
from energy_forecast.data.panel import PanelData, load_panel
from energy_forecast.frames import ACTUAL, PREDICTION
from energy_forecast.models.global_boosted import GlobalBoostedModel, Scaling
from energy_forecast.models.global_ensemble import GLOBAL_FAMILIES, GlobalEnsemble, WeightsBy
from energy_forecast.panel_backtest import attach_panel_actuals, score_panel, split_panel
from energy_forecast.plots import per_series_png
from energy_forecast.tracking import Tracker, flatten, git_commit

__all__ = ["GlobalResult", "train_global"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GlobalResult:
    model: GlobalBoostedModel | GlobalEnsemble
    per_series: pd.DataFrame
    aggregate: dict[str, float]
    fit_seconds: float
    members: dict[str, dict[str, float]] = field(default_factory=dict)
    """An ensemble's members: each one's volume-weighted test metrics on the same rows."""


def train_global(
    config: TrainingConfig,
    data: DataConfig,
    *,
    scaling: Scaling = "mean",
    train_origin_every: str | None = None,
    weights_by: WeightsBy = "panel",
    out: Path | None = None,
    tracker: Tracker | None = None,
) -> GlobalResult:
    """Fit one model (or a panel ensemble) across the panel ``data`` with ``config``'s recipe; backtest; save to ``out``.

    With a ``tracker``, all of it is one MLflow run in the YAML's experiment (tag ``kind: global``):
    the parameters, the volume-weighted test metrics (and each ensemble member's), the per-series
    metrics as a table and a plot, and the saved folder as artifacts (``global_model/``).

    Raises:
        ValueError: the model family (or an ensemble member's) has no global model, or a series does
            not fit the split (named).
    """
    kind = config.model.type
    if kind not in (*GLOBAL_FAMILIES, "voting", "stacking"):
        raise ValueError(f"{config.source}: model.type {kind!r}: global models are {', '.join(GLOBAL_FAMILIES)}, or voting / stacking over them")
    if kind not in GLOBAL_FAMILIES:
        try:
            GlobalEnsemble.check_params(kind, config.model.params)  # before any data is read
        except ValueError as error:
            raise ValueError(f"{config.source}: {error}") from None
    panel = load_panel(data)
    settings = {"scaling": scaling, "train_origin_every": train_origin_every or "", "weights_by": weights_by if kind not in GLOBAL_FAMILIES else ""}
    if tracker is None:
        return _train_global(config, data, panel, scaling=scaling, train_origin_every=train_origin_every, weights_by=weights_by, out=out)
    tags = {"kind": "global", "model_type": kind, "task": config.task.name, "data": data.name, "series": str(len(panel)),
            "config_file": str(config.source), "git_commit": git_commit()}
    with tracker.run(experiment=config.tracking.experiment, run_name=f"global-{kind}-{len(panel)}-series", tags=tags):
        tracker.log_params({**flatten({"model": {"type": kind, "params": config.model.params}}), **{k: v for k, v in settings.items() if v}})
        with tempfile.TemporaryDirectory() as scratch:
            folder = out if out is not None else Path(scratch) / "global_model"
            result = _train_global(config, data, panel, scaling=scaling, train_origin_every=train_origin_every, weights_by=weights_by, out=folder)
            tracker.log_folder(folder, "global_model")
        tracker.log_metrics({**{k: v for k, v in result.aggregate.items() if k != "series"}, "fit_seconds": result.fit_seconds,
                             **{f"member_{name}_volume_weighted_rmse": m["volume_weighted_rmse"] for name, m in result.members.items()}})
        tracker.log_text(result.per_series.to_csv(), "per_series_test_metrics.csv")
        tracker.log_bytes(per_series_png(result.per_series, title=f"global {kind}: test nRMSE per series"), "per_series_nrmse.png")
    return result


def _train_global(
    config: TrainingConfig, data: DataConfig, panel: PanelData, *, scaling: Scaling, train_origin_every: str | None, weights_by: WeightsBy, out: Path | None
) -> GlobalResult:
    kind = config.model.type
    problem = config.problem.replace(target=data.target, target_min=data.target_min, frequency=data.frequency,
                                     covariates=tuple(data.covariates), available_covariates=tuple(data.covariates))
    splits = split_panel(panel.series, config.split, config.task, min_history=problem.features.lookback)
    model: GlobalBoostedModel | GlobalEnsemble
    if kind in GLOBAL_FAMILIES:
        model = GlobalBoostedModel(kind, config.model.params, problem, scaling=scaling, train_origin_every=train_origin_every)  # type: ignore[arg-type]
    else:
        model = GlobalEnsemble(kind, config.model.params, problem, weights_by=weights_by, scaling=scaling, train_origin_every=train_origin_every)  # type: ignore[arg-type]
    started = time.perf_counter()
    model.fit({s: sp.history for s, sp in splits.items()}, {s: (sp.through_validation, sp.validation_origins) for s, sp in splits.items()})
    fit_seconds = time.perf_counter() - started
    frames, origins = {s: sp.through_test for s, sp in splits.items()}, {s: sp.test_origins for s, sp in splits.items()}
    histories = {s: sp.history for s, sp in splits.items()}
    season = problem.steps_per("7D")
    members: dict[str, dict[str, float]] = {}
    if isinstance(model, GlobalEnsemble):
        by_member = attach_panel_actuals(model.member_forecasts(frames, origins), panel.series, problem.target)
        forecast = model.combine(by_member).assign(**{ACTUAL: by_member[ACTUAL].to_numpy()})
    else:
        forecast = attach_panel_actuals(model.predict(frames, origins), panel.series, problem.target)
    per_series, aggregate = score_panel(forecast, histories, problem.target, season)
    if isinstance(model, GlobalEnsemble):
        for name in model.member_names:
            members[name] = score_panel(by_member.assign(**{PREDICTION: by_member[name]}), histories, problem.target, season)[1]
        best = min(members, key=lambda name: members[name]["volume_weighted_rmse"])
        logger.info("panel %s: volume-weighted test RMSE %.3f; members %s; against the best (%s): %+.3f", kind, aggregate["volume_weighted_rmse"],
                    {n: round(m["volume_weighted_rmse"], 3) for n, m in members.items()}, best,
                    aggregate["volume_weighted_rmse"] - members[best]["volume_weighted_rmse"])
    if out is not None:
        model.save(out)
        per_series.to_csv(Path(out) / "per_series_test_metrics.csv")
        (Path(out) / "test_metrics.json").write_text(json.dumps({**aggregate, "fit_seconds": fit_seconds, "members": members}, indent=1))
    logger.info("global %s on %d series: volume-weighted test RMSE %.3f, fitted in %.1f s",
                kind, len(panel), aggregate["volume_weighted_rmse"], fit_seconds)
    return GlobalResult(model=model, per_series=per_series, aggregate=aggregate, fit_seconds=fit_seconds, members=members)
