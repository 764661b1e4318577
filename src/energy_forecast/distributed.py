"""Train a global LightGBM model on a Dask cluster, for a training matrix bigger than one machine.

LightGBM's own distributed training (``lightgbm.dask``): every Dask worker holding partitions of
the matrix becomes a LightGBM machine, the workers build histograms on their own rows and exchange
them over LightGBM's socket network (data-parallel tree learning), and the result is one ordinary
:class:`lightgbm.Booster`, the same kind a single machine trains. Nothing is distributed by hand
here: this module only checks the inputs, picks LightGBM's parameters and returns the booster.

Where the cluster comes from is the caller's business: ``distributed.LocalCluster`` on one machine
(the test), or the scheduler of ``infra/k8s/manifests/dask.yaml`` on Kubernetes
(``DASK_SCHEDULER_ADDRESS``, see :func:`client_from_env`). Client, scheduler and workers must run
the same versions of dask, distributed and lightgbm (the trainer image, from the locks).

Partition the matrix by series (site): a site's rows stay together, and each partition is built
by one task (reading one file, building its features) without the whole panel passing through
one process. Every partition must carry the same columns and dtypes; a categorical column (the
series id) must have *known* categories that are the same in every partition, so that codes mean
the same site everywhere.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    import dask.dataframe as dd
    import lightgbm
    from distributed import Client

__all__ = ["DASK_SCHEDULER_ENV", "client_from_env", "fit_dask"]

logger = logging.getLogger(__name__)

DASK_SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
"""The scheduler's address (``tcp://host:8786``), set for runs by infra/k8s/values.yaml."""


def client_from_env(timeout: str = "60s") -> Client:
    """A client of the cluster named by ``DASK_SCHEDULER_ADDRESS``; an error when it is unset."""
    from distributed import Client

    address = os.environ.get(DASK_SCHEDULER_ENV, "").strip()
    if not address:
        raise RuntimeError(f"{DASK_SCHEDULER_ENV} is not set: name the Dask scheduler (tcp://host:8786) to train on a cluster")
    return Client(address, timeout=timeout)


def fit_dask(
    frame: dd.DataFrame,
    params: Mapping[str, Any],
    client: Client,
    *,
    label: str,
    weight: str | None = None,
) -> lightgbm.Booster:
    """Train one LightGBM booster on the partitioned ``frame`` (features, ``label`` and ``weight``).

    ``params`` are LightGBM's (``n_estimators``, ``learning_rate``, ``num_leaves``, ...) as for
    :class:`lightgbm.LGBMRegressor`; ``client`` names the cluster. Categorical columns are used as
    categorical features. Returns a plain :class:`lightgbm.Booster` that predicts on one machine
    (pandas or numpy), like a booster trained locally. Raises ``ValueError`` on inputs that would
    train a wrong model (missing label, unknown categories, an empty matrix).
    """
    import dask.dataframe as dd
    from lightgbm.dask import DaskLGBMRegressor

    if not isinstance(frame, dd.DataFrame):
        raise TypeError(f"fit_dask expects a dask.dataframe.DataFrame, got {type(frame).__name__}")
    if label not in frame.columns:
        raise ValueError(f"fit_dask: the label column {label!r} is not in the frame ({list(frame.columns)})")
    if weight is not None and weight not in frame.columns:
        raise ValueError(f"fit_dask: the weight column {weight!r} is not in the frame")
    features = [column for column in frame.columns if column not in (label, weight)]
    if not features:
        raise ValueError("fit_dask: no feature columns besides the label")
    categorical = [column for column in features if isinstance(frame.dtypes[column], pd.CategoricalDtype)]
    for column in categorical:
        if not frame[column].cat.known:
            raise ValueError(
                f"fit_dask: the categorical column {column!r} has unknown categories; give every partition the same "
                "categories (pd.Categorical(values, categories=all_ids)) or call frame.categorize() first"
            )
    unknown = {key: params[key] for key in ("tree_learner", "machines", "local_listen_port") if key in params}
    if unknown:
        logger.info("fit_dask: LightGBM network parameters given explicitly: %s", unknown)

    frame = frame.persist()  # spread the partitions over the workers once; each becomes a LightGBM machine's data
    rows = int(frame.map_partitions(len).sum().compute())
    if rows == 0:
        raise ValueError("fit_dask: the frame has no rows")
    workers = len(client.scheduler_info()["workers"])
    logger.info("fit_dask: %d rows x %d features in %d partitions on %d worker(s); categorical: %s",
                rows, len(features), frame.npartitions, workers, categorical or "none")

    model = DaskLGBMRegressor(client=client, **dict(params))
    model.fit(
        frame[features],
        frame[label],
        sample_weight=frame[weight] if weight is not None else None,
        categorical_feature=categorical or "auto",
    )
    return model.to_local().booster_
