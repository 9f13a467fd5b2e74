"""The lookup service's small parts: API keys, rate limit, partitioning, the store, the files."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import gc
import hashlib
import io
import json
import os
import stat
from pathlib import Path

import pytest

from govbus.lookup import apikeys, decode_pool
from govbus.lookup.decode_pool import CHUNK, cell, csv_texts, decoded_rows
from govbus.lookup.download import columns, sha256_of, write_csv, write_parquet, write_xlsx
from govbus.lookup.errors import LookupRefused
from govbus.lookup.ratelimit import RateLimiter
from govbus.lookup.rights import View
from govbus.lookup.runner import settle_collector
from govbus.lookup.store import PartitionState, ResourceState
from govbus.vocabulary import wire
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.partitioning import partition_of
from govbus.vocabulary.spec import CatalogSpec, InfoItem
from tests.factories import PROVIDER, person_resource

RESOURCE = person_resource(
    (
        InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),
        InfoItem("姓名", "name", "C", 30),
        InfoItem("出生日期", "born", "D"),
    )
)


def test_keys_are_issued_once_kept_hashed_and_revoked_by_removal(tmp_path: Path) -> None:
    first = apikeys.issue_keys(tmp_path, ["police", "civil"])
    assert [(i.department, i.new) for i in first] == [("civil", True), ("police", True)]
    key = apikeys.read_key(tmp_path, "police")
    assert key is not None and len(key) >= 40
    assert stat.S_IMODE(first[1].path.stat().st_mode) == 0o600
    registry_text = apikeys.registry_path(tmp_path).read_text()
    assert key not in registry_text and hashlib.sha256(key.encode()).hexdigest() in registry_text
    registry = apikeys.KeyRegistry(tmp_path)
    assert registry.department(key) == "police" and registry.department(key + "x") is None
    again = apikeys.issue_keys(tmp_path, ["police"])  # civil left the catalog
    assert [(i.department, i.new) for i in again] == [("police", False)]
    assert apikeys.read_key(tmp_path, "police") == key
    civil = apikeys.read_key(tmp_path, "civil")
    assert civil is not None
    # The rewrite may fall within the file system's time resolution: move its mtime on.
    path = apikeys.registry_path(tmp_path)
    later = path.stat().st_mtime + 10
    os.utime(path, (later, later))
    registry.refresh()
    assert registry.department(civil) is None and registry.department(key) == "police"


def test_rate_limit_refuses_above_the_burst_and_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2, burst=3, clock=lambda: now[0])
    for _ in range(3):
        limiter.take("a")
    with pytest.raises(LookupRefused) as info:
        limiter.take("a")
    assert info.value.code == "rate-limited" and info.value.status == 429
    limiter.take("b")  # another department has its own bucket
    now[0] = 0.5  # one token back
    limiter.take("a")
    with pytest.raises(LookupRefused):
        limiter.take("a")


def test_partition_matches_the_java_client_murmur2() -> None:
    # Kafka's UtilsTest vectors (murmur2 as signed int) and the partition they give.
    vectors = {"21": -973932308, "foobar": -790332482, "a-little-bit-long-string": -985981536}
    for key, signed in vectors.items():
        assert partition_of(key, 7) == (signed & 0x7FFFFFFF) % 7


def _value(citizen: str, name: str) -> bytes:
    return wire.encode_upsert(
        RESOURCE, provider=PROVIDER, catalog_version=3,
        event_time=dt.datetime(2026, 1, 2, 3, 4, tzinfo=CHINA_TZ), trace_id="t",
        payload={"citizen_id": citizen, "name": name, "born": dt.date(1990, 1, 1)},
    )  # fmt: skip


def test_store_keeps_the_newest_value_and_forgets_deleted_keys() -> None:
    state = ResourceState(RESOURCE, wire.SchemaCatalog.build(CatalogSpec((), (RESOURCE,))))
    state.put(0, "k1", _value("k1", "张三"), 5)
    state.put(0, "k1", _value("k1", "李四"), 9)
    state.put(0, "k2", _value("k2", "王五"), 10)
    state.put(0, "k2", None, 11)
    state.put_status(0, "k1", json.dumps({"under_verification": True}).encode())
    found = state.get(0, "k1")
    assert found is not None and found.payload["name"] == "李四" and found.offset == 9
    assert found.under_verification and found.catalog_version == 3 and found.provider == PROVIDER
    assert state.get(0, "k2") is None and len(state) == 1
    state.put_status(0, "k1", None)  # the dispute closed (tombstone)
    found = state.get(0, "k1")
    assert found is not None and not found.under_verification


def test_snapshot_csv_written_by_worker_processes_is_that_of_one_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    schemas = wire.SchemaCatalog.build(CatalogSpec((), (RESOURCE,)))
    n = 2 * CHUNK + 7  # three chunks, the last one short
    latest: dict[str, bytes | None] = {f"k{i:05d}": _value(f"k{i:05d}", f"名{i}") for i in range(n)}
    latest["k00003"] = None  # deleted
    latest = dict(reversed(latest.items()))  # the snapshot's order is not the key order
    items = ("name", "born", "citizen_id")
    convert = [len(items) + 3]  # event_time: ISO 8601 (download.text_columns)
    here = list(csv_texts(latest, schemas, RESOURCE, items, convert, workers=1))
    pooled = list(csv_texts(latest, schemas, RESOURCE, items, convert, workers=2, parallel_from=0))
    assert pooled == here and [rows for _, rows in here] == [CHUNK, CHUNK, 6]
    # Spawned workers (not Linux) are sent their chunks instead of sharing the snapshot.
    with monkeypatch.context() as m:
        m.setattr(decode_pool, "FORK", False)
        spawned = list(
            csv_texts(latest, schemas, RESOURCE, items, convert, workers=2, parallel_from=0)
        )
    assert spawned == here
    rows = list(csv.reader(io.StringIO("".join(text for text, _ in here))))
    assert [row[0] for row in rows] == sorted(k for k, v in latest.items() if v is not None)
    event_time = dt.datetime(2026, 1, 2, 3, 4, tzinfo=CHINA_TZ).isoformat()
    assert rows[0] == ["k00000", "名0", "1990-01-01", "k00000", PROVIDER, "3", event_time]
    # The same rows, decoded for xlsx and parquet in this process.
    decoded = list(decoded_rows(latest, schemas, RESOURCE, items))
    assert [[cell(v) for v in row] for row in decoded][:1] == [[*rows[0][:5], 3, event_time]]
    assert len(decoded) == len(rows)
    # A record whose writer schema the catalog lacks fails the same way in a worker.
    unknown = wire.SchemaCatalog()
    with pytest.raises(KeyError):
        list(csv_texts(latest, unknown, RESOURCE, items, convert, workers=2, parallel_from=0))


def test_records_of_the_current_and_an_older_schema_read_alike_in_files_and_lookups() -> None:
    """Records of the current schema take the compiled reader; one of an earlier catalog
    version (without ``born``) is resolved by fastavro; both give rows of the same shape."""
    older = dataclasses.replace(RESOURCE, items=RESOURCE.items[:2])
    old_value = wire.encode_upsert(
        older, provider=PROVIDER, catalog_version=2,
        event_time=dt.datetime(2026, 1, 1, 8, 0, tzinfo=CHINA_TZ), trace_id="t",
        payload={"citizen_id": "k1", "name": "旧"},
    )  # fmt: skip
    schemas = wire.SchemaCatalog.build(CatalogSpec((), (RESOURCE,)), [CatalogSpec((), (older,))])
    latest: dict[str, bytes | None] = {"k1": old_value, "k2": _value("k2", "新")}
    rows = list(decoded_rows(latest, schemas, RESOURCE, ("born", "name")))
    old_time = dt.datetime(2026, 1, 1, 8, 0, tzinfo=CHINA_TZ)
    new_time = dt.datetime(2026, 1, 2, 3, 4, tzinfo=CHINA_TZ)
    assert rows == [
        ["k1", None, "旧", PROVIDER, 2, old_time],
        ["k2", dt.date(1990, 1, 1), "新", PROVIDER, 3, new_time],
    ]
    # The lookup store reads both the same way, and answers a DELETE envelope as not found.
    state = ResourceState(RESOURCE, schemas)
    for offset, (key, value) in enumerate(latest.items()):
        state.put(0, key, value, offset)
    old, new = state.get(0, "k1"), state.get(0, "k2")
    assert old is not None and new is not None
    assert old.payload == {"citizen_id": "k1", "name": "旧", "born": None}
    assert (old.provider, old.catalog_version, old.event_time) == (PROVIDER, 2, old_time)
    assert new.payload == {"citizen_id": "k2", "name": "新", "born": dt.date(1990, 1, 1)}
    assert (new.provider, new.catalog_version, new.event_time) == (PROVIDER, 3, new_time)
    assert new.event_time.utcoffset() == dt.timedelta(hours=8)
    deleted = wire.encode_single_object(
        RESOURCE,
        {"provider": PROVIDER, "resource_code": RESOURCE.code, "catalog_version": 3,
         "op": "DELETE", "event_time": new_time, "trace_id": "t", "payload": None},
    )  # fmt: skip
    state.put(0, "k2", deleted, 9)
    assert state.get(0, "k2") is None


def test_csv_opens_in_excel_on_chinese_windows(tmp_path: Path) -> None:
    header = ["key", "name"]
    texts = [("k1,张三\r\n", 1), ("k2,\r\n", 1)]
    for encoding, bom in (("utf-8-sig", b"\xef\xbb\xbf"), ("gb18030", b"")):
        path = tmp_path / f"{encoding}.csv"
        assert write_csv(path, header, iter(texts), encoding) == 2
        raw = path.read_bytes()
        assert raw.startswith(bom) and ("张三".encode(encoding.replace("-sig", "")) in raw)
        rows = list(csv.reader(io.StringIO(raw.decode(encoding))))
        assert rows == [header, ["k1", "张三"], ["k2", ""]]
    assert sha256_of(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_xlsx_and_parquet_hold_the_same_rows(tmp_path: Path) -> None:
    import pyarrow.parquet as pq
    from openpyxl import load_workbook

    view = View("full", ("citizen_id", "name", "born"))
    header = columns(view)
    t = dt.datetime(2026, 1, 2, 3, 4, tzinfo=CHINA_TZ)
    rows = [["k1", "k1", "张三", dt.date(1990, 1, 1), PROVIDER, 3, t]]
    assert write_xlsx(tmp_path / "a.xlsx", header, iter(rows)) == 1
    sheet = load_workbook(tmp_path / "a.xlsx", read_only=True).worksheets[0]
    got = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert got[0] == header and got[1][:3] == ["k1", "k1", "张三"] and got[1][3] == "1990-01-01"
    assert write_parquet(tmp_path / "a.parquet", header, iter(rows), view, RESOURCE) == 1
    table = pq.read_table(tmp_path / "a.parquet")
    assert table.column_names == header
    row = table.to_pylist()[0]
    assert row["name"] == "张三" and row["born"] == dt.date(1990, 1, 1)
    assert row["event_time"] == t and row["catalog_version"] == 3


def test_settling_the_collector_takes_the_store_out_of_full_collections() -> None:
    states = [PartitionState(records={f"k{i}": (b"v", i)}) for i in range(20_000)]
    assert gc.is_tracked(states[0])
    try:
        settle_collector()
        frozen = gc.get_freeze_count()
        assert frozen >= len(states)
        # What a collection walks no longer holds them, and it leaves them frozen.
        assert not any(o is states[0] for o in gc.get_objects())
        gc.collect()
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
