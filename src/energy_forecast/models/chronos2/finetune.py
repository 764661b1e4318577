"""Fine-tuning Chronos-2 on the training period: ``Chronos2Pipeline.fit``, full or LoRA.

The training period is one long series from which chronos samples random windows (taking
known-future covariate values from inside each window's horizon). Validation, when asked for, is
one series per validation origin ending with that origin's horizon: chronos scores the last
``horizon`` steps of each, so the validation loss is measured exactly on those forecasts and the
best checkpoint is kept. Progress (loss, eval loss) goes to the ``energy_forecast`` logger, which
the Dagster run log shows.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from energy_forecast.config import ForecastProblem
from energy_forecast.frames import ORIGIN, TIMESTAMP
from energy_forecast.models.base import ValidationData
from energy_forecast.models.chronos2.frames import series_frame

__all__ = ["FinetuneSettings", "FinetuneOutcome", "finetune"]

logger = logging.getLogger(__name__)

LORA_TARGETS = ["self_attention.q", "self_attention.v", "self_attention.k", "self_attention.o", "output_patch_embedding.output_layer"]
"""chronos' default LoRA targets, with our rank and alpha."""


@dataclass(frozen=True)
class FinetuneSettings:
    mode: str
    """``full`` or ``lora``."""
    num_steps: int
    learning_rate: float
    batch_size: int
    context_length: int
    log_every: int
    validation_every: int
    lora_rank: int
    lora_alpha: int
    device: str
    dtype: str
    """The forecasting dtype the tuned model is cast to (training starts from float32)."""


@dataclass
class FinetuneOutcome:
    pipeline: Any
    seconds: float
    log: list[dict[str, float]] = field(default_factory=list)


def _progress_callback(log: list[dict[str, float]], total_steps: int) -> Any:
    """A transformers callback that sends fine-tuning progress to the ``energy_forecast`` logger."""
    from transformers.trainer_callback import TrainerCallback

    class LogProgress(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
            if not logs:
                return
            entry = {"step": float(state.global_step), **{k: float(v) for k, v in logs.items() if isinstance(v, int | float)}}
            log.append(entry)
            shown = ", ".join(f"{key} {value:.4g}" for key, value in entry.items() if key != "step")
            logger.info("chronos2 fine-tuning: step %d/%d: %s", state.global_step, total_steps, shown)

    return LogProgress()


def _training_inputs(history: pd.DataFrame, problem: ForecastProblem) -> list[Any]:
    from chronos.chronos2.preprocess import from_data_frame

    return from_data_frame(
        series_frame(history, "train", problem),
        target_columns=[problem.target],
        prediction_length=problem.horizon,
        known_covariates_names=list(problem.future_covariates),
        id_column=ORIGIN,
        timestamp_column=TIMESTAMP,
    )


def _validation_inputs(validation: ValidationData, problem: ForecastProblem, context_length: int) -> list[Any]:
    from chronos.chronos2.preprocess import from_data_frame

    frame, horizon = validation.frame, problem.horizon
    positions = frame.index.get_indexer(validation.origins)
    pieces = [
        series_frame(frame.iloc[max(0, p - context_length) : p + horizon], origin, problem)
        for origin, p in zip(validation.origins, positions, strict=True)
    ]
    return from_data_frame(
        pd.concat(pieces, ignore_index=True),
        target_columns=[problem.target],
        prediction_length=horizon,
        known_covariates_names=list(problem.future_covariates),
        id_column=ORIGIN,
        timestamp_column=TIMESTAMP,
    )


def finetune(
    pipeline: Any, history: pd.DataFrame, validation: ValidationData | None, problem: ForecastProblem, settings: FinetuneSettings
) -> FinetuneOutcome:
    """Fine-tune ``pipeline`` and return a new pipeline in eval mode, in the forecasting dtype.

    LoRA adapters are merged into the weights, so the saved model is self-contained.
    """
    import torch
    from chronos import Chronos2Pipeline

    started = time.perf_counter()  # our whole fine-tuning step: inputs, training, merge, eval mode
    inputs = _training_inputs(history, problem)
    validation_inputs = (
        _validation_inputs(validation, problem, settings.context_length) if validation is not None and len(validation.origins) else None
    )
    lora = {"r": settings.lora_rank, "lora_alpha": settings.lora_alpha, "target_modules": LORA_TARGETS} if settings.mode == "lora" else None
    logger.info(
        "chronos2: fine-tuning (%s) for %d steps, batch %d, context %d, learning rate %g, on %s; validation: %s",
        settings.mode, settings.num_steps, settings.batch_size, settings.context_length, settings.learning_rate,
        settings.device, f"{len(validation.origins)} origins" if validation_inputs is not None and validation is not None else "off",
    )
    log: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="chronos2-finetune-") as scratch:
        tuned = pipeline.fit(
            inputs,
            prediction_length=problem.horizon,
            validation_inputs=validation_inputs,
            finetune_mode=settings.mode,
            lora_config=lora,
            context_length=settings.context_length,
            learning_rate=settings.learning_rate,
            num_steps=settings.num_steps,
            batch_size=settings.batch_size,
            output_dir=scratch,
            callbacks=[_progress_callback(log, settings.num_steps)],
            remove_printer_callback=True,
            # the rest are transformers.TrainingArguments
            disable_tqdm=True,
            logging_steps=settings.log_every,
            eval_steps=settings.validation_every,
            save_steps=settings.validation_every,
            seed=problem.seed,
        )
    model = tuned.model
    if settings.mode == "lora":
        model = model.merge_and_unload()  # self-contained weights: no adapter pointing at the base model
    # fit() leaves the model in training mode (dropout on) unless validation reloaded the best
    # checkpoint; forecasts must come from eval mode.
    model = model.to(dtype=getattr(torch, settings.dtype)).eval()
    seconds = time.perf_counter() - started
    logger.info("chronos2: fine-tuned %d steps in %.1f s (%.2f steps/s)", settings.num_steps, seconds, settings.num_steps / seconds)
    return FinetuneOutcome(Chronos2Pipeline(model=model), seconds, log)
