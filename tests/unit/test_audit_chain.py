"""The usage audit's hash chain: what verify_chain accepts and every tampering it must catch."""

from __future__ import annotations

import dataclasses
import datetime as dt

from govbus.subscribe.audit import GENESIS, AuditEvent, GrantRef, verify_chain

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
