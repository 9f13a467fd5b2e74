"""The usage audit's hash chain: what verify_chain accepts and every tampering it must catch."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from govbus.subscribe.audit import (
    CHAIN_HEADER,
    GENESIS,
    PARTITIONS_HEADER,
    AuditEvent,
    GrantRef,
    _own_events,
    verify_chain,
)

CST = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=CST)


def chain(department: str, counts: list[int], prev: str = GENESIS) -> list[AuditEvent]:
    events = []
    offset = 0
    for n, count in enumerate(counts):
        event = AuditEvent(
            department=department,
            resource="10101/11320400MB1234567R-000001",
            purpose="administrative-basis",
            grant=GrantRef("10101/11320400MB1234567R-000001", T0 + dt.timedelta(days=30))
            if n % 2
            else None,
            record_count=count,
            ranges={0: (offset, offset + count - 1)},
            window_start=T0 + dt.timedelta(seconds=10 * n),
            window_end=T0 + dt.timedelta(seconds=10 * n + 10),
            prev_hash=prev,
        ).sealed()
        events.append(event)
        prev = event.hash
        offset += count
    return events


def test_an_untouched_chain_verifies() -> None:
    assert verify_chain(chain("civil", [3, 5, 2, 7])) == []


def test_chains_of_departments_interleave() -> None:
    a, b = chain("civil", [1, 2, 3]), chain("health", [4, 5])
    mixed = [a[0], b[0], a[1], b[1], a[2]]
    assert verify_chain(mixed) == []


def test_hash_is_deterministic_and_covers_the_content() -> None:
    (event,) = chain("civil", [3])
    again = dataclasses.replace(event, hash="").sealed()
    assert again.hash == event.hash
    assert len(event.hash) == 64
    assert dataclasses.replace(event, record_count=4).compute_hash() != event.hash


def test_json_round_trip_keeps_the_hash_valid() -> None:
    events = chain("civil", [3, 4])
    back = [AuditEvent.from_json(e.to_json()) for e in events]
    assert back == events
    assert verify_chain(back) == []


def test_modified_count_is_detected_with_its_offset() -> None:
    events = chain("civil", [3, 5, 2])
    pairs = [(10 + n, e) for n, e in enumerate(events)]
    pairs[1] = (11, dataclasses.replace(events[1], record_count=1))
    problems = verify_chain(pairs)
    assert len(problems) == 1
    assert "offset 11" in problems[0]
    assert "modified" in problems[0]


def test_modified_event_with_recomputed_hash_breaks_the_next_link() -> None:
    events = chain("civil", [3, 5, 2])
    events[1] = dataclasses.replace(events[1], record_count=1).sealed()
    problems = verify_chain(events)
    assert len(problems) == 1
    assert "event #2" in problems[0]
    assert "chain broken" in problems[0]


def test_removed_event_is_detected() -> None:
    events = chain("civil", [3, 5, 2, 4])
    del events[1]
    problems = verify_chain(events)
    assert len(problems) == 1
    assert "event #1" in problems[0]


def test_removed_first_event_is_detected() -> None:
    events = chain("civil", [3, 5])
    problems = verify_chain(events[1:])
    assert len(problems) == 1
    assert "its first event" in problems[0]


def test_reordered_pair_is_detected() -> None:
    events = chain("civil", [3, 5, 2, 4])
    events[1], events[2] = events[2], events[1]
    problems = verify_chain(events)
    assert len(problems) == 1
    assert "event #1" in problems[0]


def test_a_broken_department_does_not_hide_another_ones_chain() -> None:
    a, b = chain("civil", [1, 2, 3]), chain("health", [4, 5])
    del a[1]
    problems = verify_chain([*a, *b])
    assert len(problems) == 1
    assert "civil" in problems[0]


def _lookup_chain(department: str, chain_name: str, n: int) -> list[AuditEvent]:
    events, prev = [], GENESIS
    for i in range(n):
        event = dataclasses.replace(
            chain(department, [1])[0],
            prev_hash=prev,
            chain=chain_name,
            query={"kind": "lookup", "case_number": f"C{i}", "keys_hmac_sha256": ["ab" * 32]},
        ).sealed()
        events.append(event)
        prev = event.hash
    return events


def test_a_department_has_one_chain_per_writer_checked_apart() -> None:
    own = chain("civil", [1, 2])
    one, two = _lookup_chain("civil", "lookup:a", 2), _lookup_chain("civil", "lookup:b", 2)
    assert verify_chain([own[0], one[0], two[0], one[1], own[1], two[1]]) == []
    tampered = dataclasses.replace(one[1], query={**(one[1].query or {}), "case_number": "X"})
    problems = verify_chain([one[0], two[0], tampered, two[1]])
    assert len(problems) == 1 and "civil (lookup:a)" in problems[0] and "modified" in problems[0]


def test_chain_and_query_are_hashed_only_when_set() -> None:
    plain = chain("civil", [3])[0]
    assert "chain" not in plain.body() and "query" not in plain.body()
    # An event written before the fields existed keeps its hash.
    assert AuditEvent.from_json(plain.to_json()).compute_hash() == plain.hash
    lookup = _lookup_chain("civil", "lookup:a", 1)[0]
    back = AuditEvent.from_json(lookup.to_json())
    assert back == lookup and back.compute_hash() == lookup.hash
    assert dataclasses.replace(lookup, chain="lookup:b").compute_hash() != lookup.hash


class _Msg:
    """What ``_own_events`` reads of a consumed record."""

    def __init__(self, key: str, value: bytes, chain: str | None = None) -> None:
        self._key, self._value = key.encode(), value
        self._headers = None if chain is None else [(CHAIN_HEADER, chain.encode())]

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers

    def topic(self) -> str:
        return "govbus.audit"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 0


def test_a_chain_head_read_skips_other_keys_and_other_chains_unparsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    own = chain("civil", [1, 2])
    lookups = _lookup_chain("civil", "lookup:a", 2)
    other = chain("tax", [3])
    msgs = [
        _Msg("civil", own[0].to_json()),
        _Msg("civil", lookups[0].to_json(), "lookup:a"),
        _Msg("tax", other[0].to_json()),
        _Msg("civil", lookups[1].to_json(), "lookup:a"),
        _Msg("civil", b"\x00not an event"),  # anyone may write here: skipped, not fatal
        _Msg("civil", own[1].to_json()),
        _Msg("civil", dataclasses.replace(lookups[1], chain=None).to_json(), "lookup:a"),
    ]
    parsed = []
    real = AuditEvent.from_json
    monkeypatch.setattr(
        AuditEvent, "from_json", staticmethod(lambda data: parsed.append(data) or real(data))
    )

    def events(department: str, chain: str | None) -> list[AuditEvent]:
        return [e for e, _placed_by in _own_events(msgs, department, chain)]

    assert events("civil", None) == own
    assert len(parsed) == 3  # the header-less records under civil's key, and nothing else
    assert events("civil", "lookup:a") == lookups
    assert events("tax", None) == other


def test_a_chain_head_read_notes_the_partition_count_each_event_was_placed_by() -> None:
    events = chain("civil", [1, 2, 3])
    named, unnamed, garbled = (_Msg("civil", e.to_json()) for e in events)
    named._headers = [(PARTITIONS_HEADER, b"6")]
    garbled._headers = [(PARTITIONS_HEADER, b"six")]  # anyone may write here: not trusted
    placed = _own_events([named, unnamed, garbled], "civil", None)
    assert placed == [(events[0], 6), (events[1], None), (events[2], None)]
