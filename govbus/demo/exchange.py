"""The exchange part of the demo: publish as providers, subscribe as a consumer, refusals.

Runs after the reconciler applied the catalog, with the departments' own SCRAM users.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from govbus.subscribe.consumer import Record, SubscribeError, Subscriber
from govbus.vocabulary import metrics
from govbus.vocabulary.config import Settings
from govbus.vocabulary.identifiers import citizen_id_check_digit, uscc_check_char
from govbus.vocabulary.secrets import PasswordStore
from govbus.vocabulary.session import DepartmentSession
from govbus.vocabulary.spec import CatalogSpec, InfoItem, Resource
from producers.publisher import Publisher

Printer = Callable[[str], None]
PROVIDER = "cz-gaj"  # 市公安局: provides 人口户籍基本信息
CONSUMER = "cz-mzj"  # 市民政局: uses it for social assistance


def _value(item: InfoItem, n: int) -> Any:
    """A valid sample value of one info item (identifiers with correct check characters)."""
    if item.code == "citizen_id" or item.name == "公民身份号码":
        body = f"32040219{80 + n % 10:02d}0{1 + n % 9}1{n % 10}{(100 + n) % 1000:03d}"
        return body + citizen_id_check_digit(body)
    if item.code in ("uscc", "credit_code") or item.name == "统一社会信用代码":
        body = f"91320400MA{n:07d}"
        return body + uscc_check_char(body)
    text = {"C": f"示例{n}", "M": f"示例说明{n}"}
    match item.data_type:
        case "C" | "M":
            return text[item.data_type][: item.length or None]
        case "N" | "B" | "F":
            return 1.5 + n
        case "I":
            return n
        case "Y":
            return "100.00"
        case "D":
            return dt.date(2020, 1, 1 + n % 28).isoformat()
        case "T":
            return dt.datetime(2026, 1, 1, 8, n % 60, tzinfo=dt.UTC).isoformat()
        case "L":
            return n % 2 == 0
        case _:
            return b""


def sample_records(resource: Resource, count: int) -> list[dict[str, Any]]:
    return [{i.code: _value(i, n) for i in resource.items} for n in range(1, count + 1)]


def run(settings: Settings, spec: CatalogSpec, catalog_version: int, out: Printer) -> None:
    passwords = PasswordStore(settings.state_dir)
    provider = spec.department_by_id(PROVIDER)
    assert provider is not None
    resource = next(
        r for r in spec.resources if r.provider == provider.code and r.share_type == "unconditional"
    )
    records = sample_records(resource, 5)
    key_item = resource.key.items[0]
    good = str(records[2][key_item])
    records[2][key_item] = good[:-1] + ("1" if good[-1] != "1" else "2")  # wrong check digit
    with Publisher(
        DepartmentSession(
            settings, PROVIDER, passwords(PROVIDER), spec, catalog_version=catalog_version
        )
    ) as pub:
        report = pub.publish(resource.code, records, source="demo")
    out(
        f"10. {provider.name} published {resource.name}: {report.delivered} delivered, "
        f"{report.dead_lettered_records} to its dead-letter topic:"
    )
    for err in report.dead_lettered:
        out(f"      {err}")

    consumer = spec.department_by_id(CONSUMER)
    assert consumer is not None
    got: list[Record] = []
    sub = Subscriber(
        DepartmentSession(settings, CONSUMER, passwords(CONSUMER), spec),
        resource.code,
        "administrative-basis",
        group_suffix="demo",
    )
    sub.run(got.append, timeout=5)
    out(f"11. {consumer.name} subscribed (purpose administrative-basis): {len(got)} records")
    if got:
        r = got[-1]
        out(
            f"      provenance: provider {r.provider}, catalog v{r.catalog_version}, "
            f"event time {r.event_time}, offset {r.partition}/{r.offset}"
        )
    out("      usage audit events went to govbus.audit (`govbus audit verify` checks the chain)")

    for share_type in ("none", "conditional"):
        other = next(
            (
                r
                for r in spec.resources
                if r.share_type == share_type and r.provider != consumer.code
            ),
            None,
        )
        if other is None:
            continue
        purpose = other.purposes[0] if other.purposes else "administrative-basis"
        try:
            Subscriber(
                DepartmentSession(settings, CONSUMER, passwords(CONSUMER), spec),
                other.code,
                purpose,
            ).run(got.append, timeout=1)
            out(f"!! {consumer.name} was not refused {other.name}")
        except SubscribeError as exc:
            out(f"12. {consumer.name} → {other.name} ({share_type}): refused: {exc}")

    published = metrics.REGISTRY.get_sample_value(
        "govbus_records_published_total",
        {"resource": resource.code, "department": PROVIDER},
    )
    out(
        f"13. metrics (one registry, served by govbus processes on :{settings.metrics_port}): "
        f"govbus_records_published_total{{resource={resource.code}}} = {published}"
    )
