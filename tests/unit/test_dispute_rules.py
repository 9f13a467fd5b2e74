"""The dispute lifecycle rules, without a broker: who may act, the state machine, deadlines."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from govbus.vocabulary.grants import Grant
from govbus.vocabulary.identifiers import uscc_check_char
from govbus.vocabulary.naming import EVERYONE, VERIFIER_USER, Naming
from govbus.vocabulary.spec import CatalogSpec, Department, Holder, InfoItem, Resource
from stream_apps.disputes.rules import (
    DisputeRules,
    Rejection,
    detected_dispute_id,
    filed_dispute_id,
    violation,
)
from stream_apps.disputes.topics import DisputeTopics, dispute_readers, status_readers
from tests.factories import person_resource

CST = dt.timezone(dt.timedelta(hours=8))


def _dept(label: str, n: int) -> Department:
    body = f"11320400{n:09d}"
    return Department(label, body + uscc_check_char(body), label, "city", "320400")


GAJ, SCJ, MZJ, DSJ = (_dept(x, n) for n, x in enumerate(("gaj", "scj", "mzj", "cz-dsjj")))
ITEMS = (
    InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),
    InfoItem("姓名", "citizen_name", "C", 50, compare="text"),
)
OPEN_RES = person_resource(
    ITEMS, provider=GAJ.code, code=f"10101/{GAJ.code}-000001",
    holders=(Holder(SCJ.code, ("citizen_name",)),),
)  # fmt: skip
COND_RES = dataclasses.replace(
    OPEN_RES, code=f"10101/{GAJ.code}-000002", share_type="conditional", holders=()
)
NONE_RES = dataclasses.replace(
    OPEN_RES, code=f"10101/{GAJ.code}-000003", share_type="none", holders=()
)
SPEC = CatalogSpec((GAJ, SCJ, MZJ, DSJ), (OPEN_RES, COND_RES, NONE_RES))
MONDAY = dt.datetime(2025, 3, 3, 10, 0, tzinfo=CST)  # a plain working week follows
KEY = "320402199001010011"


def at(days: float = 0) -> str:
    return (MONDAY + dt.timedelta(days=days)).isoformat()


def file_action(actor: str = "scj", res: Resource = OPEN_RES, **kw: Any) -> dict[str, Any]:
    action = {
        "action": "file", "resource_code": res.code, "key": KEY, "item": "citizen_name",
        "actor": actor, "at": at(), "reason": "姓名有误", "evidence": None,
    }  # fmt: skip
    action["dispute_id"] = filed_dispute_id(res.code, KEY, "citizen_name", actor, action["at"])
    return {**action, **kw}


def follow(state: dict[str, Any], name: str, actor: str, days: float, **kw: Any) -> dict[str, Any]:
    return {
        "action": name, "dispute_id": state["dispute_id"], "resource_code": state["resource_code"],
        "key": state["key"], "item": state["item"], "actor": actor, "at": at(days), **kw,
    }  # fmt: skip


def detect_action(**kw: Any) -> dict[str, Any]:
    return {
        "action": "detect", "resource_code": OPEN_RES.code, "key": KEY, "item": "citizen_name",
        "actor": VERIFIER_USER, "at": at(),
        "dispute_id": detected_dispute_id(OPEN_RES.code, KEY, "citizen_name", SCJ.code, "李四",
                                          "李 四"),
        "authoritative": {"provider": GAJ.code, "value": "李 四", "event_time": None},
        "observed": {"holder": SCJ.code, "value": "李四", "event_time": None},
        "rule": "exact", **kw,
    }  # fmt: skip


@pytest.fixture
def rules() -> DisputeRules:
    return DisputeRules(SPEC)


def rejected(rules: DisputeRules, current: Any, action: dict[str, Any], actor: str) -> Rejection:
    with pytest.raises(Rejection) as info:
        rules.apply(current, action, actor)
    return info.value


def test_filed_doubt_runs_open_ack_resolve(rules: DisputeRules) -> None:
    opened = rules.apply(None, file_action(), "scj")
    assert opened is not None and opened.opened
    state = opened.state
    assert (state["state"], state["origin"], state["filed_by"], state["version"]) == (
        "open", "filed", "scj", 1,
    )  # fmt: skip
    # 2025-03-03 is a Monday: five working days later is the next Monday.
    assert (state["due"], state["due_certain"]) == ("2025-03-10", True)
    acked = rules.apply(state, follow(state, "ack", "gaj", 1), "gaj")
    assert acked is not None and acked.state["state"] == "acknowledged"
    record = {"topic": "gov.x", "partition": 0, "offset": 7, "trace_id": None}
    resolve = follow(acked.state, "resolve", "gaj", 2, outcome="corrected", note="已更正",
                     corrected_record=record)  # fmt: skip
    done = rules.apply(acked.state, resolve, "gaj")
    assert done is not None and done.closed
    assert (done.state["state"], done.state["outcome"], done.state["version"]) == (
        "resolved", "corrected", 3,
    )  # fmt: skip
    assert done.state["corrected_record"] == record
    assert [h["action"] for h in done.state["history"]] == ["file", "ack", "resolve"]


def test_same_action_again_changes_nothing(rules: DisputeRules) -> None:
    action = file_action()
    opened = rules.apply(None, action, "scj")
    assert opened is not None
    assert rules.apply(opened.state, action, "scj") is None
    ack = follow(opened.state, "ack", "gaj", 1)
    acked = rules.apply(opened.state, ack, "gaj")
    assert acked is not None
    assert rules.apply(acked.state, ack, "gaj") is None


def test_detect_replayed_while_open_is_one_dispute_and_settle_closes(rules: DisputeRules) -> None:
    opened = rules.apply(None, detect_action(), VERIFIER_USER)
    assert opened is not None and opened.state["holder"] == SCJ.code
    assert rules.apply(opened.state, detect_action(at=at(0.5)), VERIFIER_USER) is None
    settle = follow(opened.state, "settle", VERIFIER_USER, 1, reason="values agree")
    settled = rules.apply(opened.state, settle, VERIFIER_USER)
    assert settled is not None and settled.closed and settled.state["state"] == "settled"
    # An old mismatch replayed after the settle does not reopen; a later one does.
    assert rules.apply(settled.state, detect_action(at=at(0.7)), VERIFIER_USER) is None
    again = rules.apply(settled.state, detect_action(at=at(3)), VERIFIER_USER)
    assert again is not None and again.opened and again.state["state"] == "open"
    assert again.state["version"] == 3 and again.state["due"] == "2025-03-13"


@pytest.mark.parametrize(
    ("action", "actor", "field", "rule"),
    [
        ({"actor": "gaj"}, "scj", "actor", "actor-is-sender"),
        ({"action": "detect"}, "scj", "actor", "verifier-only"),
        ({"reason": "  "}, "scj", "reason", "required"),
        ({"item": "phone"}, "scj", "item", "catalogued"),
        ({"resource_code": "10101/nope"}, "scj", "resource_code", "catalogued"),
        ({"at": "2025-03-03T10:00:00"}, "scj", "at", "iso-time"),
        ({"action": "undo"}, "scj", "action", "known-action"),
    ],
)
def test_malformed_or_misattributed_file_is_rejected(
    rules: DisputeRules, action: dict[str, Any], actor: str, field: str, rule: str
) -> None:
    rejection = rejected(rules, None, file_action(**action), actor)
    assert (rejection.field, rejection.rule) == (field, rule)
    assert field in str(rejection) and rule in str(rejection)


def test_who_may_file_follows_the_share_type(rules: DisputeRules) -> None:
    assert rejected(rules, None, file_action("mzj", COND_RES), "mzj").rule == "may-read"
    assert rejected(rules, None, file_action("mzj", NONE_RES), "mzj").rule == "may-read"
    assert rules.apply(None, file_action("gaj", NONE_RES), "gaj") is not None  # its provider
    granted = DisputeRules(SPEC, grants=[Grant(MZJ.code, COND_RES.code)])
    assert granted.apply(None, file_action("mzj", COND_RES), "mzj") is not None
    expired = DisputeRules(SPEC, grants=[Grant(MZJ.code, COND_RES.code, MONDAY)])
    assert rejected(expired, None, file_action("mzj", COND_RES), "mzj").rule == "may-read"


def test_only_the_provider_acks_and_resolves_in_order(rules: DisputeRules) -> None:
    opened = rules.apply(None, file_action(), "scj")
    assert opened is not None
    state = opened.state
    assert rejected(rules, state, follow(state, "ack", "scj", 1), "scj").rule == "provider-only"
    resolve = follow(state, "resolve", "gaj", 1, outcome="rejected", note="无误")
    assert rejected(rules, state, resolve, "gaj").rule == "resolve-when-acknowledged"
    acked = rules.apply(state, follow(state, "ack", "gaj", 1), "gaj")
    assert acked is not None
    again = follow(acked.state, "ack", "gaj", 2)
    assert rejected(rules, acked.state, again, "gaj").rule == "ack-when-open"
    corrected = follow(acked.state, "resolve", "gaj", 2, outcome="corrected", note="改")
    assert rejected(rules, acked.state, corrected, "gaj").rule == "corrected-needs-record"
    bad = follow(acked.state, "resolve", "gaj", 2, outcome="maybe", note="?")
    assert rejected(rules, acked.state, bad, "gaj").rule == "known-outcome"
    settle = follow(acked.state, "settle", VERIFIER_USER, 2, reason="agree")
    assert rejected(rules, acked.state, settle, VERIFIER_USER).rule == "settle-open-detected"


def test_unknown_dispute_and_reused_id_are_rejected(rules: DisputeRules) -> None:
    ghost = follow(file_action(), "ack", "gaj", 1)
    assert rejected(rules, None, ghost, "gaj").rule == "known-dispute"
    opened = rules.apply(None, file_action(), "scj")
    assert opened is not None
    assert rejected(rules, opened.state, file_action(at=at(1)), "scj").rule == "new-id"
    other_key = {**follow(opened.state, "ack", "gaj", 1), "key": "other"}
    assert rejected(rules, opened.state, other_key, "gaj").rule == "same-record"


def test_detect_needs_the_catalogued_provider_holder_and_rule(rules: DisputeRules) -> None:
    wrong_holder = detect_action(observed={"holder": MZJ.code, "value": "x", "event_time": None})
    assert rejected(rules, None, wrong_holder, VERIFIER_USER).rule == "catalogued-holder"
    wrong_provider = detect_action(authoritative={"provider": SCJ.code, "value": "x"})
    assert rejected(rules, None, wrong_provider, VERIFIER_USER).rule == "provider"
    assert rejected(rules, None, detect_action(rule="fuzzy"), VERIFIER_USER).rule == "known-rule"


def test_overdue_once_after_the_due_day(rules: DisputeRules) -> None:
    opened = rules.apply(None, file_action(), "scj")
    assert opened is not None
    state = opened.state
    on_due_day = dt.datetime(2025, 3, 10, 23, 0, tzinfo=CST)
    assert rules.mark_overdue(state, on_due_day, "app") is None
    late = dt.datetime(2025, 3, 11, 0, 1, tzinfo=CST)
    marked = rules.mark_overdue(state, late, "app")
    assert marked is not None and marked["overdue"] and marked["version"] == 2
    assert rules.mark_overdue(marked, late + dt.timedelta(days=1), "app") is None
    key, record = violation(marked, GAJ.code, late)
    assert key == f"inconsistent-data:{state['dispute_id']}"
    assert (record["kind"], record["article"], record["department"]) == (
        "inconsistent-data", "26(4)", GAJ.code,
    )  # fmt: skip
    # A closed dispute is never overdue.
    acked = rules.apply(state, follow(state, "ack", "gaj", 1), "gaj")
    assert acked is not None
    done = rules.apply(
        acked.state, follow(acked.state, "resolve", "gaj", 2, outcome="rejected", note="无误"),
        "gaj",
    )  # fmt: skip
    assert done is not None and rules.mark_overdue(done.state, late, "app") is None


def test_deadline_counts_working_days_over_a_holiday(rules: DisputeRules) -> None:
    # Filed on 2025-09-30: 国庆/中秋 2025-10-01..08 are holidays, 2025-10-11 (Saturday) is worked.
    action = file_action(at="2025-09-30T16:00:00+08:00")
    opened = rules.apply(None, action, "scj")
    assert opened is not None
    assert opened.state["due"] == "2025-10-14"


def test_readers_of_disputes_and_status() -> None:
    assert dispute_readers(SPEC, OPEN_RES) == ["gaj", "scj", "cz-dsjj"]
    assert status_readers(SPEC, OPEN_RES) == [EVERYONE]
    grants = [Grant(MZJ.code, COND_RES.code), Grant(SCJ.code, COND_RES.code, MONDAY)]
    assert status_readers(SPEC, COND_RES, grants, now=at_dt(1)) == ["gaj", "mzj", "cz-dsjj"]
    assert status_readers(SPEC, NONE_RES, grants) == ["gaj", "cz-dsjj"]
    topics = DisputeTopics()
    assert topics.rejections("scj", SPEC) == "dlq.scj"
    assert topics.rejections(VERIFIER_USER, SPEC) == "disputes.rejected"
    assert topics.actors(SPEC)[f"disputes.actions.{VERIFIER_USER}"] == VERIFIER_USER
    # A namespace prefixes every topic and app user, not the departments' ids.
    ns = DisputeTopics(Naming("t1."))
    assert ns.rejections("scj", SPEC) == "t1.dlq.scj"
    assert ns.rejections(ns.verifier, SPEC) == "t1.disputes.rejected"
    assert ns.actors(SPEC)["t1.disputes.actions.t1.govbus-verifier"] == "t1.govbus-verifier"
    assert ns.actors(SPEC)["t1.disputes.actions.scj"] == "scj"
    assert ns.commands == "t1.govbus-disputes-commands"


def at_dt(days: float) -> dt.datetime:
    return MONDAY + dt.timedelta(days=days)
