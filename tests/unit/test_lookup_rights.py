"""What a department sees of a resource in a lookup or download (govbus.lookup.rights)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from govbus.lookup.errors import LookupRefused
from govbus.lookup.rights import view_for
from govbus.share.requests import ShareGrant
from govbus.vocabulary.identifiers import uscc_check_char
from govbus.vocabulary.spec import Department, InfoItem
from tests.factories import PROVIDER, person_resource

ITEMS = (
    InfoItem("公民身份号码", "citizen_id", "C", 18, required=True, shareable_to_all=True,
             mask="citizen-id"),
    InfoItem("姓名", "name", "C", 30, shareable_to_all=True, mask="name"),
    InfoItem("手机号码", "phone", "C", 11),
    InfoItem("住址", "address", "C", 100),
)  # fmt: skip
CONDITIONAL = person_resource(ITEMS, share_type="conditional", purposes=("administrative-basis",))
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
PAYLOAD = {"citizen_id": "320402199001010011", "name": "欧阳娜娜", "phone": "13812345678",
           "address": "常州市天宁区"}  # fmt: skip


def dept(n: int, code: str | None = None) -> Department:
    body = f"11320400{n:09d}"
    return Department(f"d{n}", code or body + uscc_check_char(body), f"d{n}", "city", "320400")


def grant(
    d: Department,
    items: tuple[str, ...] = (),
    purpose: str = "administrative-basis",
    expires: dt.datetime = NOW + dt.timedelta(days=30),
    revoked: bool = False,
) -> ShareGrant:
    return ShareGrant(1, 1, d.code, CONDITIONAL.code, items, purpose, NOW, "x", expires,
                      NOW if revoked else None, None, None, None)  # fmt: skip


def test_provider_and_unconditional_see_everything_in_clear() -> None:
    provider = dept(1, PROVIDER)
    view = view_for(provider, CONDITIONAL, "work-reference", (), NOW)
    assert view.kind == "full" and view.shape(PAYLOAD) == PAYLOAD
    open_ = dataclasses.replace(CONDITIONAL, share_type="unconditional")
    assert view_for(dept(2), open_, "work-reference", (), NOW).shape(PAYLOAD) == PAYLOAD


def test_a_grant_for_the_purpose_shows_its_items_in_clear_and_the_public_ones_masked() -> None:
    d = dept(2)
    view = view_for(d, CONDITIONAL, "administrative-basis", [grant(d, ("phone",))], NOW)
    assert view.kind == "granted" and view.grant is not None
    assert view.shape(PAYLOAD) == {
        "phone": "13812345678", "citizen_id": "320402********0011", "name": "欧***"
    }  # fmt: skip


def test_a_grant_naming_no_items_is_the_whole_resource() -> None:
    d = dept(2)
    view = view_for(d, CONDITIONAL, "administrative-basis", [grant(d)], NOW)
    assert view.shape(PAYLOAD) == PAYLOAD and not view.masked


@pytest.mark.parametrize(
    "g",
    [
        lambda d: grant(d, purpose="work-reference"),  # for another purpose
        lambda d: grant(d, expires=NOW - dt.timedelta(seconds=1)),  # expired
        lambda d: grant(d, revoked=True),
        lambda d: grant(dept(9)),  # another department's
    ],
)
def test_without_a_fitting_grant_the_public_view_masked(g: object) -> None:
    d = dept(2)
    view = view_for(d, CONDITIONAL, "administrative-basis", [g(d)], NOW)  # type: ignore[operator]
    assert view.kind == "public" and view.grant is None
    assert view.shape(PAYLOAD) == {"citizen_id": "320402********0011", "name": "欧***"}


def test_no_public_view_and_no_grant_is_no_rights_naming_the_granted_purposes() -> None:
    closed = dataclasses.replace(
        CONDITIONAL, items=tuple(dataclasses.replace(i, shareable_to_all=False) for i in ITEMS)
    )
    d = dept(2)
    held = dataclasses.replace(grant(d, purpose="work-reference"), resource=closed.code)
    with pytest.raises(LookupRefused) as info:
        view_for(d, closed, "administrative-basis", [held], NOW)
    assert info.value.code == "no-rights" and info.value.status == 403
    assert "work-reference" in info.value.message and "govbus request" in info.value.message


def test_not_shared_is_for_its_provider_only() -> None:
    none = dataclasses.replace(CONDITIONAL, share_type="none", legal_basis="《某法》第十条")
    with pytest.raises(LookupRefused, match="某法") as info:
        view_for(dept(2), none, "administrative-basis", [grant(dept(2))], NOW)
    assert info.value.code == "no-rights"
    assert view_for(dept(1, PROVIDER), none, "work-reference", (), NOW).kind == "full"
