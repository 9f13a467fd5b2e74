"""A holding department publishes its copies of a resource's items for verification.

Multi-source verification (一数一源、多元校核, article 4(3)): the catalog lists, per resource,
the departments that keep a copy of some of its items (``Resource.holders``). Such a holder
publishes its copies as *observations* to its own topic ``verify.by.<department id>``
(``holder_observation_topic``), which only it may write (the broker's ACL), so the verifier
knows who sent a copy from the topic, not from what the record says; the verification app
compares them with the provider's record and opens a dispute where they disagree
(stream_apps/verification/app.py).

Wire format of an observation (JSON, UTF-8; observations are a platform-internal check, not
the exchange's Avro records)::

    key    the record's one-data-one-source key, built as the provider's publisher builds it
           (producers.validate.record_key), so a record and its observations share the key and,
           with the same partitioner (murmur2, as Java and Faust use), the partition number
    value  {"holder": "<department code>", "department": "<department id>",
            "resource_code": "<code>", "event_time": "<ISO-8601 with offset>",
            "trace_id": "<uuid>", "values": {"<item code>": <value>, ...}}

``values`` holds the key items and any of the items the catalog says this department holds
(dates ISO text, money as decimal text), as the holder keeps them. An observation is checked
first: the department must be a catalogued holder of the resource, the key items must be
present and valid, and no other items may be sent. A refused observation goes to
the department's dead-letter topic with the rules it breaks, as ``Publisher`` does.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from govbus.vocabulary import wire
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.spec import Resource
from producers.publisher import Publisher, PublishError, PublishReport, _json_default
from producers.validate import META_FIELDS, RecordError, record_key, validate_key

__all__ = ["HEADER_KIND", "Observer"]

HEADER_KIND = "govbus-kind"


class Observer(Publisher):
    """Publishes the copies ``department_id`` holds of resources' items (see the module doc).

    The session's naming gives the topic names, ``verify.by.<id>`` and the dead-letter topic
    ``dlq.<id>``. Use as a context manager, or call ``close``.
    """

    def __enter__(self) -> Observer:
        return self

    def resource(self, resource_code: str) -> Resource:
        """The resource, if this department holds some of its items; else PublishError."""
        resource = self.catalogued(resource_code)
        if self.held(resource) is None:
            holders = ", ".join(h.department for h in resource.holders) or "none"
            raise PublishError(
                f"department {self.department.id} ({self.department.name}) is not a holder of "
                f"resource {resource.code} {resource.name} in the catalog (holders: {holders}); "
                "only catalogued holders send copies for verification; nothing was produced"
            )
        return resource

    def held(self, resource: Resource) -> tuple[str, ...] | None:
        """The items this department holds of ``resource``; None if it holds none."""
        items = [
            code
            for h in resource.holders
            if h.department == self.department.code
            for code in h.items
        ]
        return tuple(items) if items else None

    def validate(
        self, resource: Resource, record: Mapping[str, Any], position: int
    ) -> list[RecordError]:
        """Every rule the observation breaks: items it does not hold, key items.

        Held values are not checked against the data type: a holder's copy is what its system
        keeps (e.g. a date as 2024年1月5日), and the item's comparison rule decides whether it
        agrees with the provider's record.
        """
        held = self.held(resource) or ()
        errors = []
        for name in record:
            if name in META_FIELDS or name in resource.key.items or name in held:
                continue
            what = "an info item" if resource.item(str(name)) else "no info item"
            message = (
                f"record {position}, item {name}: rule not-held — {what} of resource "
                f"{resource.code} that department {self.department.id} holds (holds: "
                f"{', '.join(held)}; key: {', '.join(resource.key.items)})"
            )
            errors.append(RecordError(position, str(name), "not-held", message))
        key = {k: v for k, v in record.items() if k in resource.key.items}
        return errors + validate_key(resource, key, position)

    def observe(
        self, resource_code: str, records: Iterable[Mapping[str, Any]], *, source: str = "api"
    ) -> PublishReport:
        """Validate and produce the copies (positions count from 1); see the module doc."""
        resource, _, pending, _ = self._start(resource_code, source)
        topic = self.naming.holder_observation_topic(self.department.id)
        headers: wire.Headers = [(HEADER_KIND, b"observation")]
        for position, record in enumerate(records, start=1):
            errors = self.validate(resource, record, position)
            if errors:
                self._dead_letter(resource, record, position, errors, source, pending)
                continue
            event_time = record.get("_event_time") or dt.datetime.now(CHINA_TZ)
            value = {
                "holder": self.department.code,
                "department": self.department.id,
                "resource_code": resource.code,
                "event_time": _json_default(event_time),
                "trace_id": str(uuid.uuid4()),
                "values": {k: v for k, v in record.items() if k not in META_FIELDS},
            }
            data = json.dumps(value, ensure_ascii=False, default=_json_default).encode()
            self._produce(pending, position, topic, record_key(resource, record), data, headers)
        return self._finish(pending)
