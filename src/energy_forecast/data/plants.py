"""Synthetic plants built from the real steel series, for panels, tests and the scale benchmark.

Each plant is the real 2018 series transformed so that plants differ the way real sites do:

- **its own scale**: the load times a log-normal factor (median 1, most plants 0.3x-3x);
- **a shifted production calendar**: the whole year moved by a whole number of days (another
  rest day in the week) and a few hours (other shift times), cyclically, Load_Type moving with it;
- **a holiday pattern**: a handful of its own working days run at the light load of a rest day;
- **noise**: multiplicative, log-normal, 3-12 % per plant;
- **a few outages**: 1-3 stretches of 4-36 hours near zero;
- **a level shift**: from a day between March and October the load is 0.75x-1.3x what it was
  (a new line, a closed furnace).

The same seed gives the same plants, byte for byte. Plant ``i`` depends only on the seed and
``i``, so 10 plants are the first 10 of 100.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["PLANT_COLUMNS", "synth_plant", "write_plants"]

PLANT_COLUMNS = ["timestamp", "Usage_kWh", "Reactive_kVarh", "Load_Type"]


def synth_plant(base: pd.DataFrame, number: int, *, seed: int = 0) -> pd.DataFrame:
    """Plant ``number`` from ``base`` (the steel series: index of interval starts, ``Usage_kWh``,
    ``Lagging_Current_Reactive.Power_kVarh``, ``Load_Type``); columns :data:`PLANT_COLUMNS`."""
    rng = np.random.default_rng([seed, number])
    steps_per_day = int(pd.Timedelta(days=1) / (base.index[1] - base.index[0]))
    load = base["Usage_kWh"].to_numpy(dtype="float64")
    reactive = base["Lagging_Current_Reactive.Power_kVarh"].to_numpy(dtype="float64")
    kind = base["Load_Type"].astype(str).to_numpy()
    n = len(load)
    if number == 0:
        shift = 0  # plant 0 keeps the real calendar
    else:
        shift = int(rng.integers(1, 7)) * steps_per_day + int(rng.integers(-3, 4)) * (steps_per_day // 24)
    load, reactive, kind = np.roll(load, shift), np.roll(reactive, shift), np.roll(kind, shift)
    days = n // steps_per_day
    daily = load[: days * steps_per_day].reshape(days, steps_per_day)
    light = daily.mean(axis=1) < np.quantile(daily.mean(axis=1), 0.15)  # rest days of the shifted calendar
    rest_profile = daily[light].mean(axis=0)
    working = np.flatnonzero(~light)
    for day in rng.choice(working, size=int(rng.integers(4, 10)), replace=False):
        at = slice(day * steps_per_day, (day + 1) * steps_per_day)
        load[at] = rest_profile * rng.uniform(0.8, 1.2)
        reactive[at] *= 0.1
        kind[at] = "Light_Load"
    level = np.ones(n)
    change = int(rng.integers(60, 300)) * steps_per_day
    level[change:] = rng.uniform(0.75, 1.3)
    scale = float(np.exp(rng.normal(0.0, 0.6)))
    noise = np.exp(rng.normal(0.0, rng.uniform(0.03, 0.12), size=n))
    load = load * level * scale * noise
    reactive = reactive * level * scale * noise
    for _ in range(int(rng.integers(1, 4))):
        start = int(rng.integers(0, n - 200))
        length = int(rng.integers(16, 145))
        load[start : start + length] *= 0.02
        reactive[start : start + length] *= 0.02
    return pd.DataFrame(
        {
            "timestamp": base.index.strftime("%Y-%m-%d %H:%M"),
            "Usage_kWh": np.round(np.maximum(load, 0.0), 3),
            "Reactive_kVarh": np.round(np.maximum(reactive, 0.0), 3),
            "Load_Type": kind,
        }
    )


def write_plants(base: pd.DataFrame, plants: int, out: Path, *, seed: int = 0) -> list[Path]:
    """Write ``plants`` CSVs ``plant_000.csv`` … into ``out`` (made if missing); returns their paths."""
    if plants < 1:
        raise ValueError(f"--plants must be at least 1, got {plants}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    width = max(3, len(str(plants - 1)))
    paths = []
    for number in range(plants):
        path = out / f"plant_{number:0{width}d}.csv"
        synth_plant(base, number, seed=seed).to_csv(path, index=False, lineterminator="\n")
        paths.append(path)
    return paths
