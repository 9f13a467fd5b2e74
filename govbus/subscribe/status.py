"""Which records of a resource are under verification (article 19), as a consumer sees it.

The dispute app keeps ``gov.<resource>.status`` (compacted by record key): whether a record has
an open dispute. ``VerificationStatus`` reads it into a dict with its own consumer (assigned,
no group, nothing committed): to the end before the first record is handed out, then whatever
arrived between batches, so business goes on with the flag at hand.
"""

from __future__ import annotations

import json

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from govbus.vocabulary.errors import ServiceUnavailable
from govbus.vocabulary.session import DepartmentSession


class StatusError(ServiceUnavailable):
    """The status topic cannot be read; the message names it and what to do."""


class VerificationStatus:
    def __init__(self, session: DepartmentSession, topic: str, group_suffix: str) -> None:
        """Reads ``topic`` as the session's department, in its group ``<id>.<group_suffix>``
        (partitions are assigned, not subscribed: the group only names the client)."""
        self.topic = topic
        self.department_id = session.department_id
        self.flags: dict[str, bool] = {}
        self._consumer: Consumer = session.consumer(group_suffix, **{"enable.partition.eof": True})

    def __call__(self, key: str | None) -> bool:
        return key is not None and self.flags.get(key, False)

    def load(self, timeout: float = 30.0) -> None:
        """Assign every partition from the beginning and read to the current end."""
        meta = self._consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
        err = meta.error if meta is not None else None
        if meta is None or err is not None or not meta.partitions:
            raise StatusError(self._cannot(err.str() if err is not None else "no partitions"))
        parts = [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in sorted(meta.partitions)]
        pending = set()
        for tp in parts:
            low, high = self._consumer.get_watermark_offsets(tp, timeout=10)
            if high > low:
                pending.add(tp.partition)
        self._consumer.assign(parts)
        while pending:
            msg = self._consumer.poll(timeout)
            if msg is None:
                raise StatusError(self._cannot(f"no answer within {timeout} s"))
            if not self._take(msg):
                pending.discard(int(msg.partition() or 0))

    def poll(self, limit: int = 500) -> None:
        """Take what arrived since, without waiting."""
        for _ in range(limit):
            msg = self._consumer.poll(0)
            if msg is None or not self._take(msg):
                return

    def close(self) -> None:
        self._consumer.close()

    def _take(self, msg: Message) -> bool:
        """Apply one message; False at the end of a partition."""
        err = msg.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                return False
            raise StatusError(self._cannot(err.str()))
        raw_key, value = msg.key(), msg.value()
        if raw_key is None:
            return True
        key = raw_key.decode("utf-8", "replace")
        flagged = value is not None and bool(json.loads(value).get("under_verification"))
        if flagged:
            self.flags[key] = True
        else:
            self.flags.pop(key, None)
        return True

    def _cannot(self, reason: str) -> str:
        return (
            f"department {self.department_id} cannot read the verification status {self.topic} "
            f"({reason}): whoever may read a resource may read its status topic once the "
            "dispute app is reconciled (`govbus apply`); subscribe without "
            "verification_status to go on without the flag"
        )
