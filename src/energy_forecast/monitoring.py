"""Watching a model in operation: realized accuracy against what the backtest promised, and drift.

**Accuracy.** Once a day's actuals are stored, its forecast (from the forecasts store) is scored:
RMSE, MAE, the 80 % interval's coverage and width, and the same for the weekly seasonal naive
forecast of that day. Rolling 7- and 28-day views pool every scored day, compared with the
champion's December backtest RMSE (its MLflow ``test_rmse``): a ratio well above 1 means the
model does worse in operation than it promised.

**Drift.** The recent weeks of the target and of each covariate against the training period,
by the population stability index (PSI; Siddiqi, *Credit Risk Scorecards*, 2006): the
reference's deciles (numeric) or categories bin both samples, and PSI = Σ (q − p)·ln(q / p). The
usual reading: below 0.1 stable, 0.1 to 0.25 moderate, above 0.25 a shift. Numeric columns also
get the two-sample Kolmogorov–Smirnov statistic (``scipy.stats.ks_2samp``); its p-value is
reported but not used to decide, since 15-minute readings are far from independent and with
thousands of them every p-value is tiny.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from energy_forecast.config import DataConfig
from energy_forecast.frames import ORIGIN, PREDICTION, TIMESTAMP
from energy_forecast.metrics import quantile_scores
from energy_forecast.plots import figure_png

__all__ = ["DriftReport", "accuracy_png", "day_accuracy", "drift", "drift_png", "latest_forecasts", "pooled_accuracy", "psi"]

WEEK = pd.Timedelta(days=7)


def latest_forecasts(stored: pd.DataFrame) -> pd.DataFrame:
    """One forecast per stamp: for each origin the most recently written version, and for each
    stamp the latest origin covering it (what the operator saw last before the stamp)."""
    if stored.empty:
        return stored
    ordered = stored.sort_values("created_at", kind="stable")
    newest = ordered.groupby(ORIGIN)["model_version"].transform("last")
    chosen = ordered[ordered["model_version"] == newest]
    return chosen.sort_values([TIMESTAMP, ORIGIN]).drop_duplicates(TIMESTAMP, keep="last").reset_index(drop=True)


def _scores(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    error = predicted - actual
    return {"rmse": float(np.sqrt(np.mean(error**2))), "mae": float(np.mean(np.abs(error)))}


def day_accuracy(forecast: pd.DataFrame, series: pd.Series) -> dict[str, float]:
    """Realized accuracy of ``forecast`` rows against the stored ``series`` (the target), with the
    weekly seasonal naive forecast of the same stamps beside it.

    Raises:
        ValueError: some forecast stamp has no actual yet.
    """
    stamps = pd.DatetimeIndex(forecast[TIMESTAMP])
    actual = series.reindex(stamps).to_numpy(dtype="float64")
    if np.isnan(actual).any():
        missing = stamps[np.isnan(actual)]
        raise ValueError(f"{len(missing)} forecast stamp(s) have no actual yet, the first {missing[0]}")
    naive = series.reindex(stamps - WEEK).to_numpy(dtype="float64")
    scores = _scores(actual, forecast[PREDICTION].to_numpy(dtype="float64"))
    interval = quantile_scores(forecast.assign(actual=actual))
    result = {**scores, **{k: interval[k] for k in ("coverage_80", "width_80", "pinball_loss") if k in interval}, "steps": float(len(stamps))}
    if not np.isnan(naive).any():
        baseline = _scores(actual, naive)
        skill = 1.0 - scores["rmse"] / baseline["rmse"] if baseline["rmse"] > 0 else float("nan")  # a perfect naive leaves no room
        result |= {"naive_rmse": baseline["rmse"], "naive_mae": baseline["mae"], "skill_vs_naive": skill}
    return result


def pooled_accuracy(forecasts: pd.DataFrame, series: pd.Series, *, end: pd.Timestamp, days: int, backtest_rmse: float | None) -> dict[str, float]:
    """Accuracy over the ``days`` days before ``end``, every scored stamp pooled; ``ratio`` is the
    realized RMSE over the backtest's (when known). Empty when no stamp in the window has both."""
    start = end - pd.Timedelta(days=days)
    window = forecasts[(forecasts[TIMESTAMP] >= start) & (forecasts[TIMESTAMP] < end)]
    window = window[series.reindex(pd.DatetimeIndex(window[TIMESTAMP])).notna().to_numpy()]
    if window.empty:
        return {}
    result = day_accuracy(window, series)
    result["days_scored"] = float(window[TIMESTAMP].dt.normalize().nunique())
    if backtest_rmse:
        result["backtest_rmse"] = backtest_rmse
        result["ratio_to_backtest"] = result["rmse"] / backtest_rmse
    return result


def accuracy_png(daily: pd.DataFrame, *, backtest_rmse: float | None, title: str) -> bytes:
    """Daily realized RMSE of the model and of seasonal naive, with the backtest's promise."""
    figure, axis = plt.subplots(figsize=(10, 3.5))
    axis.plot(daily.index, daily["rmse"], marker="o", color="tab:blue", label="model, realized")
    if "naive_rmse" in daily:
        axis.plot(daily.index, daily["naive_rmse"], marker=".", color="tab:gray", linestyle="--", label="seasonal naive (weekly)")
    if backtest_rmse:
        axis.axhline(backtest_rmse, color="tab:red", linewidth=1, label=f"backtest (December) {backtest_rmse:.2f}")
    axis.set_ylabel("RMSE per day")
    axis.set_title(title)
    axis.legend(fontsize="small")
    axis.grid(alpha=0.3)
    figure.autofmt_xdate()
    return figure_png(figure)


# -- drift ---------------------------------------------------------------------------------------


def psi(reference: np.ndarray, recent: np.ndarray, *, categorical: bool = False, bins: int = 10) -> float:
    """Population stability index of ``recent`` against ``reference`` (bins from the reference)."""
    if categorical:
        categories = np.union1d(np.unique(reference), np.unique(recent))
        expected = np.array([(reference == c).mean() for c in categories])
        observed = np.array([(recent == c).mean() for c in categories])
    else:
        edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
        expected = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1) / len(reference)
        observed = np.bincount(np.searchsorted(edges, recent, side="right"), minlength=len(edges) + 1) / len(recent)
    expected, observed = np.clip(expected, 1e-4, None), np.clip(observed, 1e-4, None)  # empty bins: a small floor, not infinity
    return float(np.sum((observed - expected) * np.log(observed / expected)))


@dataclass(frozen=True)
class DriftReport:
    table: pd.DataFrame
    """One row per column: ``column``, ``kind``, ``psi``, ``ks``, ``ks_pvalue``, ``drifted``."""
    reference: tuple[pd.Timestamp, pd.Timestamp]
    recent: tuple[pd.Timestamp, pd.Timestamp]
    threshold: float

    @property
    def drifted(self) -> list[str]:
        return self.table.loc[self.table["drifted"], "column"].tolist()

    @property
    def max_psi(self) -> float:
        return float(self.table["psi"].max())


def drift(frame: pd.DataFrame, data: DataConfig, *, reference: tuple[pd.Timestamp, pd.Timestamp], recent_days: int, threshold: float) -> DriftReport:
    """PSI (and KS for numbers) of the last ``recent_days`` against the ``reference`` period, for
    the target and every covariate."""
    from scipy.stats import ks_2samp

    end = frame.index[-1] + data.step
    recent_start = end - pd.Timedelta(days=recent_days)
    base = frame.loc[(frame.index >= reference[0]) & (frame.index < reference[1])]
    latest = frame.loc[frame.index >= recent_start]
    if base.empty or latest.empty:
        raise ValueError(f"drift needs data in the reference period {reference[0]}..{reference[1]} and in the last {recent_days} days")
    rows = []
    kinds = {data.target: "numeric", **{c.name: c.kind for c in data.covariates}}
    for column, kind in kinds.items():
        a, b = base[column].dropna(), latest[column].dropna()
        if kind == "categorical":
            value = psi(a.astype(str).to_numpy(), b.astype(str).to_numpy(), categorical=True)
            ks, pvalue = np.nan, np.nan
        else:
            value = psi(a.to_numpy(dtype="float64"), b.to_numpy(dtype="float64"))
            test = ks_2samp(a.to_numpy(dtype="float64"), b.to_numpy(dtype="float64"))
            ks, pvalue = float(test.statistic), float(test.pvalue)
        rows.append({"column": column, "kind": kind, "psi": value, "ks": ks, "ks_pvalue": pvalue, "drifted": value > threshold})
    table = pd.DataFrame(rows).sort_values("psi", ascending=False, ignore_index=True)
    return DriftReport(table, reference, (recent_start, end), threshold)


def drift_png(report: DriftReport, frame: pd.DataFrame, target: str) -> bytes:
    """PSI per column against the threshold, and the target's distribution then and now."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [3, 2]})
    table = report.table.iloc[::-1]
    left.barh(table["column"], table["psi"], color=["tab:red" if d else "tab:blue" for d in table["drifted"]])
    left.axvline(report.threshold, color="black", linewidth=0.8, linestyle="--", label=f"threshold {report.threshold:g}")
    left.set_xlabel("PSI (recent vs reference)")
    left.set_title(f"drift: {report.recent[0]:%Y-%m-%d}..{report.recent[1]:%Y-%m-%d} vs {report.reference[0]:%Y-%m-%d}..{report.reference[1]:%Y-%m-%d}")
    left.legend(fontsize="small")
    reference = frame.loc[(frame.index >= report.reference[0]) & (frame.index < report.reference[1]), target]
    recent = frame.loc[frame.index >= report.recent[0], target]
    bins = np.histogram_bin_edges(reference.dropna(), bins=40)
    right.hist(reference.dropna(), bins=bins, density=True, alpha=0.5, label="reference")
    right.hist(recent.dropna(), bins=bins, density=True, alpha=0.5, label="recent")
    right.set_title(f"{target}: distribution")
    right.legend(fontsize="small")
    return figure_png(figure)
