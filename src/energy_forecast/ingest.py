"""New meter data: a landing location, and the stored series deliveries are appended to.

A delivery is a CSV file in the data's own format (header and rows, the same quirks), dropped in
a **landing** location: a folder (embedded) or an ``s3://bucket/prefix`` (the Compose stack).
:func:`ingest_delivery` handles one:

1. A delivery seen before (by the sha256 of its content), or whose rows are all stored already
   with the same values, changes nothing: re-delivering a file is a no-op.
2. It is validated with the same loader as training (:func:`load_series`), alone and then as the
   stored series with it appended (so a gap between the two, an overlap or a duplicate stamp is
   caught).
3. Only then is the series replaced, atomically (a new file renamed over the old one, under a
   file lock), and the delivery recorded in the series' ledger (``<series>.deliveries.json``).

A bad delivery raises :class:`BadDelivery`; the caller moves it to ``quarantine/`` with a
``.reason.txt`` beside it. Nothing stored is touched. Good and repeated deliveries move to
``processed/``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock

from energy_forecast.config import DataConfig
from energy_forecast.data.loading import DataValidationError, SeriesData, load_series

__all__ = [
    "BadDelivery",
    "Delivery",
    "FolderLanding",
    "Landing",
    "S3Landing",
    "ingest_delivery",
    "landing_at",
]

logger = logging.getLogger(__name__)

PROCESSED, QUARANTINE = "processed", "quarantine"
REASON_SUFFIX = ".reason.txt"


class BadDelivery(ValueError):
    """A delivered file cannot be appended; the message says why (it becomes the .reason.txt)."""


@dataclass(frozen=True)
class Delivery:
    """What happened to one delivered file."""

    name: str
    sha256: str
    status: str
    """``appended`` or ``already stored``."""
    rows: int
    first: str
    last: str
    series_last: str
    """The stored series' last stamp after this delivery."""


# -- landing locations ---------------------------------------------------------------------------


class Landing(ABC):
    """Where deliveries arrive. Names are file names; processed and quarantined files move aside."""

    location: str

    @abstractmethod
    def pending(self) -> list[str]:
        """Delivered files not yet processed or quarantined, oldest name first (``*.csv``)."""

    @abstractmethod
    def read(self, name: str) -> bytes: ...

    @abstractmethod
    def put(self, name: str, payload: bytes) -> str:
        """Deliver ``payload`` as ``name`` (what a meter feed, or the replay, does)."""

    @abstractmethod
    def move(self, name: str, folder: str) -> str:
        """Move a delivered file into ``folder`` (``processed`` or ``quarantine``)."""

    @abstractmethod
    def write_text(self, key: str, text: str) -> str: ...

    def quarantine(self, name: str, reason: str) -> str:
        where = self.move(name, QUARANTINE)
        self.write_text(f"{QUARANTINE}/{name}{REASON_SUFFIX}", reason.rstrip() + "\n")
        logger.warning("quarantined %s: %s", name, reason)
        return where

    def archive(self, name: str) -> str:
        return self.move(name, PROCESSED)


class FolderLanding(Landing):
    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self.location = str(self.folder)

    def pending(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.glob("*.csv") if p.is_file())

    def read(self, name: str) -> bytes:
        return (self.folder / name).read_bytes()

    def put(self, name: str, payload: bytes) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.folder / f".{name}.partial"  # not *.csv: never picked up half written
        partial.write_bytes(payload)
        os.replace(partial, self.folder / name)
        return str(self.folder / name)

    def move(self, name: str, folder: str) -> str:
        target = self.folder / folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.folder / name, target)
        return str(target)

    def write_text(self, key: str, text: str) -> str:
        path = self.folder / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return str(path)


class S3Landing(Landing):
    """An ``s3://bucket/prefix``; ``processed/`` and ``quarantine/`` are sub-prefixes."""

    def __init__(self, uri: str) -> None:
        from energy_forecast.s3 import s3_client

        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.location = f"s3://{bucket}/{self.prefix}"
        self.client = s3_client()

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def pending(self) -> list[str]:
        names = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key(""), Delimiter="/"):
            names += [item["Key"].rsplit("/", 1)[-1] for item in page.get("Contents", [])]
        return sorted(name for name in names if name.endswith(".csv"))

    def read(self, name: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"].read()

    def put(self, name: str, payload: bytes) -> str:
        self.client.put_object(Bucket=self.bucket, Key=self._key(name), Body=payload)
        return f"s3://{self.bucket}/{self._key(name)}"

    def move(self, name: str, folder: str) -> str:
        target = self._key(f"{folder}/{name}")
        self.client.copy_object(Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": self._key(name)})
        self.client.delete_object(Bucket=self.bucket, Key=self._key(name))
        return f"s3://{self.bucket}/{target}"

    def write_text(self, key: str, text: str) -> str:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=text.encode())
        return f"s3://{self.bucket}/{self._key(key)}"


def landing_at(uri: str) -> Landing:
    """A folder, or an ``s3://bucket/prefix``."""
    return S3Landing(uri) if uri.startswith("s3://") else FolderLanding(uri)


SITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def site_landings(uri: str) -> dict[str, Landing]:
    """Per-site landing locations under ``uri``: ``<uri>/<site>/<file>.csv``, one folder (or prefix)
    per site, named like a series id. Names that are not valid site ids are skipped and logged."""
    if uri.startswith("s3://"):
        root = S3Landing(uri)
        names = set()
        for page in root.client.get_paginator("list_objects_v2").paginate(Bucket=root.bucket, Prefix=root._key(""), Delimiter="/"):
            names |= {item["Prefix"].rstrip("/").rsplit("/", 1)[-1] for item in page.get("CommonPrefixes", [])}
    else:
        folder = Path(uri)
        names = {p.name for p in folder.iterdir() if p.is_dir()} if folder.is_dir() else set()
    sites = {}
    for name in sorted(names):
        if SITE_NAME.match(name):
            sites[name] = landing_at(f"{uri.rstrip('/')}/{name}")
        else:
            logger.warning("%s/%s: not a valid site id (letters, digits, _ . -): ignored", uri, name)
    return sites


def start_series(data: DataConfig, name: str, payload: bytes) -> Delivery:
    """A site's first delivery becomes its stored series at ``data.path`` (validated first).

    Raises:
        BadDelivery: the file is invalid; nothing is written.
    """
    series_path = Path(data.path)
    if series_path.is_file():
        return ingest_delivery(data, name, payload)
    series_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(series_path) + ".lock", timeout=300):
        delivered = _validated(data, payload, name)
        _write_atomically(series_path, payload)
        index = delivered.frame.index
        delivery = Delivery(name=name, sha256=hashlib.sha256(payload).hexdigest(), status="appended", rows=len(index),
                            first=str(index[0]), last=str(index[-1]), series_last=str(index[-1]))
        record = {**asdict(delivery), "at": datetime.now(UTC).isoformat(timespec="seconds")}
        _ledger_path(series_path).write_text(json.dumps({delivery.sha256: record}, indent=1))
        return delivery


# -- the stored series ---------------------------------------------------------------------------


def _ledger_path(series: Path) -> Path:
    return series.with_name(series.name + ".deliveries.json")


def _read_ledger(series: Path) -> dict[str, dict]:
    path = _ledger_path(series)
    return json.loads(path.read_text()) if path.is_file() else {}


def _write_atomically(path: Path, payload: bytes) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, path)


def _validated(data: DataConfig, payload: bytes, what: str) -> SeriesData:
    with tempfile.TemporaryDirectory(prefix="delivery-") as scratch:
        path = Path(scratch) / "delivery.csv"
        path.write_bytes(payload)
        try:
            return load_series(data.model_copy(update={"path": path, "sha256": None}))
        except DataValidationError as error:
            raise BadDelivery(f"{what}: {str(error).removeprefix(f'{path}: ')}") from None


def _rows_without_header(payload: bytes, encoding: str) -> bytes:
    text = payload.decode(encoding)
    header, _, rows = text.partition("\n")
    if not rows.strip():
        raise BadDelivery("the file has a header but no data rows")
    return rows.encode("utf-8")


def _header(payload: bytes, encoding: str) -> str:
    return payload.decode(encoding).partition("\n")[0].strip()


def ingest_delivery(data: DataConfig, name: str, payload: bytes) -> Delivery:
    """Append one delivered file to the series at ``data.path`` (see the module doc).

    Raises:
        BadDelivery: the file is invalid, or does not continue the stored series; nothing changed.
    """
    series_path = Path(data.path)
    digest = hashlib.sha256(payload).hexdigest()
    series_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(series_path) + ".lock", timeout=300):
        ledger = _read_ledger(series_path)
        if digest in ledger:
            logger.info("%s: delivered before (sha256 %s…): nothing to do", name, digest[:12])
            known = {key: value for key, value in ledger[digest].items() if key in Delivery.__dataclass_fields__}
            return Delivery(**{**known, "status": "already stored"})
        encoding = "utf-8" if data.encoding.lower().replace("_", "-") in ("utf-8-sig", "utf8-sig") else data.encoding
        try:
            delivered = _validated(data, payload, name)
        except UnicodeDecodeError as error:
            raise BadDelivery(f"{name}: not readable as {data.encoding}: {error}") from None
        if not series_path.is_file():
            raise BadDelivery(f"{name}: there is no stored series at {series_path} to append to (initialise it first)")
        stored_bytes = series_path.read_bytes()
        stored = load_series(data.model_copy(update={"sha256": None}))
        if _header(payload, data.encoding) != _header(stored_bytes, data.encoding):
            raise BadDelivery(f"{name}: its header differs from the stored series' ({_header(stored_bytes, data.encoding)!r})")
        new, old = delivered.frame, stored.frame
        overlap = new.index.intersection(old.index)
        if len(overlap) == len(new) and new.astype(str).equals(old.loc[new.index].astype(str)):
            status = "already stored"
        elif len(overlap):
            raise BadDelivery(
                f"{name}: {len(overlap)} of its {len(new)} rows ({overlap[0]} to {overlap[-1]}) are stored already "
                "with other values or only in part; deliveries only add rows after the stored ones"
            )
        else:
            newline = b"\r\n" if b"\r\n" in stored_bytes[:4096] else b"\n"
            rows = _rows_without_header(payload, encoding).replace(b"\r\n", b"\n").replace(b"\n", newline)
            combined = stored_bytes if stored_bytes.endswith(newline) else stored_bytes + newline
            combined += rows if rows.endswith(newline) else rows + newline
            _validated(data, combined, f"{name} appended to {series_path.name}")
            _write_atomically(series_path, combined)
            status = "appended"
        last = max(old.index[-1], new.index[-1])
        record = Delivery(name, digest, status, len(new), str(new.index[0]), str(new.index[-1]), str(last))
        ledger[digest] = {**asdict(record), "at": datetime.now(UTC).isoformat(timespec="seconds")}
        _write_atomically(_ledger_path(series_path), json.dumps(ledger, indent=1).encode())
    logger.info("%s: %s, %d rows %s .. %s; the series now ends at %s", name, status, len(new), new.index[0], new.index[-1], last)
    return record

