"""Fetch the UCI steel dataset (``make data``) and check it byte for byte.

    python -m energy_forecast.data.fetch --dest data/raw/Steel_industry_data.csv
    DATA_PATH=/copy/of/Steel_industry_data.csv python -m energy_forecast.data.fetch

The destination is ``--dest``, else ``DATA_PATH``, else ``data/raw/Steel_industry_data.csv``. An
existing file there is checked, not replaced; a missing one is downloaded.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from energy_forecast.data.loading import file_sha256

UCI_URL = "https://archive.ics.uci.edu/static/public/851/steel+industry+energy+consumption.zip"
MEMBER = "Steel_industry_data.csv"
SHA256 = "9b1cee6f9cb9cd9df2b95814ca90a9a2ff15b7f5f1fba0fae3c643e82072eacc"


class FetchError(RuntimeError):
    pass


def download(destination: Path, url: str = UCI_URL, timeout: float = 60.0) -> Path:
    """Download the archive, extract the CSV, verify its sha256, then move it into place."""
    print(f"downloading {url}", file=sys.stderr)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (fixed https URL)
            archive = response.read()
    except (urllib.error.URLError, TimeoutError) as error:
        raise FetchError(
            f"cannot download {url}: {error}. Without internet access, copy {MEMBER} from elsewhere and set DATA_PATH to it."
        ) from None
    with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
        payload = bundle.read(MEMBER)
    digest = hashlib.sha256(payload).hexdigest()
    if digest != SHA256:
        raise FetchError(f"{url}: {MEMBER} has sha256 {digest}, expected {SHA256}; not written")
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_suffix(".partial")
    partial.write_bytes(payload)
    partial.replace(destination)
    return destination


def verify(path: Path) -> None:
    digest = file_sha256(path)
    if digest != SHA256:
        raise FetchError(f"{path}: sha256 {digest}, expected {SHA256} (the unmodified UCI file)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dest", type=Path, default=Path(os.environ.get("DATA_PATH") or Path("data/raw") / MEMBER))
    args = parser.parse_args(argv)
    path = args.dest
    try:
        if path.is_file():
            print(f"{path} exists: checking it", file=sys.stderr)
        else:
            download(path)
        verify(path)
    except FetchError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"ok: {path} (sha256 {SHA256[:12]}…)")


if __name__ == "__main__":
    main()
