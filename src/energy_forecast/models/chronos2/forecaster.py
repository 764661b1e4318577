"""Chronos-2 behind the common :class:`Forecaster` interface: ``model.type: chronos2``.

One family, three uses, chosen in YAML:

* ``mode: zero_shot``: the pretrained model forecasts as it is;
* ``mode: finetune``: ``Chronos2Pipeline.fit`` on the training period (full or LoRA), validated
  on the validation period when ``validation: true`` (:mod:`.finetune`);
* either of them with covariates: the training YAML's ``covariates`` selects them and the data
  YAML's roles place them: ``past`` columns appear in each forecast's context only, ``future``
  columns in the context and over the horizon (``future_df``).

The whole rolling-origin backtest is one batched ``predict_df`` call (:mod:`.frames`). The model
forecasts its own quantiles, the task's ``quantile_levels``; ``prediction`` is the median.

Device: ``auto`` takes CUDA with bfloat16 weights when ``torch.cuda.is_available()``, else the CPU
with float32; the choice and its reason are logged and land in the run's ``device*`` tags. A
saved model keeps its weights as safetensors (``weights/``) and loads them on first use, on the
GPU only if the forecasting machine has one.

torch and chronos are imported only when a model is fitted or loaded; without them the error says
``pip install -e .[chronos]``.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from energy_forecast.config import ForecastProblem
from energy_forecast.device import DeviceChoice, torch_cuda_available
from energy_forecast.frames import ORIGIN, TIMESTAMP
from energy_forecast.models.base import Forecaster, ModelParams, ValidationData
from energy_forecast.models.chronos2.finetune import FinetuneSettings, finetune
from energy_forecast.models.chronos2.frames import context_frame, forecast_from_chronos, predict_df_arguments
from energy_forecast.models.chronos2.weights import WeightsSource, locate_weights
from energy_forecast.models.registry import register

__all__ = ["Chronos2Forecaster", "Chronos2Params"]

logger = logging.getLogger(__name__)

INSTALL_HINT = "Chronos-2 needs torch and chronos-forecasting: pip install -e .[chronos]"
WEIGHTS_DIR = "weights"

FINETUNE_FIELDS = frozenset({
    "finetune_mode", "num_steps", "learning_rate", "finetune_batch_size", "finetune_context_length",
    "validation", "validation_every", "log_every", "lora_rank", "lora_alpha",
})


def require_chronos() -> None:
    missing = [name for name in ("torch", "chronos") if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"{INSTALL_HINT} (missing: {', '.join(missing)})")


def peft_available() -> bool:
    return importlib.util.find_spec("peft") is not None


def torch_probe() -> tuple[bool, str]:
    require_chronos()
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

    @model_validator(mode="after")
    def _finetune_fields_need_finetune_mode(self) -> Chronos2Params:
        stray = sorted(FINETUNE_FIELDS & self.model_fields_set)
        if self.mode == "zero_shot" and stray:
            raise ValueError(f"{', '.join(stray)} only apply to mode: finetune (mode is zero_shot); set mode: finetune or remove them")
        return self


@register
class Chronos2Forecaster(Forecaster):
    """Chronos-2 zero-shot or fine-tuned, forecasting every origin in one batched call."""

    name = "chronos2"
    params_class = Chronos2Params
    native_quantiles = True
    pip_packages = ("torch", "chronos-forecasting", "transformers", "safetensors", "numpy", "pandas")
    params: Chronos2Params

    def __init__(self, params: ModelParams, problem: ForecastProblem, device: DeviceChoice) -> None:
        super().__init__(params, problem, device)
        self.dtype_name = "bfloat16" if device.gpu_used else "float32"
        # The dtype follows the device; record it where the device is recorded (run tags).
        self.device = DeviceChoice(device.requested, device.device, f"{device.reason}; Chronos-2 weights in {self.dtype_name}")
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
        return torch_probe

    @classmethod
    def check_environment(cls, params: ModelParams) -> None:
        assert isinstance(params, Chronos2Params)
        if params.mode == "finetune" and params.finetune_mode == "lora" and not peft_available():
            raise ImportError(
                "model.params.finetune_mode is 'lora', which needs peft (pip install -e .[chronos] installs the pinned "
                "peft); without it chronos would silently fall back to full fine-tuning. Install peft or set finetune_mode: full"
            )

    @property
    def lookback(self) -> int:
        """The context each forecast reads (capped at the model's own once the weights are located)."""
        return self.context_length_

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
        assert self.weights_ is not None
        require_chronos()
        # Fine-tuning starts from the full-precision weights (the trainer adds bf16 autocast on
        # recent GPUs); the tuned model is cast to the forecasting dtype afterwards.
        load_dtype = "float32" if self.params.mode == "finetune" else self.dtype_name
        self.pipeline_ = self._load_pipeline(self.weights_.directory(), load_dtype)
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

    def _finetune(self, history: pd.DataFrame, validation: ValidationData | None) -> None:
        params = self.params
        settings = FinetuneSettings(
            mode=params.finetune_mode, num_steps=params.num_steps, learning_rate=params.learning_rate,
            batch_size=params.finetune_batch_size, context_length=params.finetune_context_length or self.context_length_,
            log_every=params.log_every, validation_every=params.validation_every, lora_rank=params.lora_rank,
            lora_alpha=params.lora_alpha, device=self.device.device, dtype=self.dtype_name,
        )
        outcome = finetune(self.pipeline_, history, validation, self.problem, settings)
        self.pipeline_, self.finetune_seconds_, self.training_log_ = outcome.pipeline, outcome.seconds, outcome.log
        model_context = self.pipeline_.model.chronos_config.context_length
        self.context_length_ = max(self.context_length_, min(params.context_length, model_context))

    # -- forecasting -----------------------------------------------------------------------------

    def predict_df_arguments(self, frame: pd.DataFrame, origins: pd.DatetimeIndex) -> dict[str, Any]:
        """The keyword arguments of the one ``predict_df`` call that forecasts these origins."""
        supported = self.max_prediction_length
        if supported is not None and self.problem.horizon > supported and self.params.limit_prediction_length:
            raise ValueError(f"chronos2: the {self.problem.horizon}-step horizon exceeds the {supported} steps the model forecasts in one pass")
        long = context_frame(frame, origins, self.problem, self.context_length_)
        return predict_df_arguments(long, self.problem, context_length=self.context_length_, batch_size=self.params.batch_size)

    def _predict(self, frame: pd.DataFrame, origins: pd.DatetimeIndex) -> pd.DataFrame:
        arguments = self.predict_df_arguments(frame, origins)
        pipeline = self._pipeline()
        started = time.perf_counter()
        forecast = pipeline.predict_df(**arguments)
        logger.info("chronos2: forecast %d origins x %d steps in %.2f s", len(origins), self.problem.horizon, time.perf_counter() - started)
        return forecast_from_chronos(forecast, self.problem)

    def predict_panel(self, frames: Mapping[str, pd.DataFrame], origins: Mapping[str, pd.DatetimeIndex]) -> pd.DataFrame:
        """Every series of a panel from its origins in ONE batched ``predict_df`` call (one Chronos-2
        item per series and origin; ``batch_size`` items per forward pass).

        Returns:
            ``series_id`` then the columns of :meth:`predict` (origin, step, timestamp, prediction, quantiles).
        """
        if not self.is_fitted_:
            raise ValueError(f"{self.name}: call fit() before predict_panel()")
        parts, horizon_rows, series_of = [], [], {}
        first_long = pd.DataFrame()
        for number, (sid, frame) in enumerate(frames.items()):
            if not len(origins.get(sid, [])):
                continue
            self._check_columns(frame)
            frame = self._encode(frame)
            self._check_origins(frame, origins[sid])
            long = context_frame(frame, origins[sid], self.problem, self.context_length_)
            item = long[ORIGIN].map(lambda origin, n=number: f"{n}|{origin.isoformat()}")
            series_of[number] = sid
            horizon_rows.append((long[TIMESTAMP] >= long[ORIGIN]).to_numpy())
            if not parts:
                first_long = long
            parts.append(long.assign(**{ORIGIN: item}))
        long = pd.concat(parts, ignore_index=True)
        # the call's settings as for one series; its frames hold every series' items (ids are text now)
        arguments = predict_df_arguments(first_long, self.problem, context_length=self.context_length_, batch_size=self.params.batch_size)
        is_horizon = np.concatenate(horizon_rows)  # the items are text now: split on the real stamps
        arguments["df"], future = long[~is_horizon], long[is_horizon]
        if arguments["future_df"] is not None:
            arguments["future_df"] = future[[ORIGIN, TIMESTAMP, *self.problem.future_covariates]]
        started = time.perf_counter()
        raw = self._pipeline().predict_df(**arguments)
        logger.info("chronos2: forecast %d series, %d items x %d steps in one call, %.2f s",
                    len(parts), raw[ORIGIN].nunique(), self.problem.horizon, time.perf_counter() - started)
        item = raw[ORIGIN].str.split("|", n=1)
        series = item.str[0].astype(int).map(series_of)
        first = next(iter(frames.values())).index
        raw = raw.assign(**{ORIGIN: pd.DatetimeIndex(pd.to_datetime(item.str[1].to_numpy())).tz_convert(first.tz) if first.tz is not None
                            else pd.to_datetime(item.str[1].to_numpy())})
        forecast = forecast_from_chronos(raw, self.problem)
        forecast.insert(0, "series_id", series.to_numpy())
        return forecast

    @property
    def max_prediction_length(self) -> int | None:
        if self.pipeline_ is not None:
            return int(self.pipeline_.model_prediction_length)
        return self.weights_.max_prediction_length if self.weights_ is not None else None

    def _pipeline(self) -> Any:
        """The loaded pipeline; a restored model reads its weights on first use."""
        if self.pipeline_ is None:
            if self.weights_dir_ is None:
                raise ValueError("chronos2: call fit() before predicting")
            require_chronos()
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

    def _save_state(self, directory: Path) -> dict[str, Any]:
        """``save_pretrained`` the (fine-tuned, merged) weights as safetensors beside the manifest."""
        self._pipeline().save_pretrained(directory / WEIGHTS_DIR)
        return {"weights": WEIGHTS_DIR, "context_length": self.context_length_, "trained_on": self.device.device}

    def _load_state(self, directory: Path, state: dict[str, Any]) -> None:
        """Point at the saved weights; they load on first use, on the GPU only if this machine has one."""
        self.weights_dir_ = directory / state["weights"]
        self.context_length_ = int(state["context_length"])
        available, why = torch_probe()
        device = "cuda" if available else "cpu"
        if device != state.get("trained_on"):
            logger.info("chronos2: trained on %s, forecasting on %s (%s)", state.get("trained_on"), device, why)
        self.dtype_name = "bfloat16" if device == "cuda" else "float32"
        self.device = DeviceChoice("auto", device, f"{why}; Chronos-2 weights in {self.dtype_name}")
