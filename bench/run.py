"""Benchmark on the real data: `make bench` (figures, not pass/fail).

For every traditional model, in its own process (so peak memory is its own): the December
day-ahead backtest and the December 15-minute nowcast backtest, fit and predict seconds, peak
RSS. Then the baselines, the XGBoost job overhead (`energy-forecast train` wall time against
the bare fit), the peak RSS of `energy-forecast demo`, and the Chronos-2 figures.

Writes ``bench/results/latest.json``, ``bench/results/latest.md`` and the README table between
``<!-- bench:start -->`` and ``<!-- bench:end -->``. Also: each model's December 80 % interval
(coverage, width, pinball loss) and the latency of a next-day forecast with each boosted-tree
champion (``forecast_next``: registry lookup, model load, data, forecast, store and plot).

    python -m bench.run                 # everything
    python -m bench.run --skip-demo     # without the demo's peak RSS (saves ~3 minutes)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent
RESULTS = PROJECT_DIR / "bench" / "results"
TRAINING = PROJECT_DIR / "configs" / "training"
MODELS = ["xgboost", "lightgbm", "catboost", "stacking", "voting"]
ENSEMBLES = ["stacking", "voting"]
REPORTED = ("rmse", "mae", "r2", "mase")
INTERVALS = ("coverage_80", "width_80", "pinball_loss")
BOOSTERS = ["xgboost", "lightgbm", "catboost"]
KEPT = ("tuning",)
"""Results other benchmarks write into latest.json (``python -m bench.tuning``): kept when this one rewrites it."""
TARGETS = {
    "day_ahead_rmse": 12.0, "nowcast_rmse": 6.0, "demo_peak_rss_mb": 4096,
    "coverage_80_best_gbdt": [0.76, 0.84], "forecast_latency_s": 3.0, "replay_per_day_s": 20.0,
}


def nowcast_overrides() -> dict[str, Any]:
    """The nowcast task and feature recipe of ``xgboost_nowcast.yaml``, for every model."""
    nowcast = yaml.safe_load((TRAINING / "xgboost_nowcast.yaml").read_text())
    return {"task": str((TRAINING / nowcast["task"]).resolve()), "features": nowcast["features"], "split": nowcast.get("split", {})}


def config_for(config_name: str, task: str) -> tuple[Path, dict[str, Any] | None]:
    """The YAML (and overrides) one model is benchmarked with: for the nowcast, the model's own
    ``<name>_nowcast.yaml`` where there is one (parameters chosen for the nowcast), else its day-ahead YAML with
    the nowcast task and recipe of ``xgboost_nowcast.yaml`` (which a nowcast YAML such as
    ``lightgbm_nowcast_level.yaml``, an ensemble member, already has)."""
    if task != "nowcast":
        return TRAINING / f"{config_name}.yaml", None
    own = TRAINING / f"{config_name}_nowcast.yaml"
    return (own, None) if own.exists() else (TRAINING / f"{config_name}.yaml", nowcast_overrides())


def one(config_name: str, task: str, saved: Path | None = None) -> dict[str, Any]:
    """Evaluate one config on one task in this process; peak RSS is this process's.

    With ``saved``, a single model is saved under ``saved/<task>/<config name>`` (the YAML's stem,
    as ensembles name their members) and an ensemble reuses its members saved there (with their
    out-of-window forecasts), as the operating loop does: the members are not fitted twice, and the
    ensemble combines the very models the table reports.
    """
    from energy_forecast.data import load_series
    from energy_forecast.models import create_model, load_forecaster
    from energy_forecast.training import evaluate, load_config, member_configs

    config = load_config(*config_for(config_name, task))
    model = create_model(config.model, config.problem)
    members = member_configs(config)
    if saved is not None and members:
        model.use_fitted_members({name: load_forecaster(saved / task / name) for name in members if (saved / task / name).is_dir()})
    evaluation = evaluate(config, load_series(config.data), model)
    if saved is not None and not members:
        evaluation.model.save(saved / task / config.name)
    summary = evaluation.model.fitted_summary()
    return {
        "config": config.name,
        "metrics": {k: evaluation.metrics[k] for k in REPORTED},
        "intervals": {k: evaluation.metrics[k] for k in INTERVALS if k in evaluation.metrics},
        "baselines": {name: {k: m[k] for k in REPORTED} for name, m in evaluation.baseline_metrics.items()},
        "validation": {k: v for k, v in evaluation.validation_metrics.items() if k == "rmse" or k.startswith("window") or k == "chosen_rounds"},
        "weights": {k.removeprefix("weight_"): round(v, 4) for k, v in summary.items() if k.startswith("weight_")},
        "fit_s": evaluation.fit_seconds,
        "predict_s": evaluation.predict_seconds,
        "origins": len(evaluation.split.test_origins),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def validation_setting() -> dict[str, Any]:
    """The split's validation windows and refit, as every training YAML inherits them from _base.yaml."""
    from energy_forecast.training import load_config

    def setting(split: Any) -> dict[str, Any]:
        windows = split.validation_windows if isinstance(split.validation_windows, int) else [w.model_dump(mode="json") for w in split.validation_windows]
        return {"windows": windows, "refit": split.refit}

    day_ahead = setting(load_config(TRAINING / "xgboost.yaml").split)
    return {**day_ahead, "nowcast": setting(load_config(TRAINING / "xgboost.yaml", nowcast_overrides()).split)}


def ensemble_members(name: str, task: str) -> list[str]:
    """The config names of an ensemble's members on one task (the nowcast ensembles have their own)."""
    from energy_forecast.training import load_config, member_configs

    return member_configs(load_config(*config_for(name, task)))


def ensemble_deltas(models: dict[str, Any], members_only: dict[str, Any] | None = None) -> dict[str, Any]:
    """Each ensemble's RMSE minus its best member's, per task (negative: the ensemble is better).

    A member is found among the table's models by the config it was run with, or in
    ``members_only``: members that are no model of the table (scored on their own first)."""
    scored: dict[str, dict[str, Any]] = {}  # per task: the metrics of each single model, by config name
    for task in ("day_ahead", "nowcast"):
        scored[task] = {r.get(f"{task}_config", model): r[task] for model, r in models.items() if task in r and model not in ENSEMBLES}
        scored[task] |= {member: r[task] for member, r in (members_only or {}).items() if task in r}
    deltas: dict[str, Any] = {}
    for name in ENSEMBLES:
        if name not in models:
            continue
        row: dict[str, Any] = {}
        for task in ("day_ahead", "nowcast"):
            members = [m for m in ensemble_members(name, task) if m in scored[task]]
            row[f"{task}_members"] = members
            if task in models[name] and members:
                best = min(members, key=lambda m: scored[task][m]["rmse"])
                row[task] = {"best_member": best, "best_member_rmse": scored[task][best]["rmse"], "rmse": models[name][task]["rmse"],
                             "delta_rmse": models[name][task]["rmse"] - scored[task][best]["rmse"]}
        deltas[name] = row
    return deltas


_MEASURE = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[2:])\n"
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(code)\n"
)
"""A fresh parent per command, so RUSAGE_CHILDREN's peak is that command's alone."""


def in_subprocess(args: list[str], env: dict[str, str] | None = None) -> tuple[str, float, float]:
    """Run a command; return stdout, wall seconds and its peak RSS in MB."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as peak_file:
        started = time.perf_counter()
        completed = subprocess.run(
            [sys.executable, "-c", _MEASURE, peak_file.name, *args], capture_output=True, text=True, env=env, cwd=PROJECT_DIR, check=False
        )
        wall = time.perf_counter() - started
        if completed.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{completed.stderr[-3000:]}")
        peak_mb = int(peak_file.read() or 0) / 1024
    return completed.stdout, wall, peak_mb


def job_overhead(data_path: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "DATA_PATH": data_path, "DAGSTER_HOME": f"{scratch}/dagster", "MLFLOW_TRACKING_URI": f"sqlite:///{scratch}/mlflow.db"}
        _, wall, _ = in_subprocess([sys.executable, "-m", "pipelines.cli", "train", str(TRAINING / "xgboost.yaml")], env)
    bare = one("xgboost", "day_ahead")["fit_s"]
    return {"model": "xgboost", "job_wall_s": round(wall, 2), "bare_fit_s": round(bare, 2), "target_wall_s": round(1.5 * bare + 10, 2)}


def forecast_latency(data_path: str) -> dict[str, Any]:
    """Wall seconds of ``forecast_next`` for the day after the data, with each booster as champion.

    Each family is trained once (the real configs) into a scratch MLflow store; then, in this warm
    process (imports done, as in the serving app or a Dagster code server), the forecast is timed
    three times: registry lookup, model download and load, data, forecast, store and plot.
    """
    from mlflow.tracking import MlflowClient

    from energy_forecast.config import load_data_config
    from energy_forecast.forecast import forecast_next
    from energy_forecast.store import ForecastStore, PlotStore
    from energy_forecast.tracking import Tracker
    from energy_forecast.training import load_config, train

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["DATA_PATH"] = data_path
        tracker = Tracker(f"sqlite:///{scratch}/mlflow.db")
        store, plots = ForecastStore(f"sqlite:///{scratch}/forecasts.db"), PlotStore(f"{scratch}/plots")
        data = load_data_config(PROJECT_DIR / "configs" / "data" / "steel_industry.yaml")
        for family in BOOSTERS:
            result = train(load_config(TRAINING / f"{family}.yaml"), tracker)
            promotion = result.promotion
            MlflowClient(tracker.tracking_uri).set_registered_model_alias(promotion.registered_model, f"bench-{family}", promotion.version)
            runs = [
                forecast_next(data, registered_model=promotion.registered_model, alias=f"bench-{family}", store=store, plots=plots, tracking_uri=tracker.tracking_uri)
                for _ in range(3)
            ]
            seconds = sorted(run.seconds for run in runs)
            results[family] = {"median_s": round(seconds[1], 3), "max_s": round(seconds[2], 3), "steps": {k: round(v, 3) for k, v in runs[1].timings.items()}}
            print(f"bench: forecast latency {family}: {seconds}", file=sys.stderr, flush=True)
    return results


def replay_in_this_process(days: int) -> dict[str, Any]:
    """Replay ``days`` December days through the embedded loop (the environment is set by the caller)."""
    import dagster as dg
    import pandas as pd

    from energy_forecast.tracking import Tracker
    from energy_forecast.training import load_config, train
    from pipelines.definitions import defs, operations
    from pipelines.replay import replay

    train(load_config(TRAINING / "xgboost.yaml"), Tracker())  # the champion, as `make demo` leaves one
    with dg.DagsterInstance.get() as instance:
        report = replay(operations, defs, instance, start=pd.Timestamp("2018-12-01"), days=days, every=0.0)
    retrains = [run for run in report.runs if run["job"] == "retrain_job"]
    return {
        "days": days,
        "wall_s": report.seconds,
        "per_day_s": round(report.seconds / days, 2),
        "per_day_each_s": report.per_day_seconds,
        "runs": len(report.runs),
        "failed_runs": len(report.failed()),
        "retrain_s": round(sum(run["seconds"] for run in retrains), 2),
    }


def replay_benchmark(data_path: str, days: int = 7) -> dict[str, Any]:
    """The embedded replay in a fresh process and scratch stores: seconds per delivered day."""
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / "dagster"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        operations = yaml.safe_load((PROJECT_DIR / "configs" / "operations.yaml").read_text())
        operations.update(
            data=str(PROJECT_DIR / "configs" / "data" / "steel_industry.yaml"), task=str(PROJECT_DIR / "configs" / "tasks" / "day_ahead.yaml"),
            series=f"{scratch}/live.csv", landing=f"{scratch}/landing", models=[str(TRAINING / "xgboost.yaml")], alert_webhook="",
        )
        (Path(scratch) / "operations.yaml").write_text(yaml.safe_dump(operations))
        env = {
            **os.environ, "DATA_PATH": data_path, "DAGSTER_HOME": str(home), "MLFLOW_TRACKING_URI": f"sqlite:///{scratch}/mlflow.db",
            "FORECAST_STORE_URL": f"sqlite:///{scratch}/forecasts.db", "FORECAST_PLOTS_URI": f"{scratch}/plots",
            "OPERATIONS_CONFIG": f"{scratch}/operations.yaml",
        }
        stdout, _, _ = in_subprocess([sys.executable, "-m", "bench.run", "--replay-days", str(days)], env)
    return json.loads(stdout.strip().splitlines()[-1])


def demo_peak_rss(data_path: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "DATA_PATH": data_path, "DAGSTER_HOME": f"{scratch}/dagster", "MLFLOW_TRACKING_URI": f"sqlite:///{scratch}/mlflow.db"}
        _, wall, peak = in_subprocess([sys.executable, "-m", "pipelines.cli", "demo"], env)
    return {"wall_s": round(wall, 1), "peak_rss_mb": round(peak, 1)}


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Measured by `make bench` on {results['machine']} ({results['date']}), real data, test = December 2018.",
        "",
        "| model | day-ahead RMSE | MAE | R² | MASE | 80 % coverage | 80 % width | pinball | nowcast RMSE | MAE | R² | fit s (day-ahead) | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = sorted(results["models"].items(), key=lambda item: item[1]["day_ahead"]["rmse"])
    for name, row in rows:
        d, n, q = row["day_ahead"], row["nowcast"], results.get("intervals", {}).get(name, {})
        band = f"{q['coverage_80']:.1%} | {q['width_80']:.1f} | {q['pinball']:.2f}" if q else " | | "
        lines.append(
            f"| {name} | {d['rmse']:.2f} | {d['mae']:.2f} | {d['r2']:.3f} | {d['mase']:.3f} | {band} | {n['rmse']:.2f} | {n['mae']:.2f} | {n['r2']:.3f} | {row['fit_s']:.1f} | {row['peak_rss_mb']:.0f} |"
        )
    for name, row in results["baselines"].items():
        d, n = row["day_ahead"], row["nowcast"]
        lines.append(f"| *{name}* | {d['rmse']:.2f} | {d['mae']:.2f} | {d['r2']:.3f} | {d['mase']:.3f} | | | | {n['rmse']:.2f} | {n['mae']:.2f} | {n['r2']:.3f} | | |")
    overhead = results["job_overhead"]
    validation = results.get("validation")
    if validation:
        windows = validation["windows"]
        described = f"{windows} monthly windows before December" if isinstance(windows, int) else f"{len(windows)} listed windows"

        def refit(setting: dict[str, Any]) -> str:
            return "refit on January-November for the median best round count" if setting["refit"] else "the last window's model kept (no refit)"

        nowcast = validation.get("nowcast", validation)
        lines += ["", f"Validation: early stopping and ensemble weights chosen on {described}; day-ahead: {refit(validation)}; "
                  f"nowcast: {refit(nowcast)}. December is read only to score."]
    deltas = results.get("ensemble_deltas", {})
    for name, row in deltas.items():
        parts = [
            f"{task.replace('_', '-')} {row[task]['delta_rmse']:+.2f} kWh vs {row[task]['best_member']} ({row[task]['rmse']:.2f} vs {row[task]['best_member_rmse']:.2f})"
            for task in ("day_ahead", "nowcast") if task in row
        ]
        shown = ""
        for task in ("day_ahead", "nowcast"):
            weights = results["models"].get(name, {}).get(f"{task}_weights")
            members = row.get(f"{task}_members", [])
            if weights and len(members) == len(weights):  # weights are listed in member order
                shown += f"; {task.replace('_', '-')} weights {', '.join(f'{m} {v:.2f}' for m, v in zip(members, weights.values(), strict=True))}"
        lines.append(f"- {name} minus its best member: {'; '.join(parts)}{shown}.")
    for member, scored in results.get("members_only", {}).items():
        tasks = [f"{task.replace('_', '-')} RMSE {scored[task]['rmse']:.2f} (validation {scored[f'{task}_validation']['rmse']:.3f})"
                 for task in ("day_ahead", "nowcast") if task in scored]
        lines.append(f"- `{member}.yaml`, an ensemble member only: {', '.join(tasks)}.")
    lines += [
        "",
        "Intervals: split-conformal quantiles from the validation windows' out-of-window residuals, per three-hour band of the horizon; coverage is the share "
        "of December actuals inside the 80 % interval (target 76-84 % for the best boosted tree).",
    ]
    if "replay" in results:
        replay = results["replay"]
        lines.append(f"- `make replay` (embedded, {replay['days']} December days, deliveries back to back): {replay['wall_s']:.0f} s, {replay['per_day_s']:.1f} s per day (target < 20 s).")
    if "forecast_latency" in results:
        latency = ", ".join(f"{name} {row['median_s']:.2f} s" for name, row in results["forecast_latency"].items())
        lines.append(f"- Next-day forecast with the champion, model load included (`forecast_next`, median of 3, warm process): {latency} (target < 3 s).")
    if results.get("kept_from"):
        lines.append(f"- The figures below were measured on {results['kept_from']} (this run measured the backtests only).")
    lines += [
        f"- XGBoost job overhead: `energy-forecast train` took {overhead['job_wall_s']:.1f} s wall for a {overhead['bare_fit_s']:.1f} s fit (target ≤ {overhead['target_wall_s']:.1f} s).",
    ]
    if "demo" in results:
        lines.append(f"- `make demo` (five models through Dagster): {results['demo']['wall_s']:.0f} s, peak RSS {results['demo']['peak_rss_mb']:.0f} MB (target ≤ 4096).")
    chronos = results.get("chronos")
    if chronos:
        lines += [
            "",
            f"Chronos-2, {chronos.get('size', 'tiny')} random-weight model ({chronos.get('parameters', 0):,} parameters) on "
            f"{chronos.get('device', 'cpu')} in {chronos.get('dtype', '')}: December backtest, {chronos.get('backtest_origins')} origins "
            f"x {chronos.get('backtest_horizon')} steps, context {chronos.get('backtest_context')}, {chronos.get('backtest_covariates')} covariates.",
            "",
            "| measure | this forecaster | direct Chronos pipeline call | ratio |",
            "|---|---|---|---|",
            f"| backtest, one batched call | {chronos['backtest_seconds']:.3f} s | {chronos['backtest_direct_seconds']:.3f} s | {chronos['backtest_ratio']:.2f} |",
            f"| fine-tuning, batch {chronos.get('finetune_batch_size')} | {chronos['finetune_steps_per_second']:.2f} steps/s | "
            f"{chronos['finetune_direct_steps_per_second']:.2f} steps/s | {chronos['finetune_ratio']:.2f} |",
            f"| peak RSS | {chronos['peak_rss_mb']:.0f} MB | | |",
        ]
    return "\n".join(lines) + "\n"


def update_readme(table: str) -> None:
    readme = PROJECT_DIR / "README.md"
    text = readme.read_text()
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n## Benchmark\n\n{table}{end}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--one", nargs=2, metavar=("CONFIG", "TASK"), help=argparse.SUPPRESS)
    parser.add_argument("--saved", help=argparse.SUPPRESS)
    parser.add_argument("--only-accuracy", action="store_true", help="only the day-ahead and nowcast backtests of every model; "
                        "the other figures are kept from bench/results/latest.json")
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-chronos", action="store_true")
    parser.add_argument("--render", action="store_true", help="only re-render the table from bench/results/latest.json")
    parser.add_argument("--replay-days", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(*args.one, saved=Path(args.saved) if args.saved else None)))
        return
    if args.replay_days:
        print(json.dumps(replay_in_this_process(args.replay_days)))
        return
    if args.render:
        write_tables(json.loads((RESULTS / "latest.json").read_text()))
        return

    sys.path.insert(0, str(PROJECT_DIR))
    from tests.conftest import real_data_path

    data = real_data_path()
    if data is None:
        raise SystemExit("the real data is needed: set DATA_PATH or run `make data`")
    env = {**os.environ, "DATA_PATH": str(data)}
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
        "data": {"file": Path(data).name, "sha256": hashlib.sha256(Path(data).read_bytes()).hexdigest()},  # no machine path
        "targets": TARGETS,
        "models": {},
        "baselines": {},
    }
    results["validation"] = validation_setting()
    saved = tempfile.TemporaryDirectory()

    def measure(name: str, task: str) -> dict[str, Any]:
        print(f"bench: {name} {task}", file=sys.stderr, flush=True)
        stdout, _, _ = in_subprocess([sys.executable, "-m", "bench.run", "--one", name, task, "--saved", saved.name], env)
        return json.loads(stdout.strip().splitlines()[-1])

    members_only: dict[str, Any] = {}  # ensemble members that are no model of the table, scored (and saved) first
    for name in MODELS:
        row: dict[str, Any] = {}
        for task in ("day_ahead", "nowcast"):
            if name in ENSEMBLES:
                for member in ensemble_members(name, task):
                    if not (Path(saved.name) / task / member).is_dir():
                        scored = measure(member, task)
                        members_only.setdefault(member, {})[task] = scored["metrics"]
                        members_only[member][f"{task}_validation"] = scored["validation"]
            measured = measure(name, task)
            row[task] = measured["metrics"]
            row[f"{task}_config"] = measured["config"]
            row[f"{task}_origins"] = measured["origins"]
            row[f"{task}_intervals"] = measured["intervals"]
            row[f"{task}_validation"] = measured["validation"]
            if measured["weights"]:
                row[f"{task}_weights"] = measured["weights"]
            if task == "day_ahead":
                row.update(fit_s=measured["fit_s"], predict_s=measured["predict_s"], peak_rss_mb=measured["peak_rss_mb"])
            for baseline, metrics in measured["baselines"].items():
                results["baselines"].setdefault(baseline, {})[task] = metrics
        results["models"][name] = row
    saved.cleanup()
    results["members_only"] = members_only
    results["ensemble_deltas"] = ensemble_deltas(results["models"], members_only)
    results["intervals"] = {
        name: {"coverage_80": q["coverage_80"], "width_80": q["width_80"], "pinball": q["pinball_loss"]}
        for name, q in ((name, row["day_ahead_intervals"]) for name, row in results["models"].items())
    }
    if args.only_accuracy:  # the other figures as last measured
        previous = json.loads((RESULTS / "latest.json").read_text()) if (RESULTS / "latest.json").is_file() else {}
        kept = ("forecast_latency", "forecast_latency_s", "replay", "job_overhead", "demo", "chronos")
        results.update({key: previous[key] for key in kept if key in previous})
        results["kept_from"] = previous.get("date")
    else:
        print("bench: forecast latency", file=sys.stderr, flush=True)
        latency = forecast_latency(str(data))
        results["forecast_latency"] = latency
        results["forecast_latency_s"] = max(row["median_s"] for row in latency.values())
        print("bench: replay", file=sys.stderr, flush=True)
        results["replay"] = replay_benchmark(str(data))
        print("bench: job overhead", file=sys.stderr, flush=True)
        results["job_overhead"] = job_overhead(str(data))
    if not args.skip_demo and not args.only_accuracy:
        print("bench: make demo peak RSS", file=sys.stderr, flush=True)
        results["demo"] = demo_peak_rss(str(data))
    if not args.skip_chronos and not args.only_accuracy:
        print("bench: chronos", file=sys.stderr, flush=True)
        from bench.chronos import chronos_benchmark

        results["chronos"] = chronos_benchmark(str(data))
    best_gbdt = min(BOOSTERS, key=lambda name: results["models"][name]["day_ahead"]["rmse"])
    results["intervals_best_gbdt"] = {"model": best_gbdt, **results["intervals"][best_gbdt]}
    best_day_ahead = min(row["day_ahead"]["rmse"] for row in results["models"].values())
    best_nowcast = min(row["nowcast"]["rmse"] for row in results["models"].values())
    results["summary"] = {"best_day_ahead_rmse": best_day_ahead, "best_nowcast_rmse": best_nowcast}

    RESULTS.mkdir(parents=True, exist_ok=True)
    previous = json.loads((RESULTS / "latest.json").read_text()) if (RESULTS / "latest.json").is_file() else {}
    results |= {key: previous[key] for key in KEPT if key in previous and key not in results}
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    write_tables(results)


def write_tables(results: dict[str, Any]) -> None:
    table = markdown(results)
    (RESULTS / "latest.md").write_text(table)
    update_readme(table)
    print(table)


if __name__ == "__main__":
    main()
