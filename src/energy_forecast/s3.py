"""The S3 endpoint every S3 client here uses (MinIO, moto, AWS), as MLflow and DVC read it."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["s3_client", "s3_endpoint_url"]


def s3_endpoint_url() -> str | None:
    """``AWS_ENDPOINT_URL_S3``, else ``MLFLOW_S3_ENDPOINT_URL``; None for AWS itself."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("MLFLOW_S3_ENDPOINT_URL") or None


def s3_client(**config: Any) -> Any:
    """A boto3 S3 client on that endpoint, with keys from the environment (``AWS_*``)."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=s3_endpoint_url(), config=Config(**config) if config else None)
