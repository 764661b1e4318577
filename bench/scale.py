"""Many meters, measured: `make bench-scale` (figures, not pass/fail; not part of `make test`).

Synthetic plants built from the real steel series (``energy-forecast synth-plants``, seed 0), the
training YAML ``configs/training/lightgbm.yaml``'s feature recipe and split (train January-October,
validate November, test December) on ``configs/data/plants.yaml``. Each measurement runs in its own
process, so its peak RSS is its own:

- for 10, 30 and 100 plants: the global LightGBM's fit time (matrix built per series in float32,
  streamed to LightGBM), the process's peak RSS, the December day-ahead backtest (per-plant RMSE and
  the volume-weighted aggregate), and the time to forecast every plant for one day (one origin
  per plant, one predict call);
- on 10 plants: the global model against one model per plant (today's single-series LightGBM,
  same parameters and origins) in RMSE and total fit time;
- on 10 plants: panel ensembles of a global LightGBM and a global XGBoost (voting with one set of
  weights for the panel or one per plant, stacking), against each member, from one fit of the members;
- on 10 plants: the training-origin spacing (every 6 h against daily) and the scaling (mean, none),
  which decide the settings above.

Writes ``bench/results/scale.json``.

    python -m bench.scale                     # 10, 30, 100 plants and the comparisons
    python -m bench.scale --plants 10 30      # fewer sizes
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
RESULTS = PROJECT_DIR / "bench" / "results"
CACHE = PROJECT_DIR / "data" / "bench-plants"
SEED = 0
# The global model sees far more rows than one plant's model: a faster learning rate and more
# leaves than the single-series YAML (0.02, 15 leaves), early-stopped on November as always.
GLOBAL_PARAMS = {"learning_rate": 0.05, "n_estimators": 1000, "num_leaves": 63, "min_child_samples": 100, "early_stopping_rounds": 50, "n_jobs": 2}
ORIGIN_EVERY = "1D"
# XGBoost's counterpart of GLOBAL_PARAMS, for the panel ensemble's second member.
GLOBAL_XGBOOST_PARAMS = {"learning_rate": 0.05, "n_estimators": 1000, "max_depth": 7, "min_child_weight": 20.0, "subsample": 0.8,
                         "colsample_bytree": 0.8, "early_stopping_rounds": 50}


def _plants_dir(plants: int) -> Path:
    folder = CACHE / f"seed{SEED}-n{plants}"
    os.environ.setdefault("DATA_PATH", str(PROJECT_DIR.parent / "shared" / "data" / "Steel_industry_data.csv"))
    if not (folder / ".done").exists():
        from energy_forecast.config import load_data_config
        from energy_forecast.data.loading import load_series
        from energy_forecast.data.plants import write_plants

        base = load_series(load_data_config(PROJECT_DIR / "configs" / "data" / "steel_industry.yaml")).frame
        write_plants(base, plants, folder, seed=SEED)
        (folder / ".done").write_text("ok\n")
    return folder


def _setup(plants: int) -> tuple[Any, Any, Any]:
    """(panel, training config, problem) for the first ``plants`` plants."""
    from energy_forecast.config import load_data_config
    from energy_forecast.data.panel import load_panel
    from energy_forecast.training import load_config

    data = load_data_config(PROJECT_DIR / "configs" / "data" / "plants.yaml")
    data = data.model_copy(update={"path": _plants_dir(plants) / "*.csv"})
    panel = load_panel(data)
    config = load_config(PROJECT_DIR / "configs" / "training" / "lightgbm.yaml")
    problem = config.problem.replace(covariates=tuple(data.covariates), available_covariates=tuple(data.covariates), target=data.target)
    return panel, config, problem


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run_global(plants: int, scaling: str, origin_every: str, rounds: int | None = None) -> dict[str, Any]:
    from energy_forecast.models.global_boosted import GlobalBoostedModel
    from energy_forecast.panel_backtest import attach_panel_actuals, score_panel, split_panel

    started = time.perf_counter()
    panel, config, problem = _setup(plants)
    load_seconds = time.perf_counter() - started
    splits = split_panel(panel.series, config.split, config.task, min_history=problem.features.lookback)
    params = {**config.model.params, **GLOBAL_PARAMS, **({"n_estimators": rounds} if rounds else {})}
    model = GlobalBoostedModel("lightgbm", params, problem, scaling=scaling, train_origin_every=origin_every)
    started = time.perf_counter()
    model.fit({s: sp.history for s, sp in splits.items()}, {s: (sp.through_validation, sp.validation_origins) for s, sp in splits.items()})
    fit_seconds = time.perf_counter() - started
    frames = {s: sp.through_test for s, sp in splits.items()}
    forecast = model.predict(frames, {s: sp.test_origins for s, sp in splits.items()})
    forecast = attach_panel_actuals(forecast, panel.series, problem.target)
    per_series, aggregate = score_panel(forecast, {s: sp.history for s, sp in splits.items()}, problem.target, problem.steps_per("7D"))
    one_day = {s: sp.test_origins[-1:] for s, sp in splits.items()}
    started = time.perf_counter()
    day = model.predict(frames, one_day)
    one_day_seconds = time.perf_counter() - started
    return {
        "plants": plants, "model": "global lightgbm", "scaling": scaling, "train_origin_every": origin_every,
        "training_rows": model.training_rows_, "features": len(model.feature_names_),
        "expanded_float64_gib": round((model.training_rows_ or 0) * len(model.feature_names_) * 8 / 2**30, 2),
        "load_seconds": round(load_seconds, 1), "fit_seconds": round(fit_seconds, 1), "best_iteration": model.best_iteration_,
        "peak_rss_gib": round(_peak_rss_gib(), 2),
        "december_rmse_volume_weighted": round(aggregate["volume_weighted_rmse"], 3),
        "december_nrmse_volume_weighted": round(aggregate["volume_weighted_nrmse"], 4),
        "december_mae_volume_weighted": round(aggregate["volume_weighted_mae"], 3),
        "forecast_one_day_all_plants_seconds": round(one_day_seconds, 3), "forecast_one_day_rows": len(day),
        "per_plant_rmse": {s: round(v, 3) for s, v in per_series["rmse"].items()},
    }


def run_per_plant_models(plants: int, origin_every: str) -> dict[str, Any]:
    import pandas as pd

    from energy_forecast.config import ModelConfig
    from energy_forecast.models.base import ValidationData
    from energy_forecast.models.registry import create_model
    from energy_forecast.panel_backtest import SERIES_ID, attach_panel_actuals, score_panel, split_panel

    panel, config, problem = _setup(plants)
    problem = problem.replace(features=problem.features.model_copy(update={"train_origin_every": origin_every}))
    splits = split_panel(panel.series, config.split, config.task, min_history=problem.features.lookback)
    params = {**config.model.params, **GLOBAL_PARAMS}
    fit_seconds, parts = 0.0, []
    for sid, split in splits.items():
        model = create_model(ModelConfig(type="lightgbm", device="cpu", params=params), problem)
        started = time.perf_counter()
        model.fit(split.history, ValidationData(split.through_validation, split.validation_origins))
        fit_seconds += time.perf_counter() - started
        parts.append(model.predict(split.through_test, split.test_origins).assign(**{SERIES_ID: sid}))
    forecast = attach_panel_actuals(pd.concat(parts, ignore_index=True), panel.series, problem.target)
    per_series, aggregate = score_panel(forecast, {s: sp.history for s, sp in splits.items()}, problem.target, problem.steps_per("7D"))
    return {
        "plants": plants, "model": "one lightgbm per plant", "train_origin_every": origin_every,
        "fit_seconds": round(fit_seconds, 1), "peak_rss_gib": round(_peak_rss_gib(), 2),
        "december_rmse_volume_weighted": round(aggregate["volume_weighted_rmse"], 3),
        "december_nrmse_volume_weighted": round(aggregate["volume_weighted_nrmse"], 4),
        "december_mae_volume_weighted": round(aggregate["volume_weighted_mae"], 3),
        "per_plant_rmse": {s: round(v, 3) for s, v in per_series["rmse"].items()},
    }


def run_ensembles(plants: int, origin_every: str) -> dict[str, Any]:
    """Voting (panel / per-plant weights) and stacking over a global LightGBM and XGBoost, and each member, on the same December rows."""
    from energy_forecast.frames import PREDICTION
    from energy_forecast.models.ensembles import StackingParams
    from energy_forecast.models.global_ensemble import GlobalEnsemble, panel_weights, volume_row_scale
    from energy_forecast.panel_backtest import SERIES_ID, attach_panel_actuals, score_panel, split_panel

    panel, config, problem = _setup(plants)
    splits = split_panel(panel.series, config.split, config.task, min_history=problem.features.lookback)
    members = [{"type": "lightgbm", "params": {**config.model.params, **GLOBAL_PARAMS}},
               {"type": "xgboost", "params": {**GLOBAL_XGBOOST_PARAMS, "n_jobs": GLOBAL_PARAMS["n_jobs"]}}]
    ensemble = GlobalEnsemble("voting", {"members": members}, problem, train_origin_every=origin_every)
    histories = {s: sp.history for s, sp in splits.items()}
    started = time.perf_counter()
    ensemble.fit(histories, {s: (sp.through_validation, sp.validation_origins) for s, sp in splits.items()})
    fit_seconds = time.perf_counter() - started
    # the validation forecasts again, for the other weightings (the members are not refitted)
    validation = attach_panel_actuals(ensemble.member_forecasts({s: sp.through_validation for s, sp in splits.items()},
                                                                {s: sp.validation_origins for s, sp in splits.items()}), panel.series, problem.target)
    ids = validation[SERIES_ID].to_numpy()
    row_scale = volume_row_scale(histories, problem, ids)
    predictions, actual = validation[ensemble.member_names].to_numpy(dtype="float64"), validation["actual"].to_numpy(dtype="float64")
    weightings = {
        "voting, panel weights": ensemble.weights_,
        "voting, per-plant weights": panel_weights("voting", ensemble.params, predictions, actual, ids, row_scale, by="series"),
        "stacking, panel weights": panel_weights("stacking", StackingParams(members=members), predictions, actual, ids, row_scale),
    }
    test = attach_panel_actuals(ensemble.member_forecasts({s: sp.through_test for s, sp in splits.items()},
                                                          {s: sp.test_origins for s, sp in splits.items()}), panel.series, problem.target)
    season = problem.steps_per("7D")
    scores: dict[str, float] = {}
    for name in ensemble.member_names:
        scores[f"member {name}"] = score_panel(test.assign(**{PREDICTION: test[name]}), histories, problem.target, season)[1]["volume_weighted_rmse"]
    for label, weights in weightings.items():
        ensemble.weights_ = weights
        combined = ensemble.combine(test).assign(actual=test["actual"].to_numpy())
        scores[label] = score_panel(combined, histories, problem.target, season)[1]["volume_weighted_rmse"]
    best_member = min(scores[f"member {n}"] for n in ensemble.member_names)
    return {
        "plants": plants, "model": "panel ensembles of global lightgbm + xgboost", "train_origin_every": origin_every,
        "fit_seconds": round(fit_seconds, 1), "peak_rss_gib": round(_peak_rss_gib(), 2),
        "december_rmse_volume_weighted": {k: round(v, 3) for k, v in scores.items()},
        "delta_vs_best_member": {k: round(v - best_member, 3) for k, v in scores.items() if not k.startswith("member")},
        "panel_weights": {"voting": weightings["voting, panel weights"]["*"].round(3).tolist(),
                          "stacking": weightings["stacking, panel weights"]["*"].round(3).tolist(), "members": ensemble.member_names},
    }


def _child(args: list[str]) -> dict[str, Any]:
    """One measurement in its own process; its last stdout line is the JSON result."""
    env = {**os.environ, "PYTHONPATH": f"{PROJECT_DIR / 'src'}{os.pathsep}{PROJECT_DIR}"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bench.scale", "--child", *args], cwd=PROJECT_DIR, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"bench.scale {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    print(f"{' '.join(args)}: {json.dumps({k: v for k, v in result.items() if k != 'per_plant_rmse'})}", flush=True)
    return result


def _write(results: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scale.json").write_text(json.dumps(results, indent=1) + "\n")


def table(results: dict[str, Any]) -> str:
    """The README's scale table from ``scale.json``."""
    lines = [
        "| plants | model | origins | training rows | fit s | peak RSS GiB | Dec. RMSE (vol.-weighted) | nRMSE | forecast all plants, 1 day |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [*results["sizes"], *results["global_vs_per_plant"], *results["choices"]]
    for r in rows:
        model = r["model"] + (f", {r['scaling']} scaling" if "scaling" in r else "")
        one_day = f"{r['forecast_one_day_all_plants_seconds']:.2f} s" if "forecast_one_day_all_plants_seconds" in r else ""
        lines.append(
            f"| {r['plants']} | {model} | {r['train_origin_every']} | {r.get('training_rows') or ''} | {r['fit_seconds']:.0f} | "
            f"{r['peak_rss_gib']:.2f} | {r['december_rmse_volume_weighted']:.2f} | {r['december_nrmse_volume_weighted']:.3f} | {one_day} |"
        )
    for ensemble in results.get("ensembles", []):
        for label, rmse in ensemble["december_rmse_volume_weighted"].items():
            delta = ensemble["delta_vs_best_member"].get(label)
            lines.append(f"| {ensemble['plants']} | {label}{'' if delta is None else f' ({delta:+.2f} vs best member)'} | "
                         f"{ensemble['train_origin_every']} | | {ensemble['fit_seconds']:.0f} (both members) | {ensemble['peak_rss_gib']:.2f} | {rmse:.2f} | | |")
    machine = results["machine"]
    note = (f"\n{machine['cpus']} CPUs (load average {machine['load_average_at_start'][0]} at the start, "
            f"{machine.get('load_average_at_end', ['?'])[0]} at the end), LightGBM with n_jobs={results['settings']['params']['n_jobs']}.")
    memory = results.get("memory")
    if memory:
        note += (f" Memory: 10 plants at hourly training origins ({memory['training_rows']} rows x {memory['features']} features, "
                 f"{memory['expanded_float64_gib']} GiB as one float64 matrix) peaked at {memory['peak_rss_gib']} GiB RSS, streamed.")
    ratio = results.get("fit_time_ratio_100_over_10")
    if ratio is not None:
        note += f" Fit time 100 / 10 plants: {ratio}."
    return "\n".join(lines) + "\n" + note


def write_readme(results: dict[str, Any]) -> None:
    readme = PROJECT_DIR / "README.md"
    text = readme.read_text()
    start, end = "<!-- scale:start -->", "<!-- scale:end -->"
    if start in text and end in text:
        head, _, rest = text.partition(start)
        _, _, tail = rest.partition(end)
        readme.write_text(f"{head}{start}\n{table(results)}\n{end}{tail}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--plants", type=int, nargs="+", default=[10, 30, 100])
    parser.add_argument("--skip-comparisons", action="store_true", help="only the sizes")
    parser.add_argument(
        "--jobs", type=int, default=2,
        help="LightGBM threads (2 on a 2-core machine; 1 on a machine shared with other work, where OpenMP threads spin)",
    )
    parser.add_argument("--readme-only", action="store_true", help="rewrite the README table from bench/results/scale.json")
    parser.add_argument("--ensembles-only", action="store_true", help="only the panel ensembles on 10 plants, merged into scale.json")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.readme_only:
        write_readme(json.loads((RESULTS / "scale.json").read_text()))
        return
    if args.ensembles_only:
        results = json.loads((RESULTS / "scale.json").read_text())
        results["ensembles"] = [_child(["ensembles", "10", ORIGIN_EVERY, str(args.jobs)])]
        _write(results)
        write_readme(results)
        return
    if args.child:
        kind, plants, *rest = args.child
        GLOBAL_PARAMS["n_jobs"] = int(rest[-1])
        if kind == "global":
            result = run_global(int(plants), rest[0], rest[1])
        elif kind == "memory":  # the matrix at hourly origins, a few rounds: what streaming saves
            result = run_global(int(plants), "mean", "1h", rounds=5)
        elif kind == "ensembles":
            result = run_ensembles(int(plants), rest[0])
        else:
            result = run_per_plant_models(int(plants), rest[0])
        print(json.dumps(result))
        return
    load = os.getloadavg()
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average_at_start": [round(x, 2) for x in load]},
        "settings": {"seed": SEED, "params": {**GLOBAL_PARAMS, "n_jobs": args.jobs}, "train_origin_every": ORIGIN_EVERY, "scaling": "mean",
                     "split": "train Jan-Oct 2018, validate Nov (early stopping), test Dec: 31 day-ahead origins per plant"},
        "sizes": [], "global_vs_per_plant": [], "choices": [], "ensembles": [], "memory": None,
    }
    for plants in sorted(args.plants):
        _plants_dir(plants)
    jobs = str(args.jobs)
    small, large = [n for n in sorted(args.plants) if n < 100], [n for n in sorted(args.plants) if n >= 100]
    for plants in small:
        results["sizes"].append(_child(["global", str(plants), "mean", ORIGIN_EVERY, jobs]))
        _write(results)
    if not args.skip_comparisons:
        results["global_vs_per_plant"].append(_child(["per_plant", "10", ORIGIN_EVERY, jobs]))
        _write(results)
        results["ensembles"].append(_child(["ensembles", "10", ORIGIN_EVERY, jobs]))
        _write(results)
        for scaling, every in (("none", ORIGIN_EVERY), ("mean", "6h")):
            results["choices"].append(_child(["global", "10", scaling, every, jobs]))
            _write(results)
    for plants in large:  # last: the longest
        results["sizes"].append(_child(["global", str(plants), "mean", ORIGIN_EVERY, jobs]))
        _write(results)
    if not args.skip_comparisons:
        results["memory"] = _child(["memory", "10", jobs])
        _write(results)
    sizes = {r["plants"]: r for r in results["sizes"]}
    if 10 in sizes and 100 in sizes:
        results["fit_time_ratio_100_over_10"] = round(sizes[100]["fit_seconds"] / sizes[10]["fit_seconds"], 2)
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    _write(results)
    write_readme(results)


if __name__ == "__main__":
    main()
