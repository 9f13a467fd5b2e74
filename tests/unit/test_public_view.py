"""Public view schemas (stream_apps.projection.views) and the projector's record logic, no Kafka."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal

import pytest

from govbus.catalog.yaml_io import SAMPLE_CATALOG_PATH, load_yaml
from govbus.vocabulary import wire
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.grants import Grant
from govbus.vocabulary.naming import NAMING
from govbus.vocabulary.spec import CatalogSpec, InfoItem, ResourceKey
from stream_apps.projection import app as projection
from stream_apps.projection.views import (
    ViewError,
    grant_view_resource,
    grant_view_schema_catalog,
    has_public_view,
    key_is_public,
    public_view_resource,
    view_schema_catalog,
)
from tests.factories import person_resource

ITEMS = (
    InfoItem("公民身份号码", "citizen_id", "C", 18, required=True, shareable_to_all=True,
             mask="citizen-id"),
    InfoItem("就业状态", "status", "C", 20, shareable_to_all=True),
    InfoItem("补贴金额", "subsidy", "Y", shareable_to_all=True, mask="all"),
    InfoItem("收入", "income", "Y"),
)  # fmt: skip
RESOURCE = person_resource(ITEMS, share_type="conditional", purposes=("administrative-basis",))
SPEC = CatalogSpec((), (RESOURCE,))


def test_view_has_the_shareable_items_with_masked_ones_as_text() -> None:
    view = public_view_resource(RESOURCE)
    assert [i.code for i in view.items] == ["citizen_id", "status", "subsidy"]
    by_code = {i.code: i for i in view.items}
    assert by_code["citizen_id"].data_type == "C" and by_code["citizen_id"].required
    assert by_code["subsidy"].data_type == "C"  # money masked to text
    assert by_code["status"] == dataclasses.replace(ITEMS[1])
    assert (view.code, view.provider) == (RESOURCE.code, RESOURCE.provider)
    # A different schema from the full resource's: a reader never confuses them.
    assert wire.fingerprint(view) != wire.fingerprint(RESOURCE)


def test_only_conditional_resources_with_shareable_items_have_views() -> None:
    assert has_public_view(RESOURCE)
    with pytest.raises(ViewError, match="only conditional"):
        public_view_resource(dataclasses.replace(RESOURCE, share_type="unconditional"))
    nothing = dataclasses.replace(
        RESOURCE, items=tuple(dataclasses.replace(i, shareable_to_all=False) for i in ITEMS)
    )
    with pytest.raises(ViewError, match="shareable_to_all"):
        public_view_resource(nothing)


def test_the_sample_catalog_has_masked_public_views() -> None:
    spec = load_yaml(SAMPLE_CATALOG_PATH)
    viewed = [r for r in spec.resources if has_public_view(r)]
    assert viewed
    masks = {i.mask for r in viewed for i in r.items if i.shareable_to_all}
    assert {"citizen-id", "name"} <= masks
    needs = projection.needs(spec)
    views = {NAMING.public_view_topic(r.code) for r in viewed}
    # Its views, and the quarantine for records it cannot use.
    assert set(needs.writes) == views | {NAMING.quarantine_topic}
    assert set(needs.reads) == {NAMING.resource_topic(r.code) for r in viewed}
    # Every view is readable by every department (User:*), and by nobody else's grant.
    assert {a.resource_name for a in needs.acls if a.principal == "User:*"} == views


def test_key_is_public_only_when_every_key_item_is_shown_unmasked() -> None:
    assert not key_is_public(RESOURCE)  # citizen id is masked
    plain = dataclasses.replace(RESOURCE, key=ResourceKey(("status",), "other", "状态"))
    assert key_is_public(plain)


def _record(payload: dict[str, object] | None, op: str = "UPSERT") -> bytes:
    return wire.encode_single_object(
        RESOURCE,
        {
            "provider": RESOURCE.provider,
            "resource_code": RESOURCE.code,
            "catalog_version": 4,
            "op": op,
            "event_time": dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=CHINA_TZ),
            "trace_id": "t-1",
            "payload": payload,
        },
    )


def test_projector_masks_drops_and_keeps_the_envelope() -> None:
    projector = projection.Projector(SPEC, b"secret")
    source = NAMING.resource_topic(RESOURCE.code)
    key = b"32040219900101123X"
    [out] = projector.project(
        source,
        key,
        _record({"citizen_id": "32040219900101123X", "status": "创业",
                 "subsidy": decimal.Decimal("12.50"), "income": decimal.Decimal("99.00")}),
    )  # fmt: skip
    assert out.topic == NAMING.public_view_topic(RESOURCE.code)
    decoded = wire.decode_single_object(out.value or b"", view_schema_catalog(SPEC))
    assert decoded["payload"] == {
        "citizen_id": "320402********123X",
        "status": "创业",
        "subsidy": "***",
    }
    assert (decoded["provider"], decoded["catalog_version"], decoded["trace_id"]) == (
        RESOURCE.provider,
        4,
        "t-1",
    )
    assert decoded["event_time"] == dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=CHINA_TZ)
    assert (projection.HEADER_VIEW, b"public") in out.headers
    # The key is a keyed pseudonym: stable, the same for the delete, not the id.
    assert out.key and key not in out.key
    [delete] = projector.project(source, key, None)
    assert delete.key == out.key and delete.value is None
    assert projection.Projector(SPEC, b"other").project(source, key, None)[0].key != out.key


def test_projector_refuses_a_record_of_an_unknown_schema_by_fingerprint() -> None:
    newer = dataclasses.replace(RESOURCE, items=(*ITEMS, InfoItem("新项", "extra", "C")))
    value = wire.encode_single_object(
        newer,
        {
            "provider": RESOURCE.provider,
            "resource_code": RESOURCE.code,
            "catalog_version": 5,
            "op": "UPSERT",
            "event_time": dt.datetime(2025, 1, 2, tzinfo=CHINA_TZ),
            "trace_id": "t",
            "payload": {"citizen_id": "32040219900101123X"},
        },
    )
    with pytest.raises(KeyError, match=wire.fingerprint(newer).hex()):
        projection.Projector(SPEC, b"s").project(NAMING.resource_topic(RESOURCE.code), b"k", value)


def test_any_registered_department_may_read_a_view_without_grant_for_any_purpose() -> None:
    from govbus.subscribe.consumer import SubscribeError, check_view_subscription
    from tests.integration.fixtures import Namespace

    reader = Namespace("x").department("mzj", 2)
    spec = CatalogSpec((reader,), (RESOURCE,))
    dept, view = check_view_subscription(spec, reader.id, RESOURCE.code, "work-reference", "public")
    assert dept == reader and view == public_view_resource(RESOURCE)
    with pytest.raises(SubscribeError, match="not registered"):
        check_view_subscription(spec, "nobody", RESOURCE.code, "work-reference", "public")
    with pytest.raises(SubscribeError, match="known views: public"):
        check_view_subscription(spec, reader.id, RESOURCE.code, "work-reference", "secret")
    unconditional = CatalogSpec(
        (reader,), (dataclasses.replace(RESOURCE, share_type="unconditional"),)
    )
    with pytest.raises(SubscribeError, match="subscribe to the resource itself"):
        check_view_subscription(unconditional, reader.id, RESOURCE.code, "work-reference", "public")


def test_grant_views_carry_exactly_the_granted_items_in_clear_one_per_item_set() -> None:
    grants = [
        Grant("A", RESOURCE.code, items=("income", "status")),
        Grant("B", RESOURCE.code, items=("status", "income")),  # the same set
        Grant("C", RESOURCE.code, items=("citizen_id", "income")),
        Grant("D", RESOURCE.code),  # the whole resource: read from the full topic
    ]
    projector = projection.Projector(SPEC, b"secret", grants=grants)
    source = NAMING.resource_topic(RESOURCE.code)
    key = b"32040219900101123X"
    payload = {"citizen_id": "32040219900101123X", "status": "创业",
               "subsidy": decimal.Decimal("12.50"), "income": decimal.Decimal("99.00")}  # fmt: skip
    outs = {o.topic: o for o in projector.project(source, key, _record(payload))}
    no_key = NAMING.grant_view_topic(RESOURCE.code, ("status", "income"))
    with_key = NAMING.grant_view_topic(RESOURCE.code, ("citizen_id", "income"))
    assert set(outs) == {NAMING.public_view_topic(RESOURCE.code), no_key, with_key}
    decoded = wire.decode_single_object(
        outs[no_key].value or b"",
        grant_view_schema_catalog(SPEC, RESOURCE.code, ("status", "income")),
    )
    # Catalog order, unmasked, nothing else.
    assert decoded["payload"] == {"status": "创业", "income": decimal.Decimal("99.00")}
    assert (projection.HEADER_VIEW, b"grant") in outs[no_key].headers
    # The key shows the citizen id only where the grant covers it.
    assert outs[with_key].key == key
    assert outs[no_key].key == outs[NAMING.public_view_topic(RESOURCE.code)].key != key
    with pytest.raises(ViewError, match="nope"):
        grant_view_resource(RESOURCE, ("nope",))
