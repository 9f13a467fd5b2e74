"""Conditional sharing on the real broker: request, approval, read, revocation, expiry.

Each test has its own exchange (the ``exchange`` fixture: departments and topics in a namespace
of the test's own, reconciled within a scope limited to it), its catalog also in a SQLite
catalog database where the share requests are kept. The reconcile step is what `govbus apply`
does: sweep, load the valid grants, derive, plan, apply. The consumer department reads with a
plain confluent-kafka consumer under its own SCRAM user.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException

from govbus.catalog.store import CatalogStore
from govbus.reconcile.plan import ApplyResult
from govbus.share.requests import ShareError, ShareRequests
from govbus.subscribe.consumer import SubscribeError, check_subscription
from govbus.vocabulary.spec import CatalogSpec, InfoItem
from tests.factories import person_resource
from tests.integration.fixtures import Exchange, consume_until, produce_keyed

pytestmark = pytest.mark.kafka

PURPOSE = "administrative-basis"


class Sharing:
    """The test's exchange and its share requests (what is this file's own)."""

    def __init__(self, exchange: Exchange, share: ShareRequests) -> None:
        self.ex = exchange
        self.share = share

    @property
    def topic(self) -> str:
        return self.ex.naming.resource_topic(self.ex.resource.code)

    def reconcile(self, now: dt.datetime | None = None) -> ApplyResult:
        """What `govbus apply` does, in this test's scope and namespace."""
        now = now or dt.datetime.now(dt.UTC)
        self.share.sweep(now)
        return self.ex.reconcile(self.ex.desired(self.share.grants(now), now=now))

    def produce(self, value: bytes) -> None:
        produce_keyed(self.ex.producer(self.ex.id("provider")), self.topic, value)

    def consumer(self) -> Consumer:
        return self.ex.consumer(self.ex.id("consumer"))

    def read(self, want: int) -> list[bytes]:
        return self.ex.consume(self.ex.id("consumer"), self.topic, want)

    def apply_for(self) -> int:
        return self.share.submit(
            self.ex.id("consumer"),
            self.ex.resource.code,
            PURPOSE,
            "核定社会救助对象",
            dt.date.today() + dt.timedelta(days=365),
        ).id


@pytest.fixture
def sharing(exchange: Exchange, tmp_path: Path) -> Iterator[Sharing]:
    provider = exchange.department("provider", 1)
    consumer = exchange.department("consumer", 2)
    resource = person_resource(
        (
            InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),
            InfoItem("救助类型", "assistance_type", "C", 20),
        ),
        code=f"30201/{provider.code}-000001",
        name="社会救助对象信息",
        provider=provider.code,
        abstract="test",
        category=("民政",),
        share_type="conditional",
        update_cycle="weekly",
        publish_date=dt.date(2026, 1, 1),
        share_conditions="仅用于社会救助审核",
        share_methods=("system-integration",),
        purposes=(PURPOSE,),
    )
    exchange.spec = CatalogSpec((provider, consumer), (resource,))
    store = CatalogStore(f"sqlite:///{tmp_path}/catalog.db")
    store.migrate()
    store.apply(exchange.spec, "test", "lifecycle")
    yield Sharing(exchange, ShareRequests(store))
    store.dispose()


def refused_code(exc: pytest.ExceptionInfo[KafkaException]) -> int:
    code: int = exc.value.args[0].code()
    return code


def next_fetch_error(consumer: Consumer, seconds: float = 60) -> KafkaError:
    """Poll an assigned consumer until the broker reports an error; a record is a failure."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        error = msg.error()
        if error is None:
            pytest.fail(f"read {msg.value()!r} although the grant is gone")
        if error.code() != KafkaError._PARTITION_EOF:
            return error
    pytest.fail(f"no refusal within {seconds}s")


def test_read_is_refused_before_approval_allowed_after_and_refused_after_revocation(
    sharing: Sharing,
) -> None:
    sharing.reconcile()
    sharing.produce(b"record 1")
    with pytest.raises(KafkaException) as refused:
        sharing.read(1)
    assert refused_code(refused) == KafkaError.TOPIC_AUTHORIZATION_FAILED

    rid = sharing.apply_for()
    sharing.reconcile()  # a pending request gives nothing yet
    with pytest.raises(KafkaException) as refused:
        sharing.read(1)
    assert refused_code(refused) == KafkaError.TOPIC_AUTHORIZATION_FAILED

    grant = sharing.share.approve(rid, sharing.ex.dept("provider").id)
    result = sharing.reconcile()
    assert any(sharing.ex.dept("consumer").id in c.name for c in result.applied), result.render()
    consumer = sharing.consumer()
    try:
        assert consume_until(consumer, sharing.topic, 1) == [b"record 1"]
        # The subscriber's own check agrees with the broker.
        grants = sharing.share.grants(department=sharing.ex.dept("consumer").code)
        check_subscription(
            sharing.ex.spec,
            sharing.ex.dept("consumer").id,
            sharing.ex.resource.code,
            PURPOSE,
            grants,
        )

        sharing.share.revoke(
            grant.id, sharing.ex.dept("provider").id, "使用部门超出申请用途使用数据"
        )
        sharing.reconcile()
        sharing.produce(b"record 2")
        # The same consumer, still subscribed: its next fetch is refused.
        assert next_fetch_error(consumer).code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    finally:
        consumer.close()
    with pytest.raises(SubscribeError, match="holds no valid approved share request"):
        check_subscription(
            sharing.ex.spec,
            sharing.ex.dept("consumer").id,
            sharing.ex.resource.code,
            PURPOSE,
            sharing.share.grants(department=sharing.ex.dept("consumer").code),
        )
    assert [e.kind for e in sharing.share.grant_history(grant.id)] == [
        "submitted",
        "approved",
        "revoked",
    ]


def test_an_expired_grant_is_swept_and_the_read_refused(sharing: Sharing) -> None:
    sharing.reconcile()
    sharing.produce(b"record 1")
    rid = sharing.apply_for()
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    grant = sharing.share.approve(rid, sharing.ex.dept("provider").id, expires_at=tomorrow)
    sharing.reconcile()
    assert sharing.read(1) == [b"record 1"]

    later = grant.expires_at + dt.timedelta(seconds=1)
    sharing.reconcile(now=later)  # sweeps first: the expiry is recorded
    assert sharing.share.grant(grant.id).expired_at == later
    assert sharing.share.request(rid).state == "expired"
    with pytest.raises(KafkaException) as refused:
        sharing.read(1)
    assert refused_code(refused) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert [e.kind for e in sharing.share.grant_history(grant.id)][-1] == "expired"


def test_a_denial_without_a_reason_is_refused_and_grants_nothing(sharing: Sharing) -> None:
    sharing.reconcile()
    sharing.produce(b"record 1")
    rid = sharing.apply_for()
    provider = sharing.ex.dept("provider").id
    for reason in ("", "不同意", "N/A"):
        with pytest.raises(ShareError, match="denial refused"):
            sharing.share.deny(rid, provider, reason)
    assert sharing.share.request(rid).state == "pending"
    sharing.share.deny(rid, provider, "申请用途与共享条件不符：仅限社会救助审核使用")
    sharing.reconcile()
    with pytest.raises(KafkaException) as refused:
        sharing.read(1)
    assert refused_code(refused) == KafkaError.TOPIC_AUTHORIZATION_FAILED
