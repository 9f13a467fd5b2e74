"""The main job: a live story of the exchange on a real broker, printed step by step.

Two departments get SCRAM users; a topic belongs to the first (WRITE and READ name only it).
The first publishes and reads back; the second is refused on both, as is a wrong password.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from govbus.broker import admin as kafka_admin
from govbus.catalog.outbox import OutboxRelay
from govbus.catalog.search import SearchIndex
from govbus.catalog.store import CatalogStore
from govbus.catalog.yaml_io import SAMPLE_CATALOG_PATH, load_yaml
from govbus.demo import agents as demo_agents
from govbus.demo import console as demo_console
from govbus.demo import exchange as demo_exchange
from govbus.demo import sharing as demo_sharing
from govbus.demo import streams as demo_streams
from govbus.demo import supervision as demo_supervision
from govbus.reconcile.plan import apply
from govbus.reconcile.planner import plan_for
from govbus.vocabulary import acls
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.config import Settings
from govbus.vocabulary.secrets import PasswordStore

Printer = Callable[[str], None]

PROVIDER = ("dept-demo-gaj", "市公安局")
OTHER = ("dept-demo-scjgj", "市市场监督管理局")
# Outside the reconciler's gov./dlq./govbus. namespaces: this topic is made by hand.
TOPIC = "demo.population-basic"


def _produce(settings: Settings, user: str, password: str, records: list[dict[str, str]]) -> int:
    """Produce and wait for every acknowledgement; raise on the first delivery error."""
    producer = kafka_clients.producer(settings, user, password)
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            errors.append(err)

    for rec in records:
        producer.produce(
            TOPIC,
            key=rec["id"].encode(),
            value=json.dumps(rec, ensure_ascii=False).encode(),
            on_delivery=on_delivery,
        )
    remaining = producer.flush(20)
    if errors:
        raise KafkaException(errors[0])
    if remaining:
        raise TimeoutError(f"{remaining} record(s) not acknowledged within 20 s")
    return len(records)


def _consume(
    settings: Settings, user: str, password: str, done: Callable[[list[dict[str, str]]], bool]
) -> list[dict[str, str]]:
    """Read the topic from the start in the department's own group until `done` says so.

    Raises the broker's error on refusal.
    """
    group = f"{user}.demo-{uuid.uuid4().hex[:8]}"
    consumer = kafka_clients.consumer(settings, user, password, group)
    try:
        consumer.subscribe([TOPIC])
        got: list[dict[str, str]] = []
        deadline = time.monotonic() + 30
        while not done(got) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            got.append(json.loads(msg.value() or b"{}"))
        if got:
            consumer.commit(asynchronous=False)
        return got
    finally:
        consumer.close()


def _expect_refusal(action: Callable[[], object]) -> str:
    try:
        action()
    except KafkaException as exc:
        err: KafkaError = exc.args[0]
        return f"{err.name()}: {err.str()}"
    raise AssertionError("the broker allowed what its ACLs forbid")


def catalog_story(settings: Settings, out: Printer = print) -> None:
    """Load the sample catalog of Changzhou and ask it who holds an item (article 17)."""

    store = CatalogStore.for_settings(settings)
    spec = load_yaml(SAMPLE_CATALOG_PATH)
    number = store.apply(spec, author="demo", reason="load the sample catalog of Changzhou")
    items = sum(len(r.items) for r in spec.resources)
    out(
        f"catalog: version {number} ({len(spec.departments)} departments, "
        f"{len(spec.resources)} resources, {items} info items; every sharing rule passes)"
    )
    query = "公民身份号码"
    out(f"catalog search {query!r} (article 17: who already holds it?):")
    for hit in SearchIndex.build(store.current()).search(query, limit=3):
        out(f"   {hit.resource_name} {hit.resource_code} — {hit.role}: {hit.department_name}")
        out(f"      {hit.how_to_get}")
    store.dispose()


def relay_catalog_events(settings: Settings, admin: AdminClient, out: Printer) -> None:
    """Every catalog change left through the outbox; publish what is pending."""

    store = CatalogStore.for_settings(settings)
    relay = OutboxRelay.for_settings(store, settings)
    try:
        relay.ensure_topic(admin)
        sent = relay.run_all()
    finally:
        relay.close()
        store.dispose()
    out(f"catalog events relayed to the compacted topic {relay.topic}: {sent} pending sent")


def reconcile_story(settings: Settings, out: Printer) -> None:
    """What the steps above did by hand, the reconciler derives from the catalog."""

    plan, admin = plan_for(settings)
    made = Counter(c.kind for c in plan.changes if c.action == "create")
    drift = [c for c in plan.changes if c.drift]
    out(
        f"8. reconciler plan from the catalog: create {made['topic']} topics, {made['user']} "
        f"SCRAM users, {made['acl']} ACL bindings; {len(drift)} drift change(s), e.g.:"
    )
    for change in drift[:3]:
        out(f"     {change.render()}")
    result = apply(plan, admin, PasswordStore(settings.state_dir))
    again, _ = plan_for(settings)
    out(
        f"9. applied {len(result.applied)} changes (hand-made users above removed as drift); "
        f"a second plan has {len(again.changes)} changes"
    )


def exchange_story(settings: Settings, out: Printer) -> None:
    with CatalogStore.opened(settings) as store:
        spec, version = store.current(), store.latest_number()
    demo_exchange.run(settings, spec, version, out)
    demo_sharing.run(settings, spec, version, out)
    demo_streams.run(settings, spec, version, out)


def agents_story(settings: Settings, out: Printer) -> None:
    """A department's front-end table to another's, through the front-end agents."""
    with CatalogStore.opened(settings) as store:
        spec, version = store.current(), store.latest_number()
    demo_agents.run(settings, spec, version, out)


def run(settings: Settings, out: Printer = print) -> None:
    catalog_story(settings, out)
    admin = kafka_clients.admin_client(settings)
    out(f"broker: {kafka_clients.bootstrap_of(settings)} (SASL/SCRAM-SHA-512, ACLs enforced)")
    relay_catalog_events(settings, admin, out)

    passwords = {}
    for user, name in (PROVIDER, OTHER):
        passwords[user] = secrets.token_urlsafe(16)
        kafka_admin.upsert_scram_user(admin, user, passwords[user])
        out(f"1. SCRAM user {user} ({name}) created")
    kafka_admin.create_topic(admin, TOPIC, partitions=3)
    provider = PROVIDER[0]
    bindings = acls.producer_acls(provider, TOPIC) + acls.consumer_acls(provider, TOPIC)
    kafka_admin.create_acls(admin, bindings)
    # Every department may use consumer groups under its own prefix, and only those.
    for user, _ in (PROVIDER, OTHER):
        kafka_admin.create_acls(admin, acls.group_prefix_acls(user, f"{user}."))
    out(f"2. topic {TOPIC}: ACLs name only {provider}:")
    for acl in dict.fromkeys(bindings):  # producing and consuming both need DESCRIBE
        out(f"     ALLOW {acl.principal} {acl.operation.name} on topic {acl.resource_name}")

    records = [
        {"id": f"demo-{i}", "name": n, "district": d}
        for i, (n, d) in enumerate([("张三", "天宁区"), ("李四", "钟楼区"), ("王五", "新北区")])
    ]
    # A unique run id lets the read-back find this run's records among earlier runs'.
    run_id = uuid.uuid4().hex[:8]
    for rec in records:
        rec["run"] = run_id
    sent = _produce(settings, provider, passwords[provider], records)
    out(f"3. {provider} published {sent} records, all acknowledged (acks=all, idempotent)")

    def this_run(got: list[dict[str, str]]) -> list[dict[str, str]]:
        return [r for r in got if r.get("run") == run_id]

    got = _consume(
        settings, provider, passwords[provider], lambda got: len(this_run(got)) >= len(records)
    )
    seen = this_run(got)
    out(f"4. {provider} read back {len(seen)} of them: {', '.join(r['name'] for r in seen)}")
    if {r["name"] for r in seen} != {r["name"] for r in records}:
        raise RuntimeError(f"read back {len(seen)} records, expected all {len(records)}")

    other = OTHER[0]
    refusal = _expect_refusal(lambda: _produce(settings, other, passwords[other], records[:1]))
    out(f"5. {other} tried to publish to {TOPIC}: refused ({refusal})")
    refusal = _expect_refusal(lambda: _consume(settings, other, passwords[other], bool))
    out(f"6. {other} tried to read {TOPIC}: refused ({refusal})")
    probe = kafka_clients.probe(kafka_clients.client_config(settings, provider, "wrong"))
    if not probe.authentication_failed:
        raise RuntimeError(f"a wrong password was not refused: {probe.errors}")
    reason = next(e for e in probe.errors if e.code() == KafkaError._AUTHENTICATION)
    out(f"7. {provider} with a wrong password: refused ({reason.name()}: {reason.str()})")
    out("done: one source writes, only granted departments read, the broker enforces both.")
    reconcile_story(settings, out)
    exchange_story(settings, out)
    demo_console.run(settings, out)
    with CatalogStore.opened(settings) as store:
        spec = store.current()
    demo_supervision.run(settings, spec, out)
    agents_story(settings, out)
    if not settings.bootstrap_servers:
        out("(the local broker keeps running; `govbus broker stop` stops it)")
