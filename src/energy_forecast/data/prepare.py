"""Prepare the dataset for training: the ``prepare`` stage of ``dvc.yaml``.

    python -m energy_forecast.data.prepare --data-config configs/data/steel_industry.yaml \\
        --csv data/raw/Steel_industry_data.csv --out data/prepared/steel_industry.parquet

Loads the CSV exactly as training does (the data YAML's quirks repaired, every check applied, short
gaps filled) and writes the validated, gap-free series as parquet, interval-start stamps in the
column ``timestamp``. A summary (rows, span, filled steps, the CSV's sha256) goes to ``--summary``
as JSON, which DVC tracks as a metric. Bad data exits with status 2 and the loader's message, and
writes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from energy_forecast.config import ConfigError, DataConfig, load_data_config
from energy_forecast.data.loading import DataValidationError, load_series

__all__ = ["prepare"]


def prepare(config: DataConfig, out: Path, summary: Path | None = None) -> dict[str, object]:
    """Validate the CSV ``config`` describes and write the series to ``out`` (parquet)."""
    series = load_series(config)
    frame = series.frame.reset_index()
    facts: dict[str, object] = {
        "data_name": config.name,
        "csv": str(config.path),
        "csv_sha256": series.sha256,
        "rows": len(frame),
        "start": str(frame.iloc[0, 0]),
        "end": str(frame.iloc[-1, 0]),
        "filled_steps": series.filled_steps,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial")
    frame.to_parquet(partial, index=False)
    partial.replace(out)
    if summary is not None:
        summary.parent.mkdir(parents=True, exist_ok=True)
        summary.write_text(json.dumps(facts, indent=2) + "\n")
    return facts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-config", type=Path, default=Path("configs/data/steel_industry.yaml"))
    parser.add_argument("--csv", type=Path, help="the CSV to read instead of the data YAML's path")
    parser.add_argument("--out", type=Path, default=Path("data/prepared/steel_industry.parquet"))
    parser.add_argument("--summary", type=Path, default=Path("data/prepared/steel_industry.json"))
    args = parser.parse_args(argv)
    try:
        config = load_data_config(args.data_config)
        if args.csv is not None:
            config = config.model_copy(update={"path": args.csv})
        facts = prepare(config, args.out, args.summary)
    except (ConfigError, DataValidationError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"ok: {args.out} ({facts['rows']} rows, {facts['start']} .. {facts['end']}, {facts['filled_steps']} filled)")


if __name__ == "__main__":
    main()
