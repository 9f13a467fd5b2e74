"""The conditional-sharing part of the demo (articles 16-17): apply, approve, apply ACLs, read.

Runs after the exchange part refused the consumer an ungranted 有条件共享 resource.
"""

from __future__ import annotations

import datetime as dt

from govbus.catalog.store import CatalogStore
from govbus.demo.exchange import CONSUMER, Printer, sample_records
from govbus.reconcile.plan import apply
from govbus.reconcile.planner import plan_for
from govbus.share.requests import ShareRequests
from govbus.subscribe.consumer import Record, Subscriber
from govbus.vocabulary.config import Settings
from govbus.vocabulary.secrets import PasswordStore
from govbus.vocabulary.session import DepartmentSession
from govbus.vocabulary.spec import CatalogSpec, Resource
from producers.publisher import Publisher


def conditional_resource(spec: CatalogSpec, consumer_code: str) -> Resource:
    """The 有条件共享 resource of another department the demo's consumer applies for."""
    return next(
        r for r in spec.resources if r.share_type == "conditional" and r.provider != consumer_code
    )


def run(settings: Settings, spec: CatalogSpec, catalog_version: int, out: Printer) -> None:
    passwords = PasswordStore(settings.state_dir)
    consumer = spec.department_by_id(CONSUMER)
    assert consumer is not None
    resource = conditional_resource(spec, consumer.code)
    provider = spec.department(resource.provider)
    assert provider is not None
    with Publisher(
        DepartmentSession(
            settings, provider.id, passwords(provider.id), spec, catalog_version=catalog_version
        )
    ) as pub:
        report = pub.publish(resource.code, sample_records(resource, 3), source="demo")
    out(f"14. {provider.name} published {report.delivered} records of {resource.name}")

    with CatalogStore.opened(settings) as store:
        share = ShareRequests(store, coordinator=settings.share_coordinator)
        purpose = resource.purposes[0]
        request = share.submit(
            consumer.id,
            resource.code,
            purpose,
            duty="核定社会救助对象的就业状况（demo）",
            valid_until=dt.date.today() + dt.timedelta(days=365),
        )
        out(
            f"15. {consumer.name} applied for {resource.name} (request {request.id}, purpose "
            f"{purpose}); {provider.name} must answer by {request.due} (10 working days)"
        )
        grant = share.approve(request.id, actor=provider.id)
        out(
            f"16. {provider.name} approved it: grant {grant.id} until "
            f"{grant.expires_at.date()}; every step is in `govbus requests --show {request.id}`"
        )
        grants = share.grants(department=consumer.code)

    plan, admin = plan_for(settings)
    added = [c for c in plan.changes if c.action == "create" and c.kind == "acl"]
    apply(plan, admin, PasswordStore(settings.state_dir))
    if added:
        out(f"17. `govbus apply` added {len(added)} ACL binding(s) from the grant, e.g.:")
        for change in added[:2]:
            out(f"      {change.render()}")
    else:
        out("17. `govbus apply`: the grant's READ bindings exist already (an earlier run's grant)")
    got: list[Record] = []
    Subscriber(
        DepartmentSession(
            settings, consumer.id, passwords(consumer.id), spec, grants=tuple(grants)
        ),
        resource.code,
        purpose,
        group_suffix="demo-granted",
        case_number="常民救〔2026〕0001号",
        end_user="demo 经办人",
    ).run(got.append, timeout=5)
    out(f"18. {consumer.name} now reads {resource.name}: {len(got)} records (audited, grant named)")
