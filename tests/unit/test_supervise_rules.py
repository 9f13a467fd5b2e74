"""The pure rules of supervision: kinds, detectors on values, the workflow, the evaluation."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from govbus.catalog.yaml_io import SAMPLE_CATALOG_PATH, load_yaml
from govbus.supervise.evaluation import INDICATORS, DepartmentYear, evaluate, grade
from govbus.supervise.rules import (
    KINDS,
    AuditUse,
    DeadlineView,
    GrantedPurpose,
    TransitionError,
    audit_purpose_findings,
    check_transition,
    dead_letter_findings,
    dispute_findings,
    kind_of,
    overdue_deadline_findings,
    repeated_collection_findings,
)
from govbus.supervise.sources import _topic_finding
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.errors import UserError
from govbus.vocabulary.spec import Holder

AT = dt.datetime(2026, 6, 1, 9, 0, tzinfo=CHINA_TZ)
MARRIAGE = "30201/1132040001410023XJ-000003"  # conditional, 民政局
RSJ = "11320400014100475P"
HOUSEHOLD = "10101/1132040001410015XY-000001"  # 人口户籍基本信息, 公安局
SOCIAL_INSURANCE = "30301/11320400014100475P-000002"  # conditional, without a public view


def test_the_seven_kinds_of_article_26_each_once() -> None:
    assert [k.article for k in KINDS] == [f"26({n})" for n in range(1, 8)]
    assert kind_of("26(3)").name == "unanswered-request"
    with pytest.raises(UserError, match="kinds of article 26"):
        kind_of("26(8)")


def test_overdue_catalog_deadlines_are_findings_and_met_ones_clear() -> None:
    found, cleared = overdue_deadline_findings(
        [
            DeadlineView(1, "A", dt.date(2026, 5, 1), "overdue", None),
            DeadlineView(2, "B", dt.date(2026, 5, 1), "met", 4),
            DeadlineView(3, "C", dt.date(2026, 7, 1), "open", None),
        ],
        AT,
    )
    assert [(f.kind, f.department, f.subject) for f in found] == [
        ("catalog-not-updated", "A", "trigger:1:A")
    ]
    assert cleared == {"trigger:2:B"}


def test_dead_letter_rate_above_the_threshold_only() -> None:
    counts = {"A": (90, 10), "B": (96, 4), "C": (0, 0)}
    found = dead_letter_findings(counts, 0.05, AT.date(), AT)
    assert [f.department for f in found] == ["A"]
    assert found[0].evidence["rate"] == 0.1 and found[0].recurring
    assert dead_letter_findings(counts, 0.0, AT.date(), AT)[1].department == "B"
    with pytest.raises(UserError, match="fraction"):
        dead_letter_findings(counts, 1.5, AT.date(), AT)


def _use(purpose: str, end: dt.datetime = AT, records: int = 3) -> AuditUse:
    return AuditUse(
        RSJ, MARRIAGE, purpose, records, end - dt.timedelta(hours=1), end, "h" + purpose
    )


def test_usage_beyond_the_granted_purpose_is_26_5() -> None:
    spec = load_yaml(SAMPLE_CATALOG_PATH)
    grant = GrantedPurpose(RSJ, MARRIAGE, "administrative-basis", AT + dt.timedelta(days=30))
    found = audit_purpose_findings(
        [_use("administrative-basis"), _use("work-reference"), _use("work-reference", records=0)],
        [grant],
        spec,
    )
    assert [(f.kind, f.subject) for f in found] == [("purpose-misuse", "audit:hwork-reference")]
    assert "not this one" in found[0].summary
    late = AT + dt.timedelta(days=60)
    expired = audit_purpose_findings([_use("administrative-basis", late)], [grant], spec)
    assert "expired" in expired[0].summary
    # Without a grant the broker lets a department read only a public view (article 10).
    assert audit_purpose_findings([_use("x")], [], spec) == []
    insured = dataclasses.replace(_use("x"), resource=SOCIAL_INSURANCE)  # has no public view
    assert "no approved share request" in audit_purpose_findings([insured], [], spec)[0].summary


def test_repeated_collection_is_the_same_item_of_the_same_subject_without_a_source() -> None:
    spec = load_yaml(SAMPLE_CATALOG_PATH)
    assert repeated_collection_findings(spec, AT) == []  # the sample obeys one data, one source
    household = spec.resource(HOUSEHOLD)
    assert household is not None
    other = next(d for d in spec.departments if d.code != household.provider)
    copy = dataclasses.replace(
        household,
        code=f"10101/{other.code}-000099",
        provider=other.code,
        publish_date=household.publish_date + dt.timedelta(days=1),
        holders=(),
    )
    with_copy = dataclasses.replace(spec, resources=(*spec.resources, copy))
    found = repeated_collection_findings(with_copy, AT)
    assert found and {f.department for f in found} == {other.code}
    assert all(f.evidence["provided_in"] == HOUSEHOLD for f in found)
    # Declared as a holder of the original: a copy with its source, not a repeated collection.
    declared = dataclasses.replace(household, holders=(*household.holders, Holder(other.code, ())))
    resources = tuple(declared if r.code == HOUSEHOLD else r for r in with_copy.resources)
    assert repeated_collection_findings(dataclasses.replace(spec, resources=resources), AT) == []


def test_the_rectification_workflow_allows_only_its_steps() -> None:
    today = dt.date(2026, 6, 10)
    assert check_transition(1, "open", "notify", None, today) == "notified"
    assert check_transition(1, "notified", "respond", today, today) == "responded"
    assert check_transition(1, "responded", "close", today, today) == "closed"
    with pytest.raises(TransitionError, match="has not passed"):
        check_transition(1, "notified", "escalate", today, today)
    assert check_transition(1, "notified", "escalate", dt.date(2026, 6, 9), today) == "escalated"
    assert check_transition(1, "escalated", "respond", None, today) == "responded"
    with pytest.raises(TransitionError, match="is closed"):
        check_transition(1, "closed", "notify", None, today)
    with pytest.raises(TransitionError, match="notify"):
        check_transition(1, "open", "respond", None, today)


def _year(dept: str, **kw: object) -> DepartmentYear:
    base: dict[str, object] = {
        "department_id": dept,
        "department_code": dept.upper(),
        "name": dept,
        "resources": 4,
        "complete_resources": 4,
        "deadlines_due": 0,
        "deadlines_met": 0,
        "late_resources": 0,
        "requests_received": 0,
        "requests_answered_in_time": 0,
        "answer_workdays": (),
        "inconsistencies": 0,
        "requests_made": 1,
        "grants_received": 1,
        "violations": 0,
        "notices": 0,
        "rectified_in_time": 0,
    }
    base.update(kw)
    return DepartmentYear(**base)  # type: ignore[arg-type]


def test_evaluation_scores_only_applicable_indicators_and_ranks_ties_together() -> None:
    assert sum(i.weight for i in INDICATORS) == 100
    perfect, twin = _year("a"), _year("b")
    weak = _year(
        "c",
        late_resources=2,
        requests_received=4,
        requests_answered_in_time=1,
        answer_workdays=(12, 14),
        violations=3,
    )
    scores = evaluate([weak, twin, perfect])
    assert [(s.year.department_id, s.rank) for s in scores] == [("a", 1), ("b", 1), ("c", 3)]
    assert scores[0].score == 100.0 and scores[0].opinions == ()
    c = scores[2]
    by_key = {x.key: x.score for x in c.indicators}
    assert by_key["on_time_provision"] == 0.5
    assert by_key["request_answer_time"] == 0.0
    assert by_key["rectification"] is None and by_key["catalog_timeliness"] is None
    # (10×1 + 20×.5 + 15×.25 + 5×0 + 15×1 + 10×1 + 5×.4) / (100 - 15 - 5) × 100
    assert c.score == pytest.approx(round(100 * 50.75 / 80, 1))
    assert len(c.opinions) == 2 and c.opinions[0].startswith("共享申请答复时长")
    assert grade(c.score) == "合格"


def test_disputes_resolved_confirmed_or_corrected_are_26_4_by_their_last_state() -> None:
    base = {
        "resource_code": MARRIAGE,
        "key": "k",
        "provider": "P",
        "updated_at": AT.isoformat(),
        "note": "n",
    }
    states = [
        {**base, "dispute_id": "a", "state": "open", "outcome": None},
        {**base, "dispute_id": "a", "state": "resolved", "outcome": "corrected"},
        {**base, "dispute_id": "b", "state": "resolved", "outcome": "rejected"},
        {**base, "dispute_id": "c", "state": "resolved", "outcome": "confirmed"},
        {**base, "dispute_id": "d", "state": "acknowledged", "outcome": None},
    ]
    found = dispute_findings(states)
    assert [(f.subject, f.evidence["outcome"]) for f in found] == [
        ("a", "corrected"),
        ("c", "confirmed"),
    ]
    assert all(f.kind == "inconsistent-data" and f.department == "P" for f in found)


def test_a_read_the_access_evidence_found_undeclared_is_26_5_in_the_ledger() -> None:
    # The record `govbus access check` writes to govbus.violations (govbus.subscribe.evidence).
    record = {
        "kind": "undeclared-use",
        "article": "26(5)",
        "department": "11320400014160331P",
        "resource_code": "30201/000001",
        "subject": "cz-jyj:gov.30201-000001:2026-11-30T09:00:00+08:00",
        "at": "2026-11-30T09:00:30+08:00",
        "evidence": {"principal": "User:cz-jyj", "topic": "gov.30201-000001", "count": 3},
        "detail": "read with no declared purpose",
    }
    finding = _topic_finding(record)
    assert finding is not None
    assert finding.kind == "purpose-misuse" and finding.department == "11320400014160331P"
    assert finding.subject == "undeclared-use:" + record["subject"]
    assert finding.evidence["evidence"] == record["evidence"]
    assert _topic_finding({**record, "kind": "something-else"}) is None
