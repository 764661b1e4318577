"""Dagster metadata from a training result: numbers, a leaderboard table and the plots."""

from __future__ import annotations

import base64

import dagster as dg
import pandas as pd

from energy_forecast.training import TrainingResult
from energy_forecast.tuning import TuningResult


def markdown_table(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False, floatfmt=".3f")


def png_markdown(png: bytes, alt: str) -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def training_metadata(result: TrainingResult) -> dict[str, dg.MetadataValue]:
    metadata: dict[str, dg.MetadataValue] = {
        "model_type": dg.MetadataValue.text(result.model_type),
        "task": dg.MetadataValue.text(result.task),
        **{f"test_{name}": dg.MetadataValue.float(value) for name, value in result.metrics.items()},
        "leaderboard": dg.MetadataValue.md(markdown_table(result.leaderboard)),
        "device": dg.MetadataValue.text(result.tags.get("device", "")),
        "fit_seconds": dg.MetadataValue.float(result.fit_seconds),
    }
    for name, png in result.plots.items():
        metadata[name.removesuffix(".png")] = dg.MetadataValue.md(png_markdown(png, name))
    if result.run_id:
        metadata["mlflow_run_id"] = dg.MetadataValue.text(result.run_id)
    if result.run_url:
        metadata["mlflow_run"] = dg.MetadataValue.url(result.run_url)
    if result.promotion:
        metadata["registered_model"] = dg.MetadataValue.text(f"{result.promotion.registered_model} v{result.promotion.version}")
        metadata["promotion"] = dg.MetadataValue.text(result.promotion.decision)
    return metadata


def tuning_metadata(result: TuningResult) -> dict[str, dg.MetadataValue]:
    metadata: dict[str, dg.MetadataValue] = {
        "study": dg.MetadataValue.text(result.study_name),
        "storage": dg.MetadataValue.text(result.storage),
        f"best_val_{result.metric}": dg.MetadataValue.float(result.best_value),
        "best_trial": dg.MetadataValue.int(result.best_trial),
        "best_params": dg.MetadataValue.json(result.best_params),
        "trials_finished": dg.MetadataValue.int(result.trials_finished),
        "trials_pruned": dg.MetadataValue.int(result.trials_pruned),
        "trials_this_run": dg.MetadataValue.int(result.trials_run),
        "wall_seconds": dg.MetadataValue.float(result.wall_s),
        "tuned_config": dg.MetadataValue.path(result.tuned_config),
    }
    if result.run_id:
        metadata["mlflow_run_id"] = dg.MetadataValue.text(result.run_id)
    if result.run_url:
        metadata["mlflow_run"] = dg.MetadataValue.url(result.run_url)
    return metadata
