"""Freshness allowances per update cycle, the baseline of a silent resource, event formats."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import get_args

import pytest

from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.naming import FRESHNESS_TOPIC, NAMING, VIOLATIONS_TOPIC, Naming
from govbus.vocabulary.spec import CatalogSpec, InfoItem, UpdateCycle
from govbus.vocabulary.topology import violations_topic_spec
from stream_apps.freshness import app as freshness
from stream_apps.freshness import rules
from stream_apps.registry import AppContext
from tests.factories import person_resource

RESOURCE = person_resource((InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),))


def cst(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=CHINA_TZ)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("cycle", "last", "due"),
    [
        # Friday → the next working day is Monday; late from Tuesday 00:00.
        ("daily", cst(2025, 3, 7, 10), cst(2025, 3, 11)),
        ("realtime", cst(2025, 3, 7, 23, 59), cst(2025, 3, 11)),
        # 国庆 and 中秋 2025 (October 1-8 off): the next working day is October 9.
        ("daily", cst(2025, 9, 30, 18), cst(2025, 10, 10)),
        # Monday → the 5th working day after is the next Monday.
        ("weekly", cst(2025, 3, 3, 9), cst(2025, 3, 11)),
        ("monthly", cst(2025, 1, 31, 12), cst(2025, 3, 1)),
        ("monthly", cst(2025, 12, 15), cst(2026, 2, 1)),
        ("quarterly", cst(2025, 2, 10), cst(2025, 7, 1)),
        ("quarterly", cst(2025, 11, 1), cst(2026, 4, 1)),
        ("half-yearly", cst(2025, 7, 1), cst(2026, 7, 1)),
        ("yearly", cst(2025, 6, 1), cst(2027, 1, 1)),
    ],
)
def test_deadline_per_cycle(cycle: UpdateCycle, last: dt.datetime, due: dt.datetime) -> None:
    got = rules.deadline(cycle, last)
    assert got is not None
    assert got.at == due
    assert got.certain


def test_other_cycle_is_never_late_and_every_cycle_has_a_documented_allowance() -> None:
    assert rules.deadline("other", cst(2000, 1, 1)) is None
    assert set(rules.ALLOWANCES) == set(get_args(UpdateCycle))
    assert all(a.rule and a.reason for a in rules.ALLOWANCES.values())


def test_publish_time_is_taken_in_china_time() -> None:
    # 17:00 UTC Thursday is 01:00 Friday in Changzhou.
    late_thursday_utc = dt.datetime(2025, 3, 6, 17, tzinfo=dt.UTC)
    got = rules.deadline("daily", late_thursday_utc)
    assert got is not None and got.at == cst(2025, 3, 11)


def test_silent_resource_counts_from_the_later_of_publish_date_and_watch_start() -> None:
    watching = cst(2025, 3, 3, 8)
    assert rules.baseline(RESOURCE, None, watching) == watching  # catalogued 2024
    later = dataclasses.replace(RESOURCE, publish_date=dt.date(2025, 6, 1))
    assert rules.baseline(later, None, watching) == cst(2025, 6, 1)
    published = cst(2025, 3, 1)
    assert rules.baseline(RESOURCE, published, watching) == published


def test_events_have_the_shared_format() -> None:
    last, now = cst(2025, 3, 7, 10), cst(2025, 3, 12, 9)
    due = rules.deadline("daily", last)
    assert due is not None
    event = rules.freshness_event(RESOURCE, last, due, now, breached=True)
    assert event == {
        "resource_code": RESOURCE.code,
        "provider": RESOURCE.provider,
        "update_cycle": "daily",
        "last_publish": "2025-03-07T10:00:00+08:00",
        "deadline": "2025-03-11T00:00:00+08:00",
        "detected_at": "2025-03-12T09:00:00+08:00",
        "breached": True,
    }
    violation = rules.violation_event(RESOURCE, last, due, now)
    assert violation["kind"] == "late-provision" and violation["article"] == "26(2)"
    assert violation["department"] == RESOURCE.provider
    assert violation["subject"] == f"{RESOURCE.code}@2025-03-11"
    assert "2025-03-07T10:00:00+08:00" in violation["detail"]


def test_needs_reads_every_resource_and_only_the_operator_reads_the_results() -> None:
    unshared = dataclasses.replace(
        RESOURCE, code=RESOURCE.code[:-1] + "2", share_type="none", legal_basis="x"
    )
    app = freshness.needs(CatalogSpec((), (RESOURCE, unshared)), AppContext(operator="cz-dsjj"))
    times = "govbus-freshness-publishes"  # its own: publish times by resource code
    assert set(app.reads) == {
        NAMING.resource_topic(RESOURCE.code),
        NAMING.resource_topic(unshared.code),
        times,
    }
    assert set(app.writes) == {FRESHNESS_TOPIC, VIOLATIONS_TOPIC, times}
    assert app.topics[times].partitions == 3  # the context's: co-partitioned with the tables
    assert app.topics[FRESHNESS_TOPIC].config["cleanup.policy"] == "compact"
    assert app.topics[VIOLATIONS_TOPIC] == violations_topic_spec(3, -1)  # one definition
    assert {a.principal for a in app.acls} == {"User:cz-dsjj"}
    assert set(app.tables) == {"last_publish", "episodes"}
    assert app.app_id == app.user == "govbus-freshness"


def test_needs_in_a_namespace_prefixes_every_topic_and_the_app() -> None:
    naming = Naming("t1.")
    app = freshness.needs(CatalogSpec((), (RESOURCE,)), AppContext(naming, operator="t1-ops"))
    times = "t1.govbus-freshness-publishes"
    assert app.reads == (f"t1.{NAMING.resource_topic(RESOURCE.code)}", times)
    assert set(app.writes) == {"t1.govbus.freshness", "t1.govbus.violations", times}
    assert app.app_id == "t1.govbus-freshness"
    assert {a.principal for a in app.acls} == {"User:t1-ops"}
