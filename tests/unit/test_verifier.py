"""The verifier's per-event logic without Kafka: detect, dedup, out-of-order, settle, delete."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from govbus.vocabulary.identifiers import uscc_check_char
from govbus.vocabulary.naming import Naming
from govbus.vocabulary.spec import CatalogSpec, Holder, InfoItem
from stream_apps.verification.rules import (
    Authoritative,
    Observation,
    State,
    Verifier,
    as_text,
    dispute_id,
)
from tests.factories import person_resource

H1 = "11320400014100475" + uscc_check_char("11320400014100475")
H2 = "11320400014100635" + uscc_check_char("11320400014100635")
RESOURCE = person_resource(
    (
        InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),
        InfoItem("姓名", "name", "C", 50, compare="text"),
        InfoItem("补贴金额", "amount", "Y", compare="numeric", tolerance=0.01),
        InfoItem("出生日期", "birth", "D", compare="date"),
        InfoItem("婚姻状况", "marital", "C", 2),
    ),
    holders=(
        Holder(H1, ("citizen_id", "name", "amount", "birth", "marital")),
        Holder(H2, ("name",)),
    ),
)
CODE = RESOURCE.code
KEY = "320402199001010011"
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def verifier() -> Verifier:
    return Verifier(CatalogSpec(resources=(RESOURCE,)), clock=lambda: NOW)


def auth(values: dict[str, Any] | None, when: str = "2026-03-01T08:00:00+08:00") -> Authoritative:
    return Authoritative(CODE, KEY, RESOURCE.provider, when, values)


def obs(
    holder: str, values: dict[str, Any], when: str = "2026-03-01T09:00:00+08:00"
) -> Observation:
    return Observation(CODE, KEY, holder, when, {"citizen_id": KEY, **values})


GOOD = {"name": "张三", "amount": "1000.00", "birth": "1990-01-01", "marital": "10"}


def run(v: Verifier, state: State | None, *events: Authoritative | Observation):
    actions = []
    for event in events:
        out = (
            v.on_authoritative(state, event)
            if isinstance(event, Authoritative)
            else v.on_observation(state, event)
        )
        actions += out.actions
        state = out.state
    return actions, state


def test_equivalent_copies_open_nothing(verifier: Verifier):
    copy = {"name": "\u3000张三 ", "amount": "1,000", "birth": "1990年1月1日", "marital": "10"}
    actions, state = run(verifier, None, auth(GOOD), obs(H1, copy), obs(H2, {"name": "张三"}))
    assert actions == []
    assert state is not None and state["open"] == {}


def test_each_rule_detects_its_mismatch_with_both_values_and_sources(verifier: Verifier):
    copy = {"name": "李四", "amount": "1000.02", "birth": "1990-01-02", "marital": "20"}
    actions, state = run(verifier, None, auth(GOOD), obs(H1, copy))
    assert sorted(a["item"] for a in actions) == ["amount", "birth", "marital", "name"]
    by_item = {a["item"]: a for a in actions}
    assert {a["rule"] for a in actions} == {"text", "numeric", "date", "exact"}
    name = by_item["name"]
    assert name["action"] == "detect" and name["actor"] == "govbus-verifier"
    assert name["authoritative"] == {
        "provider": RESOURCE.provider, "value": "张三", "event_time": "2026-03-01T08:00:00+08:00"
    }  # fmt: skip
    assert name["observed"] == {
        "holder": H1, "value": "李四", "event_time": "2026-03-01T09:00:00+08:00"
    }  # fmt: skip
    assert name["dispute_id"] == dispute_id(CODE, KEY, "name", H1, "李四", "张三")
    assert name["at"] == NOW.isoformat()
    # In a namespace the verifier acts as its namespaced user (the dispute app checks that).
    namespaced = Verifier(
        CatalogSpec(resources=(RESOURCE,)), clock=lambda: NOW, naming=Naming("t1.")
    )
    actions, _ = run(namespaced, None, auth(GOOD), obs(H1, copy))
    assert {a["actor"] for a in actions} == {"t1.govbus-verifier"}
    assert state is not None and len(state["open"]) == 4


def test_observation_before_the_record_is_checked_when_the_record_arrives(verifier: Verifier):
    early, state = run(verifier, None, obs(H2, {"name": "王五"}))
    assert early == []
    actions, _ = run(verifier, state, auth(GOOD))
    assert [(a["action"], a["item"], a["observed"]["holder"]) for a in actions] == [
        ("detect", "name", H2)
    ]


def test_the_same_disagreement_is_not_detected_twice_but_a_new_one_supersedes(verifier: Verifier):
    actions, state = run(verifier, None, auth(GOOD), obs(H2, {"name": "王五"}))
    first = actions[0]["dispute_id"]
    again, state = run(verifier, state, obs(H2, {"name": "王五"}), auth(GOOD))
    assert again == []
    changed, state = run(verifier, state, obs(H2, {"name": "赵六"}))
    assert [a["action"] for a in changed] == ["settle", "detect"]
    assert changed[0]["dispute_id"] == first and "superseded" in changed[0]["reason"]
    assert state is not None and state["open"] == {f"name|{H2}": changed[1]["dispute_id"]}


def test_an_authoritative_correction_or_a_corrected_copy_settles(verifier: Verifier):
    actions, state = run(verifier, None, auth(GOOD), obs(H2, {"name": "王五"}))
    did = actions[0]["dispute_id"]
    settled, state = run(verifier, state, auth({**GOOD, "name": "王五"}))
    assert [(a["action"], a["dispute_id"]) for a in settled] == [("settle", did)]
    assert "provider's record" in settled[0]["reason"]
    assert state is not None and state["open"] == {}
    # And the other way: the holder fixes its copy.
    actions, state = run(verifier, state, obs(H2, {"name": "王 六"}))
    fixed, state = run(verifier, state, obs(H2, {"name": "王五"}))
    assert [(a["action"], a["dispute_id"]) for a in fixed] == [("settle", actions[0]["dispute_id"])]


def test_a_delete_settles_open_disputes_and_drops_the_values(verifier: Verifier):
    _, state = run(verifier, None, auth(GOOD), obs(H2, {"name": "王五"}))
    gone, state = run(verifier, state, auth(None))
    assert [a["action"] for a in gone] == ["settle"] and "deleted" in gone[0]["reason"]
    assert state is not None and state["auth"] is None and state["open"] == {}
    # Nothing is compared until a record comes back.
    assert run(verifier, state, obs(H2, {"name": "又错"}))[0] == []


def test_items_not_sent_are_not_compared_and_strangers_are_refused(verifier: Verifier):
    actions, _ = run(verifier, None, auth(GOOD), obs(H1, {"name": "张三"}))
    assert actions == []
    with pytest.raises(ValueError, match="not a catalogued holder"):
        verifier.on_observation(None, obs(RESOURCE.provider, {"name": "x"}))


def test_values_become_text_the_same_way_from_avro_and_json():
    assert as_text(dt.date(1990, 1, 1)) == "1990-01-01"
    assert as_text(True) == "true"
    assert as_text(None) is None
    assert as_text(12.5) == "12.5"
