"""The reconciler's plan for the configured cluster: catalog + valid grants + every stream
app's needs, against what the broker holds now (``govbus plan`` / ``govbus apply``)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from confluent_kafka.admin import AdminClient

from govbus.catalog.store import CatalogStore
from govbus.federation.agreements import AgreementBook
from govbus.federation.needs import needs_of
from govbus.reconcile.desired import desired_state
from govbus.reconcile.plan import Plan, Scope, make_plan, read_actual
from govbus.share.requests import ShareRequests
from govbus.vocabulary import kafka
from govbus.vocabulary.config import Settings
from govbus.vocabulary.naming import ADMIN_PRINCIPAL, CONTROLLER_PRINCIPAL
from govbus.vocabulary.platforms import root_settings
from stream_apps.registry import AppContext, all_needs


def plan_for(settings: Settings) -> tuple[Plan, AdminClient]:
    """The plan (and the admin client that read the cluster) for ``settings``' cluster.

    With a ``namespace`` setting the reconciler owns only that namespace's topics and platform
    users and the catalog's departments, so two exchanges can share a cluster. A named platform
    (``--platform``) also gets what its active federation agreements need (govbus.federation).
    """
    with CatalogStore.opened(settings) as store:
        spec = store.current()
        share = ShareRequests(store, coordinator=settings.share_coordinator)
        # The sweep records expiries first, so each grant's end is in its history.
        now = dt.datetime.now(dt.UTC)
        share.sweep(now)
        grants = tuple(share.grants(now))
    naming = settings.naming
    context = AppContext(naming=naming, grants=grants, operator=settings.share_coordinator)
    desired = desired_state(
        spec,
        grants,
        now=now,
        naming=naming,
        stream_apps=all_needs(spec, context),
        operator=settings.share_coordinator,
    )
    if settings.platform:
        # Article 13: what this platform's active federation agreements need (its peers'
        # MirrorMaker principal, the readers of the copies it receives).
        book = AgreementBook(root_settings(settings).state_dir)
        federation = needs_of(settings.platform, book.all(), naming)
        for user, reason in federation.users.items():
            desired.users.setdefault(user, reason)
        for acl, reason in federation.acls.items():
            desired.acls.setdefault(acl, reason)
    protected = frozenset({settings.admin_username, ADMIN_PRINCIPAL, CONTROLLER_PRINCIPAL})
    if naming.prefix:
        scope = Scope.namespace(naming, tuple(d.id for d in spec.departments))
    else:
        scope = Scope()
    admin = kafka.admin_client(settings)
    actual = read_actual(admin, scope=dataclasses.replace(scope, protected_users=protected))
    return make_plan(desired, actual), admin
