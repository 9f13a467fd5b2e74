"""The authorizer's access log lines, parsed and aggregated per principal, topic, host and
minute (govbus/broker/access.py); the read shapes are Kafka 4.1.2's, seen in access.log here."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

from govbus.broker.access import AccessLogTail, aggregate
from govbus.broker.properties import ACCESS_REGEX, log4j2_config

LINE = (
    "{at} Principal = User:{who} is Allowed operation = READ from host = 127.0.0.1 on resource "
    "= Topic:LITERAL:{topic} for request = Fetch with resourceRefCount = 1 based on rule "
    "MatchingAcl(acl=AclBinding(...))"
)


def line(at: str, who: str = "cz-mzj", topic: str = "gov.t1") -> str:
    return LINE.format(at=at, who=who, topic=topic)


def test_reads_are_counted_per_minute_principal_and_topic() -> None:
    lines = [
        line("2026-11-30T12:01:02.345Z"),
        line("2026-11-30T20:01:59.999+08:00"),  # the same minute, China time
        line("2026-11-30T12:02:00.000Z"),
        line("2026-11-30T12:01:30.000Z", topic="gov.t2"),
        "2026-11-30T12:01:30.000Z something else",
        line("not-a-time"),
    ]
    reads = aggregate(lines)
    minute = dt.datetime(2026, 11, 30, 12, 1, tzinfo=dt.UTC)
    assert [(r.user, r.topic, r.minute, r.count) for r in reads] == [
        ("cz-mzj", "gov.t1", minute, 2),
        ("cz-mzj", "gov.t2", minute, 1),
        ("cz-mzj", "gov.t1", minute + dt.timedelta(minutes=1), 1),
    ]


def test_the_tail_reads_each_line_once_and_a_rotated_file_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(line("2026-11-30T12:01:00Z") + "\n" + "half a li")
    tail = AccessLogTail([log], tmp_path / "offsets.json")
    assert len(tail.read()) == 1
    tail.commit()
    with log.open("a") as fh:
        fh.write("ne\n")
    assert tail.read() == ["half a line"]
    tail.commit()
    assert tail.read() == []
    os.replace(log, tmp_path / "access.log.1")  # rotated
    log.write_text(line("2026-11-30T12:05:00Z") + "\n")
    assert len(tail.read()) == 1


def _properties(text: str) -> dict[str, str]:
    return dict(line.split(" = ", 1) for line in text.splitlines())


def test_the_broker_log_config_keeps_allowed_fetch_reads_apart_and_mirrormaker_has_none() -> None:
    broker = _properties(log4j2_config(Path("/n/server.log"), access=Path("/n/access.log")))
    assert broker["appender.file.fileName"] == "/n/server.log"
    assert broker["appender.access.fileName"] == "/n/access.log"
    assert broker["appender.access.filter.reads.regex"] == ACCESS_REGEX
    assert broker["logger.authorizer.appenderRef.access.ref"] == "ACCESS"
    assert broker["appender.access.layout.pattern"].startswith("%d{yyyy-MM-dd'T'")
    # The pattern keeps what the parser above reads: the allowed Fetch READ of a topic.
    assert re.fullmatch(ACCESS_REGEX, line("2026-11-30T12:01:02.345Z"))
    mirror = _properties(log4j2_config(Path("/m/mm2.log"), size="20MB", keep=2))
    assert mirror["appender.file.policies.size.size"] == "20MB"
    assert mirror["appender.file.strategy.max"] == "2"
    assert not any(key.startswith(("appender.access", "logger.authorizer")) for key in mirror)
