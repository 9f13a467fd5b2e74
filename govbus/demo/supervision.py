"""The supervision part of the demo (chapter 6): violations, a rectification notice, the report.

Runs last, after the stream apps' part and the console's logins. A share request filed three
weeks ago and never answered, and resources that stopped coming, become violations of article
26 (``govbus violations detect``); the operator issues a notice (通知整改), the provider
answers and the operator closes it; ``govbus evaluate`` writes the yearly report, whose chart
the demo names.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from govbus.catalog.store import CatalogStore
from govbus.demo.exchange import CONSUMER, Printer
from govbus.demo.sharing import conditional_resource
from govbus.share.requests import ShareRequests
from govbus.supervise.evaluation import evaluate
from govbus.supervise.ledger import Ledger
from govbus.supervise.metrics import write_evaluation_summary
from govbus.supervise.records import department_years, period
from govbus.supervise.report import SCORE_CHART, write_html, write_xlsx
from govbus.supervise.rules import kind_of
from govbus.supervise.sources import detect
from govbus.vocabulary.clock import china_day, utc
from govbus.vocabulary.config import Settings
from govbus.vocabulary.spec import CatalogSpec

FILED_AGO = dt.timedelta(days=21)  # three weeks: past any 10-working-day deadline


def run(settings: Settings, spec: CatalogSpec, out: Printer) -> None:
    consumer = spec.department_by_id(CONSUMER)
    assert consumer is not None
    operator = settings.share_coordinator
    now = utc(None)
    with CatalogStore.opened(settings) as store:
        share = ShareRequests(store, coordinator=operator)
        # Not the resource the sharing part applied for (its request is answered).
        taken = conditional_resource(spec, consumer.code).code
        resource = next(
            r
            for r in spec.resources
            if r.share_type == "conditional"
            and r.provider != consumer.code
            and r.purposes
            and r.code != taken
        )
        provider = spec.department(resource.provider)
        assert provider is not None
        request = share.submit(
            consumer.id,
            resource.code,
            resource.purposes[0],
            duty="核对救助对象信息（demo：无人答复的申请）",
            valid_until=china_day(now) + dt.timedelta(days=365),
            now=now - FILED_AGO,
        )
        share.sweep(now)
        out(
            f"25. {consumer.name} applied for {resource.name} three weeks ago (request "
            f"{request.id}, due {request.due}); {provider.name} never answered"
        )
        ledger = Ledger(store, operator)
        found = detect(settings, store, now)
        result = ledger.record(found.findings, found.cleared, now)
        kinds = Counter(kind_of(ledger.get(v).kind).article for v in result.new)
        summary = ", ".join(f"{a}: {n}" for a, n in sorted(kinds.items())) or "none new"
        out(
            f"26. `govbus violations detect`: {len(result.new)} new violation(s) of article 26 "
            f"({summary}); {result.known} already in the ledger"
        )
        unanswered = next(
            v
            for v in ledger.violations(kind="unanswered-request", state="open")
            if v.subject == f"request:{request.id}"
        )
        stale = ledger.violations(kind="late-provision")
        if stale:
            out(f"    a stale resource: [{stale[0].id}] {stale[0].summary[:110]}")
        notice = ledger.notify(
            unanswered.id, operator, 5, "请在期限内答复该共享申请并说明逾期原因", now=now
        )
        out(
            f"27. {operator} issued a rectification notice (通知整改) for violation "
            f"{notice.id}: {provider.name} must rectify by {notice.due}"
        )
        share.deny(
            request.id,
            provider.id,
            "该申请所需字段涉及未成年人信息，须提供监护人书面授权后重新申请",
            now=now,
        )
        ledger.respond(
            notice.id, provider.id, "已答复该申请并建立每日处理待办申请的制度", spec, now=now
        )
        closed = ledger.close(notice.id, operator, "核实申请已答复，制度已建立", now=now)
        steps = " → ".join(e.action for e in ledger.history(closed.id))
        out(
            f"    {provider.name} answered the notice; {operator} verified and closed it "
            f"({steps}; `govbus violations show {closed.id}`)"
        )
        today = china_day(now)
        p = period(today.year, today)
        scores = evaluate(department_years(store, ledger, p))
    reports = settings.state_dir / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    xlsx = write_xlsx(scores, p, reports / f"evaluation-{today.year}.xlsx")
    page = write_html(scores, p, reports / f"evaluation-{today.year}.html")
    write_evaluation_summary(settings.state_dir, today.year, scores)
    best, mine = scores[0], next(s for s in scores if s.year.department_code == provider.code)
    out(
        f"28. `govbus evaluate --year {today.year}`: {len(scores)} departments, first "
        f"{best.year.name} {best.score:.1f}; {provider.name} {mine.score:.1f} (rank {mine.rank})"
    )
    out(f"    chart '{SCORE_CHART}' in {xlsx}; the same as HTML in {page}")
