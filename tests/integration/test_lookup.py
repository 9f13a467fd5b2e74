"""The lookup service (联机查询) and batch download (部门批量下载) on the real broker.

One exchange for the module: a police department provides a conditional population resource
(two partitions) and a not-shared one; the human-resources department holds a grant for one
item, the civil-affairs department none (it sees the public view). Two service instances share
the partitions through their consumer group on 127.0.0.1, each forwarding the keys it does not
hold to the other; every query lands in the usage audit chain.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import dataclasses
import datetime as dt
import gc
import hashlib
import io
import json
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from confluent_kafka.admin import AdminClient

from govbus.broker import admin as kafka_admin
from govbus.cli.subscribe import _audit_verify
from govbus.lookup import request as req
from govbus.lookup.apikeys import issue_keys, read_key
from govbus.lookup.audit import AuditUnavailable, QueryAuditor
from govbus.lookup.download import DownloadError, download, manifest_path
from govbus.lookup.ratelimit import RateLimiter
from govbus.lookup.rights import View
from govbus.lookup.runner import instance
from govbus.lookup.service import Limits, LookupService
from govbus.reconcile.desired import add_lookup_service
from govbus.share.requests import ShareGrant
from govbus.subscribe.audit import AuditEvent, read_audit, verify_chain
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.config import Settings
from govbus.vocabulary.naming import LOOKUP
from govbus.vocabulary.partitioning import partition_of
from govbus.vocabulary.secrets import read_secret
from govbus.vocabulary.spec import CatalogSpec, InfoItem
from producers.publisher import Publisher
from stream_apps.projection.masking import mask_value
from tests.factories import person_resource
from tests.integration.fixtures import Exchange, citizen_id, create_audit_topic, eventually
from tests.prometheus_text import total

pytestmark = pytest.mark.kafka

PORTS = (35010, 35011)
N = 40
ITEMS = (
    InfoItem("公民身份号码", "citizen_id", "C", 18, required=True, shareable_to_all=True,
             mask="citizen-id"),
    InfoItem("姓名", "name", "C", 30, shareable_to_all=True, mask="name"),
    InfoItem("手机号码", "phone", "C", 11),
    InfoItem("住址", "address", "C", 100),
)  # fmt: skip
NOW = dt.datetime.now(dt.UTC)


class Running:
    """One service instance served by aiohttp in a thread of its own, on 127.0.0.1:port."""

    def __init__(self, service: LookupService, port: int) -> None:
        self.service, self.port = service, port
        self.url = f"http://127.0.0.1:{port}"
        self.loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self.thread.start()
        assert started.wait(30), f"instance on port {port} did not start"

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self._runner = web.AppRunner(self.service.app())
        self.loop.run_until_complete(self._runner.setup())
        self.loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        started.set()
        self.loop.run_forever()

    def stop(self) -> None:
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


@dataclasses.dataclass
class World:
    ex: Exchange
    settings: Settings
    instances: list[Running]
    keys: list[str]
    flagged: str
    api_keys: dict[str, str]
    grants: list[ShareGrant]

    def headers(self, label: str, **over: str) -> dict[str, str]:
        h = {
            "Authorization": f"Bearer {self.api_keys[label]}",
            req.PURPOSE_HEADER: "administrative-basis",
            req.CASE_HEADER: "CZ-2026-000042",
            req.END_USER_HEADER: urllib.parse.quote("李娜"),
        }
        h.update(over)
        return {k: v for k, v in h.items() if v != ""}

    @property
    def resource(self) -> str:
        return self.ex.spec.resources[0].code

    @property
    def closed(self) -> str:
        return self.ex.spec.resources[1].code


def record(n: int) -> dict[str, Any]:
    return {"citizen_id": citizen_id(n), "name": f"欧阳{n}", "phone": f"138{n:08d}",
            "address": f"常州市天宁区{n}号"}  # fmt: skip


@pytest.fixture(scope="module")
def world(
    admin: AdminClient, kafka_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    state = tmp_path_factory.mktemp("lookup") / "state"
    with Exchange(admin=admin, settings=kafka_settings, state_dir=state) as ex:
        prov, hr, civil, hammer = (
            ex.department(label, n)
            for n, label in enumerate(("prov", "hr", "civil", "hammer"), start=1)
        )
        conditional = person_resource(
            ITEMS, share_type="conditional", purposes=("administrative-basis",)
        )
        conditional = dataclasses.replace(conditional, provider=prov.code)
        closed = dataclasses.replace(
            conditional, code=conditional.code[:-1] + "2", share_type="none",
            legal_basis="《中华人民共和国保守国家秘密法》",
        )  # fmt: skip
        ex.spec = CatalogSpec((prov, hr, civil, hammer), (conditional, closed))
        grants = [
            ShareGrant(1, 1, hr.code, conditional.code, ("phone",), "administrative-basis",
                       NOW, "x", NOW + dt.timedelta(days=30), None, None, None, None)
        ]  # fmt: skip
        # The grant opens hr's grant view on the broker (its download reads it).
        desired = ex.desired([g.as_acl_grant() for g in grants], partitions=2)
        add_lookup_service(desired, ex.naming)
        ex.reconcile(desired)
        naming = ex.naming
        lookup_user = naming.app_user(LOOKUP)
        create_audit_topic(admin, naming.audit_topic, (lookup_user, prov.id, hr.id, civil.id))
        status = naming.status_topic(conditional.code)
        kafka_admin.create_topic(admin, status, partitions=2, config={"cleanup.policy": "compact"})
        publisher = Publisher(ex.session(prov.id, catalog_version=7))
        report = publisher.publish(conditional.code, [record(n) for n in range(N)])
        publisher.close()
        assert report.delivered == N and not report.dead_lettered, report
        keys = [citizen_id(n) for n in range(N)]
        flagged = keys[3]
        admin_producer = kafka_clients.producer(
            kafka_settings, kafka_settings.admin_username,
            kafka_clients.admin_password_of(kafka_settings),
        )  # fmt: skip
        assert kafka_clients.produce_and_wait(
            admin_producer, status, flagged.encode(), b'{"under_verification": true}'
        ) is None  # fmt: skip
        settings = dataclasses.replace(
            kafka_settings,
            namespace=naming.prefix,
            state_dir=state,
            admin_password=kafka_clients.admin_password_of(kafka_settings),
        )
        issue_keys(state, [d.id for d in ex.spec.departments])
        api_keys = {
            label: read_key(state, ex.id(label)) or ""
            for label in ("prov", "hr", "civil", "hammer")
        }
        running: list[Running] = []
        with contextlib.ExitStack() as stack:
            for n, port in enumerate(PORTS):
                service = stack.enter_context(
                    instance(
                        settings, name=f"i{n}", advertised=f"127.0.0.1:{port}",
                        limits=Limits(rate=20, burst=30), spec=ex.spec, grants=lambda: grants,
                    )
                )  # fmt: skip
                running.append(Running(service, port))
            try:
                w = World(ex, settings, running, keys, flagged, api_keys, grants)
                eventually(lambda: _settled(w), "both instances loaded, partitions split")
                yield w
            finally:
                for r in running:
                    r.stop()


def _settled(w: World) -> bool:
    held = []
    for r in w.instances:
        resp = httpx.get(f"{r.url}/health", timeout=10)
        if resp.status_code != 200:
            return False
        held.append({a for a in resp.json()["assigned"] if a.split(":")[0].endswith(
            w.ex.naming.resource_topic(w.resource))})  # fmt: skip
    return all(held) and not (held[0] & held[1])


def test_keys_are_where_the_broker_put_them(world: World) -> None:
    topic = world.ex.naming.resource_topic(world.resource)
    messages = world.ex.messages(world.ex.id("prov"), topic, N)
    assert len(messages) == N
    for msg in messages:
        assert msg.partition() == partition_of(msg.key().decode(), 2)


def test_each_instance_answers_every_key_holding_only_some(world: World) -> None:
    """A key whose partition the other instance holds is answered all the same (forwarded)."""
    answers = []
    for r in world.instances:
        resp = httpx.post(
            f"{r.url}/v1/resources/{world.resource}/lookup",
            json={"keys": world.keys}, headers=world.headers("prov"), timeout=30,
        )  # fmt: skip
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["view"] == "full" and body["missing"] == []
        answers.append([(x["key"], x["data"], x["provenance"]) for x in body["records"]])
        assert [x["key"] for x in body["records"]] == world.keys
        assert [x["data"] for x in body["records"]] == [record(n) for n in range(N)]
    assert answers[0] == answers[1]
    partitions = {p["partition"] for _, _, p in answers[0]}
    assert partitions == {0, 1}  # both instances' keys were asked of both


def test_answers_hold_only_the_items_the_department_may_see(world: World) -> None:
    key = world.keys[5]
    url = f"{world.instances[0].url}/v1/resources/{world.resource}/records/{key}"
    hr = httpx.get(url, headers=world.headers("hr"), timeout=30).json()
    masked_id = mask_value("citizen-id", key)
    assert hr["view"] == "granted"
    assert hr["data"] == {"phone": "13800000005", "citizen_id": masked_id, "name": "欧**"}
    civil = httpx.get(url, headers=world.headers("civil"), timeout=30).json()
    assert civil["view"] == "public" and civil["data"] == {"citizen_id": masked_id, "name": "欧**"}
    # A grant is for its purpose: another purpose gets the public view.
    other = httpx.get(url, headers=world.headers("hr", **{req.PURPOSE_HEADER: "work-reference"}))
    assert other.json()["view"] == "public"
    prov = httpx.get(url, headers=world.headers("prov"), timeout=30).json()
    assert prov["data"] == record(5)
    assert prov["provenance"]["provider"] == world.ex.dept("prov").code
    assert prov["provenance"]["catalog_version"] == 7
    assert dt.datetime.fromisoformat(prov["provenance"]["event_time"]) <= dt.datetime.now(CHINA_TZ)
    assert prov["under_verification"] is False
    flagged = httpx.get(
        f"{world.instances[1].url}/v1/resources/{world.resource}/records/{world.flagged}",
        headers=world.headers("hr"), timeout=30,
    )  # fmt: skip
    assert flagged.json()["under_verification"] is True


def _wrong_check_digit(key: str) -> str:
    return key[:-1] + ("0" if key[-1] != "0" else "1")


@pytest.mark.parametrize(
    ("who", "path", "over", "status", "code"),
    [
        (None, "records/{key}", {}, 401, "unauthenticated"),
        ("bad", "records/{key}", {}, 401, "unauthenticated"),
        ("hr", "records/{key}", {req.CASE_HEADER: ""}, 400, "missing-header"),
        ("hr", "records/{key}", {req.PURPOSE_HEADER: "curiosity"}, 400, "bad-header"),
        ("hr", "records/{bad_key}", {}, 400, "malformed-key"),
        ("hr", "records/12345", {}, 400, "malformed-key"),
        ("hr", "records/{missing}", {}, 404, "not-found"),
        ("civil", "CLOSED/records/{key}", {}, 403, "no-rights"),
        ("hr", "UNKNOWN/records/{key}", {}, 404, "unknown-resource"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_code(
    world: World, who: str | None, path: str, over: dict[str, str], status: int, code: str
) -> None:
    headers = world.headers("hr", **over)
    if who is None:
        headers.pop("Authorization")
    elif who == "bad":
        headers["Authorization"] = "Bearer not-a-key"
    else:
        headers = world.headers(who, **over)
    resource = world.resource
    if path.startswith("CLOSED/"):
        resource, path = world.closed, path.removeprefix("CLOSED/")
    if path.startswith("UNKNOWN/"):
        resource, path = "10101/nope", path.removeprefix("UNKNOWN/")
    path = path.format(key=world.keys[0], bad_key=_wrong_check_digit(world.keys[0]),
                       missing=citizen_id(999))  # fmt: skip
    url = f"{world.instances[0].url}/v1/resources/{urllib.parse.quote(resource, safe='/')}/{path}"
    resp = httpx.get(url, headers=headers, timeout=30)
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == code and error["message"]


def test_bad_batches_and_routes(world: World) -> None:
    url = f"{world.instances[1].url}/v1/resources/{world.resource}/lookup"
    big = httpx.post(url, json={"keys": world.keys * 3}, headers=world.headers("civil"))
    assert (big.status_code, big.json()["error"]["code"]) == (413, "batch-too-large")
    bad = httpx.post(url, content=b"{keys", headers=world.headers("civil"))
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "bad-body")
    nowhere = httpx.get(f"{world.instances[1].url}/v2/x", headers=world.headers("civil"))
    assert (nowhere.status_code, nowhere.json()["error"]["code"]) == (404, "unknown-route")
    internal = httpx.post(
        f"{world.instances[1].url}/internal/v1/resources/{world.resource}/fetch",
        json={"keys": world.keys[:2]}, headers=world.headers("civil"),
    )  # fmt: skip
    assert internal.status_code == 401  # a department cannot read unfiltered records


def test_a_department_above_its_rate_is_refused_with_retry_after(world: World) -> None:
    """The limit of instance i0 set to a burst of 3 and (practically) no refill: the 4th
    request of a department is refused, another department is not affected."""
    service = world.instances[0].service
    kept = service.limiter
    service.limiter = RateLimiter(rate=0.01, burst=3)
    try:
        url = f"{world.instances[0].url}/v1/resources/{world.resource}/records/{world.keys[2]}"
        statuses = [httpx.get(url, headers=world.headers("hammer")).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = httpx.get(url, headers=world.headers("hammer"))
        assert refused.json()["error"]["code"] == "rate-limited"
        assert int(refused.headers["Retry-After"]) >= 60
        assert httpx.get(url, headers=world.headers("prov")).status_code == 200
    finally:
        service.limiter = kept


def test_every_query_is_in_the_audit_chain_with_the_key_hashed(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    key = world.keys[7]
    url = f"{world.instances[1].url}/v1/resources/{world.resource}/records/{key}"
    resp = httpx.get(url, headers=world.headers("hr", **{req.CASE_HEADER: "CASE-AUDIT-1"}))
    assert resp.status_code == 200
    event_hash = resp.json()["audit"]["event_hash"]
    hr = world.ex.id("hr")
    events = read_audit(world.settings, hr, world.ex.naming)
    assert verify_chain(events) == []
    mine = [e for _, e in events if e.hash == event_hash]
    assert len(mine) == 1
    event = mine[0]
    assert event.chain == "lookup:i1" and event.purpose == "administrative-basis"
    assert event.query is not None and event.query["case_number"] == "CASE-AUDIT-1"
    assert event.query["end_user"] == "李娜" and event.query["items"] == [
        "phone", "citizen_id", "name"
    ]  # fmt: skip
    assert event.grant is not None and event.record_count == 1
    assert key not in event.to_json().decode() and len(event.query["keys_hmac_sha256"]) == 1
    # Refused queries are not data handed out; only answered ones are audited.
    _audit_verify(argparse.Namespace(department=hr, queries=True), world.settings)
    out = capsys.readouterr().out
    assert f"OK {hr}:" in out and "case CASE-AUDIT-1 end user 李娜" in out


def lookup_auditor(world: World, topic: str, instance: str) -> QueryAuditor:
    """A QueryAuditor of instance ``instance`` writing to ``topic`` as the lookup service's
    user, as `govbus lookup serve` makes it (secret "secret")."""
    lookup_user = world.ex.naming.app_user(LOOKUP)
    password = read_secret(world.settings.state_dir, lookup_user, "apps")
    assert password is not None
    return QueryAuditor(
        kafka_clients.producer(world.settings, lookup_user, password),
        kafka_clients.consumer(world.settings, lookup_user, password, lookup_user),
        topic, instance, "secret",
    )  # fmt: skip


def test_an_audit_event_is_awaited_until_acknowledged_and_a_refused_one_fails_the_query(
    world: World,
) -> None:
    """Each event returns once acknowledged, linked to the one before (also after an idle
    pause), and one the broker refuses (a topic the service may not write) raises instead of
    answering."""

    context = req.QueryContext("administrative-basis", "CASE-ACK-1", "李娜")
    view = View("full", ("citizen_id",))
    prov = world.ex.id("prov")

    async def two_with_a_pause(a: QueryAuditor) -> tuple[AuditEvent, AuditEvent]:
        first = await a.record(
            prov, world.resource, context, ["k1"], [], view, dt.datetime.now(CHINA_TZ)
        )
        await asyncio.sleep(0.3)  # nothing in flight for a while
        second = await a.record(
            prov, world.resource, context, ["k2"], [], view, dt.datetime.now(CHINA_TZ)
        )
        return first, second

    written = lookup_auditor(world, world.ex.naming.audit_topic, "probe")
    try:
        first, second = asyncio.run(asyncio.wait_for(two_with_a_pause(written), 30))
    finally:
        written.close()
    assert second.prev_hash == first.hash
    stored = {e.hash for _, e in read_audit(world.settings, prov, world.ex.naming)}
    assert {first.hash, second.hash} <= stored

    read_only = world.ex.naming.resource_topic(world.resource)  # the service may only read it
    refused = lookup_auditor(world, read_only, "probe")
    try:
        with pytest.raises(AuditUnavailable, match=r"not written to .*the query is not answered"):
            asyncio.run(asyncio.wait_for(refused.record(
                prov, world.resource, context, ["k3"], [], view, dt.datetime.now(CHINA_TZ)
            ), 60))  # fmt: skip
    finally:
        refused.close()


def test_first_queries_of_several_departments_at_once_continue_each_chain(
    world: World,
) -> None:
    """A restarted instance continues each department's chain (its head read at the
    department's first query, in the partition its key is in), also when several departments'
    first queries come at once: each new event links to its department's last."""
    departments = [world.ex.id(label) for label in ("prov", "hr", "civil", "hammer")]
    context = req.QueryContext("administrative-basis", "CASE-RACE-1", "李娜")
    view = View("full", ("citizen_id",))

    async def one_each(a: QueryAuditor) -> list[AuditEvent]:
        now = dt.datetime.now(CHINA_TZ)
        return list(await asyncio.gather(*(
            a.record(d, world.resource, context, ["k"], [], view, now) for d in departments
        )))  # fmt: skip

    heads: list[AuditEvent] = []
    for _ in range(3):  # each round a restarted instance
        a = lookup_auditor(world, world.ex.naming.audit_topic, "race")
        try:
            events = asyncio.run(asyncio.wait_for(one_each(a), 60))
        finally:
            a.close()
        if heads:
            assert [e.prev_hash for e in events] == [h.hash for h in heads]
        heads = events


def test_download_is_a_snapshot_with_manifest_and_audit(world: World, tmp_path: Path) -> None:
    prov = world.ex.id("prov")
    session = world.ex.session(prov, catalog_version=7)
    out = tmp_path / "people.csv"
    manifest = download(session, world.resource, "administrative-basis", world.grants, out)
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: Excel on a Chinese Windows
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == N == manifest.row_count
    items = [i.code for i in world.ex.spec.resources[0].items]
    assert list(rows[0]) == ["key", *items, "provider", "catalog_version", "event_time"]
    by_key = {r["key"]: r for r in rows}
    assert by_key[world.keys[2]]["phone"] == "13800000002"
    assert manifest.sha256 == hashlib.sha256(raw).hexdigest()
    saved = json.loads(manifest_path(out).read_text(encoding="utf-8"))
    assert saved["sha256"] == manifest.sha256 and saved["row_count"] == N
    # Where the time went is said, not written to the manifest.
    assert list(manifest.phases) == ["read", "chain head", "write", "sha256", "audit"]
    assert sum(manifest.phases.values()) <= manifest.seconds and "phases" not in saved
    assert sum(o["to"] for o in saved["offsets"].values()) == N  # the stated offsets
    events = read_audit(world.settings, prov, world.ex.naming)
    assert verify_chain(events) == []
    last = [e for _, e in events if e.hash == manifest.audit_event_hash]
    assert last and last[0].query is not None and last[0].query["file_sha256"] == manifest.sha256
    assert last[0].chain is None and last[0].record_count == N


def test_download_under_a_grant_for_part_of_the_items_reads_its_grant_view(
    world: World, tmp_path: Path
) -> None:
    # hr's grant names one item: the broker lets it read only the grant view (the projector,
    # tested in test_projection.py, fills it), never the full topic; the file has that item.
    hr = world.ex.id("hr")
    out = tmp_path / "granted.csv"
    manifest = download(
        world.ex.session(hr, catalog_version=7), world.resource, "administrative-basis",
        world.grants, out,
    )  # fmt: skip
    assert manifest.topic == world.ex.naming.grant_view_topic(world.resource, ("phone",))
    assert manifest.view == "granted" and manifest.items == ("phone",)
    header = out.read_bytes().decode("utf-8-sig").splitlines()[0]
    assert header == "key,phone,provider,catalog_version,event_time"


def test_download_after_changes_has_the_newest_values_and_no_deleted_keys(
    world: World, tmp_path: Path
) -> None:
    prov = world.ex.id("prov")
    publisher = Publisher(world.ex.session(prov, catalog_version=7))
    publisher.publish(world.resource, [{**record(0), "name": "欧阳新"}])
    publisher.delete(world.resource, [{"citizen_id": world.keys[1]}])
    publisher.close()
    session = world.ex.session(prov, catalog_version=7)
    out = tmp_path / "p.csv"
    manifest = download(
        session, world.resource, "work-reference", [], out, fmt="csv", encoding="gb18030"
    )
    rows = list(csv.DictReader(io.StringIO(out.read_bytes().decode("gb18030"))))
    by_key = {r["key"]: r for r in rows}
    assert manifest.row_count == N - 1 and world.keys[1] not in by_key
    assert by_key[world.keys[0]]["name"] == "欧阳新" and by_key[world.keys[0]]["phone"]
    parquet = download(session, world.resource, "work-reference", [], tmp_path / "p.parquet",
                       fmt="parquet")  # fmt: skip
    assert parquet.row_count == N - 1 and parquet.offsets == manifest.offsets


def test_download_refuses_a_resource_the_department_may_not_see(
    world: World, tmp_path: Path
) -> None:
    session = world.ex.session(world.ex.id("civil"))
    with pytest.raises(DownloadError, match="不予共享"):
        download(session, world.closed, "work-reference", [], tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


def test_load_on_localhost_bounded_in_count_and_time(world: World) -> None:
    """400 lookups, 16 in flight, over both instances on 127.0.0.1, within 180 s: every one
    answered (200) or refused by the rate limit (429), never an error; each answer audited."""
    civil = world.ex.id("civil")
    headers = world.headers("civil", **{req.CASE_HEADER: "LOAD-TEST"})
    total, in_flight = 400, 16
    statuses: list[int] = []

    async def run() -> None:
        sem = asyncio.Semaphore(in_flight)
        async with httpx.AsyncClient(timeout=30) as client:

            async def one(i: int) -> None:
                r = world.instances[i % 2]
                key = world.keys[2 + i % (N - 2)]  # keys[1] was deleted by a download test
                async with sem:
                    resp = await client.get(
                        f"{r.url}/v1/resources/{world.resource}/records/{key}", headers=headers
                    )
                statuses.append(resp.status_code)

            await asyncio.gather(*(one(i) for i in range(total)))

    asyncio.run(asyncio.wait_for(run(), timeout=180))
    assert len(statuses) == total and set(statuses) <= {200, 429}, set(statuses)
    answered = statuses.count(200)
    assert answered >= 30  # at least the burst of one instance's limiter
    events = read_audit(world.settings, civil, world.ex.naming)
    assert verify_chain(events) == []
    load = [e for _, e in events if e.query and e.query.get("case_number") == "LOAD-TEST"]
    assert len(load) == answered
    assert {e.chain for e in load} == {"lookup:i0", "lookup:i1"}


def test_health_metrics_and_openapi(world: World) -> None:
    base = world.instances[0].url
    health = httpx.get(f"{base}/health").json()
    assert health["status"] == "ready" and health["instance"] == "i0" and health["records"] > 0
    # The loaded store was taken out of the collector's generations (runner.settle_collector;
    # nothing else in this process freezes).
    assert gc.get_freeze_count() > 0

    def audit_acks() -> float:
        return total(httpx.get(f"{base}/metrics").text, "govbus_lookup_audit_seconds_count")

    before = audit_acks()
    url = f"{base}/v1/resources/{world.resource}/records/{world.keys[0]}"
    assert httpx.get(url, headers=world.headers("prov")).status_code == 200
    assert audit_acks() == before + 1  # the lookup waited for one acknowledged audit event
    metrics_text = httpx.get(f"{base}/metrics").text
    assert 'govbus_lookup_requests_total{department="' in metrics_text
    assert "govbus_lookup_seconds_bucket" in metrics_text
    spec = httpx.get(f"{base}/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert "/v1/resources/{code}/lookup" in spec["paths"]
    codes = spec["paths"]["/v1/resources/{code}/lookup"]["post"]["responses"]["400"]
    assert "malformed-key" in codes["description"]
