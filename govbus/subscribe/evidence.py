"""Access evidence reconciled with the usage audit: a read nobody declared is an article 26(5)
violation candidate (shared data used beyond, or without, a stated purpose).

The broker's own record of who read which topic (govbus.broker.access: every allowed Fetch
READ, aggregated per principal, topic, host and minute) is shipped to ``govbus.access``
(``ship``). ``candidates`` then sets each minute in which a catalogued department read a
resource topic — the resource itself, its public view or a grant view — beside that
department's usage audit (govbus.subscribe.audit): the consumer SDK writes an audit event for
every read session, naming the purpose (and under a grant its case number and end user), with
the time window it covers. A minute no audit window of the same department and resource covers
(with ``slack`` either side for clocks and the last window's flush) is a read without a
declared purpose: a candidate, written to ``govbus.violations`` keyed
``undeclared-use:<department>:<topic>:<minute>`` (so a second check does not repeat it) for
the operator and the auditor to look into. A provider reading its own resource is not sharing
and is left out; platform apps and the admin are not departments.

Candidates, not verdicts: the evidence says that a principal read, not what it did with the
data; the audit says what the department declared.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

from govbus.broker.access import AccessLogTail, AccessRead, aggregate
from govbus.subscribe.audit import AuditEvent, read_all, read_audit
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.config import Settings
from govbus.vocabulary.errors import ServiceUnavailable
from govbus.vocabulary.naming import GRANT_VIEW_INFIX, Naming
from govbus.vocabulary.spec import CatalogSpec, Resource

__all__ = ["KIND", "candidates", "check", "ship"]

KIND = "undeclared-use"
SLACK = dt.timedelta(seconds=60)


class EvidenceError(ServiceUnavailable):
    """The access evidence could not be shipped or read; the message says why."""


def _resources_by_topic(spec: CatalogSpec, naming: Naming) -> dict[str, Resource]:
    out: dict[str, Resource] = {}
    for r in spec.resources:
        out[naming.resource_topic(r.code)] = r
        out[naming.public_view_topic(r.code)] = r
    return out


def _resource_of(topic: str, by_topic: dict[str, Resource]) -> Resource | None:
    if topic in by_topic:
        return by_topic[topic]
    if GRANT_VIEW_INFIX in topic:  # gov.<code>.items.<digest>
        return by_topic.get(topic.split(GRANT_VIEW_INFIX, 1)[0])
    return None


def candidates(
    reads: Iterable[AccessRead],
    audits: Iterable[AuditEvent],
    spec: CatalogSpec,
    naming: Naming,
    *,
    now: dt.datetime | None = None,
    slack: dt.timedelta = SLACK,
) -> list[dict[str, Any]]:
    """Violation events for the reads no audit window of the department covers."""
    by_topic = _resources_by_topic(spec, naming)
    windows: dict[tuple[str, str], list[tuple[dt.datetime, dt.datetime]]] = {}
    for e in audits:
        windows.setdefault((e.department, e.resource), []).append((e.window_start, e.window_end))
    at = (now or dt.datetime.now(dt.UTC)).isoformat()
    out: dict[str, dict[str, Any]] = {}
    for read in reads:
        dept = spec.department_by_id(read.user)
        resource = _resource_of(read.topic, by_topic)
        if dept is None or resource is None or resource.provider == dept.code:
            continue
        start, end = read.minute, read.minute + dt.timedelta(minutes=1)
        covered = any(
            w_start - slack <= end and w_end + slack >= start
            for w_start, w_end in windows.get((dept.id, resource.code), [])
        )
        if covered:
            continue
        subject = f"{dept.id}:{read.topic}:{read.minute.isoformat()}"
        out[subject] = {
            "kind": KIND,
            "article": "26(5)",
            "department": dept.code,
            "resource_code": resource.code,
            "subject": subject,
            "at": at,
            "evidence": json.loads(read.to_json()),
            "detail": (
                f"{dept.name} ({dept.id}) read {read.topic} ({resource.name}) {read.count} "
                f"time(s) from {read.host} in the minute from {read.minute.isoformat()}, and "
                "its usage audit declares no purpose for that read (no govbus read session of "
                "the resource then): a read outside the SDK, or its audit was not written. "
                "Article 18: shared data is used only for the stated purpose; 26(5)"
            ),
        }
    return list(out.values())


def _send_all(settings: Settings, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    """Produce as the platform admin and wait: EvidenceError if any is refused."""
    producer = kafka_clients.producer(
        settings, settings.admin_username, kafka_clients.admin_password_of(settings)
    )
    errors: list[Any] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(err)

    for key, value in records:
        producer.produce(topic, key=key, value=value, on_delivery=delivered)
    if producer.flush(30) or errors:
        why = errors[0].str() if errors else "not acknowledged within 30 s"
        raise EvidenceError(f"{len(records)} record(s) to {topic}: {why}; run `govbus apply`")


def ship(settings: Settings, tail: AccessLogTail) -> int:
    """Send the new access-log lines, aggregated, to ``govbus.access``; how many aggregates."""
    reads = aggregate(tail.read())
    if reads:
        records = [(r.principal.encode(), r.to_json()) for r in reads]
        _send_all(settings, settings.naming.access_topic, records)
    tail.commit()
    return len(reads)


def check(
    settings: Settings, spec: CatalogSpec, *, since: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """Reconcile ``govbus.access`` (reads from ``since``) with the audit; write and return the
    candidates."""
    naming = settings.naming
    reads = [AccessRead.from_json(m.value()) for m in read_all(settings, naming.access_topic)]
    if since is not None:
        reads = [r for r in reads if r.minute + dt.timedelta(minutes=1) >= since]
    audits = [e for _, e in read_audit(settings, naming=naming)]
    found = candidates(reads, audits, spec, naming)
    if found:
        records = [
            (f"{e['kind']}:{e['subject']}".encode(), json.dumps(e, ensure_ascii=False).encode())
            for e in found
        ]
        _send_all(settings, naming.violations_topic, records)
    return found
