"""A conditional read: the grant names the purpose, the items pick the topic, the read names
its case number (办件编号) and end user (经办人). No broker: ``Subscriber`` connects in ``run``."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from govbus.subscribe.audit import AuditEvent, GrantRef, verify_chain
from govbus.subscribe.consumer import SubscribeError, Subscriber
from govbus.vocabulary.config import Settings
from govbus.vocabulary.grants import Grant
from govbus.vocabulary.naming import NAMING
from govbus.vocabulary.session import DepartmentSession
from govbus.vocabulary.spec import CatalogSpec, InfoItem
from tests.factories import person_resource
from tests.integration.fixtures import Namespace

ITEMS = (
    InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),
    InfoItem("就业状态", "status", "C", 20),
    InfoItem("补贴金额", "subsidy", "Y"),
)
RESOURCE = person_resource(
    ITEMS, share_type="conditional", purposes=("administrative-basis", "work-reference")
)
NS = Namespace("u")
PROVIDER = NS.department("prov", 1)
READER = NS.department("cons", 2)
RES = dataclasses.replace(RESOURCE, provider=PROVIDER.code, code=f"10101/{PROVIDER.code}-000001")
SPEC = CatalogSpec((PROVIDER, READER), (RES,))
AUDITED = {"case_number": "常人社〔2026〕12号", "end_user": "王五"}


def subscriber(*grants: Grant, purpose: str = "administrative-basis", **kw: Any) -> Subscriber:
    session = DepartmentSession(Settings(), READER.id, "pw", SPEC, grants=grants)
    return Subscriber(session, RES.code, purpose, **kw)


def grant(*items: str, purpose: str = "administrative-basis", gid: int = 1) -> Grant:
    return Grant(READER.code, RES.code, None, items=items, purpose=purpose, grant_id=gid)


def test_the_purpose_must_be_one_a_grant_was_given_for() -> None:
    with pytest.raises(SubscribeError, match=r"grant 3: purpose administrative-basis"):
        subscriber(grant(gid=3), purpose="work-reference", **AUDITED)
    assert subscriber(grant(gid=3), **AUDITED).grant == grant(gid=3)


def test_a_read_under_a_grant_names_its_case_number_and_end_user() -> None:
    with pytest.raises(SubscribeError, match="--case-number"):
        subscriber(grant(), end_user="王五")
    with pytest.raises(SubscribeError, match="--end-user"):
        subscriber(grant(), case_number="常人社〔2026〕12号", end_user="  ")
    with pytest.raises(SubscribeError, match="at most 64 printable"):
        subscriber(grant(), case_number="x\ty", end_user="王五")
    sub = subscriber(grant(), case_number=" 常人社〔2026〕12号 ", end_user="王五")
    assert (sub.case_number, sub.end_user) == ("常人社〔2026〕12号", "王五")


def test_a_grant_for_part_of_the_items_reads_its_item_set_view() -> None:
    sub = subscriber(grant("subsidy", "citizen_id"), **AUDITED)
    assert sub.topic == NAMING.grant_view_topic(RES.code, ("citizen_id", "subsidy"))
    assert [i.code for i in sub.resource.items] == ["citizen_id", "subsidy"]
    whole = subscriber(grant("citizen_id", "status", "subsidy"), **AUDITED)
    assert whole.topic == NAMING.resource_topic(RES.code)
    # Several grants for the purpose: the widest is used.
    both = subscriber(grant("status", gid=1), grant("status", "subsidy", gid=2), **AUDITED)
    assert both.grant is not None and both.grant.grant_id == 2
    # The key is not in a status-only view: its verification status cannot be matched.
    with pytest.raises(SubscribeError, match="pseudonyms"):
        subscriber(grant("status"), verification_status=True, **AUDITED)


def test_audit_events_carry_grant_id_items_case_and_end_user_and_old_ones_still_verify() -> None:
    at = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    old = AuditEvent(READER.id, RES.code, "administrative-basis", GrantRef(RES.code), 1,
                     {0: (0, 0)}, at, at).sealed()  # fmt: skip
    # An event without the new fields hashes as before (no new keys in its body).
    assert set(old.body()) == {
        "department", "resource", "purpose", "grant", "record_count", "ranges",
        "window_start", "window_end", "prev_hash",
    }  # fmt: skip
    new = AuditEvent(
        READER.id, RES.code, "administrative-basis", GrantRef(RES.code, None, 7, ("status",)),
        2, {0: (1, 2)}, at, at, prev_hash=old.hash, **AUDITED,
    ).sealed()  # fmt: skip
    back = AuditEvent.from_json(new.to_json())
    assert back == new and back.grant == GrantRef(RES.code, None, 7, ("status",))
    assert (back.case_number, back.end_user) == ("常人社〔2026〕12号", "王五")
    assert verify_chain([old, back]) == []
    forged = AuditEvent.from_json(new.to_json().replace("王五".encode(), "李四".encode()))
    assert verify_chain([old, forged]) != []
