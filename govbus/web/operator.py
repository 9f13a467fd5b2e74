"""The operator's pages (市大数据管理局): the overview and the audit log.

Overview: the reconciler's last plan and apply with their drift (``load_status``, what `govbus
exporter` serves) and a fresh plan on demand (``plan_for``, as `govbus plan`, recorded the same
way); the outbox backlog per topic (rows not yet relayed to Kafka); each stream app's consumer
group on the broker (state and live members: a worker that died leaves its group empty); the
share requests near or past their deadline; links to the Grafana dashboard. Only the
operator's accounts see these pages.

Supervision (article 26: violations, rectification notices, the yearly evaluation) is
``govbus.web.supervision``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from starlette.datastructures import FormData as StarletteForm
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from govbus.catalog.model import OutboxRow
from govbus.reconcile.planner import plan_for
from govbus.reconcile.status import load_status, record_plan
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.errors import UserError
from govbus.web.console import Console, account_of, page, require
from govbus.web.forms import FormData
from stream_apps.registry import AppContext, all_needs

__all__ = ["ROUTES"]

DASHBOARD_UID = "govbus-operator"  # monitoring/grafana/dashboards/govbus-operator.json


def _outbox(console: Console) -> list[dict[str, Any]]:
    with console.store.connect() as conn:
        rows = conn.execute(
            sa.select(OutboxRow.topic, sa.func.count(), sa.func.min(OutboxRow.created_at))
            .where(OutboxRow.published_at.is_(None))
            .group_by(OutboxRow.topic)
            .order_by(OutboxRow.topic)
        ).all()
    return [{"topic": t, "count": n, "oldest": oldest} for t, n, oldest in rows]


def _stream_apps(console: Console) -> tuple[list[dict[str, Any]], str | None]:
    """Each app's consumer group: state and members; an error text if the broker is away."""
    settings = console.settings
    context = AppContext(naming=settings.naming, operator=settings.share_coordinator)
    apps = all_needs(console.store.current(), context)
    try:
        admin = kafka_clients.admin_client(settings)
        futures = admin.describe_consumer_groups([a.app_id for a in apps], request_timeout=10)
        out = []
        for app in apps:
            group = futures[app.app_id].result(timeout=15)
            members = len(group.members or [])
            out.append(
                {
                    "app": app.app_id,
                    "purpose": app.purpose,
                    "state": str(getattr(group.state, "name", group.state)),
                    "members": members,
                    "healthy": members > 0,
                }
            )
        return out, None
    except Exception as exc:  # the overview shows the broker's answer instead of failing
        rows = [{"app": a.app_id, "purpose": a.purpose, "state": "?", "members": 0,
                 "healthy": False} for a in apps]  # fmt: skip
        return rows, f"{type(exc).__name__}: {exc}"


def _status(console: Console) -> dict[str, Any]:
    try:
        status = load_status(console.settings.state_dir)
    except UserError as exc:
        return {"error": str(exc)}
    if status is None:
        return {}
    when = dt.datetime.fromtimestamp
    return {
        "planned_at": when(status.planned_at, dt.UTC),
        "drift": status.drift,
        "last_apply_at": when(status.last_apply_at, dt.UTC) if status.last_apply_at else None,
    }


def _overview_context(console: Console) -> dict[str, Any]:
    apps, apps_error = _stream_apps(console)
    spec = console.store.current()
    grafana = console.grafana_url.rstrip("/")
    return {
        "status": _status(console),
        "outbox": _outbox(console),
        "apps": apps,
        "apps_error": apps_error,
        "near": console.share.deadlines(within=3),
        "names": {d.code: d.name for d in spec.departments},
        "grafana": f"{grafana}/d/{DASHBOARD_UID}",
        "grafana_base": grafana,
    }


@page()
def _overview(request: Request, console: Console, _form: None) -> Response:
    require(account_of(request), "operate", "查看运营总览")
    return console.render(request, "overview.html", _overview_context(console))


@page(post=True)
def _plan(request: Request, console: Console, _form: StarletteForm) -> Response:
    account = account_of(request)
    require(account, "operate", "计算调和计划")
    plan, _admin = plan_for(console.settings)
    drift = plan.drift()
    record_plan(console.settings.state_dir, drift, applied=False)  # as `govbus plan` does
    console.audit(account, "reconcile.plan", "cluster", "ok", {"drift": dict(drift)})
    context = _overview_context(console)
    context.update(plan=plan.render()[:200], plan_size=len(plan.changes))
    return console.render(request, "overview.html", context)


@page()
def _audit(request: Request, console: Console, _form: None) -> Response:
    account = account_of(request)
    query = FormData(request.query_params)
    if account.may("operate"):
        user = query.optional("username", max_len=64)
        entries = console.accounts.audit_log(username=user)
    else:  # everyone sees their department's own trail
        user = None
        entries = console.accounts.audit_log(department=account.department)
    return console.render(request, "audit.html", {"entries": entries, "username": user})


ROUTES: list[BaseRoute] = [
    Route("/overview", _overview, methods=["GET"]),
    Route("/overview/plan", _plan, methods=["POST"]),
    Route("/audit", _audit, methods=["GET"]),
]
