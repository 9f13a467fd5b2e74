"""`govbus federation`: agreements between platforms and the MirrorMaker 2 flows they open.

govbus --platform tianning federation offer tn-city-1 --to city --resource CODE --catalog
govbus --platform city federation accept tn-city-1 --share-type conditional --consumer cz-mzj
govbus federation plan | apply          (every platform of the state directory)
govbus --platform city federation run   (the flows into the city, until Ctrl-C)
govbus --platform city federation cascade tianning   (the district's catalog → the city's)
govbus --platform city federation revoke tn-city-1 --reason "..."
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import threading
from types import FrameType

from govbus.catalog.store import CatalogStore
from govbus.cli.options import add_port_option, serve_option
from govbus.federation.agreements import Agreement, AgreementBook, AgreementError, offer
from govbus.federation.cascade import district_of, mirrored_catalog
from govbus.federation.mm2 import Tuning
from govbus.federation.needs import flow_of
from govbus.federation.runner import FlowRunner
from govbus.reconcile.plan import Change, Plan, apply
from govbus.reconcile.planner import plan_for
from govbus.vocabulary import kafka
from govbus.vocabulary.config import Settings
from govbus.vocabulary.platforms import (
    PlatformError,
    list_platforms,
    platform_settings,
    read_platform,
    root_settings,
)
from govbus.vocabulary.secrets import PasswordStore


def _need_platform(settings: Settings, what: str) -> str:
    if not settings.platform:
        raise PlatformError(
            f"{what} is done by one platform: add --platform ID before `federation` "
            "(e.g. `govbus --platform city federation ...`)"
        )
    return settings.platform


def _book(settings: Settings) -> AgreementBook:
    return AgreementBook(root_settings(settings).state_dir)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _offer(args: argparse.Namespace, settings: Settings) -> int:
    source = _need_platform(settings, "an offer")
    root = root_settings(settings)
    read_platform(root, args.to)  # the peer must exist
    with CatalogStore.opened(settings) as store:
        spec = store.current()
    naming = settings.naming
    agreement = offer(
        args.id,
        source,
        args.to,
        spec,
        args.resource or [],
        catalog=args.catalog,
        by=args.by or f"{source} operator",
        now=_now(),
        resource_topic=naming.resource_topic,
        catalog_topic=naming.catalog_topic,
    )
    path = _book(settings).add(agreement)
    print(f"offered {agreement.id}: {source} → {args.to}, {_what(agreement)} ({path})")
    print(f"next: `govbus --platform {args.to} federation accept {agreement.id} ...`")
    return 0


def _what(agreement: Agreement) -> str:
    parts = [f"{r.code} {r.name}" for r in agreement.resources]
    if agreement.catalog:
        parts.append("the catalog")
    return "; ".join(parts)


def _accept(args: argparse.Namespace, settings: Settings) -> int:
    target = _need_platform(settings, "an acceptance")
    book = _book(settings)
    agreement = book.get(args.id)
    with CatalogStore.opened(settings) as store:
        departments = [d.id for d in store.current().departments]
    accepted = agreement.accept(
        target,
        args.share_type,
        args.consumer or [],
        by=args.by or f"{target} operator",
        now=_now(),
        known_departments=departments,
    )
    book.save(accepted)
    readers = ", ".join(accepted.consumers) or "every department"
    print(f"accepted {accepted.id}: {accepted.flow} as {accepted.share_type}; readers: {readers}")
    print(f"next: `govbus federation apply`, then `govbus --platform {target} federation run`")
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    book = _book(settings)
    agreements = book.involving(settings.platform) if settings.platform else book.all()
    for a in agreements:
        readers = ""
        if a.accepted_at:
            readers = f"  {a.share_type}: {', '.join(a.consumers) or 'every department'}"
        revoked = f"  (by {a.revoked_by}: {a.revoke_reason})" if a.revoked_at else ""
        print(f"{a.id}  {a.source} → {a.target}  {a.state}{readers}{revoked}")
        for r in a.resources:
            print(f"    {r.topic} → {a.target}:{a.source}.{r.topic}  {r.name} ({r.provider_name})")
        if a.catalog:
            print(
                f"    {a.source_catalog_topic} → {a.target}:{a.source}.{a.source_catalog_topic}"
                "  the catalog (cascade)"
            )
    if not agreements:
        print("no agreements")
    return 0


def _platform_ids(settings: Settings) -> list[str]:
    root = root_settings(settings)
    if settings.platform:
        ids = {settings.platform}
        for a in _book(settings).involving(settings.platform):
            ids |= {a.source, a.target}
        return sorted(ids)
    return [p.id for p in list_platforms(root)]


def _is_federation(change: Change, settings: Settings, peers: list[str]) -> bool:
    """A change of the reconciler's plan that the federation makes or leaves behind."""
    if change.reason.startswith("federation "):
        return True
    mirror = settings.naming.app_user("mirror-")
    if change.kind == "user":
        return change.name.startswith(mirror)
    if change.acl is not None:
        remote = tuple(f"{p}." for p in peers)
        return change.acl.principal.startswith(f"User:{mirror}") or (
            change.acl.resource_name.startswith(remote)
        )
    return False


def _plans(settings: Settings) -> list[tuple[Settings, Plan]]:
    root = root_settings(settings)
    ids = _platform_ids(settings)
    out = []
    for platform_id in ids:
        on = platform_settings(root, platform_id)
        plan, _ = plan_for(on)
        mine = [c for c in plan.changes if _is_federation(c, on, ids)]
        out.append((on, Plan(mine)))
    return out


def _show_flows(settings: Settings) -> None:
    agreements = _book(settings).all()
    for a in agreements:
        if a.active and (not settings.platform or settings.platform in (a.source, a.target)):
            for line in flow_of(a, settings.naming).render():
                print(line)


def _plan(args: argparse.Namespace, settings: Settings) -> int:
    _show_flows(settings)
    for on, plan in _plans(settings):
        print(f"platform {on.platform}:")
        for line in plan.render() or ["no changes"]:
            print(f"  {line}")
    return 0


def _apply_on(on: Settings, plan: Plan) -> list[str]:
    admin = kafka.admin_client(on)
    return apply(plan, admin, PasswordStore(on.state_dir, on.naming)).render()


def _apply(args: argparse.Namespace, settings: Settings) -> int:
    _show_flows(settings)
    for on, plan in _plans(settings):
        print(f"platform {on.platform}:")
        for line in _apply_on(on, plan) or ["no changes"]:
            print(f"  {line}")
    return 0


def _revoke(args: argparse.Namespace, settings: Settings) -> int:
    platform = _need_platform(settings, "a revocation")
    book = _book(settings)
    revoked = book.get(args.id).revoke(platform, args.reason, _now())
    book.save(revoked)
    print(f"revoked {revoked.id} ({revoked.flow}) as {platform}: {args.reason}")
    # Access ends now, on both sides: the flow's principal and the copies' readers lose their
    # ACLs (the runner stops the flow on its next loop; without READ it could not go on).
    root = root_settings(settings)
    for platform_id in (revoked.source, revoked.target):
        on = platform_settings(root, platform_id)
        plan, _ = plan_for(on)
        ids = [revoked.source, revoked.target]
        mine = Plan(
            [c for c in plan.changes if _is_federation(c, on, ids) and c.action == "delete"]
        )
        for line in _apply_on(on, mine):
            print(f"  {platform_id}: {line}")
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    target = _need_platform(settings, "running the flows")
    serve_option(args.metrics_port)
    runner = FlowRunner(
        settings, Tuning(), lag_interval=args.lag_interval, stall_seconds=args.stall_seconds
    )
    if not runner.flows():
        raise AgreementError(
            f"no active agreement sends anything to {target}: `govbus federation list` shows "
            "them; an offer is active once the receiving platform accepted it"
        )
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    print(f"running the flows into {target} (Ctrl-C stops)", flush=True)
    runner.report = lambda line: print(line, flush=True)
    runner.run(stop)
    return 0


def _cascade(args: argparse.Namespace, settings: Settings) -> int:
    city = _need_platform(settings, "the catalog cascade")
    read_platform(root_settings(settings), args.peer)
    topic, spec = mirrored_catalog(settings, args.peer)
    region = district_of(spec, args.peer)
    with CatalogStore.opened(settings) as store:
        before = store.latest_number()
        number = store.apply(
            spec,
            author=f"federation:{args.peer}",
            reason=f"catalog cascade from {args.peer} ({topic})",
            district=region,
        )
    if number == before:
        print(f"no change: {city}'s catalog already holds {args.peer}'s (district {region})")
    else:
        print(
            f"catalog version {number}: {args.peer}'s catalog is district {region}'s part of "
            f"{city}'s catalog"
        )
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    fed = sub.add_parser(
        "federation",
        help="agreements between platforms (articles 8, 13) and their MirrorMaker 2 flows",
    )
    fs = fed.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = fs.add_parser("offer", help="offer resources (and the catalog) to a peer platform")
    p.add_argument("id", help="the agreement's id (lower-case letters, digits, -)")
    p.add_argument("--to", required=True, metavar="PLATFORM", help="the receiving platform")
    p.add_argument("--resource", action="append", metavar="CODE", help="a resource (repeatable)")
    p.add_argument("--catalog", action="store_true", help="send the catalog events too (cascade)")
    p.add_argument("--by", help="who makes the offer (default: the platform's operator)")
    p.set_defaults(handler=_offer)

    p = fs.add_parser("accept", help="accept an offer made to this platform")
    p.add_argument("id")
    p.add_argument(
        "--share-type",
        required=True,
        choices=("unconditional", "conditional"),
        help="how the copies are shared here",
    )
    p.add_argument(
        "--consumer",
        action="append",
        metavar="DEPT",
        help="a department of this platform that reads the copies (repeatable)",
    )
    p.add_argument("--by", help="who accepts (default: the platform's operator)")
    p.set_defaults(handler=_accept)

    fs.add_parser("list", help="agreements (of --platform, or all)").set_defaults(handler=_list)

    p = fs.add_parser("revoke", help="end an agreement: the flow stops, its ACLs are removed")
    p.add_argument("id")
    p.add_argument("--reason", required=True, help="why (recorded in the agreement)")
    p.set_defaults(handler=_revoke)

    fs.add_parser(
        "plan", help="replication flows and the ACLs they need, with reasons"
    ).set_defaults(handler=_plan)
    fs.add_parser("apply", help="create and remove the federation's users and ACLs").set_defaults(
        handler=_apply
    )

    p = fs.add_parser("run", help="run the flows into --platform (MirrorMaker 2) until stopped")
    add_port_option(p)
    p.add_argument(
        "--lag-interval", type=float, default=10.0, help="seconds between lag measurements (10)"
    )
    p.add_argument(
        "--stall-seconds",
        type=float,
        default=120.0,
        help="restart a flow with records waiting and no new copy for this long (120)",
    )
    p.set_defaults(handler=_run)

    p = fs.add_parser("cascade", help="store a district's mirrored catalog as its part here")
    p.add_argument("peer", metavar="PLATFORM", help="the district platform")
    p.set_defaults(handler=_cascade)
