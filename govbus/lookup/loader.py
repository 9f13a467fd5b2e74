"""Fills the lookup store from the compacted resource topics; says who owns which partition.

The instances of one service form one consumer group (``<prefix>govbus-lookup``) subscribed to
every resource topic ``gov.<code>`` and status topic ``gov.<code>.status``; Kafka spreads the
partitions over them (``range`` assignment: partition n of every topic goes to one member, so a
record and its status flag, keyed alike, are on one instance when the counts match). An
instance reads each assigned partition from its beginning into memory and never commits (the
store is rebuilt at every start and assignment; the topics are compacted, so this is the
current state, not the history); a partition is *loaded* once the position reached the high
watermark it had when assigned.

Ownership: every instance puts the URL it serves at in its client id (``<user>@<host:port>``);
``owner_of`` asks the broker (DescribeConsumerGroups) which member holds a partition, cached
for ``OWNERS_TTL`` seconds and refreshed when an answer names nobody.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from govbus.lookup.store import PartitionState, ResourceState
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.naming import Naming
from govbus.vocabulary.spec import CatalogSpec
from govbus.vocabulary.wire import SchemaCatalog

log = logging.getLogger(__name__)
OWNERS_TTL = 5.0
_BATCH = 1000


@dataclass(frozen=True)
class TopicRole:
    resource: str  # resource code
    status: bool  # the status topic (flags), not the records


class Loader:
    """The consumer thread of one instance and the state it fills (``resources``)."""

    def __init__(
        self,
        consumer: Consumer,
        admin: AdminClient,
        spec: CatalogSpec,
        history: Iterable[CatalogSpec],
        naming: Naming,
        group: str,
        advertised: str,
        on_loaded: Callable[[], None] | None = None,
    ) -> None:
        """``on_loaded``: called (in the consumer thread) each time every assigned partition
        has been loaded: at start, and after each rebalance's reload."""
        self.consumer = consumer
        self.on_loaded = on_loaded
        self._ready_seen = False
        self.admin = admin
        self.group = group
        self.advertised = advertised
        schemas = SchemaCatalog.build(spec, history)
        self.resources = {r.code: ResourceState(r, schemas) for r in spec.resources}
        self.roles: dict[str, TopicRole] = {}
        for r in spec.resources:
            self.roles[naming.resource_topic(r.code)] = TopicRole(r.code, False)
            self.roles[naming.status_topic(r.code)] = TopicRole(r.code, True)
        self.topic_of = {r.code: naming.resource_topic(r.code) for r in spec.resources}
        self.partition_counts: dict[str, int] = {}
        self.assigned: set[tuple[str, int]] = set()
        self.joined = False  # the group gave this instance its (possibly empty) assignment
        self._owners: dict[tuple[str, int], str] = {}
        self._owners_at = 0.0
        self._owners_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lookup-loader", daemon=True)
        self.error: str | None = None
        self.records_loaded = 0

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        meta = self.consumer.list_topics(timeout=15)
        existing = [t for t in self.roles if t in meta.topics and not meta.topics[t].error]
        self.partition_counts = {t: len(meta.topics[t].partitions) for t in existing}
        if existing:
            self.consumer.subscribe(existing, on_assign=self._on_assign, on_revoke=self._on_revoke)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)
        self.consumer.close()

    # -- the state ------------------------------------------------------------------------------
    def ready(self) -> bool:
        """Joined the group (or nothing exists to assign) and every assigned partition loaded.

        An instance the group gives nothing (more instances than partitions) is ready: it
        forwards every lookup."""
        if not self.partition_counts:
            return True
        if not self.joined:
            return False
        return all(self._state(t, p).loaded for t, p in self.assigned)

    def _state(self, topic: str, partition: int) -> PartitionState:
        role = self.roles[topic]
        res = self.resources[role.resource]
        states = res.status if role.status else res.partitions
        return states.setdefault(partition, PartitionState())

    def owns(self, topic: str, partition: int) -> bool:
        return (topic, partition) in self.assigned

    def loaded(self, topic: str, partition: int) -> bool:
        return self.owns(topic, partition) and self._state(topic, partition).loaded

    def owner_of(self, topic: str, partition: int, refresh: bool = False) -> str | None:
        """The advertised address (host:port) of the instance holding the partition."""
        with self._owners_lock:
            stale = time.monotonic() - self._owners_at > OWNERS_TTL
            if refresh or stale or (topic, partition) not in self._owners:
                self._owners = self._describe()
                self._owners_at = time.monotonic()
            return self._owners.get((topic, partition))

    def _describe(self) -> dict[tuple[str, int], str]:
        futures = self.admin.describe_consumer_groups([self.group], request_timeout=10)
        try:
            described = futures[self.group].result(timeout=15)
        except KafkaException as exc:
            log.warning("cannot describe group %s: %s", self.group, exc)
            return {}
        owners: dict[tuple[str, int], str] = {}
        for member in described.members:
            _, at, where = (member.client_id or "").rpartition("@")
            if not at or member.assignment is None:
                continue
            for tp in member.assignment.topic_partitions:
                owners[(tp.topic, tp.partition)] = where
        return owners

    # -- the consumer thread --------------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            low, high = consumer.get_watermark_offsets(tp, timeout=15)
            role = self.roles[tp.topic]
            res = self.resources[role.resource]
            states = res.status if role.status else res.partitions
            states[tp.partition] = PartitionState(target=high, loaded=high <= low)
            if role.status:
                res.flags[tp.partition] = set()
            tp.offset = OFFSET_BEGINNING
        consumer.assign(partitions)
        self.assigned |= {(tp.topic, tp.partition) for tp in partitions}
        self.joined = True
        self._ready_seen = False  # a reload starts: tell on_loaded again when it is done
        with self._owners_lock:
            self._owners_at = 0.0  # the group changed: ask again

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.assigned.discard((tp.topic, tp.partition))
            role = self.roles[tp.topic]
            res = self.resources[role.resource]
            (res.status if role.status else res.partitions).pop(tp.partition, None)
            if role.status:
                res.flags.pop(tp.partition, None)
        with self._owners_lock:
            self._owners_at = 0.0

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if not self.partition_counts:
                    self._stop.wait(0.5)
                    continue
                for msg in kafka_clients.arrived(self.consumer, _BATCH, 0.2):
                    err = msg.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:  # read to the end
                            self._loaded(str(msg.topic()), int(msg.partition() or 0))
                            continue
                        if err.fatal():
                            raise KafkaException(err)
                        log.warning("lookup loader: %s", err.str())
                        continue
                    self._take(msg)
                if not self._ready_seen and self.ready():
                    self._ready_seen = True
                    if self.on_loaded is not None:
                        self.on_loaded()
        except Exception as exc:  # the service reports it on /health instead of dying silently
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("lookup loader stopped")

    def _loaded(self, topic: str, partition: int) -> None:
        if (topic, partition) in self.assigned:
            self._state(topic, partition).loaded = True

    def _take(self, msg: object) -> None:
        topic, partition = msg.topic(), int(msg.partition() or 0)  # type: ignore[attr-defined]
        offset = int(msg.offset() or 0)  # type: ignore[attr-defined]
        raw_key = msg.key()  # type: ignore[attr-defined]
        role = self.roles.get(topic)
        if role is None or (topic, partition) not in self.assigned:
            return
        res = self.resources[role.resource]
        states = res.status if role.status else res.partitions
        state = states.get(partition)
        if state is None:
            return
        if raw_key is not None:
            key = raw_key.decode("utf-8", "replace")
            if role.status:
                res.put_status(partition, key, msg.value())  # type: ignore[attr-defined]
            else:
                res.put(partition, key, msg.value(), offset)  # type: ignore[attr-defined]
                self.records_loaded += 1
        if not state.loaded and offset + 1 >= state.target:
            state.loaded = True
