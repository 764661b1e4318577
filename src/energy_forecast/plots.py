"""Figures people would rather look at than read, rendered to PNG bytes.

Both MLflow (artifacts) and Dagster (markdown metadata) take the same bytes.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # headless: servers, containers and CI have no display

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from energy_forecast.frames import ACTUAL, ORIGIN, PREDICTION, TIMESTAMP  # noqa: E402
from energy_forecast.metrics import rmse_by_step  # noqa: E402

__all__ = ["error_by_horizon_png", "figure_png", "forecast_ahead_png", "forecast_week_png", "per_series_png", "pick_test_week"]


def figure_png(figure: plt.Figure) -> bytes:
    """Render and close ``figure``."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def pick_test_week(forecast: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first Monday-to-Sunday week the forecast covers fully, else its first seven days."""
    stamps = pd.DatetimeIndex(forecast[TIMESTAMP])
    first, last = stamps.min(), stamps.max()
    monday = (first.normalize() + pd.Timedelta(days=(7 - first.day_of_week) % 7))
    if monday + pd.Timedelta(days=7) <= last + pd.Timedelta(minutes=1):
        return monday, monday + pd.Timedelta(days=7)
    return first, min(first + pd.Timedelta(days=7), last + pd.Timedelta(minutes=1))


def forecast_week_png(forecast: pd.DataFrame, *, title: str, baseline_column: str | None = None, unit: str = "") -> bytes:
    """Forecast against actuals over one test week, with the 80 % interval when present.

    With several origins per stamp (nowcasts overlap nothing, day-ahead forecasts from daily
    origins tile the week), the forecast from the latest origin is drawn.
    """
    start, end = pick_test_week(forecast)
    week = forecast[(forecast[TIMESTAMP] >= start) & (forecast[TIMESTAMP] < end)]
    week = week.sort_values([TIMESTAMP, ORIGIN]).drop_duplicates(TIMESTAMP, keep="last")
    figure, axis = plt.subplots(figsize=(12, 4))
    axis.plot(week[TIMESTAMP], week[ACTUAL], color="black", linewidth=1.0, label="actual")
    axis.plot(week[TIMESTAMP], week[PREDICTION], color="tab:blue", linewidth=1.0, label="forecast")
    if {"q0.1", "q0.9"} <= set(week.columns):
        axis.fill_between(week[TIMESTAMP], week["q0.1"], week["q0.9"], color="tab:blue", alpha=0.2, label="80 % interval")
    if baseline_column and baseline_column in week.columns:
        axis.plot(week[TIMESTAMP], week[baseline_column], color="tab:gray", linewidth=0.8, linestyle="--", label=baseline_column)
    axis.set_title(f"{title}: {start:%Y-%m-%d} to {end - pd.Timedelta(days=1):%Y-%m-%d}")
    axis.set_ylabel(unit)
    axis.legend(loc="upper right", fontsize="small")
    axis.grid(alpha=0.3)
    return figure_png(figure)


def error_by_horizon_png(forecast: pd.DataFrame, *, title: str, columns: dict[str, str], step_minutes: float) -> bytes:
    """RMSE per horizon step for the model and each baseline (``columns``: label -> column)."""
    figure, axis = plt.subplots(figsize=(8, 4))
    for label, column in columns.items():
        per_step = rmse_by_step(forecast, column)
        hours = per_step.index.to_numpy() * step_minutes / 60.0
        axis.plot(hours, per_step.to_numpy(), marker="." if len(per_step) < 10 else None, label=label)
    axis.set_xlabel("hours ahead")
    axis.set_ylabel("RMSE")
    axis.set_title(title)
    axis.legend(fontsize="small")
    axis.grid(alpha=0.3)
    return figure_png(figure)


def forecast_ahead_png(
    forecast: pd.DataFrame, *, history: pd.Series, last_week: pd.Series, actual: pd.Series | None = None, title: str, unit: str = ""
) -> bytes:
    """One forecast: the actuals before its origin, the forecast with its 80 % band, the same
    period one week earlier, and, once known, what actually happened."""
    figure, axis = plt.subplots(figsize=(12, 4))
    origin = pd.Timestamp(forecast[ORIGIN].iloc[0])
    axis.plot(history.index, history.to_numpy(), color="black", linewidth=1.0, label="actual before the origin")
    axis.plot(last_week.index + pd.Timedelta(days=7), last_week.to_numpy(), color="tab:gray", linewidth=0.8, linestyle="--", label="same time last week")
    if actual is not None and actual.notna().any():
        axis.plot(actual.index, actual.to_numpy(), color="black", linewidth=1.0, linestyle=":", label="actual")
    axis.plot(forecast[TIMESTAMP], forecast[PREDICTION], color="tab:blue", linewidth=1.2, label="forecast")
    if {"q0.1", "q0.9"} <= set(forecast.columns):
        axis.fill_between(forecast[TIMESTAMP], forecast["q0.1"], forecast["q0.9"], color="tab:blue", alpha=0.2, label="80 % interval")
    axis.axvline(origin, color="tab:red", linewidth=0.8)
    axis.set_title(f"{title}: from {origin:%Y-%m-%d %H:%M}")
    axis.set_ylabel(unit)
    axis.legend(loc="upper left", fontsize="small")
    axis.grid(alpha=0.3)
    return figure_png(figure)


def per_series_png(per_series: pd.DataFrame, *, title: str, top: int = 40) -> bytes:
    """A panel's test error per series: RMSE over the series' mean load (nRMSE), bars sized by
    volume share, the worst ``top`` series first (a panel of 100 shows its 40 worst)."""
    nrmse = (per_series["rmse"] / per_series["mean_actual"].where(per_series["mean_actual"] > 0)).fillna(0.0)
    share = per_series["volume"] / max(float(per_series["volume"].sum()), 1e-12)
    order = nrmse.sort_values(ascending=False).index[:top]
    figure, axis = plt.subplots(figsize=(8, max(2.5, 0.22 * len(order) + 1)))
    shade = 0.35 + 0.65 * (share[order] / max(float(share.max()), 1e-12)).to_numpy()[::-1]
    axis.barh([str(s) for s in order][::-1], nrmse[order].to_numpy()[::-1], color=[(0.12, 0.47, 0.71, float(a)) for a in shade])
    axis.axvline(float((nrmse * share).sum()), color="black", linewidth=1.0, linestyle="--", label="volume-weighted")
    axis.set_xlabel("RMSE / mean load (darker: more volume)")
    axis.set_title(title + ("" if len(per_series) <= top else f" ({top} worst of {len(per_series)})"))
    axis.legend(loc="lower right", fontsize="small")
    axis.grid(alpha=0.3, axis="x")
    return figure_png(figure)
