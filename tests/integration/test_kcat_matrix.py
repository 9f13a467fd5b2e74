"""A client that is not ours against the broker's rules (issue 11, deliverable 8): Debian's kcat
(scripts/kcat.sh) over TLS, as every department, on every resource topic and projection, for
read, write and consumer-group join. The expected outcome of each cell comes from the measures'
rules and the grants (``expected``), not from the ACLs; zero unexpected outcomes.

The catalog: 人社局 (P) provides an unconditional (U), a conditional (C, with a public view V
and items shareable with everyone) and a not-shared (N) resource; 民政局 (G) holds a grant for
two of C's items (its grant view I), 教育局 (F) a grant for all of C, 公安局 (X) nothing.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.grants import Grant
from govbus.vocabulary.spec import CatalogSpec, InfoItem, Resource
from stream_apps.projection import app as projection
from stream_apps.registry import AppContext
from tests.conftest import REPO
from tests.factories import person_resource
from tests.integration.fixtures import Exchange, produce_one

pytestmark = pytest.mark.kafka

KCAT = REPO / "scripts" / "kcat.sh"
ITEMS = (
    InfoItem("公民身份号码", "citizen_id", "C", 18, required=True, shareable_to_all=True,
             mask="citizen-id"),
    InfoItem("就业状态", "status", "C", 20, shareable_to_all=True),
    InfoItem("补贴金额", "subsidy", "Y"),
)  # fmt: skip
GRANTED_ITEMS = ("citizen_id", "subsidy")
DEPTS = ("P", "G", "F", "X")
TOPICS = ("U", "C", "N", "V", "I")
OPS = ("read", "write", "group")


def expected(dept: str, topic: str, op: str) -> bool:
    """What the measures allow, cell by cell (not read off the ACLs)."""
    if op == "write":
        # One data, one source: only the provider writes its resources; views are the
        # projector's alone.
        return dept == "P" and topic in ("U", "C", "N")
    readable = {
        "U": set(DEPTS),  # 无条件共享: every department
        "C": {"P", "F"},  # 有条件共享: the provider and the grant for every item
        "N": {"P"},  # 不予共享: the provider only
        "V": set(DEPTS),  # article 10 public view: everyone
        "I": {"G"},  # the grant view of G's item set: G only (not even the provider)
    }[topic]
    return dept in readable  # "group": joining its own group and consuming the topic


def _resource(provider: str, share: str, front: str, n: int, **kw: object) -> Resource:
    return person_resource(ITEMS, code=f"{front}/{provider}-{n:06d}", provider=provider,
                           share_type=share, publish_date=dt.date(2024, 1, 1), **kw)  # fmt: skip


@pytest.fixture
def world(exchange: Exchange) -> tuple[Exchange, dict[str, str], dict[str, str]]:
    depts = {label: exchange.department(label.lower(), n) for n, label in enumerate(DEPTS, 1)}
    p = depts["P"].code
    u = _resource(p, "unconditional", "10101", 1)
    c = _resource(p, "conditional", "20101", 2, share_conditions="办理业务时",
                  purposes=("administrative-basis",))  # fmt: skip
    n = _resource(p, "none", "30101", 3, legal_basis="《测试法》第一条")
    exchange.spec = CatalogSpec(tuple(depts.values()), (u, c, n))
    grants = [
        Grant(depts["G"].code, c.code, items=GRANTED_ITEMS, purpose="administrative-basis"),
        Grant(depts["F"].code, c.code, purpose="administrative-basis"),
    ]
    app = projection.needs(exchange.spec, AppContext(exchange.naming, 1, tuple(grants)))
    exchange.reconcile(exchange.desired(grants, stream_apps=[app]))
    naming = exchange.naming
    topics = {
        "U": naming.resource_topic(u.code), "C": naming.resource_topic(c.code),
        "N": naming.resource_topic(n.code), "V": naming.public_view_topic(c.code),
        "I": naming.grant_view_topic(c.code, GRANTED_ITEMS),
    }  # fmt: skip
    admin = kafka_clients.producer(
        exchange.settings, "admin", kafka_clients.admin_password_of(exchange.settings)
    )
    for label, topic in topics.items():  # something to read in every topic
        produce_one(admin, topic, f"seed-{label}".encode(), b"seed")
    return exchange, topics, {label: d.id for label, d in depts.items()}


def _kcat(ex: Exchange, user: str, *args: str, stdin: str | None = None) -> tuple[int, str]:
    props = kafka_clients.client_properties(ex.settings, user, ex.secrets(user))
    assert props["security.protocol"] == "SASL_SSL" and props["ssl.ca.location"]
    cmd = ["bash", str(KCAT), "-b", props.pop("bootstrap.servers")]
    cmd += [arg for k, v in props.items() for arg in ("-X", f"{k}={v}")]
    try:
        proc = subprocess.run([*cmd, *args], input=stdin, capture_output=True, text=True,
                              timeout=45)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        return -1, f"timeout: {exc.stdout!r} {exc.stderr!r}"
    return proc.returncode, proc.stdout + proc.stderr


def outcome(ex: Exchange, user: str, topic: str, label: str, op: str) -> str:
    """ "allowed", "refused" or what else happened."""
    if op == "read":
        code, out = _kcat(ex, user, "-C", "-t", topic, "-o", "beginning", "-c", "1", "-e")
        if f"seed-{label}" in out:
            return "allowed"
    elif op == "write":
        mark = uuid.uuid4().hex[:8]
        code, out = _kcat(ex, user, "-P", "-K", ":", "-t", topic, stdin=f"k:{mark}\n")
        if code == 0 and "fail" not in out.lower():
            return "allowed"
    else:
        group = f"{user}.matrix-{uuid.uuid4().hex[:6]}"  # its own prefix
        code, out = _kcat(ex, user, "-G", group, "-o", "beginning", "-c", "1", topic)
        if f"seed-{label}" in out:
            return "allowed"
    if "authorization failed" in out.lower():
        return "refused"
    return f"other (exit {code}): {out[-400:]}"


def test_kcat_matrix_over_tls_has_no_unexpected_outcome(
    world: tuple[Exchange, dict[str, str], dict[str, str]],
) -> None:
    ex, topics, users = world
    cells = [(d, t, op) for d in DEPTS for t in TOPICS for op in OPS]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda c: outcome(ex, users[c[0]], topics[c[1]], c[1], c[2]), cells))
    unexpected = [
        f"{d} {op} {t}: expected {'allowed' if expected(d, t, op) else 'refused'}, got {g}"
        for (d, t, op), g in zip(cells, got, strict=True)
        if g != ("allowed" if expected(d, t, op) else "refused")
    ]
    allowed = sum(1 for g in got if g == "allowed")
    print(f"kcat matrix: {len(cells)} cells ({len(DEPTS)} departments x {len(TOPICS)} topics x "
          f"{len(OPS)} operations), {allowed} allowed, {len(cells) - allowed} refused, "
          f"{len(unexpected)} unexpected")  # fmt: skip
    assert unexpected == []
    # Another department's group is refused even on a topic everyone reads.
    _, out = _kcat(ex, users["X"], "-G", f"{users['G']}.stolen", "-c", "1", topics["U"])
    assert "group authorization failed" in out.lower(), out
