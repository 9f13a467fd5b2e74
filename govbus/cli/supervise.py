"""`govbus violations ...`, `govbus evaluate`, `govbus report`: supervision (chapter 6).

The operator is the ``share_coordinator`` setting (市大数据管理局); ``--actor`` names who acts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from govbus.catalog.outbox import OutboxRelay
from govbus.catalog.store import CatalogStore
from govbus.supervise.evaluation import evaluate
from govbus.supervise.ledger import Ledger, Violation
from govbus.supervise.metrics import write_evaluation_summary
from govbus.supervise.records import Period, department_years, period
from govbus.supervise.report import SCORE_CHART, department_report, write_html, write_xlsx
from govbus.supervise.rules import KINDS, STATES, kind_of
from govbus.supervise.sources import DEFAULT_DEAD_LETTER_THRESHOLD, detect, detect_from_database
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.clock import china_day, utc
from govbus.vocabulary.config import Settings
from govbus.vocabulary.errors import UserError


def _ledger(settings: Settings) -> Ledger:
    return Ledger(CatalogStore.for_settings(settings), operator=settings.share_coordinator)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-12-31") from None


def _kind(text: str) -> str:
    try:
        return kind_of(text).name
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction like 0.05") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction in [0, 1)")
    return value


def _line(v: Violation, ids: dict[str, str]) -> str:
    due = f" due {v.due.isoformat()}" if v.due else ""
    return (
        f"{v.id:>5}  {v.article:<6} {v.kind:<20} {ids.get(v.department, v.department):<10} "
        f"{v.state:<9}{due}  {v.summary[:90]}"
    )


def _list(args: argparse.Namespace, settings: Settings) -> int:
    ledger = _ledger(settings)
    spec = ledger.store.current()
    dept = Ledger.department_code(spec, args.department) if args.department else None
    found = ledger.violations(dept, args.kind, args.state, args.due_before)
    today = china_day(utc(None))
    if args.overdue:
        found = [v for v in found if v.overdue_on(today)]
    if args.json:
        for v in found:
            print(json.dumps(v.to_json(), ensure_ascii=False, sort_keys=True))
        return 0
    ids = {d.code: d.id for d in spec.departments}
    for v in found:
        print(_line(v, ids))
    print(f"{len(found)} violation(s)")
    return 0


def _show(args: argparse.Namespace, settings: Settings) -> int:
    ledger = _ledger(settings)
    v = ledger.get(args.id)
    dept = ledger.store.current().department(v.department)
    print(f"violation {v.id}: {v.state} — article {v.article} {v.kind} (episode {v.episode})")
    print(f"  department  {dept.name + ' ' + dept.id if dept else ''} ({v.department})")
    print(f"  subject     {v.subject}")
    print(f"  summary     {v.summary}")
    print(f"  occurred    {v.occurred_at.isoformat()}  (recorded {v.recorded_at.isoformat()})")
    if v.due:
        certain = "" if v.due_certain else " (uncertain: holiday data missing)"
        print(f"  due         {v.due.isoformat()}{certain}")
    print(f"  evidence    {json.dumps(v.evidence, ensure_ascii=False, sort_keys=True)}")
    print("  history:")
    for e in ledger.history(v.id):
        detail = json.dumps(e.detail, ensure_ascii=False, sort_keys=True)
        print(f"    {e.at.isoformat()}  {e.action:<9} {e.actor:<18} {detail}")
    return 0


def _notify(args: argparse.Namespace, settings: Settings) -> int:
    v = _ledger(settings).notify(args.id, args.actor, args.workdays, args.note)
    print(f"violation {v.id}: notice issued; rectify by {v.due.isoformat() if v.due else '?'}")
    return 0


def _respond(args: argparse.Namespace, settings: Settings) -> int:
    ledger = _ledger(settings)
    v = ledger.respond(args.id, args.actor, args.text, ledger.store.current())
    print(f"violation {v.id}: response recorded; the operator verifies and closes it")
    return 0


def _close(args: argparse.Namespace, settings: Settings) -> int:
    v = _ledger(settings).close(args.id, args.actor, args.reason)
    print(f"violation {v.id}: closed")
    return 0


def _escalate(args: argparse.Namespace, settings: Settings) -> int:
    ledger = _ledger(settings)
    if args.overdue:
        done = ledger.escalate_overdue(args.actor)
        print(f"escalated {len(done)} overdue notice(s): {', '.join(str(v.id) for v in done)}")
        return 0
    if args.id is None:
        raise UserError("give a violation ID, or --overdue for every notice past its deadline")
    v = ledger.escalate(args.id, args.actor)
    print(f"violation {v.id}: escalated into the report to the city government")
    return 0


def _record(args: argparse.Namespace, settings: Settings) -> int:
    ledger = _ledger(settings)
    v = ledger.record_other(
        args.department, args.reason, args.actor, ledger.store.current(), args.subject
    )
    print(f"violation {v.id}: recorded (article {v.article} {v.kind})")
    return 0


def _detect(args: argparse.Namespace, settings: Settings) -> int:
    ledger = _ledger(settings)
    now = utc(None)
    if args.database_only:
        found = detect_from_database(ledger.store, now)
    else:
        found = detect(settings, ledger.store, now, args.dead_letter_threshold)
    result = ledger.record(found.findings, found.cleared, now)
    print(
        f"{len(found.findings)} finding(s): {len(result.new)} new violation(s), "
        f"{result.known} already recorded, {len(result.closed)} closed (condition cleared)"
    )
    return 0


def _relay(args: argparse.Namespace, settings: Settings) -> int:
    store = CatalogStore.for_settings(settings)
    relay = OutboxRelay.for_settings(store, settings, topic=store.naming.supervision_topic)
    relay.ensure_topic(kafka_clients.admin_client(settings))
    try:
        sent = relay.run_all()
    finally:
        relay.close()
    print(f"relayed {sent} ledger event(s) to {relay.topic}")
    return 0


def _period(args: argparse.Namespace) -> Period:
    """The year to its end, or to ``--as-of``; a year still running: to today (China)."""
    today = china_day(utc(None))
    if args.year > today.year:
        raise UserError(f"--year {args.year} has not begun")
    return period(args.year, args.as_of or (today if args.year == today.year else None))


def _evaluate(args: argparse.Namespace, settings: Settings) -> int:
    ledger = _ledger(settings)
    p = _period(args)
    scores = evaluate(department_years(ledger.store, ledger, p))
    out: Path = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    xlsx = write_xlsx(scores, p, out / f"evaluation-{args.year}.xlsx")
    page = write_html(scores, p, out / f"evaluation-{args.year}.html")
    write_evaluation_summary(settings.state_dir, args.year, scores)
    for s in scores[:3]:
        print(f"  {s.rank}. {s.year.name} ({s.year.department_id}) {s.score:.1f} {s.grade}")
    print(f"evaluated {len(scores)} department(s) for {args.year} (data to {p.last_day})")
    print(f"wrote {xlsx} (chart '{SCORE_CHART}') and {page}")
    return 0


def _report(args: argparse.Namespace, settings: Settings) -> int:
    ledger = _ledger(settings)
    p = _period(args)
    spec = ledger.store.current()
    code = Ledger.department_code(spec, args.department)
    scores = evaluate(department_years(ledger.store, ledger, p))
    mine = next((s for s in scores if s.year.department_code == code), None)
    if mine is None:
        raise UserError(f"{args.department} was not in the catalog in {args.year}")
    vs = ledger.violations(code, occurred_from=p.start, occurred_until=p.cutoff)
    text = department_report(mine, len(scores), vs, p)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    v = sub.add_parser("violations", help="the article 26 violation ledger and rectification")
    vs = v.add_subparsers(dest="violations_command", required=True, metavar="COMMAND")

    p = vs.add_parser("list", help="violations, filtered")
    p.add_argument("--department", help="of this department (id or code)")
    p.add_argument("--kind", type=_kind, help=", ".join(f"{k.name} ({k.article})" for k in KINDS))
    p.add_argument("--state", choices=STATES)
    p.add_argument("--due-before", type=_date, help="rectification due strictly before this day")
    p.add_argument("--overdue", action="store_true", help="only notices past their deadline")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=_list)

    p = vs.add_parser("show", help="one violation with its evidence and every step")
    p.add_argument("id", type=int)
    p.set_defaults(handler=_show)

    p = vs.add_parser("notify", help="通知整改: notify the department, with a deadline")
    p.add_argument("id", type=int)
    p.add_argument("--actor", required=True, help="the operator's id")
    p.add_argument("--workdays", type=int, default=10, help="working days to rectify (10)")
    p.add_argument("--note", required=True, help="what must be rectified")
    p.set_defaults(handler=_notify)

    p = vs.add_parser("respond", help="the department says what it did")
    p.add_argument("id", type=int)
    p.add_argument("--actor", required=True, help="the department's id")
    p.add_argument("--text", required=True, help="what was done")
    p.set_defaults(handler=_respond)

    p = vs.add_parser("close", help="the operator verified the rectification")
    p.add_argument("id", type=int)
    p.add_argument("--actor", required=True, help="the operator's id")
    p.add_argument("--reason", required=True, help="what was verified")
    p.set_defaults(handler=_close)

    p = vs.add_parser("escalate", help="report an overdue notice to the city government")
    p.add_argument("id", type=int, nargs="?")
    p.add_argument("--actor", required=True, help="the operator's id")
    p.add_argument("--overdue", action="store_true", help="every notice past its deadline")
    p.set_defaults(handler=_escalate)

    p = vs.add_parser("record", help="26(7): record another violation, with its reason")
    p.add_argument("--department", required=True, help="the department (id or code)")
    p.add_argument("--reason", required=True, help="what it did against which article")
    p.add_argument("--actor", required=True, help="the operator's id")
    p.add_argument("--subject", help="names the episode (default: the time); a repeat is refused")
    p.set_defaults(handler=_record)

    p = vs.add_parser("detect", help="run every detector and record what it finds (idempotent)")
    p.add_argument(
        "--dead-letter-threshold",
        type=_fraction,
        default=DEFAULT_DEAD_LETTER_THRESHOLD,
        help=f"26(4): dead-letter rate above this is a violation ({DEFAULT_DEAD_LETTER_THRESHOLD})",
    )
    p.add_argument(
        "--database-only",
        action="store_true",
        help="only 26(1), 26(3), 26(6), which need no broker",
    )
    p.set_defaults(handler=_detect)

    p = vs.add_parser("relay", help="publish pending ledger events to govbus.supervision")
    p.set_defaults(handler=_relay)

    p = sub.add_parser("evaluate", help="the yearly evaluation: xlsx with charts and HTML")
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--as-of", type=_date, help="cut-off day for a running year (default: today)")
    p.add_argument("--output-dir", type=Path, default=Path("."), help="where to write (.)")
    p.set_defaults(handler=_evaluate)

    p = sub.add_parser("report", help="draft a department's January report (article 20)")
    p.add_argument("--department", required=True, help="id or code")
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--as-of", type=_date, help="cut-off day for a running year (default: today)")
    p.add_argument("--output", help="write Markdown here (default: standard output)")
    p.set_defaults(handler=_report)
