"""Chronos-2 family: ``model.type: chronos2``, zero-shot or fine-tuned, with or without covariates.

One family, three uses, chosen in YAML:

* ``mode: zero_shot``: the pretrained model forecasts as it is;
* ``mode: finetune``: ``Chronos2Pipeline.fit`` on the training period (full or LoRA), validated
  on the validation period when ``validation: true``;
* either of them with covariates: the training YAML's ``covariates`` selects them and the data
  YAML's roles place them: ``past`` columns appear in each forecast's context only, ``future``
  columns in the context and over the horizon (``future_df``).

The whole rolling-origin backtest is one batched ``predict_df`` call: every origin becomes its own
series (item id = origin) holding the ``context_length`` steps before it, so nothing at or after
an origin reaches its forecast, and origins never see each other (no cross-learning).

Device: ``auto`` takes CUDA with bfloat16 weights when ``torch.cuda.is_available()``, else the CPU
with float32; the choice and its reason are logged and land in the run's ``device*`` tags.

torch and chronos are imported only when a model is fitted or loaded; without them the error says
``pip install -e .[chronos]``.
"""

from __future__ import annotations

import importlib.util
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from energy_forecast.config import ForecastProblem
from energy_forecast.device import DeviceChoice, torch_cuda_available
from energy_forecast.frames import ORIGIN, PREDICTION, STEP, TIMESTAMP, quantile_column
from energy_forecast.models.base import Forecaster, ModelParams, ValidationData
from energy_forecast.models.chronos2_weights import WeightsSource, WeightsUnavailableError, locate_weights
from energy_forecast.models.registry import register

__all__ = ["Chronos2Forecaster", "Chronos2Params", "WeightsUnavailableError"]

logger = logging.getLogger(__name__)

INSTALL_HINT = "Chronos-2 needs torch and chronos-forecasting: pip install -e .[chronos]"
WEIGHTS_DIR = "weights"

FINETUNE_FIELDS = frozenset({
    "finetune_mode", "num_steps", "learning_rate", "finetune_batch_size", "finetune_context_length",
    "validation", "validation_every", "log_every", "lora_rank", "lora_alpha",
})


def _require_chronos() -> None:
    missing = [name for name in ("torch", "chronos") if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"{INSTALL_HINT} (missing: {', '.join(missing)})")


def _as_text(values: pd.Series) -> pd.Series:
    """String dtype; a categorical goes through its few categories (10x faster than astype)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        categories = pd.array(values.cat.categories.astype(str), dtype="string")
        return pd.Series(categories.take(values.cat.codes.to_numpy(), allow_fill=True), index=values.index, name=values.name)
    return values.astype("string")


def peft_available() -> bool:
    return importlib.util.find_spec("peft") is not None


def _torch_probe() -> tuple[bool, str]:
    _require_chronos()
    return torch_cuda_available()


class Chronos2Params(ModelParams):
    """Chronos-2 settings. Fine-tuning fields are valid only with ``mode: finetune``."""

    mode: Literal["zero_shot", "finetune"] = Field("zero_shot", description="zero_shot: pretrained as is; finetune: fit on the training period")
    pretrained: str = Field(
        "amazon/chronos-2",
        description="Hugging Face id, local directory with config.json + model.safetensors, or s3://bucket/prefix",
    )
    context_length: int = Field(2048, gt=0, description="steps of history each forecast sees (capped at the model's)")
    batch_size: int = Field(256, gt=0, description="series per forward pass, covariates counted as series")
    quantile_levels: list[float] = Field(
        default=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
        description="quantiles forecast and logged as q<level> columns; 0.1 and 0.9 give the 80 % interval",
    )
    limit_prediction_length: bool = Field(
        True,
        description="reject a horizon longer than the model forecasts in one pass; false unrolls autoregressively",
    )
    # -- fine-tuning (mode: finetune)
    finetune_mode: Literal["full", "lora"] = Field("full", description="full: every weight; lora: low-rank adapters (needs peft), merged after")
    num_steps: int = Field(1000, gt=0)
    learning_rate: float = Field(1e-5, gt=0)
    finetune_batch_size: int = Field(32, gt=0, description="series per training step, covariates counted")
    finetune_context_length: int | None = Field(None, gt=0, description="context of training windows; context_length when unset")
    validation: bool = Field(True, description="evaluate on the validation period while fine-tuning and keep the best checkpoint")
    validation_every: int = Field(100, gt=0, description="steps between validation evaluations")
    log_every: int = Field(50, gt=0, description="steps between training-loss log lines")
    lora_rank: int = Field(8, gt=0)
    lora_alpha: int = Field(16, gt=0)

    @field_validator("quantile_levels")
    @classmethod
    def _levels_inside_unit_interval(cls, levels: list[float]) -> list[float]:
        bad = [level for level in levels if not 0.0 < level < 1.0]
        if bad or not levels:
            raise ValueError(f"quantile levels must lie strictly between 0 and 1, got {levels}")
        return sorted(set(levels))

    @model_validator(mode="after")
    def _finetune_fields_need_finetune_mode(self) -> Chronos2Params:
        stray = sorted(FINETUNE_FIELDS & self.model_fields_set)
        if self.mode == "zero_shot" and stray:
            raise ValueError(f"{', '.join(stray)} only apply to mode: finetune (mode is zero_shot); set mode: finetune or remove them")
        return self


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


@register
class Chronos2Forecaster(Forecaster):
    """Chronos-2 behind the common :class:`Forecaster` interface.

    The logged MLflow pyfunc model takes a long data frame, the one :meth:`model_input` builds:

    ========================  ==============================================================
    ``origin``                forecast origin: the first forecast stamp; one series per origin
    ``timestamp``             the row's interval-start stamp, on the data's regular grid
    ``<target>``              observed values before the origin; NaN on the horizon rows
    each past covariate       values before the origin; NaN (ignored) on the horizon rows
    each future covariate     values on every row, the horizon rows included
    ========================  ==============================================================

    Rows with ``timestamp >= origin`` are the horizon to forecast (the same count for every
    origin). :meth:`predict_model_input` returns one row per (origin, step): ``origin``, ``step``,
    ``timestamp``, ``prediction`` (the median) and ``q<level>`` per quantile level.
    """

    name = "chronos2"
    params_class = Chronos2Params
    pip_packages = ("torch", "chronos-forecasting", "transformers", "safetensors", "numpy", "pandas", "joblib")
    params: Chronos2Params

    def __init__(self, params: ModelParams, problem: ForecastProblem, device: DeviceChoice) -> None:
        super().__init__(params, problem, device)
        self.dtype_name = "bfloat16" if device.gpu_used else "float32"
        # The dtype follows the device; record it where the device is recorded (run tags).
        self.device = DeviceChoice(device.requested, device.device, f"{device.reason}; Chronos-2 weights in {self.dtype_name}")
        if self.params.mode == "finetune" and self.params.finetune_mode == "lora" and not peft_available():
            raise ImportError(
                "model.params.finetune_mode is 'lora', which needs peft (pip install -e .[chronos] installs the pinned "
                "peft); without it chronos would silently fall back to full fine-tuning. Install peft or set finetune_mode: full"
            )
        self.pipeline_: Any = None
        self.weights_: WeightsSource | None = None
        self.weights_dir_: Path | None = None
        self.context_length_: int = self.params.context_length
        self.training_log_: list[dict[str, float]] = []
        self.finetune_seconds_: float | None = None
        self.parameters_: int | None = None

    # -- capabilities ----------------------------------------------------------------------------

    @classmethod
    def gpu_support(cls, params: ModelParams) -> bool | str:
        return True

    @classmethod
    def gpu_probe(cls) -> Callable[[], tuple[bool, str]]:
        return _torch_probe

    @property
    def approach(self) -> str:  # type: ignore[override]  # depends on the YAML, not only on the class
        covariates = (
            f"with {len(self.problem.past_covariates)} past and {len(self.problem.future_covariates)} known-future covariates"
            if self.problem.covariate_names else "on the target alone"
        )
        if self.params.mode == "zero_shot":
            how = "Chronos-2 zero-shot (pretrained, not trained here)"
        else:
            how = f"Chronos-2 fine-tuned ({self.params.finetune_mode}, {self.params.num_steps} steps) on the training period"
        return f"{how}, {covariates}; one batched forecast over all origins"

    # -- fitting ---------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Find the weights and check the model against the task before a run starts."""
        if self.weights_ is None:
            weights = locate_weights(self.params.pretrained)
            self._check_model_fits_task(weights)
            self.weights_ = weights

    def _fit(self, history: pd.DataFrame, validation: ValidationData | None) -> None:
        self.prepare()
        self._load(self.weights_)
        if self.params.mode == "finetune":
            self._finetune(history, validation if self.params.validation else None)

    def _check_model_fits_task(self, weights: WeightsSource) -> None:
        """Reject what the model cannot do, from its config alone (before any weights are read)."""
        horizon, supported = self.problem.horizon, weights.max_prediction_length
        if horizon > supported and self.params.limit_prediction_length:
            raise ValueError(
                f"chronos2: the task's horizon of {horizon} steps exceeds the {supported} steps that {weights.pretrained} "
                "forecasts in one pass; shorten the horizon, or set model.params.limit_prediction_length: false to unroll "
                "autoregressively (quality may degrade)"
            )
        if horizon > supported:
            logger.warning("chronos2: horizon %d > %d steps per pass: forecasts are unrolled autoregressively", horizon, supported)
        if self.params.context_length > weights.context_length:
            logger.info("chronos2: context_length %d capped at the model's %d", self.params.context_length, weights.context_length)
        self.context_length_ = min(self.params.context_length, weights.context_length)

    def _load(self, weights: WeightsSource) -> None:
        """Load the (located and checked) weights on the chosen device and dtype."""
        _require_chronos()
        # Fine-tuning starts from the full-precision weights (the trainer adds bf16 autocast on
        # recent GPUs); the tuned model is cast to the forecasting dtype afterwards.
        load_dtype = "float32" if self.params.mode == "finetune" else self.dtype_name
        self.pipeline_ = self._load_pipeline(weights.directory(), load_dtype)

    def _load_pipeline(self, directory: Path, dtype_name: str | None = None) -> Any:
        import torch
        from chronos import BaseChronosPipeline

        dtype_name = dtype_name or self.dtype_name
        started = time.perf_counter()
        pipeline = BaseChronosPipeline.from_pretrained(str(directory), device_map=self.device.device, dtype=getattr(torch, dtype_name))
        pipeline.model.eval()
        self.parameters_ = sum(p.numel() for p in pipeline.model.parameters())
        logger.info(
            "chronos2: loaded %s (%.1f M parameters) on %s in %s in %.1f s (%s)",
            directory, self.parameters_ / 1e6, self.device.device, dtype_name, time.perf_counter() - started, self.device.reason,
        )
        return pipeline

    def _series_frame(self, frame: pd.DataFrame, item_id: object) -> pd.DataFrame:
        """``frame`` as one long-format series for chronos: item id, timestamp, target, covariates."""
        columns = [self.problem.target, *self.problem.covariate_names]
        long = frame[columns].rename_axis(TIMESTAMP).reset_index()
        long.insert(0, ORIGIN, item_id)
        return self._categoricals_as_text(long)

    def _categoricals_as_text(self, frame: pd.DataFrame) -> pd.DataFrame:
        """chronos treats non-numeric columns as categorical: make declared categoricals text."""
        for name in self.problem.categorical_covariates:
            if name in frame.columns and not isinstance(frame[name].dtype, pd.StringDtype):
                frame[name] = _as_text(frame[name])
        return frame

    def _training_inputs(self, history: pd.DataFrame) -> list[Any]:
        from chronos.chronos2.preprocess import from_data_frame

        # One long series; chronos samples random windows of it, taking future-covariate values
        # from inside each window's horizon.
        return from_data_frame(
            self._series_frame(history, "train"),
            target_columns=[self.problem.target],
            prediction_length=self.problem.horizon,
            known_covariates_names=list(self.problem.future_covariates),
            id_column=ORIGIN,
            timestamp_column=TIMESTAMP,
        )

    def _validation_inputs(self, validation: ValidationData, context_length: int) -> list[Any]:
        from chronos.chronos2.preprocess import from_data_frame

        # One series per validation origin, ending with that origin's horizon: chronos scores the
        # last `horizon` steps of each, so validation loss is measured exactly on these forecasts.
        frame, horizon = validation.frame, self.problem.horizon
        positions = frame.index.get_indexer(validation.origins)
        pieces = [
            self._series_frame(frame.iloc[max(0, p - context_length) : p + horizon], origin)
            for origin, p in zip(validation.origins, positions, strict=True)
        ]
        return from_data_frame(
            pd.concat(pieces, ignore_index=True),
            target_columns=[self.problem.target],
            prediction_length=horizon,
            known_covariates_names=list(self.problem.future_covariates),
            id_column=ORIGIN,
            timestamp_column=TIMESTAMP,
        )

    def _finetune(self, history: pd.DataFrame, validation: ValidationData | None) -> None:
        import torch
        from chronos import Chronos2Pipeline

        params = self.params
        started = time.perf_counter()  # our whole fine-tuning step: inputs, training, merge, eval mode
        context_length = params.finetune_context_length or self.context_length_
        inputs = self._training_inputs(history)
        validation_inputs = self._validation_inputs(validation, context_length) if validation is not None and len(validation.origins) else None
        lora = {"r": params.lora_rank, "lora_alpha": params.lora_alpha} if params.finetune_mode == "lora" else None
        if lora is not None:
            # chronos' default LoRA targets, with our rank and alpha
            lora["target_modules"] = [
                "self_attention.q", "self_attention.v", "self_attention.k", "self_attention.o", "output_patch_embedding.output_layer",
            ]
        logger.info(
            "chronos2: fine-tuning (%s) for %d steps, batch %d, context %d, learning rate %g, on %s; validation: %s",
            params.finetune_mode, params.num_steps, params.finetune_batch_size, context_length, params.learning_rate,
            self.device.device, f"{len(validation.origins)} origins" if validation_inputs is not None else "off",
        )
        self.training_log_ = []
        with tempfile.TemporaryDirectory(prefix="chronos2-finetune-") as scratch:
            tuned = self.pipeline_.fit(
                inputs,
                prediction_length=self.problem.horizon,
                validation_inputs=validation_inputs,
                finetune_mode=params.finetune_mode,
                lora_config=lora,
                context_length=context_length,
                learning_rate=params.learning_rate,
                num_steps=params.num_steps,
                batch_size=params.finetune_batch_size,
                output_dir=scratch,
                callbacks=[_progress_callback(self.training_log_, params.num_steps)],
                remove_printer_callback=True,
                # the rest are transformers.TrainingArguments
                disable_tqdm=True,
                logging_steps=params.log_every,
                eval_steps=params.validation_every,
                save_steps=params.validation_every,
                seed=self.problem.seed,
            )
        model = tuned.model
        if params.finetune_mode == "lora":
            model = model.merge_and_unload()  # self-contained weights: no adapter pointing at the base model
        # fit() leaves the model in training mode (dropout on) unless validation reloaded the best
        # checkpoint; forecasts must come from eval mode.
        model = model.to(dtype=getattr(torch, self.dtype_name)).eval()
        self.pipeline_ = Chronos2Pipeline(model=model)
        self.finetune_seconds_ = time.perf_counter() - started
        self.context_length_ = max(self.context_length_, min(params.context_length, model.chronos_config.context_length))
        logger.info(
            "chronos2: fine-tuned %d steps in %.1f s (%.2f steps/s)",
            params.num_steps, self.finetune_seconds_, params.num_steps / self.finetune_seconds_,
        )

    # -- forecasting -----------------------------------------------------------------------------

    def _predict(self, frame: pd.DataFrame, origins: pd.DatetimeIndex) -> pd.DataFrame:
        return self.predict_model_input(self.model_input(frame, origins))

    def model_input(self, frame: pd.DataFrame, origins: pd.DatetimeIndex) -> pd.DataFrame:
        """The long frame of all origins (see the class docstring): context before, horizon after each."""
        horizon, context = self.problem.horizon, self.context_length_
        positions = frame.index.get_indexer(origins)
        if (positions < 0).any():
            raise ValueError(f"chronos2: origins {origins[positions < 0][:3].tolist()} are not stamps of the frame")
        starts = np.maximum(positions - context, 0)
        rows = np.concatenate([np.arange(start, p + horizon) for start, p in zip(starts, positions, strict=True)])
        origin_of_row = np.repeat(frame.index[positions], positions + horizon - starts)
        columns = [self.problem.target, *self.problem.covariate_names]
        long = frame[columns].iloc[rows].rename_axis(TIMESTAMP).reset_index()
        long.insert(0, ORIGIN, origin_of_row)
        at_or_after = (long[TIMESTAMP] >= long[ORIGIN]).to_numpy()
        # What is unknown at the origin is blanked, so the logged input cannot carry a leak.
        for name in (self.problem.target, *self.problem.past_covariates):
            long[name] = long[name].mask(at_or_after)
        return self._categoricals_as_text(long)

    def _check_model_input(self, model_input: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, int]:
        """Split the pyfunc frame into context and horizon rows, rejecting what cannot be forecast.

        Vectorised throughout: on a GPU the whole backtest takes a fraction of a second, so this
        check must cost milliseconds.
        """
        needed = [ORIGIN, TIMESTAMP, self.problem.target, *self.problem.covariate_names]
        missing = [name for name in needed if name not in model_input.columns]
        if missing:
            raise ValueError(f"chronos2: model input lacks columns {missing}; it needs {needed}")
        frame = model_input[needed].copy()
        for name in (ORIGIN, TIMESTAMP):
            if not pd.api.types.is_datetime64_any_dtype(frame[name]):
                frame[name] = pd.to_datetime(frame[name])
        origin = frame[ORIGIN].to_numpy().astype("datetime64[ns]").view("int64")
        stamp = frame[TIMESTAMP].to_numpy().astype("datetime64[ns]").view("int64")
        ordered = np.all((np.diff(origin) > 0) | ((np.diff(origin) == 0) & (np.diff(stamp) > 0)))
        if not ordered:
            order = np.lexsort([stamp, origin])
            frame, origin, stamp = frame.iloc[order].reset_index(drop=True), origin[order], stamp[order]
        frame = self._categoricals_as_text(frame)
        is_horizon = stamp >= origin
        origins, counts = np.unique(origin[is_horizon], return_counts=True)
        all_origins = np.unique(origin)
        steps = int(counts[0]) if len(counts) else 0
        if len(counts) and (len(origins) < len(all_origins) or (counts != steps).any()):
            found = sorted({*counts.tolist(), *([0] if len(origins) < len(all_origins) else [])})
            raise ValueError(f"chronos2: every origin needs the same number of horizon rows; found {found}")
        without_history = np.setdiff1d(all_origins, origin[~is_horizon])
        if len(without_history):
            raise ValueError(f"chronos2: origin {pd.Timestamp(without_history[0])} has no rows before it (no history to forecast from)")
        context, future = frame[~is_horizon], frame[is_horizon]
        for name in self.problem.future_covariates:
            gaps = future[name].isna().to_numpy()
            if gaps.any():
                raise ValueError(
                    f"chronos2: known-future covariate '{name}' is missing on the horizon rows of origin "
                    f"{future[ORIGIN].to_numpy()[gaps][0]}; a future covariate needs values over the whole horizon"
                )
        return context, future, steps

    def predict_df_arguments(self, model_input: pd.DataFrame) -> dict[str, Any] | None:
        """The keyword arguments of the one ``predict_df`` call for a :meth:`model_input` frame.

        Returns:
            ``df`` (each origin's context: target and every covariate), ``future_df`` (the
            known-future covariates over each horizon, or None), ids, target, horizon, quantile
            levels, batch size, context length and ``freq``; None when there are no horizon rows.
        """
        context, future, steps = self._check_model_input(model_input)
        if steps == 0:
            return None
        supported = self.max_prediction_length
        if supported is not None and steps > supported and self.params.limit_prediction_length:
            raise ValueError(f"chronos2: {steps} horizon rows exceed the {supported} steps the model forecasts in one pass")
        future_covariates = list(self.problem.future_covariates)
        return {
            "df": context,
            "future_df": future[[ORIGIN, TIMESTAMP, *future_covariates]] if future_covariates else None,
            "id_column": ORIGIN,
            "timestamp_column": TIMESTAMP,
            "target": self.problem.target,
            "prediction_length": steps,
            "quantile_levels": list(self.params.quantile_levels),
            "batch_size": self.params.batch_size,
            "context_length": self.context_length_,
            "freq": self.problem.frequency,
        }

    def predict_model_input(self, model_input: pd.DataFrame) -> pd.DataFrame:
        """Forecast every origin of a :meth:`model_input` frame in one batched ``predict_df`` call.

        Returns:
            One row per (origin, step): ``origin``, ``step``, ``timestamp``, ``prediction`` (the
            median) and a ``q<level>`` column per quantile level. No horizon rows: no rows.
        """
        quantiles = [quantile_column(level) for level in self.params.quantile_levels]
        arguments = self.predict_df_arguments(model_input)
        if arguments is None:
            return pd.DataFrame(columns=[ORIGIN, STEP, TIMESTAMP, PREDICTION, *quantiles])
        pipeline, steps = self._pipeline(), arguments["prediction_length"]
        started = time.perf_counter()
        forecast = pipeline.predict_df(**arguments)
        n_origins = len(forecast) // steps
        logger.info("chronos2: forecast %d origins x %d steps in %.2f s", n_origins, steps, time.perf_counter() - started)
        result = pd.DataFrame({
            ORIGIN: pd.DatetimeIndex(forecast[ORIGIN]),
            STEP: np.tile(np.arange(1, steps + 1), n_origins),
            TIMESTAMP: pd.DatetimeIndex(forecast[TIMESTAMP]),
            PREDICTION: forecast["predictions"].to_numpy(dtype="float64"),
        })
        for level, column in zip(self.params.quantile_levels, quantiles, strict=True):
            result[column] = forecast[str(level)].to_numpy(dtype="float64")
        return result

    @property
    def max_prediction_length(self) -> int | None:
        if self.pipeline_ is not None:
            return int(self.pipeline_.model_prediction_length)
        return self.weights_.max_prediction_length if self.weights_ is not None else None

    def _pipeline(self) -> Any:
        """The loaded pipeline; a model restored by :meth:`load` reads its weights on first use."""
        if self.pipeline_ is None:
            if self.weights_dir_ is None:
                raise ValueError("chronos2: call fit() before predicting")
            _require_chronos()
            self.pipeline_ = self._load_pipeline(self.weights_dir_)
        return self.pipeline_

    # -- persistence -----------------------------------------------------------------------------

    def fitted_summary(self) -> dict[str, Any]:
        summary: dict[str, Any] = {"dtype": self.dtype_name, "context_length": self.context_length_}
        if self.parameters_ is not None:
            summary["parameters"] = self.parameters_
        losses = [entry["loss"] for entry in self.training_log_ if "loss" in entry]
        evaluations = [entry["eval_loss"] for entry in self.training_log_ if "eval_loss" in entry]
        if self.finetune_seconds_:
            summary["finetune_steps_per_second"] = self.params.num_steps / self.finetune_seconds_
        if losses:
            summary["finetune_first_loss"], summary["finetune_last_loss"] = losses[0], losses[-1]
        if evaluations:
            summary["finetune_best_eval_loss"] = min(evaluations)
        return summary

    def __getstate__(self) -> dict[str, Any]:
        # Weights travel as safetensors beside the pickle, never inside it.
        state = self.__dict__.copy()
        state.update(pipeline_=None, weights_=None, weights_dir_=None)
        return state

    def save(self, directory: Path) -> None:
        """Pickle the forecaster and ``save_pretrained`` its (fine-tuned, merged) weights beside it."""
        super().save(directory)
        self._pipeline().save_pretrained(directory / WEIGHTS_DIR)

    @classmethod
    def load(cls, directory: Path) -> Chronos2Forecaster:
        """Restore a saved forecaster; its weights load on first use, on the GPU only if this machine has one."""
        forecaster = super().load(directory)
        assert isinstance(forecaster, Chronos2Forecaster)
        forecaster.weights_dir_ = Path(directory) / WEIGHTS_DIR
        available, why = _torch_probe()
        device = "cuda" if available else "cpu"
        if device != forecaster.device.device:
            logger.info("chronos2: trained on %s, serving on %s (%s)", forecaster.device.device, device, why)
        forecaster.dtype_name = "bfloat16" if device == "cuda" else "float32"
        forecaster.device = DeviceChoice("auto", device, f"{why}; Chronos-2 weights in {forecaster.dtype_name}")
        return forecaster

