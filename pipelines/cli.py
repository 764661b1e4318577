"""Command line: run the Dagster jobs in this process on the local (or configured) instance.

    energy-forecast validate configs/training/*.yaml
    energy-forecast train configs/training/lightgbm.yaml
    energy-forecast compare configs/comparisons/traditional.yaml
    energy-forecast tune configs/training/xgboost.yaml [--trials N] [--timeout S]
    energy-forecast demo
    energy-forecast forecast [--origin 2019-01-01]

Runs are recorded in ``$DAGSTER_HOME`` (``make`` sets ``.dagster/``), so ``make dev`` shows them.
Bad input (a config, the data, the device, the weights) exits with status 2 and one message naming
the file and field, before any run is launched and before anything is written; ``--debug`` adds
the stack trace. ``validate`` runs every check ``train`` runs before fitting.
"""

import argparse
import logging
import os
import sys
import traceback
from pathlib import Path

import dagster as dg

from energy_forecast.config import (
    ConfigError,
    TrainingConfig,
    load_comparison_config,
    load_data_config,
    load_task_config,
)
from energy_forecast.contract import describe_lookback
from energy_forecast.data.ahead import KnownFutureError
from energy_forecast.data.loading import DataValidationError, load_series
from energy_forecast.device import DeviceUnavailableError
from energy_forecast.forecast import ForecastError, forecast_next
from energy_forecast.models.chronos2.weights import WeightsUnavailableError
from energy_forecast.tracking import Tracker, resolve_tracking_uri
from energy_forecast.training import TrainingResult, load_config, preflight
from energy_forecast.tuning import TuningResult, load_tuning_config, open_study, storage_for
from pipelines.definitions import defs
from pipelines.logs import DEBUG_VARIABLE
from pipelines.paths import resolve_config_path

BAD_INPUT = (ConfigError, DataValidationError, DeviceUnavailableError, ForecastError, KnownFutureError, WeightsUnavailableError)
"""What the user can fix: exit status 2, one message, no trace unless --debug."""
EXIT_BAD_INPUT = 2


LOCAL_INSTANCE_YAML = """\
# Local Dagster instance of `make demo` / `make train` / `make dev`: runs, events and schedules in
# SQLite files beside this one. Written by energy-forecast because none was here; edit freely
# (a `storage: postgres:` section moves everything to PostgreSQL).
telemetry:
  enabled: false
"""


def _instance() -> dg.DagsterInstance:
    if os.environ.get("DAGSTER_HOME"):
        home = Path(os.environ["DAGSTER_HOME"])
        home.mkdir(parents=True, exist_ok=True)
        if not (home / "dagster.yaml").exists():
            (home / "dagster.yaml").write_text(LOCAL_INSTANCE_YAML)
        return dg.DagsterInstance.get()
    logging.getLogger(__name__).warning("DAGSTER_HOME is not set: this run is kept in a temporary instance only")
    return dg.DagsterInstance.ephemeral()


def step_failure_messages(result: dg.ExecuteInProcessResult) -> list[str]:
    """The user-code error behind each failed step (Dagster wraps it in its own error)."""
    messages = []
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error:
            error = event.step_failure_data.error
            while error.cause is not None:
                error = error.cause
            text = error.message.strip()  # "package.module.ClassName: message"
            messages.append(f"{error.cls_name}: {text.split(f'{error.cls_name}: ', 1)[-1]}")
    return messages


def _execute(job_name: str, run_config: dict) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def(job_name)
    run_config = {**run_config, "loggers": {"console": {"config": {"log_level": "INFO"}}}}
    with _instance() as instance:
        result = job.execute_in_process(run_config=run_config, instance=instance, raise_on_error=False)
    if not result.success:
        raise SystemExit(f"{job_name} failed (Dagster run {result.run_id}):\n" + "\n".join(step_failure_messages(result)))
    return result


def validate(paths: list[str], config_only: bool, debug: bool = False) -> None:
    """Every check ``train`` runs before fitting (config, model, device, weights, data, split), or
    with ``config_only`` the YAML alone. Every file is checked, as a linter would: each bad one
    prints ``error: <file>: ...`` and the command fails at the end, naming them all."""
    failed = []
    for path in paths:
        try:
            print(_validate_one(path, config_only))
        except BAD_INPUT as error:
            message = str(error)
            _report_bad_input(message if path in message else f"{path}: {message}", debug)
            failed.append(path)
    if failed:
        print(f"{len(failed)} of {len(paths)} training YAMLs failed validation: {', '.join(failed)}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def _report_bad_input(message: str, debug: bool) -> None:
    """One ``error:`` line on stderr for input the user can fix; the stack trace only with --debug."""
    if debug:
        traceback.print_exc()
    print(f"error: {message}", file=sys.stderr, flush=True)


def _validate_one(path: str, config_only: bool) -> str:
    config = load_config(resolve_config_path(path))
    if config_only:
        return f"ok  {path}: {config.model.type}, {config.task.name} (config only)"
    checked = preflight(config)
    device = checked.model.device
    note = f"; note: {device.reason}" if device.requested == "auto" and not device.gpu_used and checked.model.gpu_support(checked.model.params) is True else ""
    return (
        f"ok  {path}: {config.model.type} on {device.device}, {config.task.name}, data {len(checked.series.frame)} rows, "
        f"{len(checked.split.validation_origins)} validation and {len(checked.split.test_origins)} test origins{note}"
    )


def _print_result(result: TrainingResult) -> None:
    print(result.leaderboard.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"MLflow run: {result.run_id}  {result.run_url or ''}")
    if result.promotion:
        print(f"registered: {result.promotion.registered_model} v{result.promotion.version} ({result.promotion.decision})")


def _check_before_launch(config_paths: list[Path]) -> list[TrainingConfig]:
    """Run every pre-fit check here, so bad input launches no run at all."""
    configs = [load_config(path) for path in config_paths]
    for config in configs:
        preflight(config)
    return configs


def train_command(config_path: str) -> None:
    (config,) = _check_before_launch([resolve_config_path(config_path)])
    outcome = _execute("complete_training_job", {"ops": {"train_model": {"config": {"config_path": str(config.source)}}}})
    _print_result(outcome.output_for_node("train_model"))


def tune_command(config_path: str, trials: int | None, timeout: float | None) -> TuningResult:
    """tune_model_job for one YAML: every check (the tuning block, the data, the storage) before launch."""
    path = resolve_config_path(config_path)
    config = load_tuning_config(path, trials=trials, timeout=timeout)
    preflight(config)
    open_study(config, storage_for(config, resolve_tracking_uri()))  # an unreachable storage fails here, with exit 2
    op_config = {"config_path": str(path), **({"trials": trials} if trials else {}), **({"timeout_s": timeout} if timeout else {})}
    outcome = _execute("tune_model_job", {"ops": {"tune_model": {"config": op_config}}})
    result: TuningResult = outcome.output_for_node("tune_model")
    print(
        f"study '{result.study_name}' in {result.storage}: {result.trials_finished} finished trials "
        f"({result.trials_pruned} pruned; {result.trials_run} in this run, {result.wall_s:.0f} s)"
    )
    print(f"best val_{result.metric} {result.best_value:.4f} (trial {result.best_trial}): {result.best_params}")
    print(f"tuned config: {result.tuned_config}  (train it: energy-forecast train {result.tuned_config})")
    print(f"MLflow run: {result.run_id}  {result.run_url or ''}")
    return result


def compare_command(comparison_path: str) -> dg.ExecuteInProcessResult:
    comparison = load_comparison_config(resolve_config_path(comparison_path))
    _check_before_launch(comparison.configs)
    op_config = {"config": {"comparison_path": str(comparison.source)}}
    outcome = _execute(
        "compare_models_job", {"ops": {"comparison_configs": op_config, "publish_leaderboard": op_config}}
    )
    board = outcome.output_for_node("publish_leaderboard")
    print(board.drop(columns=["run_id"]).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return outcome


def demo_command(comparison_path: str) -> None:
    outcome = compare_command(comparison_path)
    board = outcome.output_for_node("publish_leaderboard")
    runs = board[board["kind"] == "model"][["forecaster", "run_id"]]
    print("\nMLflow runs:")
    for row in runs.itertuples():
        print(f"  {row.forecaster:<12} {row.run_id}")
    print(f"\nDagster run: {outcome.run_id}")
    print(f"Tracking store: {resolve_tracking_uri()}")
    print("Open the UIs with `make dev`: Dagster at http://127.0.0.1:3000, MLflow at http://127.0.0.1:5000")


def forecast_command(data_path: str, task_path: str, model: str | None, alias: str, origin: str | None) -> None:
    data = load_data_config(resolve_config_path(data_path))
    task = load_task_config(resolve_config_path(task_path))
    name = model or f"{data.name}-{task.name}"
    outcome = forecast_next(data, registered_model=name, alias=alias, origin=origin)
    rows = outcome.rows
    print(f"{name}@{alias} = v{outcome.model.version} ({outcome.model.model_type}), lookback {describe_lookback(outcome.lookback_steps, data.step)}")
    print(
        f"forecast from {outcome.origin}: {len(rows)} steps to {rows['timestamp'].iloc[-1]}; mean {rows['prediction'].mean():.2f} "
        f"{data.target}, 80 % band {(rows['q0.9'] - rows['q0.1']).mean():.2f} wide on average; {outcome.seconds:.1f} s"
    )
    assumed = {k: v for k, v in outcome.covariate_sources.items() if v != "data"}
    if assumed:
        print("known-future covariates beyond the data: " + ", ".join(f"{k} <- {v}" for k, v in assumed.items()))
    print(f"rows:  {outcome.store}  (table forecasts: registered_model='{name}', model_version='{outcome.model.version}', origin='{outcome.origin}')")
    print(f"plot:  {outcome.plot}")


def synth_plants_command(plants: int, out: str, seed: int, data_path: str) -> None:
    from energy_forecast.data.plants import write_plants

    base = load_series(load_data_config(resolve_config_path(data_path))).frame
    paths = write_plants(base, plants, Path(out), seed=seed)
    print(f"{len(paths)} plants from {data_path} (seed {seed}) in {out}: {paths[0].name} .. {paths[-1].name}")
    print(f"load them with configs/data/plants.yaml (PLANTS_PATH={out})")


def train_global_command(config_path: str, data_path: str, out: str, scaling: str, origin_every: str | None, weights_by: str, tracking: bool) -> None:
    from energy_forecast.global_training import train_global

    config = load_config(resolve_config_path(config_path))
    data = load_data_config(resolve_config_path(data_path))
    tracker = Tracker() if tracking else None
    result = train_global(config, data, scaling=scaling, train_origin_every=origin_every, weights_by=weights_by, out=Path(out), tracker=tracker)  # type: ignore[arg-type]
    print(result.per_series[["volume", "rmse", "mae", "mase"]].round(3).to_string())
    aggregate = result.aggregate
    print(f"{int(aggregate['series'])} series: volume-weighted test RMSE {aggregate['volume_weighted_rmse']:.3f}, MAE "
          f"{aggregate['volume_weighted_mae']:.3f}, nRMSE {aggregate['volume_weighted_nrmse']:.3f}; fitted in {result.fit_seconds:.1f} s")
    for name, member in result.members.items():
        print(f"  member {name}: volume-weighted test RMSE {member['volume_weighted_rmse']:.3f} "
              f"(ensemble {aggregate['volume_weighted_rmse'] - member['volume_weighted_rmse']:+.3f})")
    print(f"saved: {out} (operations YAML sites.global_model)")


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("alembic", "mlflow", "urllib3", "botocore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="energy-forecast", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    parser.add_argument("--debug", action="store_true", help="show stack traces (of bad input too, and in the run log)")
    check = commands.add_parser("validate", help="run every check train runs before fitting, for each training YAML")
    check.add_argument("configs", nargs="+")
    check.add_argument("--config-only", action="store_true", help="check the YAML alone, not the data, device and weights")
    check.add_argument("--data", action="store_true", help=argparse.SUPPRESS)  # the default now; kept for old scripts
    one = commands.add_parser("train", help="run complete_training_job for one training YAML")
    one.add_argument("config")
    search = commands.add_parser("tune", help="run tune_model_job: the Optuna study of a training YAML's tuning: block")
    search.add_argument("config")
    search.add_argument("--trials", type=int, help="finished trials the study should hold (overrides tuning.trials)")
    search.add_argument("--timeout", type=float, help="wall seconds for this run (overrides tuning.timeout)")
    many = commands.add_parser("compare", help="run compare_models_job for a comparison YAML")
    many.add_argument("comparison", nargs="?", default="configs/comparisons/traditional.yaml")
    demo = commands.add_parser("demo", help="compare the traditional models and say where to look")
    demo.add_argument("comparison", nargs="?", default="configs/comparisons/traditional.yaml")
    commands.add_parser("replay", help="replay the real meter feed through the operating loop (see --help)", add_help=False)
    ahead = commands.add_parser("forecast", help="forecast the next horizon with the champion and store it")
    ahead.add_argument("--data", default="configs/data/steel_industry.yaml", help="data YAML (the latest data)")
    ahead.add_argument("--task", default="configs/tasks/day_ahead.yaml", help="task YAML (names the registered model)")
    ahead.add_argument("--model", help="registered model; default <data name>-<task name>")
    ahead.add_argument("--alias", default="champion")
    ahead.add_argument("--origin", help="first stamp to forecast; default: the first stamp after the data ends")
    plants = commands.add_parser("synth-plants", help="write N synthetic plants built from the real steel series (a panel)")
    plants.add_argument("--plants", type=int, required=True, help="how many plants")
    plants.add_argument("--out", default="data/plants", help="folder for plant_000.csv ...")
    plants.add_argument("--seed", type=int, default=0, help="same seed, same plants")
    plants.add_argument("--data", default="configs/data/steel_industry.yaml", help="data YAML of the real series they are built from")
    glob = commands.add_parser("train-global", help="fit one LightGBM/XGBoost (or a voting/stacking of them) across a panel, backtest per series, save it")
    glob.add_argument("config", help="training YAML (recipe, split, model.type lightgbm or xgboost, or voting/stacking over them)")
    glob.add_argument("--data", default="configs/data/plants.yaml", help="panel data YAML")
    glob.add_argument("--out", default="data/models/global", help="folder the model is saved to")
    glob.add_argument("--scaling", choices=["mean", "std", "none"], default="mean")
    glob.add_argument("--origin-every", help="training origin spacing (default: the YAML's features.train_origin_every)")
    glob.add_argument("--weights-by", choices=["panel", "series"], default="panel",
                      help="voting/stacking: one set of member weights for the panel, or one per series")
    glob.add_argument("--no-tracking", action="store_true", help="no MLflow run (default: one run in the YAML's experiment, MLFLOW_TRACKING_URI or ./.mlflow)")
    arguments = sys.argv[1:] if argv is None else argv
    debug = "--debug" in arguments
    if debug:
        os.environ[DEBUG_VARIABLE] = "1"
        arguments = [a for a in arguments if a != "--debug"]
        argv = arguments
    if arguments[:1] == ["replay"]:  # its own parser: python -m pipelines.replay
        _configure_logging()
        from pipelines.replay import main as replay_main

        replay_main(arguments[1:])
        return
    args = parser.parse_args(argv)
    _configure_logging()
    try:
        if args.command == "validate":
            validate(args.configs, args.config_only, debug)
        elif args.command == "train":
            train_command(args.config)
        elif args.command == "tune":
            tune_command(args.config, args.trials, args.timeout)
        elif args.command == "compare":
            compare_command(args.comparison)
        elif args.command == "synth-plants":
            synth_plants_command(args.plants, args.out, args.seed, args.data)
        elif args.command == "train-global":
            train_global_command(args.config, args.data, args.out, args.scaling, args.origin_every, args.weights_by, not args.no_tracking)
        elif args.command == "forecast":
            forecast_command(args.data, args.task, args.model, args.alias, args.origin)
        else:
            demo_command(args.comparison)
    except BAD_INPUT as error:
        _report_bad_input(str(error), debug)
        raise SystemExit(EXIT_BAD_INPUT) from None


if __name__ == "__main__":
    main()
