"""Multilayer perceptron family: ``model.type: mlp``.

A neural network on the same leak-free feature matrix as the boosted trees. Its errors differ
from theirs far more than the trees' from each other's (on the nowcast's November window they
correlate at about 0.91 with LightGBM's, against 0.97-0.98 between the trees), which is what an
ensemble member needs; measured as one, it has not yet earned a default place (README).

Training is scikit-learn's ``MLPRegressor`` (Adam, ReLU, L2 penalty ``alpha``), one epoch at a time
through ``partial_fit``, so that early stopping watches the *validation window*, as the boosters'
early stopping does, rather than scikit-learn's random hold-out of rows (neighbouring 15-minute
rows are near copies of each other). The epochs are this family's rounds: the validation windows
choose their count, and a refit trains exactly that many (:meth:`fix_rounds`). Features are
standardised on the training rows; a missing value becomes the training mean. ``bagging`` nets
with consecutive seeds are averaged.

The fitted weights are saved as arrays in an ``.npz`` (no pickle) and prediction is a plain numpy
forward pass, the same after a restore as after fitting.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from energy_forecast.models.base import ModelParams
from energy_forecast.models.boosted import BoostedTreeForecaster, BoostedTreeParams
from energy_forecast.models.registry import register

__all__ = ["MLPForecaster", "MLPParams"]

logger = logging.getLogger(__name__)


class MLPParams(BoostedTreeParams):
    """``learning_rate`` is Adam's; ``early_stopping_rounds`` counts epochs without a better
    validation RMSE; ``log_every`` counts epochs."""

    hidden_layers: list[int] = Field([256, 128, 64], min_length=1, description="units per hidden layer (ReLU)")
    alpha: float = Field(1e-3, ge=0, description="L2 penalty")
    learning_rate: float = Field(1e-3, gt=0)
    batch_size: int = Field(256, gt=0)
    max_epochs: int = Field(100, gt=0, description="epochs; early stopping on the validation window may stop sooner")
    early_stopping_rounds: int | None = Field(8, gt=0, description="epochs without a better validation RMSE; null to disable")
    log_every: int = Field(5, gt=0)
    bagging: int = Field(1, gt=0, description="nets averaged, seeds seed, seed+1, ...")


class Network:
    """Fitted nets (their weights), the feature standardisation and the target's scale."""

    def __init__(self, layers: list[list[tuple[np.ndarray, np.ndarray]]], mean: np.ndarray, scale: np.ndarray, y_scale: float, epochs: list[int]) -> None:
        self.layers, self.mean, self.scale, self.y_scale, self.epochs = layers, mean, scale, y_scale, epochs

    def standardise(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        return np.nan_to_num((np.asarray(X, dtype="float64") - self.mean) / self.scale)

    @staticmethod
    def forward(net: list[tuple[np.ndarray, np.ndarray]], Z: np.ndarray) -> np.ndarray:
        for position, (weights, bias) in enumerate(net):
            Z = Z @ weights + bias
            if position < len(net) - 1:
                Z = np.maximum(Z, 0.0)
        return Z[:, 0]

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        Z = self.standardise(X)
        return np.mean([self.forward(net, Z) for net in self.layers], axis=0) * self.y_scale

    def save(self, path: Path) -> None:
        arrays: dict[str, np.ndarray] = {"mean": self.mean, "scale": self.scale, "y_scale": np.array(self.y_scale), "epochs": np.array(self.epochs)}
        for n, net in enumerate(self.layers):
            for k, (weights, bias) in enumerate(net):
                arrays[f"net{n}_w{k}"], arrays[f"net{n}_b{k}"] = weights, bias
        with path.open("wb") as handle:
            np.savez(handle, **arrays)

    @classmethod
    def load(cls, path: Path) -> Network:
        with np.load(path, allow_pickle=False) as saved:
            nets = sorted({int(key[3:].split("_")[0]) for key in saved.files if key.startswith("net")})
            layers = []
            for n in nets:
                depth = sum(1 for key in saved.files if key.startswith(f"net{n}_w"))
                layers.append([(saved[f"net{n}_w{k}"], saved[f"net{n}_b{k}"]) for k in range(depth)])
            return cls(layers, saved["mean"], saved["scale"], float(saved["y_scale"]), [int(e) for e in saved["epochs"]])


@register
class MLPForecaster(BoostedTreeForecaster):
    """Shares the boosters' fitting skeleton: early stopping on the validation window, rounds
    (here epochs) that the windows choose and a refit fixes, change or level as the target."""

    name = "mlp"
    params_class = MLPParams
    approach = "multilayer perceptron on the leak-free lag, calendar and covariate features"
    rounds_param = "max_epochs"
    native_file = "mlp.npz"
    pip_packages = ("numpy", "pandas")
    params: MLPParams

    @classmethod
    def gpu_support(cls, params: ModelParams) -> bool | str:
        return "scikit-learn's MLPRegressor runs on the CPU only"

    def _train(self, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame | None, y_val: np.ndarray | None, early_stopping: int | None) -> Network:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPRegressor

        if not np.isfinite(y).all():
            raise ValueError(f"mlp: {int((~np.isfinite(y)).sum())} training rows have no finite target; a network cannot learn from them")
        values = X.to_numpy(dtype="float64")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column: mean 0, scale 1 below
            mean, scale = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
        mean = np.nan_to_num(mean)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        y_scale = float(np.std(y)) or 1.0
        network = Network([], mean, scale, y_scale, [])
        Z, target = network.standardise(values), y / y_scale
        Z_val = y_true = None
        if X_val is not None and y_val is not None:
            known = np.isfinite(y_val)  # a validation stamp with no reading yet scores nothing
            Z_val, y_true = network.standardise(X_val)[known], y_val[known]
        p = self.params
        for member in range(p.bagging):
            net = MLPRegressor(
                hidden_layer_sizes=tuple(p.hidden_layers), alpha=p.alpha, learning_rate_init=p.learning_rate,
                batch_size=min(p.batch_size, len(Z)), shuffle=True, random_state=self.problem.seed + member,
            )
            best_rmse, best_epoch, best_layers = np.inf, p.max_epochs, None
            for epoch in range(1, p.max_epochs + 1):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    net.partial_fit(Z, target)
                layers = [(w.copy(), b.copy()) for w, b in zip(net.coefs_, net.intercepts_, strict=True)]
                if Z_val is None or not len(Z_val):
                    best_layers = layers
                    if epoch % p.log_every == 0:
                        logger.info("mlp: net %d/%d, epoch %d of %d: training loss %.5f", member + 1, p.bagging, epoch, p.max_epochs, net.loss_)
                    continue
                rmse = float(np.sqrt(np.mean((Network.forward(layers, Z_val) * y_scale - y_true) ** 2)))
                if rmse < best_rmse:
                    best_rmse, best_epoch = rmse, epoch
                if rmse == best_rmse or not early_stopping:  # without early stopping: the last epoch's weights
                    best_layers = layers
                if epoch % p.log_every == 0:
                    logger.info(
                        "mlp: net %d/%d, epoch %d: training loss %.5f, validation RMSE %.4f (best %.4f at epoch %d)",
                        member + 1, p.bagging, epoch, net.loss_, rmse, best_rmse, best_epoch,
                    )
                if early_stopping and epoch - best_epoch >= early_stopping:
                    break
            if not early_stopping:
                best_epoch = p.max_epochs
            network.layers.append(best_layers)
            network.epochs.append(best_epoch)
        if early_stopping:
            logger.info("mlp: early stopping kept epochs %s (validation windows choose their median)", network.epochs)
        self.stopped_early_ = bool(early_stopping)
        return network

    @property
    def rounds_kept(self) -> int | None:
        if not getattr(self, "stopped_early_", False):
            return None
        return int(np.median(self.model_.epochs))

    def _save_native(self, path: Path) -> None:
        self.model_.save(path)

    def _load_native(self, path: Path) -> None:
        self.model_ = Network.load(path)
        self.stopped_early_ = False

    def fitted_summary(self) -> dict[str, Any]:
        return {"epochs": list(self.model_.epochs)}
