"""Deliveries to the stored series: appended atomically, idempotent, bad ones refused with a reason;
and the replay's day files, cut from the file as written."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest

from energy_forecast.config import load_data_config
from energy_forecast.data import load_series
from energy_forecast.ingest import BadDelivery, FolderLanding, ingest_delivery, landing_at
from energy_forecast.replay import day_files, start_live_series
from tests.conftest import STEEL_DATA_CONFIG


@pytest.fixture
def live(synthetic_csv, use_data, tmp_path):
    """The synthetic file as the source, and a live series holding its rows before 2018-03-01."""
    use_data(synthetic_csv)
    source = load_data_config(STEEL_DATA_CONFIG)
    series = tmp_path / "live" / "series.csv"
    start_live_series(source, series, pd.Timestamp("2018-03-01"))
    return source, source.model_copy(update={"path": series, "sha256": None})


def day(source, date: str):
    return next(day_files(source, pd.Timestamp(date), 1))


def test_the_live_series_starts_before_the_first_replayed_day_and_keeps_the_files_format(live):
    source, data = live
    frame = load_series(data).frame
    assert frame.index[-1] == pd.Timestamp("2018-02-28 23:45")
    original = source.path.read_bytes()
    assert data.path.read_bytes() == original[: len(data.path.read_bytes())]  # a prefix, byte for byte (BOM, CRLF, quirks)


def test_a_day_file_holds_that_days_96_rows_in_the_original_format(live):
    source, _ = live
    file = day(source, "2018-03-01")
    lines = file.payload.decode("utf-8-sig").split("\r\n")
    assert file.name == "steel_industry-2018-03-01.csv" and len(lines) == 1 + 96 + 1 and lines[-1] == ""
    assert lines[1].startswith("01/03/2018 00:15") and lines[96].startswith("01/03/2018 00:00")  # the quirky midnight row


def test_when_a_day_is_delivered_then_it_is_appended_and_the_series_reads_exactly_like_the_source(live):
    source, data = live
    delivery = ingest_delivery(data, "d1.csv", day(source, "2018-03-01").payload)

    assert delivery.status == "appended" and delivery.rows == 96 and delivery.series_last == "2018-03-01 23:45:00"
    expected = load_series(source).frame.loc[: "2018-03-01 23:45"]
    pd.testing.assert_frame_equal(load_series(data).frame, expected, check_categorical=False)
    ledger = json.loads(data.path.with_name("series.csv.deliveries.json").read_text())
    assert ledger[delivery.sha256]["status"] == "appended"


def test_when_the_same_file_comes_again_then_nothing_changes(live):
    source, data = live
    payload = day(source, "2018-03-01").payload
    ingest_delivery(data, "d1.csv", payload)
    before = hashlib.sha256(data.path.read_bytes()).hexdigest()

    again = ingest_delivery(data, "d1-again.csv", payload)
    renamed = ingest_delivery(data, "d1-copy.csv", payload.replace(b"\r\n", b"\n"))  # other bytes, same rows: stored already

    assert again.status == renamed.status == "already stored"
    assert hashlib.sha256(data.path.read_bytes()).hexdigest() == before


def with_field(payload: bytes, line: int, field: int, value: bytes) -> bytes:
    lines = payload.split(b"\r\n")
    cells = lines[line].split(b",")
    cells[field] = value
    lines[line] = b",".join(cells)
    return b"\r\n".join(lines)


BAD = {
    "a non-numeric reading": (lambda p: with_field(p, 3, 1, b"n/a"), r"^bad.csv: target column 'Usage_kWh': row 3 \(line 4\): non-numeric value 'n/a'"),
    "an unparseable stamp": (lambda p: with_field(p, 3, 0, b"31/02/2018 00:45"), "cannot parse '31/02/2018 00:45' as a timestamp"),
    "a negative reading": (lambda p: with_field(p, 3, 1, b"-4.0"), "negative value -4.0"),
    "another header": (lambda p: p.replace(b"Usage_kWh", b"Usage", 1), "missing columns"),
    "a header alone": (lambda p: p.split(b"\r\n")[0] + b"\r\n", "header but no data rows"),
    "not the declared encoding": (lambda p: p.replace(b"Weekday", "Wéekday".encode("latin-1"), 1), "cannot be read as utf-8-sig \\(byte 0xe9"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_when_a_delivery_is_bad_then_it_is_refused_with_a_reason_and_nothing_changes(live, case):
    source, data = live
    before = data.path.read_bytes()
    change, message = BAD[case]
    with pytest.raises(BadDelivery, match=message):
        ingest_delivery(data, "bad.csv", change(day(source, "2018-03-01").payload))
    assert data.path.read_bytes() == before


def test_when_a_delivery_leaves_a_gap_after_the_stored_rows_then_it_is_refused(live):
    source, data = live
    with pytest.raises(BadDelivery, match=r"appended to series.csv: .*gap of 96 missing step\(s\)"):
        ingest_delivery(data, "late.csv", day(source, "2018-03-02").payload)


def test_when_a_delivery_rewrites_stored_rows_then_it_is_refused(live):
    source, data = live
    stored = day(source, "2018-02-28").payload
    lines = stored.split(b"\r\n")
    lines[5] = lines[5].replace(lines[5].split(b",")[1], b"999.0", 1)
    with pytest.raises(BadDelivery, match=r"96 of its 96 rows .* are stored already with other values"):
        ingest_delivery(data, "rewrite.csv", b"\r\n".join(lines))


def test_a_folder_landing_lists_moves_and_quarantines(tmp_path):
    landing = landing_at(str(tmp_path / "landing"))
    assert isinstance(landing, FolderLanding) and landing.pending() == []
    landing.put("b.csv", b"x")
    landing.put("a.csv", b"y")
    (tmp_path / "landing" / "notes.txt").write_text("ignored")
    assert landing.pending() == ["a.csv", "b.csv"]
    landing.archive("a.csv")
    landing.quarantine("b.csv", "row 3: non-numeric value 'n/a'")
    assert landing.pending() == []
    assert (tmp_path / "landing" / "processed" / "a.csv").read_bytes() == b"y"
    assert (tmp_path / "landing" / "quarantine" / "b.csv.reason.txt").read_text() == "row 3: non-numeric value 'n/a'\n"
