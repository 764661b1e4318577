"""One promotion at a time per registered model: a lock around read-champion, decide, move-alias.

Two runs that finish together would otherwise both read the same champion, both decide to
promote, and the last alias write would win even when it is the worse model.

* ``PROMOTION_LOCK_URL`` set to a PostgreSQL URL (the Compose stack): a PostgreSQL advisory lock
  (``pg_advisory_lock``), held by a connection for the duration; it serializes promotions from
  any machine that reaches the database, and a crashed holder's lock goes with its connection.
* otherwise: a file lock (the ``filelock`` package) in ``PROMOTION_LOCK_DIR``, by default beside
  a SQLite tracking store or in the user's cache: it serializes promotions on this machine only.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock

__all__ = ["LockTimeout", "promotion_lock"]

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 600.0


class LockTimeout(RuntimeError):
    """Another promotion of the same model held the lock for too long."""


def _key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a registered model's name."""
    return int.from_bytes(hashlib.sha256(f"energy-forecast/promotion/{name}".encode()).digest()[:8], "big", signed=True)


def _lock_dir(tracking_uri: str) -> Path:
    explicit = os.environ.get("PROMOTION_LOCK_DIR")
    if explicit:
        return Path(explicit)
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri.removeprefix("sqlite:///")).parent / "locks"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "energy_forecast" / "locks"


@contextmanager
def promotion_lock(
    name: str, *, tracking_uri: str, url: str | None = None, timeout: float = TIMEOUT_SECONDS
) -> Iterator[str]:
    """Hold the promotion lock of registered model ``name``; yields a description of the lock.

    Raises:
        LockTimeout: not acquired within ``timeout`` seconds.
    """
    url = url if url is not None else os.environ.get("PROMOTION_LOCK_URL") or None
    if url and url.startswith("postgresql"):
        import sqlalchemy as sa

        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with engine.connect() as connection:
            connection.execute(
                sa.text("SELECT set_config('lock_timeout', :ms, false)"), {"ms": f"{int(timeout * 1000)}ms"}
            )
            try:
                connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _key(name)})
            except sa.exc.OperationalError as error:
                raise LockTimeout(
                    f"the promotion lock of {name} was not free within {timeout:.0f} s ({error.orig})"
                ) from None
            try:
                yield f"PostgreSQL advisory lock {_key(name)}"
            finally:
                connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _key(name)})
        engine.dispose()
        return
    directory = _lock_dir(tracking_uri)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"promotion-{hashlib.sha256(name.encode()).hexdigest()[:16]}.lock"
    if not tracking_uri.startswith("sqlite:///"):
        logger.info(
            "promotions of %s are serialized on this machine only (%s); PROMOTION_LOCK_URL=postgresql+psycopg2://... serializes them everywhere",
            name,
            path,
        )
    lock = FileLock(str(path), timeout=timeout)
    try:
        with lock:
            yield f"file lock {path}"
    except TimeoutError:  # filelock.Timeout
        raise LockTimeout(f"the promotion lock of {name} ({path}) was not free within {timeout:.0f} s") from None
