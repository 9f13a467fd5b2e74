"""Federation's pure parts: the agreement state machine, the ACLs a flow needs on each side,
MirrorMaker 2's configuration, the catalog cascade's fold, and platform ids (no broker)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
import yaml
from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType

from govbus.catalog.store import department_dict, resource_dict
from govbus.catalog.yaml_io import SAMPLE_CATALOG_PATH, load_yaml
from govbus.federation import metrics as _federation_metrics  # declares the gauges
from govbus.federation.agreements import (
    Agreement,
    AgreementBook,
    AgreementError,
    offer,
)
from govbus.federation.cascade import CascadeError, district_of, fold
from govbus.federation.lag import TopicLag
from govbus.federation.mm2 import render, topics_regex
from govbus.federation.needs import flow_of, needs_of
from govbus.federation.runner import FlowRunner, _Running
from govbus.vocabulary.config import Settings
from govbus.vocabulary.errors import Conflict
from govbus.vocabulary.kafka import client_config, java_client_properties
from govbus.vocabulary.metrics import REGISTRY
from govbus.vocabulary.naming import Naming
from govbus.vocabulary.platforms import (
    Platform,
    PlatformError,
    check_id,
    platform_settings,
    root_settings,
    write_platform,
)

REPO = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
SPEC = load_yaml(SAMPLE_CATALOG_PATH)
NAMING = Naming()
CONDITIONAL = next(r for r in SPEC.resources if r.share_type == "conditional")
UNCONDITIONAL = next(r for r in SPEC.resources if r.share_type == "unconditional")
NOT_SHARED = next(r for r in SPEC.resources if r.share_type == "none")
CITY_DEPTS = [d.id for d in SPEC.departments]


def _offer(*codes: str, catalog: bool = False) -> Agreement:
    return offer(
        "tn-city-1",
        "tianning",
        "city",
        SPEC,
        codes,
        catalog=catalog,
        by="tn op",
        now=NOW,
        resource_topic=NAMING.resource_topic,
        catalog_topic=NAMING.catalog_topic,
    )


def _accepted(
    share_type: str = "conditional", consumers: tuple[str, ...] = ("cz-mzj",)
) -> Agreement:
    return _offer(CONDITIONAL.code, catalog=True).accept(
        "city", share_type, consumers, by="city op", now=NOW, known_departments=CITY_DEPTS
    )


# --- agreements ------------------------------------------------------------------------------


def test_an_offer_snapshots_the_resources_as_mirrored_entries() -> None:
    agreement = _offer(CONDITIONAL.code)
    assert agreement.state == "offered" and not agreement.active
    entry = agreement.resources[0]
    provider = next(d for d in SPEC.departments if d.code == CONDITIONAL.provider)
    assert (entry.code, entry.name, entry.provider, entry.provider_name) == (
        CONDITIONAL.code,
        CONDITIONAL.name,
        provider.id,
        provider.name,
    )
    assert entry.topic == NAMING.resource_topic(CONDITIONAL.code)


@pytest.mark.parametrize(
    ("codes", "message"),
    [
        ((NOT_SHARED.code,), "不予共享"),
        (("99999/nosuch",), "is not in tianning's catalog"),
        ((), "at least one resource"),
    ],
)
def test_an_offer_is_refused_for(codes: tuple[str, ...], message: str) -> None:
    with pytest.raises(AgreementError, match=message):
        _offer(*codes)


def test_a_platform_cannot_federate_with_itself() -> None:
    with pytest.raises(AgreementError, match="itself"):
        offer(
            "a1",
            "city",
            "city",
            SPEC,
            [UNCONDITIONAL.code],
            catalog=False,
            by="x",
            now=NOW,
            resource_topic=NAMING.resource_topic,
            catalog_topic="c",
        )


def test_only_the_receiving_platform_accepts_and_names_known_readers() -> None:
    offered = _offer(CONDITIONAL.code)
    with pytest.raises(AgreementError, match="only city can accept"):
        offered.accept("tianning", "conditional", ["cz-mzj"], "x", NOW, CITY_DEPTS)
    with pytest.raises(AgreementError, match="names the departments"):
        offered.accept("city", "conditional", [], "x", NOW, CITY_DEPTS)
    with pytest.raises(AgreementError, match="nosuch is not a department of city"):
        offered.accept("city", "conditional", ["nosuch"], "x", NOW, CITY_DEPTS)
    with pytest.raises(AgreementError, match="share type 'none'"):
        offered.accept("city", "none", [], "x", NOW, CITY_DEPTS)
    accepted = offered.accept("city", "conditional", ["cz-mzj", "cz-mzj"], "x", NOW, CITY_DEPTS)
    assert accepted.active and accepted.consumers == ("cz-mzj",)
    with pytest.raises(Conflict, match="only an offer"):
        accepted.accept("city", "conditional", ["cz-mzj"], "x", NOW, CITY_DEPTS)


def test_either_side_revokes_once_and_nobody_else() -> None:
    accepted = _accepted()
    with pytest.raises(AgreementError, match="only they can revoke"):
        accepted.revoke("wujin", "r", NOW)
    revoked = accepted.revoke("tianning", "withdrawn", NOW)
    assert revoked.state == "revoked" and revoked.revoked_by == "tianning" and not revoked.active
    with pytest.raises(Conflict, match="already revoked"):
        revoked.revoke("city", "again", NOW)


def test_the_book_keeps_one_document_per_agreement(tmp_path: Path) -> None:
    book = AgreementBook(tmp_path)
    path = book.add(_offer(CONDITIONAL.code, catalog=True))
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == 1 and data["source"] == "tianning" and data["catalog"] is True
    with pytest.raises(Conflict, match="exists already"):
        book.add(_offer(CONDITIONAL.code))
    book.save(_accepted())
    assert book.get("tn-city-1") == _accepted()
    assert [a.id for a in book.involving("city")] == ["tn-city-1"]
    assert book.involving("wujin") == []


# --- what a flow needs on each cluster ------------------------------------------------------


def _ops(acls: object, name: str) -> set[AclOperation]:
    return {a.operation for a in acls if a.resource_name == name}  # type: ignore[attr-defined]


def test_the_source_side_only_reads_the_offered_topics() -> None:
    needs = needs_of("tianning", [_accepted()], NAMING)
    user = NAMING.mirror_user("tianning", "city")
    assert set(needs.users) == {user}
    topic = NAMING.resource_topic(CONDITIONAL.code)
    ops = {AclOperation.READ, AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS}
    assert _ops(needs.acls, topic) == ops
    assert _ops(needs.acls, NAMING.catalog_topic) == ops  # the cascade
    assert not any(a.operation in (AclOperation.WRITE, AclOperation.CREATE) for a in needs.acls)
    assert all(a.principal == f"User:{user}" for a in needs.acls)
    assert needs.flows == []  # the flow runs on the receiving side


def test_the_target_side_writes_only_its_literal_copies_and_readers_are_its_own() -> None:
    needs = needs_of("city", [_accepted()], NAMING)
    user = NAMING.mirror_user("tianning", "city")
    copy = f"tianning.{NAMING.resource_topic(CONDITIONAL.code)}"
    topic_acls = [a for a in needs.acls if a.resource_type == ResourceType.TOPIC]
    assert all(a.pattern == ResourcePatternType.LITERAL for a in topic_acls)
    assert AclOperation.WRITE in _ops(needs.acls, copy)
    assert AclOperation.WRITE in _ops(needs.acls, "mm2-offsets.tianning.internal")
    readers = {
        a.principal
        for a in needs.acls
        if a.resource_name == copy and a.operation == AclOperation.READ
    }
    assert readers == {f"User:{user}", "User:cz-mzj"}
    # The catalog's copy is read by the cascade (the admin), nobody else.
    assert {a.principal for a in needs.acls if a.resource_name == "tianning.govbus.catalog"} == {
        f"User:{user}"
    }
    assert [f.topics for f in needs.flows] == [
        (NAMING.resource_topic(CONDITIONAL.code), NAMING.catalog_topic)
    ]
    assert all(reason.startswith("federation tn-city-1") for reason in needs.acls.values())


def test_unconditional_copies_are_read_by_every_department() -> None:
    needs = needs_of("city", [_accepted("unconditional", ())], NAMING)
    copy = f"tianning.{NAMING.resource_topic(CONDITIONAL.code)}"
    assert "User:*" in {a.principal for a in needs.acls if a.resource_name == copy}


def test_offered_revoked_and_unrelated_agreements_need_nothing() -> None:
    for agreement in (_offer(CONDITIONAL.code), _accepted().revoke("city", "r", NOW)):
        assert not needs_of("city", [agreement], NAMING).acls
        assert not needs_of("tianning", [agreement], NAMING).users
    assert not needs_of("wujin", [_accepted()], NAMING).acls


# --- MirrorMaker 2's configuration -----------------------------------------------------------


def test_the_mm2_properties_hold_no_secret_and_exactly_the_agreed_topics(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("a CA file: client_config only checks that it is there", encoding="utf-8")
    settings = Settings(security_protocol="SASL_SSL", ssl_ca_location=str(ca))
    flow = flow_of(_accepted(), NAMING)
    conf = client_config(settings, flow.user, "s3cret!", "127.0.0.1:1")
    props = render(flow, {**conf, "ssl.ca.location": "/ca.pem"}, conf, "/run/pw.properties")
    text = "".join(f"{k}={v}\n" for k, v in props.items())
    assert "s3cret!" not in text
    assert (
        'password="${file:/run/pw.properties:tianning.password}"'
        in props["tianning.sasl.jaas.config"]
    )
    assert props["tianning.security.protocol"] == "SASL_SSL"  # follows the client settings
    assert props["tianning.ssl.truststore.location"] == "/ca.pem"
    assert props["tianning->city.topics"] == topics_regex(flow.topics)
    assert props["tianning->city.topics"].startswith("gov\\\\.")  # a dot, escaped in the file
    assert props["city->tianning.enabled"] == "false"
    assert props["offset-syncs.topic.location"] == "target"
    assert props["sync.topic.acls.enabled"] == "false"
    assert props["tianning->city.groups"] == "cz\\\\-mzj\\\\..*"


def test_java_client_properties_keep_only_what_java_knows(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("a CA file: client_config only checks that it is there", encoding="utf-8")
    conf = client_config(Settings(ssl_ca_location=str(ca)), "u", "p", "127.0.0.1:9")
    props = java_client_properties(conf, "${x}")
    assert set(props) == {
        "bootstrap.servers",
        "security.protocol",
        "sasl.mechanism",
        "sasl.jaas.config",
        "ssl.truststore.type",
        "ssl.truststore.location",
    }
    assert 'username="u" password="${x}"' in props["sasl.jaas.config"]
    assert props["ssl.truststore.type"] == "PEM" and props["ssl.truststore.location"] == str(ca)


# --- the catalog cascade --------------------------------------------------------------------


def test_the_last_event_per_key_makes_the_catalog() -> None:
    district = SPEC.for_region("320402")
    resource = district.resources[0]
    events = [
        (f"department:{d.code}", {"op": "upsert", "department": department_dict(d)})
        for d in district.departments
    ]
    events += [
        (resource.code, {"op": "upsert", "resource": resource_dict(resource)}),
        (resource.code, {"op": "delete", "resource": resource_dict(resource)}),
    ]
    assert fold(events).resources == ()
    events.append((resource.code, {"op": "upsert", "resource": resource_dict(resource)}))
    spec = fold(events)
    assert [r.code for r in spec.resources] == [resource.code]
    assert district_of(spec, "tianning") == "320402"
    with pytest.raises(CascadeError, match="one district"):
        district_of(SPEC, "city")


# --- platforms ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["天宁区", "tian.ning", "Tianning", "-x", ""])
def test_a_platform_id_is_an_ascii_alias_without_dots(bad: str) -> None:
    with pytest.raises(PlatformError, match="platform id"):
        check_id(bad)


def test_a_platform_has_its_own_state_port_and_catalog(tmp_path: Path) -> None:
    root = Settings(state_dir=tmp_path, broker_port=1)
    write_platform(root, Platform("tianning", "天宁区", "district", 36900))
    settings = platform_settings(root, "tianning")
    assert settings.state_dir == tmp_path / "platforms" / "tianning"
    assert settings.broker_port == 36900 and settings.platform == "tianning"
    assert settings.resolved_catalog_dsn.endswith("platforms/tianning/catalog.db")
    assert root_settings(settings).state_dir == tmp_path
    with pytest.raises(PlatformError, match="no platform 'city'"):
        platform_settings(root, "city")
    with pytest.raises(PlatformError, match="level 'county'"):
        write_platform(root, Platform("wujin", "武进区", "county", 36920))


# --- the runner's stall rule and the alerts -------------------------------------------------


assert _federation_metrics.LAG_SECONDS is not None


def _running(flow_agreement: Agreement) -> _Running:
    flow = flow_of(flow_agreement, NAMING)
    return _Running(flow, process=None, config="", progress_at=0.0)  # type: ignore[arg-type]


def test_a_flow_is_stalled_only_when_records_wait_and_nothing_is_copied(tmp_path: Path) -> None:
    runner = FlowRunner(Settings(state_dir=tmp_path), stall_seconds=60)
    running = _running(_accepted())
    waiting = [TopicLag("gov.x", records=5, seconds=3.0, copied=100)]
    assert not runner._stalled(running, waiting)  # the first measurement sets the baseline
    running.progress_at -= 1e9  # long ago, as seen from time.monotonic()
    assert runner._stalled(running, waiting)  # still 100 copies, records waiting
    moved = [TopicLag("gov.x", records=5, seconds=3.0, copied=101)]
    assert not runner._stalled(running, moved)  # a new copy is progress
    running.progress_at -= 1e9
    idle = [TopicLag("gov.x", records=0, seconds=0.0, copied=101)]
    assert not runner._stalled(running, idle)  # nothing waiting: an idle flow is not stalled


def test_the_alert_rules_use_declared_federation_metrics() -> None:
    rules = yaml.safe_load((REPO / "monitoring" / "alerts" / "federation.yml").read_text("utf-8"))
    exprs = " ".join(r["expr"] for g in rules["groups"] for r in g["rules"])
    declared = {m.name for m in REGISTRY.collect()}
    used = set(re.findall(r"govbus_federation_[a-z_]+", exprs))
    assert used and all(
        name in declared or name.removesuffix("_total") in declared for name in used
    ), used
