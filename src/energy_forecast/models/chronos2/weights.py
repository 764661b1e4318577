"""Find Chronos-2 weights: a local directory, an ``s3://`` prefix, or a Hugging Face model id.

:func:`locate_weights` reads ``config.json`` first, so a model that cannot serve the task (its
horizon, say) is rejected before hundreds of megabytes move; :meth:`WeightsSource.directory`
then fetches the rest. Whatever the source, the model is finally loaded from a local directory
through ``BaseChronosPipeline.from_pretrained``.

Unreachable weights fail within seconds with :class:`WeightsUnavailableError`, whose message says
how to provide them. ``HF_HUB_OFFLINE=1`` is honoured (read at call time, not at import), and
without it a short TCP probe of the Hub replaces ``huggingface_hub``'s ~25 s of retries when the
machine is offline.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from energy_forecast.s3 import s3_endpoint_url

__all__ = ["WeightsSource", "WeightsUnavailableError", "locate_weights", "s3_endpoint_url"]

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
HUB_FILES = ["config.json", "*.safetensors", "*.bin", "LICENSE*"]
"""What a Chronos-2 model repository needs downloaded (not its README or images)."""
HUB_PROBE_SECONDS = 3.0
S3_TIMEOUT_SECONDS = 5


class WeightsUnavailableError(RuntimeError):
    """The configured Chronos-2 weights cannot be read; the message says how to provide them."""


def how_to_provide(pretrained: str) -> str:
    """The ways to make ``pretrained`` available on a machine without Internet access."""
    repo = pretrained if _looks_like_hub_id(pretrained) else "amazon/chronos-2"
    return (
        "Provide the weights in one of these ways and point model.params.pretrained at them "
        "(or set CHRONOS2_PRETRAINED, which the Chronos YAMLs read):\n"
        f"  - a local directory holding config.json and model.safetensors, downloaded on a connected machine with\n"
        f"      hf download {repo} --local-dir /models/chronos-2      (older huggingface_hub: huggingface-cli download ...)\n"
        f"  - the Hugging Face cache of this machine, filled beforehand with `hf download {repo}`; then "
        f"HF_HUB_OFFLINE=1 reads it without network\n"
        "  - an S3 prefix such as s3://models/chronos-2/ (files uploaded with `aws s3 cp --recursive`), read with the "
        "AWS keys and AWS_ENDPOINT_URL_S3 or MLFLOW_S3_ENDPOINT_URL for MinIO"
    )


def _looks_like_hub_id(text: str) -> bool:
    return re.fullmatch(r"[\w.-]+/[\w.-]+", text) is not None


def _looks_like_path(text: str) -> bool:
    return text.startswith(("/", "./", "../", "~")) or Path(text).expanduser().exists()


def _cache_root() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "energy_forecast" / "chronos2"


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise WeightsUnavailableError(f"{path} is not valid JSON: {error}") from error
    if "chronos_config" not in config:
        raise WeightsUnavailableError(f"{path} is not a Chronos-2 config (it has no 'chronos_config')")
    return config


@dataclass
class WeightsSource:
    """One configured source of weights; :meth:`directory` makes them local."""

    pretrained: str
    kind: str
    """``local``, ``s3`` or ``hub``."""
    config: dict[str, Any]
    """The model's ``config.json``, read before any weights are fetched."""
    _local: Path | None = None

    def directory(self) -> Path:
        """A local directory with the config and weights, fetching them if needed."""
        if self.kind == "local" and self._local is not None:
            return self._local
        if self._local is None or not any(self._local.glob("*.safetensors")):
            fetch = _fetch_s3 if self.kind == "s3" else _fetch_hub
            self._local = fetch(self.pretrained, config_only=False)
        return self._local

    @property
    def chronos_config(self) -> dict[str, Any]:
        return self.config["chronos_config"]

    @property
    def max_prediction_length(self) -> int:
        """Steps the model forecasts in one pass (longer horizons need autoregressive unrolling)."""
        chronos = self.chronos_config
        return int(chronos.get("max_output_patches", 1)) * int(chronos["output_patch_size"])

    @property
    def context_length(self) -> int:
        return int(self.chronos_config["context_length"])


def locate_weights(pretrained: str) -> WeightsSource:
    """Resolve ``pretrained`` and read its ``config.json`` (no weights are read yet).

    Args:
        pretrained: a local directory, ``s3://bucket/prefix``, or a Hugging Face id such as
            ``amazon/chronos-2``.

    Raises:
        WeightsUnavailableError: the source cannot be reached or is not a Chronos-2 model.
    """
    if pretrained.startswith("s3://"):
        directory = _fetch_s3(pretrained, config_only=True)
        return WeightsSource(pretrained, "s3", _read_config(directory / CONFIG_FILE), directory)
    if _looks_like_path(pretrained) or not _looks_like_hub_id(pretrained):
        directory = Path(pretrained).expanduser()
        config_path = directory / CONFIG_FILE
        if not config_path.is_file():
            raise WeightsUnavailableError(
                f"Chronos-2 weights: {directory} is not a directory with {CONFIG_FILE}.\n{how_to_provide(pretrained)}"
            )
        return WeightsSource(pretrained, "local", _read_config(config_path), directory.resolve())
    directory = _fetch_hub(pretrained, config_only=True)
    return WeightsSource(pretrained, "hub", _read_config(directory / CONFIG_FILE), directory)


# -- Hugging Face Hub -------------------------------------------------------------------------------


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) as set now, not when huggingface_hub was imported."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _hub_reachable(endpoint: str) -> tuple[bool, str]:
    """A TCP connection to the Hub within a few seconds (skipped behind a proxy, which we cannot probe)."""
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True, "a proxy is configured"
    parsed = urlparse(endpoint)
    host, port = parsed.hostname or "huggingface.co", parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=HUB_PROBE_SECONDS):
            return True, f"{host}:{port} answers"
    except OSError as error:  # DNS failure, refused, unreachable or timed out
        return False, f"{host}:{port} cannot be reached ({error})"


def _fetch_hub(repo_id: str, *, config_only: bool) -> Path:
    from huggingface_hub import constants, hf_hub_download, snapshot_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, OfflineModeIsEnabled

    offline = hub_offline()
    why = "HF_HUB_OFFLINE is set and the Hugging Face cache does not hold them"
    if not offline:
        reachable, probe = _hub_reachable(constants.ENDPOINT)
        if not reachable:
            offline, why = True, f"{probe}, and the Hugging Face cache does not hold them"
    try:
        if config_only:
            return Path(hf_hub_download(repo_id, CONFIG_FILE, local_files_only=offline)).parent
        logger.info("chronos2: fetching %s from the Hugging Face Hub (cached after the first time)", repo_id)
        return Path(snapshot_download(repo_id, allow_patterns=HUB_FILES, local_files_only=offline))
    except (EntryNotFoundError, OfflineModeIsEnabled, HfHubHTTPError) as error:
        if not offline:
            why = f"the Hub answered: {str(error).splitlines()[0]}"
        raise WeightsUnavailableError(
            f"Chronos-2 weights '{repo_id}' cannot be reached: {why}.\n{how_to_provide(repo_id)}"
        ) from error


# -- S3 (MinIO, moto, AWS) ------------------------------------------------------------------------


def _fetch_s3(uri: str, *, config_only: bool) -> Path:
    """Mirror ``s3://bucket/prefix/`` into the local cache; files already there with the same size are kept."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    match = re.fullmatch(r"s3://([^/]+)/?(.*)", uri)
    if match is None:
        raise WeightsUnavailableError(f"'{uri}' is not an S3 URI such as s3://bucket/prefix/")
    bucket, prefix = match.group(1), match.group(2).strip("/")
    local = _cache_root() / bucket / prefix
    endpoint = s3_endpoint_url()
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        config=Config(connect_timeout=S3_TIMEOUT_SECONDS, read_timeout=60, retries={"max_attempts": 2}),
    )
    where = f"{uri} (endpoint {endpoint or 'AWS default'})"
    try:
        objects = [
            item
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/" if prefix else "")
            for item in page.get("Contents", [])
        ]
        names = {item["Key"][len(prefix) + 1 if prefix else 0 :]: item for item in objects}
        files = {name: item for name, item in names.items() if name and "/" not in name}
        if CONFIG_FILE not in files:
            raise WeightsUnavailableError(f"Chronos-2 weights: no {CONFIG_FILE} under {where}.\n{how_to_provide(uri)}")
        wanted = [CONFIG_FILE] if config_only else sorted(files)
        local.mkdir(parents=True, exist_ok=True)
        for name in wanted:
            target = local / name
            if target.is_file() and target.stat().st_size == files[name]["Size"]:
                continue
            logger.info("chronos2: downloading s3://%s/%s (%.1f MB)", bucket, files[name]["Key"], files[name]["Size"] / 1e6)
            client.download_file(bucket, files[name]["Key"], str(target))
    except (BotoCoreError, ClientError) as error:
        raise WeightsUnavailableError(f"Chronos-2 weights at {where} cannot be read: {error}.\n{how_to_provide(uri)}") from error
    return local
