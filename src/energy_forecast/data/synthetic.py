"""A small synthetic stand-in for the steel CSV, with the same schema and the same quirks.

It writes a file the real loader must repair exactly as it repairs the UCI file: UTF-8 with a BOM,
CRLF line endings, ``dd/mm/yyyy HH:MM`` interval-END stamps, and the 00:00 row dated with the day
it ends. The load follows a learnable pattern (time of day, weekday vs weekend, a production
calendar in ``Load_Type``) plus autocorrelated noise, so models have something to learn and
baselines something to lose to.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["STEEL_COLUMNS", "synthetic_steel_frame", "write_synthetic_steel_csv"]

STEEL_COLUMNS = [
    "date",
    "Usage_kWh",
    "Lagging_Current_Reactive.Power_kVarh",
    "Leading_Current_Reactive_Power_kVarh",
    "CO2(tCO2)",
    "Lagging_Current_Power_Factor",
    "Leading_Current_Power_Factor",
    "NSM",
    "WeekStatus",
    "Day_of_week",
    "Load_Type",
]

_LOAD_LEVEL = {"Light_Load": 4.0, "Medium_Load": 35.0, "Maximum_Load": 60.0}


def _load_type(start: pd.DatetimeIndex) -> np.ndarray:
    hour = start.hour.to_numpy()
    weekend = start.day_of_week.to_numpy() >= 5
    kind = np.where((hour >= 9) & (hour < 12) | (hour >= 17) & (hour < 20), "Maximum_Load", "Medium_Load")
    kind = np.where((hour < 8) | (hour >= 21) | weekend, "Light_Load", kind)
    return kind


def synthetic_steel_frame(days: int = 60, start: str = "2018-01-01", seed: int = 0) -> pd.DataFrame:
    """Rows in file order with the steel CSV's columns, ``date`` already written the quirky way."""
    rng = np.random.default_rng(seed)
    interval_start = pd.date_range(start, periods=days * 96, freq="15min")
    interval_end = interval_start + pd.Timedelta(minutes=15)
    load_type = _load_type(interval_start)
    level = np.vectorize(_LOAD_LEVEL.get)(load_type)
    slot = (interval_start.hour * 4 + interval_start.minute // 15).to_numpy()
    noise = np.zeros(len(interval_start))
    shocks = rng.normal(0.0, 3.0, len(interval_start))
    for i in range(1, len(noise)):  # AR(1): recent values carry information about the next ones
        noise[i] = 0.8 * noise[i - 1] + shocks[i]
    usage = np.clip(level * (1.0 + 0.15 * np.sin(2 * np.pi * slot / 96)) + noise, 0.0, None).round(2)
    lagging_kvarh = np.clip(0.5 * usage + rng.normal(0, 1.0, len(usage)), 0.0, None).round(2)
    leading_kvarh = np.clip(rng.normal(1.0, 1.0, len(usage)), 0.0, None).round(2)
    with np.errstate(invalid="ignore", divide="ignore"):
        lagging_pf = np.where(usage > 0, 100 * usage / np.hypot(usage, lagging_kvarh), 0.0).round(2)
        leading_pf = np.where(usage > 0, 100 * usage / np.hypot(usage, leading_kvarh), 100.0).round(2)
    # The 00:00 stamp closes the day written in it: write the interval's own (start) date.
    written = [
        f"{s:%d/%m/%Y} {e:%H:%M}" for s, e in zip(interval_start, interval_end, strict=True)
    ]
    seconds_of_day = (interval_end.hour * 3600 + interval_end.minute * 60).to_numpy()
    weekday = interval_start.day_name().to_numpy()
    return pd.DataFrame(
        {
            "date": written,
            "Usage_kWh": usage,
            "Lagging_Current_Reactive.Power_kVarh": lagging_kvarh,
            "Leading_Current_Reactive_Power_kVarh": leading_kvarh,
            "CO2(tCO2)": (0.000459 * usage).round(2),
            "Lagging_Current_Power_Factor": lagging_pf,
            "Leading_Current_Power_Factor": leading_pf,
            "NSM": seconds_of_day,
            "WeekStatus": np.where(interval_start.day_of_week >= 5, "Weekend", "Weekday"),
            "Day_of_week": weekday,
            "Load_Type": load_type,
        },
        columns=STEEL_COLUMNS,
    )


def write_synthetic_steel_csv(path: Path | str, days: int = 60, start: str = "2018-01-01", seed: int = 0) -> Path:
    """Write the synthetic series as the UCI file is written: BOM, CRLF, quirky dates."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    synthetic_steel_frame(days, start, seed).to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\r\n")
    return path
