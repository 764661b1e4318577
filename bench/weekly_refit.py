"""Does retraining every week, as the operating loop's Monday schedule does, beat one fit?
`python -m bench.weekly_refit [day_ahead|nowcast] [CONFIG ...]` (figures, not pass/fail).

The backtest scores a month from one model (rolling origin, no refit). The operating loop retrains
on Mondays (``configs/operations.yaml``), so a week's forecasts may come from a model that has
seen the weeks before it. For each YAML this measures both ways, on the validation period
(November) to judge and on December only to record:

* ``one_fit``: the model as the backtest scores it. November: trained before it, early-stopping on
  it. December: as the YAML says (``split.refit``: January-November for the windows' median round
  count; otherwise the model trained before November).
* ``weekly``: a new model every Monday 00:00, trained on everything before it for the same round
  count (no early stopping), forecasts that week's origins. The month's first days, before its first
  Monday, use a model trained on everything before the month.

Nothing reads a period's data before its origins: each fit ends at or before the first origin it
forecasts. Writes ``bench/results/weekly_refit_<task>.json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from bench.validation_choice import rmse

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULTS = {"day_ahead": ["catboost"], "nowcast": ["xgboost", "lightgbm", "lightgbm_nowcast_level"]}
"""The day-ahead's best model; the nowcast ensembles' three members."""


def _rmse(forecast: pd.DataFrame) -> float:
    return rmse(forecast["actual"], forecast["prediction"])


def weekly(model: Any, data: pd.DataFrame, origins: pd.DatetimeIndex, rounds: int, target: str) -> pd.DataFrame:
    """Forecast ``origins`` from a model refitted every Monday 00:00 on ``data`` before it."""
    from energy_forecast.backtest import attach_actuals

    days = origins.normalize()
    mondays = days - pd.to_timedelta(days.day_of_week, unit="D")
    first = days[0]
    parts = []
    for monday in sorted(set(mondays)):
        chunk = origins[mondays == monday]
        fit_end = max(pd.Timestamp(monday), first)  # before the month's first Monday: what was known at its start
        refitted = model.clone()
        refitted.fix_rounds(rounds)
        refitted.fit(data.loc[data.index < fit_end])
        parts.append(attach_actuals(refitted.predict(data, chunk), data, target))
        print(f"  {model.name}: refit on data before {fit_end:%Y-%m-%d}, {len(chunk)} origins", file=sys.stderr, flush=True)
    return pd.concat(parts, ignore_index=True)


def measure(task: str, names: list[str]) -> dict[str, Any]:
    from bench.run import config_for
    from energy_forecast.backtest import attach_actuals, split_series
    from energy_forecast.data import load_series
    from energy_forecast.models import create_model
    from energy_forecast.training import load_config

    results: dict[str, Any] = {"task": task, "refit_every": "Monday 00:00", "models": {}}
    for name in names:
        started = time.perf_counter()
        path, overrides = config_for(name, task)
        config = load_config(path, overrides)
        series = load_series(config.data)
        model = create_model(config.model, config.problem)
        split = split_series(series.frame, config.split, config.task, min_history=model.lookback)
        target, frame = config.problem.target, split.through_validation
        record = model.fit_windows(frame, split.windows, refit=bool(config.split.refit))  # the YAML's own model
        last = split.windows[-1]
        through = frame.loc[frame.index < last.end]
        november = record.forecast[record.forecast["window"] == len(split.windows) - 1]
        rounds_test = record.chosen_rounds if config.split.refit else record.rounds[-1]
        december = attach_actuals(model.predict(split.through_test, split.test_origins), split.through_test, target)
        row = {
            "config": path.stem,
            "window_rounds": record.rounds,
            "test_rounds": rounds_test,
            "validation": {"one_fit": _rmse(november), "weekly": _rmse(weekly(model, through, last.origins, record.rounds[-1], target))},
            "december": {"one_fit": _rmse(december), "weekly": _rmse(weekly(model, split.through_test, split.test_origins, rounds_test, target))},
        }
        row["seconds"] = round(time.perf_counter() - started, 1)
        results["models"][name] = row
        print(name, json.dumps(row), file=sys.stderr, flush=True)
    return results


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("task", nargs="?", default="nowcast", choices=sorted(DEFAULTS))
    parser.add_argument("configs", nargs="*", help="config names as the bench names them (default: %(default)s per task)")
    args = parser.parse_args()
    measured = measure(args.task, args.configs or DEFAULTS[args.task])
    out = PROJECT_DIR / "bench" / "results" / f"weekly_refit_{args.task}.json"
    out.write_text(json.dumps(measured, indent=2) + "\n")
    print(json.dumps(measured, indent=2))
