"""Tuning benchmark on the real data (not part of `make test` or `make bench`): `python -m bench.tuning`.

Tunes one model's day-ahead config with its own ``tuning:`` block (Optuna, validation windows only)
under a wall-clock budget, in a fresh study (SQLite in a scratch folder, so every run starts from
zero trials), then scores the original and the tuned YAML on the December test once each. Writes
``tuning: {model, trials, wall_s, best_validation_rmse, test_rmse_before, test_rmse_after, ...}``
into ``bench/results/latest.json`` (the other keys are kept) and the tuned YAML to
``bench/results/<model>_tuned.yaml``.

    python -m bench.tuning                                 # xgboost, 600 s of search
    python -m bench.tuning --model lightgbm --timeout 300 --trials 30

The budget: the search's ``--timeout`` plus the two final scorings must stay within 15 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
RESULTS = PROJECT_DIR / "bench" / "results"
TRAINING = PROJECT_DIR / "configs" / "training"


def merge_into_latest(key: str, value: dict[str, Any], path: Path = RESULTS / "latest.json") -> None:
    """Set ``key`` in the results JSON, keeping every other key."""
    results = json.loads(path.read_text()) if path.is_file() else {}
    results[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


def benchmark(model: str, timeout: float, trials: int | None) -> dict[str, Any]:
    from energy_forecast.data import load_series
    from energy_forecast.tracking import Tracker
    from energy_forecast.training import evaluate, load_config
    from energy_forecast.tuning import tune

    original = TRAINING / f"{model}.yaml"
    tuned_yaml = RESULTS / f"{model}_tuned.yaml"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["OPTUNA_STORAGE"] = f"sqlite:///{scratch}/optuna.db"  # the YAML's ${OPTUNA_STORAGE:-}: a fresh study
        result = tune(
            original, tracker=Tracker(f"sqlite:///{scratch}/mlflow.db"), trials=trials, timeout=timeout, output=tuned_yaml,
            progress=lambda update: print(f"bench: {update.line()}", file=sys.stderr, flush=True),
        )
    search_s = time.perf_counter() - started
    scores = {}
    for label, path in (("before", original), ("after", tuned_yaml)):
        config = load_config(path)
        evaluation = evaluate(config, load_series(config.data))
        scores[label] = {"test": evaluation.metrics["rmse"], "validation": evaluation.validation_metrics["rmse"]}
        print(f"bench: {label}: test RMSE {scores[label]['test']:.3f}, validation RMSE {scores[label]['validation']:.3f}", file=sys.stderr, flush=True)
    config = load_config(original)
    return {
        "model": model,
        "task": config.task.name,
        "trials": result.trials_finished,
        "trials_pruned": result.trials_pruned,
        "validation_windows": config.split.validation_windows if isinstance(config.split.validation_windows, int) else len(config.split.validation_windows),
        "search_timeout_s": timeout,
        "search_wall_s": round(search_s, 1),
        "wall_s": round(time.perf_counter() - started, 1),
        "best_validation_rmse": result.best_value,
        "validation_rmse_before": scores["before"]["validation"],
        "validation_rmse_reproduced": scores["after"]["validation"],
        "test_rmse_before": scores["before"]["test"],
        "test_rmse_after": scores["after"]["test"],
        "best_params": result.best_params,
        "cores": os.cpu_count(),
        "load_average_1min_end": round(os.getloadavg()[0], 1),  # other work on the machine stretches the wall time
        "date": time.strftime("%Y-%m-%d"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="xgboost", help="configs/training/<model>.yaml, with a tuning: block")
    parser.add_argument("--timeout", type=float, default=600.0, help="wall seconds of the search (default 600)")
    parser.add_argument("--trials", type=int, help="at most this many trials (default: the YAML's)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(PROJECT_DIR))
    from tests.conftest import real_data_path

    data = real_data_path()
    if data is None:
        raise SystemExit("the real data is needed: set DATA_PATH or run `make data`")
    os.environ["DATA_PATH"] = str(data)
    measured = benchmark(args.model, args.timeout, args.trials)
    merge_into_latest("tuning", measured)
    print(json.dumps(measured, indent=2))


if __name__ == "__main__":
    main()
