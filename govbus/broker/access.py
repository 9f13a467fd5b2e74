"""Broker-side access evidence (articles 18, 26(5)): who read which topic, from the broker itself.

A department may read with its own Kafka client and never go through the consumer SDK, which
is what writes the usage audit. The broker, though, authorizes every read: a consumer's Fetch
authorizes READ on each topic it fetches, every time (KAFKA-NOTES.md; fetch sessions do not
skip it). The local cluster's log configuration (govbus/broker/properties.py) sends every
allowed Fetch READ on a topic, logged by ``kafka.authorizer.logger`` at DEBUG, to
``access.log`` beside each node's ``server.log``, e.g.::

    2026-11-30T12:01:02.345Z Principal = User:cz-mzj is Allowed operation = READ from host =
    127.0.0.1 on resource = Topic:LITERAL:gov.10101.… for request = Fetch with resourceRefCount
    = 1 based on rule MatchingAcl(…)

(one line). The line has the principal, the client's address and the topic — no client id,
offsets or byte counts. An idle consumer logs about two lines a second per topic and leader,
so lines are aggregated by (principal, topic, host, minute) before they leave the node
(``aggregate``). ``AccessLogTail`` reads each node's file from where it last stopped (offsets
kept in ``<state_dir>/access-offsets.json``, a rotated file read from its start); the shipper
(govbus.subscribe.evidence) sends the aggregates to ``govbus.access`` and reconciles them with
the usage audit.

Why the authorizer log and not another mechanism: the request log has client ids and bytes
but logs every API and names topics by id in Fetch v13+; quota metrics have no topic; a
log4j2 Kafka appender would send synchronously from the request threads.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AccessLogTail", "AccessRead", "aggregate", "parse"]

_LINE = re.compile(
    r"^(?P<at>\S+) Principal = (?P<principal>\S+) is Allowed operation = READ from host = "
    r"(?P<host>\S+) on resource = Topic:LITERAL:(?P<topic>\S+) for request = Fetch\b"
)


@dataclass(frozen=True)
class AccessRead:
    """``count`` allowed Fetch READs of ``topic`` by ``principal`` from ``host`` in the minute
    starting at ``minute`` (UTC)."""

    principal: str  # e.g. User:cz-mzj
    topic: str
    host: str
    minute: dt.datetime
    count: int

    @property
    def user(self) -> str:
        return self.principal.removeprefix("User:")

    def to_json(self) -> bytes:
        return json.dumps({
            "principal": self.principal, "topic": self.topic, "host": self.host,
            "minute": self.minute.isoformat(), "count": self.count,
        }, sort_keys=True).encode()  # fmt: skip

    @staticmethod
    def from_json(data: bytes) -> AccessRead:
        d = json.loads(data)
        return AccessRead(d["principal"], d["topic"], d["host"],
                          dt.datetime.fromisoformat(d["minute"]), int(d["count"]))  # fmt: skip


def parse(lines: Iterable[str]) -> Iterator[tuple[dt.datetime, str, str, str]]:
    """(time, principal, host, topic) of each allowed Fetch READ line; others are passed."""
    for line in lines:
        m = _LINE.match(line)
        if m is None:
            continue
        try:
            at = dt.datetime.fromisoformat(m["at"])
        except ValueError:
            continue
        yield at.astimezone(dt.UTC), m["principal"], m["host"], m["topic"]


def aggregate(lines: Iterable[str]) -> list[AccessRead]:
    """The lines counted by (principal, topic, host, minute), in time order."""
    counts: Counter[tuple[str, str, str, dt.datetime]] = Counter()
    for at, principal, host, topic in parse(lines):
        counts[(principal, topic, host, at.replace(second=0, microsecond=0))] += 1
    return sorted(
        (AccessRead(p, t, h, m, n) for (p, t, h, m), n in counts.items()),
        key=lambda r: (r.minute, r.principal, r.topic, r.host),
    )


class AccessLogTail:
    """New lines of the nodes' access logs since the last ``commit``."""

    def __init__(self, logs: Iterable[Path], offsets_file: Path) -> None:
        self.logs = list(logs)
        self.offsets_file = offsets_file
        self._pending: dict[str, tuple[int, int]] = {}

    def _saved(self) -> dict[str, list[int]]:
        try:
            data: dict[str, list[int]] = json.loads(self.offsets_file.read_text("utf-8"))
            return data
        except (OSError, ValueError):
            return {}

    def read(self) -> list[str]:
        """Lines written since the last commit (complete lines only)."""
        saved, out = self._saved(), []
        self._pending = {}
        for log in self.logs:
            try:
                stat = log.stat()
            except OSError:
                continue
            inode, offset = saved.get(str(log), [stat.st_ino, 0])
            if inode != stat.st_ino or offset > stat.st_size:
                offset = 0  # rotated: the new file from its start
            with log.open("rb") as fh:
                fh.seek(offset)
                data = fh.read()
            end = data.rfind(b"\n") + 1
            out += data[:end].decode("utf-8", "replace").splitlines()
            self._pending[str(log)] = (stat.st_ino, offset + end)
        return out

    def commit(self) -> None:
        """Remember where ``read`` stopped (call once what it returned is shipped)."""
        saved = self._saved()
        saved.update({k: [ino, off] for k, (ino, off) in self._pending.items()})
        self.offsets_file.parent.mkdir(parents=True, exist_ok=True)
        self.offsets_file.write_text(json.dumps(saved), encoding="utf-8")
