"""Chronos-2 benchmark: December backtest seconds, fine-tune steps/s and peak memory.

``chronos_benchmark(data_path)`` builds a random-weight Chronos-2 (no download), loads it through
the project's forecaster on the device ``auto`` picks (CUDA + bfloat16, else CPU + float32), and
times on the real data, with the nine covariates in their roles and a 2048-step context:

* the December day-ahead backtest (31 origins x 96 steps) through our forecaster, and the same
  ``predict_df`` call made directly on the Chronos pipeline with the same inputs, in the same
  process, so the forecaster's overhead shows as ``backtest_ratio`` (ours / direct);
* fine-tuning at batch 32 on January-October through our forecaster and through a direct
  ``pipeline.fit`` on the same series (``finetune_ratio``: direct steps/s / ours);
* peak memory: the process's peak RSS and, on a GPU, the peak CUDA allocation of each phase.

Sizes: ``tiny`` (default; 190 k parameters) or, with ``CHRONOS_BENCH_SIZE=published``, the
released architecture (d_model 768, 12 layers, 12 heads: 119.5 M parameters). The published size
takes minutes on a CPU; ``CHRONOS_BENCH_FINETUNE_STEPS`` and ``CHRONOS_BENCH_REPEATS`` override
the step and repeat counts.

Run ``python -m bench.chronos [CSV]`` to print the figures as JSON.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from energy_forecast.backtest import split_series
from energy_forecast.config import TrainingConfig
from energy_forecast.data.loading import load_series
from energy_forecast.models import ForecastProblem, create_model
from energy_forecast.models.chronos2 import Chronos2Forecaster
from energy_forecast.training import load_config
from tests.chronos_tiny import PUBLISHED, TINY, build_chronos2

__all__ = ["chronos_benchmark"]

logger = logging.getLogger("energy_forecast.bench.chronos")

PROJECT_DIR = Path(__file__).resolve().parent.parent
CONFIG = PROJECT_DIR / "configs" / "training" / "chronos2_covariates.yaml"
SIZES = {"tiny": TINY, "published": PUBLISHED}
CONTEXT = 2048
FINETUNE_BATCH = 32
SEED = 42


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _timed(function: Callable[[], Any]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


class _GpuPeak:
    """Peak CUDA memory of a phase (nothing on the CPU)."""

    def __init__(self, device: str) -> None:
        self.on_gpu = device == "cuda"

    def __enter__(self) -> _GpuPeak:
        if self.on_gpu:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.peak_mb: float | None = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.on_gpu:
            import torch

            torch.cuda.synchronize()
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20


def _model(config: TrainingConfig, problem: ForecastProblem, params: dict[str, Any]) -> Chronos2Forecaster:
    model = create_model(config.model.model_copy(update={"params": params, "device": "auto"}), problem)
    assert isinstance(model, Chronos2Forecaster)
    return model


def chronos_benchmark(
    data_path: Path | str, *, size: str | None = None, finetune_steps: int | None = None, repeats: int | None = None
) -> dict[str, Any]:
    """Time the December backtest and fine-tuning of a random-weight Chronos-2 on the real data.

    Args:
        data_path: the steel CSV.
        size: ``tiny`` or ``published``; ``CHRONOS_BENCH_SIZE`` when None, else ``tiny``.
        finetune_steps: steps per fine-tuning run (``CHRONOS_BENCH_FINETUNE_STEPS``; default 10 on a
            CPU, 40 on a GPU, 2 for the published size on a CPU).
        repeats: timed backtests each way, interleaved (``CHRONOS_BENCH_REPEATS``; default 3,
            1 for the published size on a CPU). Fine-tuning runs twice each way (once for the
            published size on a CPU). The best of the repeats is reported, the usual guard against
            interference when the machine is shared.

    Returns:
        Flat figures: ``backtest_seconds`` (ours), ``backtest_direct_seconds``, ``backtest_ratio``,
        ``finetune_steps_per_second`` (ours), ``finetune_direct_steps_per_second``,
        ``finetune_ratio``, peak memory in MiB, and what was measured (size, parameters, device,
        dtype, origins, context, covariates, threads).
    """
    import torch
    from chronos.chronos2.preprocess import from_data_frame

    size = size or os.environ.get("CHRONOS_BENCH_SIZE") or "tiny"
    if size not in SIZES:
        raise ValueError(f"CHRONOS_BENCH_SIZE={size!r}: choose one of {sorted(SIZES)}")
    on_gpu = torch.cuda.is_available()
    heavy_on_cpu = size == "published" and not on_gpu
    steps = finetune_steps or int(os.environ.get("CHRONOS_BENCH_FINETUNE_STEPS") or (2 if heavy_on_cpu else 40 if on_gpu else 10))
    repeats = repeats or int(os.environ.get("CHRONOS_BENCH_REPEATS") or (1 if heavy_on_cpu else 3))
    finetune_repeats = 1 if heavy_on_cpu else 2

    with _environment(DATA_PATH=str(data_path), HF_HUB_OFFLINE="1"), tempfile.TemporaryDirectory(prefix="chronos-bench-") as scratch:
        started = time.perf_counter()
        weights = build_chronos2(
            Path(scratch) / "weights", size=SIZES[size], context_length=8192 if size == "published" else CONTEXT, max_output_patches=64
        )
        build_seconds = time.perf_counter() - started
        config = load_config(CONFIG)
        problem = config.problem
        split = split_series(load_series(config.data).frame, config.split, config.task, min_history=672)
        origins = split.test_origins
        zero_shot = _model(config, problem, {"mode": "zero_shot", "pretrained": str(weights), "context_length": CONTEXT})
        load_seconds = _timed(lambda: zero_shot.fit(split.history))
        device, dtype = zero_shot.device.device, zero_shot.dtype_name
        logger.info("chronos bench: %s model (%d parameters) on %s/%s; %d origins", size, zero_shot.parameters_, device, dtype, len(origins))

        # -- backtest: ours vs the same predict_df call made directly ---------------------------
        zero_shot.predict(split.through_test, origins[:2])  # warm-up: allocator, kernels, threads
        arguments = zero_shot.predict_df_arguments(split.through_test, origins)
        assert arguments is not None
        pipeline = zero_shot.pipeline_
        ours, direct = [], []
        with _GpuPeak(device) as backtest_peak:
            for _ in range(repeats):  # interleaved, so drift in machine load hits both alike
                ours.append(_timed(lambda: zero_shot.predict(split.through_test, origins)))
                direct.append(_timed(lambda: pipeline.predict_df(**arguments)))
        backtest_rss = _peak_rss_mb()
        logger.info("chronos bench: backtest ours %s s, direct %s s", [round(t, 3) for t in ours], [round(t, 3) for t in direct])
        target_only_seconds = None
        if not heavy_on_cpu:
            target_only = _model(
                config.model_copy(update={"covariates": "none"}),
                problem.replace(covariates=()),
                {"mode": "zero_shot", "pretrained": str(weights), "context_length": CONTEXT},
            )
            target_only.fit(split.history)
            target_only.predict(split.through_test, origins[:2])
            target_only_seconds = min(_timed(lambda: target_only.predict(split.through_test, origins)) for _ in range(repeats))

        # -- fine-tuning at batch 32: ours vs a direct pipeline.fit on the same series -------------
        finetune_params = {
            "mode": "finetune", "pretrained": str(weights), "context_length": CONTEXT, "finetune_batch_size": FINETUNE_BATCH,
            "num_steps": steps, "learning_rate": 1e-5, "validation": False, "log_every": max(1, steps // 2),
        }
        history = split.history[[problem.target, *problem.covariate_names]].rename_axis("timestamp").reset_index().assign(item_id="train")
        for name in problem.categorical_covariates:
            history[name] = history[name].astype("string")
        direct_inputs = from_data_frame(
            history, target_columns=[problem.target], prediction_length=problem.horizon,
            known_covariates_names=list(problem.future_covariates), id_column="item_id", timestamp_column="timestamp",
        )

        def direct_fit(num_steps: int) -> None:
            with tempfile.TemporaryDirectory(dir=scratch) as output:
                pipeline.fit(
                    direct_inputs, prediction_length=problem.horizon, context_length=CONTEXT, learning_rate=1e-5, num_steps=num_steps,
                    batch_size=FINETUNE_BATCH, output_dir=output, remove_printer_callback=True, disable_tqdm=True,
                    logging_steps=max(1, num_steps // 2), seed=SEED,
                )

        if not heavy_on_cpu:
            direct_fit(2)  # warm-up: backward kernels and optimizer state allocation
        ours_rates, direct_rates = [], []
        with _GpuPeak(device) as finetune_peak:
            for _ in range(finetune_repeats):  # interleaved, like the backtest
                finetuned = _model(config, problem, finetune_params)
                finetuned.fit(split.history)  # loads the weights, then fine-tunes (only the latter is timed)
                ours_rates.append(finetuned.fitted_summary()["finetune_steps_per_second"])
                direct_rates.append(steps / _timed(lambda: direct_fit(steps)))
        logger.info("chronos bench: fine-tuning steps/s ours %s, direct %s", [round(r, 3) for r in ours_rates], [round(r, 3) for r in direct_rates])

    backtest, backtest_direct = min(ours), min(direct)
    return {
        "size": size,
        "parameters": zero_shot.parameters_,
        "device": device,
        "dtype": dtype,
        "torch_threads": torch.get_num_threads(),
        "backtest_origins": len(origins),
        "backtest_horizon": problem.horizon,
        "backtest_context": CONTEXT,
        "backtest_covariates": len(problem.covariate_names),
        "backtest_repeats": repeats,
        "backtest_seconds": backtest,
        "backtest_direct_seconds": backtest_direct,
        "backtest_ratio": backtest / backtest_direct,
        "backtest_target_only_seconds": target_only_seconds,
        "finetune_batch_size": FINETUNE_BATCH,
        "finetune_context": CONTEXT,
        "finetune_steps": steps,
        "finetune_repeats": finetune_repeats,
        "finetune_steps_per_second": max(ours_rates),
        "finetune_direct_steps_per_second": max(direct_rates),
        "finetune_ratio": max(direct_rates) / max(ours_rates),
        "peak_rss_mb_after_backtest": backtest_rss,
        "peak_rss_mb": _peak_rss_mb(),
        "peak_gpu_mb_backtest": backtest_peak.peak_mb,
        "peak_gpu_mb_finetune": finetune_peak.peak_mb,
        "weights_build_seconds": build_seconds,
        "weights_load_seconds": load_seconds,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    data_path = Path(argv[0] if argv else os.environ.get("DATA_PATH") or PROJECT_DIR / "data" / "raw" / "Steel_industry_data.csv")
    if not data_path.is_file():
        print(f"no data at {data_path}: pass the steel CSV or set DATA_PATH (make data fetches it)", file=sys.stderr)
        return 2
    print(json.dumps(chronos_benchmark(data_path), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
