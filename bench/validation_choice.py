"""How the default validation was chosen (figures, not pass/fail): `python -m bench.validation_choice [day_ahead|nowcast]`.

For each booster YAML, with three monthly validation windows before December (September, October,
November): one model per window (trained before it, early-stopping on it), then December scored by

* ``no_refit``: the last window's model (trained January-October, early-stopping on November: the
  single-window setting before issue 10);
* ``refit_median``: refit on January-November for the median of the windows' best round counts;
* ``refit_last_window``: refit on January-November for November's best round count alone.

Then every combination rule on the members' out-of-window forecasts (three windows, or November
alone), applied to both sets of December forecasts. Writes ``bench/results/validation_<task>.json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

PROJECT_DIR = Path(__file__).resolve().parent.parent
TRAINING = PROJECT_DIR / "configs" / "training"
FAMILIES = ["xgboost", "lightgbm", "catboost"]
THREADS = {"xgboost": "n_jobs", "lightgbm": "n_jobs", "catboost": "thread_count"}
"""Each family's thread count: ``--threads 1`` on a shared, oversubscribed machine, where threads that
wait for each other in OpenMP barriers cost far more than they give."""


def rmse(actual: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(actual) - np.asarray(predicted)) ** 2)))


def measure(task: str, threads: int | None = None, families: list[str] | None = None) -> dict[str, Any]:
    from bench.run import nowcast_overrides
    from energy_forecast.backtest import attach_actuals, split_series
    from energy_forecast.data import load_series
    from energy_forecast.models import ValidationData, create_model
    from energy_forecast.models.ensembles import choose_shrinkage, greedy_selection, nnls_shrunk
    from energy_forecast.training import load_config

    overrides: dict[str, Any] = {"split": {"validation_windows": 3, "refit": False}}
    if task == "nowcast":
        overrides |= {k: v for k, v in nowcast_overrides().items() if k != "split"}  # this study sets the split itself
    families = families or FAMILIES
    results: dict[str, Any] = {"task": task, "windows": 3, "models": {}, "families": families}
    oow, tests = {}, {}
    for family in families:
        threading = {"model": {"params": {THREADS[family]: threads}}} if threads else {}
        config = load_config(TRAINING / f"{family}.yaml", overrides | threading)
        series = load_series(config.data)
        model = create_model(config.model, config.problem)
        split = split_series(series.frame, config.split, config.task, min_history=model.lookback)
        frame, target = split.through_validation, config.problem.target
        started = time.perf_counter()
        parts, rounds, last = [], [], model
        for position, window in enumerate(split.windows):
            member = model.clone()
            through = frame.loc[frame.index < window.end]
            member.fit(frame.loc[frame.index < window.start], ValidationData(through, window.origins))
            parts.append(attach_actuals(member.predict(through, window.origins), through, target).assign(window=position))
            rounds.append(member.fitted_rounds)
            last = member

        def december(fitted: Any, split: Any = split, target: str = target) -> pd.DataFrame:
            return attach_actuals(fitted.predict(split.through_test, split.test_origins), split.through_test, target)

        refits = {}
        for label, count in (("refit_median", int(np.median(rounds))), ("refit_last_window", rounds[-1])):
            refit = model.clone()
            refit.fix_rounds(count)
            refit.fit(frame)
            refits[label] = december(refit)
        tests[family] = {"no_refit": december(last), **refits}
        oow[family] = pd.concat(parts, ignore_index=True)
        results["models"][family] = {
            "rounds": rounds, "window_rmse": [rmse(p.actual, p.prediction) for p in parts],
            **{label: rmse(f.actual, f.prediction) for label, f in tests[family].items()}, "seconds": time.perf_counter() - started,
        }
        print(family, results["models"][family], file=sys.stderr, flush=True)
    predictions = np.column_stack([oow[f].prediction for f in families])
    actual = oow[families[0]].actual.to_numpy()
    groups = oow[families[0]].window.to_numpy()
    november = groups == groups.max()
    results["ensembles"] = {}
    for variant in ("no_refit", "refit_median"):
        test = np.column_stack([tests[f][variant].prediction for f in families])
        truth = tests[families[0]][variant].actual.to_numpy()
        row: dict[str, Any] = {"best_member": min(rmse(truth, test[:, i]) for i in range(len(families))), "equal": rmse(truth, test.mean(axis=1))}
        for label, rows in (("3_windows", slice(None)), ("november", november)):
            greedy = greedy_selection(predictions[rows], actual[rows], 100)
            shrinkage = choose_shrinkage(predictions[rows], actual[rows], groups[rows])[0] if label == "3_windows" else 0.1
            nnls = nnls_shrunk(predictions[rows], actual[rows], shrinkage)
            inverse = 1.0 / np.mean((predictions[rows] - actual[rows, None]) ** 2, axis=0)
            inverse /= inverse.sum()
            row[f"greedy_{label}"] = {"rmse": rmse(truth, test @ greedy), "weights": greedy.round(3).tolist()}
            row[f"nnls_shrunk_{label}"] = {"rmse": rmse(truth, test @ nnls), "weights": nnls.round(3).tolist(), "shrinkage": shrinkage}
            row[f"inverse_mse_{label}"] = {"rmse": rmse(truth, test @ inverse), "weights": inverse.round(3).tolist()}
        results["ensembles"][variant] = row
        print(variant, json.dumps(row), file=sys.stderr, flush=True)
    return results


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("task", nargs="?", default="day_ahead", choices=["day_ahead", "nowcast"])
    parser.add_argument("--threads", type=int, help="threads per model (default: the YAMLs')")
    parser.add_argument("--families", nargs="+", choices=FAMILIES, help="the members (default: all three boosters)")
    args = parser.parse_args()
    chosen = args.task
    measured = measure(chosen, args.threads, args.families) | {"threads": args.threads}
    suffix = "" if not args.families or args.families == FAMILIES else "_" + "_".join(args.families)
    out = PROJECT_DIR / "bench" / "results" / f"validation_{chosen}{suffix}.json"
    out.write_text(json.dumps(measured, indent=2) + "\n")
    print(json.dumps(measured, indent=2))
