"""One leaderboard over several training runs, with the baselines beside them."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from energy_forecast.plots import figure_png
from energy_forecast.tracking import Tracker
from energy_forecast.training import TrainingResult

__all__ = ["build_leaderboard", "leaderboard_png", "log_leaderboard"]

COLUMNS = ["rmse", "mae", "r2", "mase", "smape", "mape_nonzero"]
INTERVAL_COLUMNS = ["pinball_loss", "coverage_80", "width_80"]
"""Every model forecasts quantiles (calibrated, or Chronos-2's own); baselines have none."""


def build_leaderboard(results: list[TrainingResult]) -> pd.DataFrame:
    """Models and (once per task) baselines, ranked by test RMSE within each task."""
    rows = []
    baselines_seen: set[tuple[str, str]] = set()
    for result in results:
        rows.append({
            "task": result.task, "forecaster": result.config_name, "kind": "model", "model_type": result.model_type,
            **{k: result.metrics[k] for k in COLUMNS}, **{k: result.metrics.get(k) for k in INTERVAL_COLUMNS},
            "fit_s": result.fit_seconds,
            "device": result.tags.get("device", ""), "run_id": result.run_id or "",
            "promoted": bool(result.promotion and result.promotion.promoted),
        })
        for name, metrics in result.baseline_metrics.items():
            if (result.task, name) not in baselines_seen:
                baselines_seen.add((result.task, name))
                rows.append({"task": result.task, "forecaster": name, "kind": "baseline", "model_type": name, **{k: metrics[k] for k in COLUMNS}})
    board = pd.DataFrame(rows).sort_values(["task", "rmse"], ignore_index=True)
    board.insert(0, "rank", board.groupby("task").cumcount() + 1)
    return board


def leaderboard_png(board: pd.DataFrame, title: str) -> bytes:
    """Horizontal bars of test RMSE per task; baselines in grey."""
    tasks = list(dict.fromkeys(board["task"]))
    figure, axes = plt.subplots(len(tasks), 1, figsize=(8, 1.2 + 0.4 * len(board)), squeeze=False)
    for axis, task in zip(axes[:, 0], tasks, strict=True):
        part = board[board["task"] == task].iloc[::-1]
        colours = ["tab:gray" if kind == "baseline" else "tab:blue" for kind in part["kind"]]
        axis.barh(part["forecaster"], part["rmse"], color=colours)
        for y, value in enumerate(part["rmse"]):
            axis.text(value, y, f" {value:.2f}", va="center", fontsize="small")
        axis.set_title(f"{title}: {task}, test RMSE (lower is better)")
        axis.grid(axis="x", alpha=0.3)
    return figure_png(figure)


def log_leaderboard(tracker: Tracker, experiment: str, name: str, board: pd.DataFrame, png: bytes) -> tuple[str, str | None]:
    """A run of kind ``leaderboard`` holding the table (markdown, CSV, MLflow table) and chart."""
    with tracker.run(experiment=experiment, run_name=f"leaderboard-{name}-{pd.Timestamp.now():%Y%m%d-%H%M%S}", tags={"run_kind": "leaderboard", "comparison": name}) as active:
        tracker.log_text(board.to_markdown(index=False, floatfmt=".3f"), "leaderboard.md")
        tracker.log_text(board.to_csv(index=False), "leaderboard.csv")
        tracker.log_bytes(png, "leaderboard.png")
        models = board[board["kind"] == "model"]
        for task, part in models.groupby("task"):
            best = part.iloc[0]
            tracker.log_metrics({f"{task}_best_rmse": float(best["rmse"])})
            tracker.log_params({f"{task}_best": str(best["forecaster"])})
        return active.info.run_id, tracker.run_url(active.info.experiment_id, active.info.run_id)
