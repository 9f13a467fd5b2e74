"""`govbus catalog ...`: import, check, show, compare, search the catalog; triggers and deadlines.

The catalog lives in the database named by ``catalog_dsn`` (SQLite under the state directory
unless set). Files are YAML (canonical), xlsx, or a directory of CSV files.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections import Counter
from pathlib import Path

from govbus.catalog import rules, sheets
from govbus.catalog.deadlines import deadlines, record_trigger
from govbus.catalog.outbox import OutboxRelay
from govbus.catalog.search import SearchIndex
from govbus.catalog.sheets import read_catalog_file
from govbus.catalog.store import CatalogStore
from govbus.catalog.yaml_io import SAMPLE_CATALOG_PATH, dump_yaml, load_yaml, to_yaml_text
from govbus.cli.options import add_encoding_option
from govbus.federation.agreements import AgreementBook
from govbus.federation.cascade import mirrored_catalog
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.config import Settings
from govbus.vocabulary.errors import UserError
from govbus.vocabulary.platforms import platform_settings, read_platform, root_settings
from govbus.vocabulary.schemas import write_schemas
from govbus.vocabulary.spec import CatalogSpec


def read_catalog(path: Path, encoding: str | None = None) -> CatalogSpec:
    """Any of the catalog's file forms, by extension: .yaml/.yml, .xlsx, or a CSV directory.

    ``encoding`` is that of CSV files (None: detect UTF-8 or GB18030/GBK).
    """
    if not path.exists():
        raise UserError(
            f"{path}: no such file or directory; a catalog is a .yaml or .xlsx file or a "
            "directory of CSV files"
        )
    if path.suffix.lower() in (".yaml", ".yml"):
        return load_yaml(path)
    return read_catalog_file(path, encoding)  # .xlsx, or a directory of CSV files


def is_stream(path: Path) -> bool:
    """``-`` (standard output), or a device or pipe such as /dev/stdout: written as a stream,
    never replaced through a temporary file."""
    if str(path) == "-":
        return True
    if path.is_dir():
        return False
    return str(path).startswith("/dev/") or (path.exists() and not path.is_file())


def write_catalog(spec: CatalogSpec, path: Path) -> None:
    """Write by the name: ``-`` or a device is YAML to it, .yaml/.yml, .xlsx, else a directory
    of CSV files (created if needed)."""

    if is_stream(path):
        text = to_yaml_text(spec)
        if str(path) == "-":
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            with path.open("w", encoding="utf-8") as stream:
                stream.write(text)
        return
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml", ".xlsx") and not path.parent.is_dir():
        raise UserError(f"cannot write {path}: the directory {path.parent} does not exist")
    if suffix in (".yaml", ".yml"):
        dump_yaml(spec, path)
        return

    if suffix == ".xlsx":
        sheets.write_xlsx(spec, path)
        return
    if path.is_file() or suffix == ".csv":
        raise UserError(
            f"cannot write the catalog to {path}: give a .yaml or .xlsx file, a directory for "
            "the CSV files (departments.csv, resources.csv, ...), or - for standard output"
        )
    sheets.write_csv_dir(spec, path)


def _store(settings: Settings) -> CatalogStore:
    return CatalogStore.for_settings(settings)


def _scoped(args: argparse.Namespace) -> bool:
    return args.department is not None or args.district is not None


def _what(args: argparse.Namespace) -> str:
    if args.department is not None:
        return f"department {args.department}'s catalog"
    if args.district is not None:
        return f"district {args.district}'s catalog"
    return "the catalog"


def _validate(args: argparse.Namespace, settings: Settings) -> int:
    spec = read_catalog(args.file, args.encoding)
    if _scoped(args):
        # A part is checked against the rest of the stored catalog; nothing is stored.
        diff = _store(settings).check(spec, department=args.department, district=args.district)
        print(
            f"{args.file}: {len(spec.resources)} resources as {_what(args)}: every rule passes "
            f"with the rest of the city; importing it would change: {diff.summary()}"
        )
        return 0
    problems = rules.validate(spec)
    for v in problems:
        print(f"{v.rule}: {v.message}")
    if problems:
        print(
            f"govbus: error: {args.file}: breaks {len(problems)} rule(s), listed above; "
            "nothing was imported",
            file=sys.stderr,
        )
        return 1
    print(
        f"{args.file}: {len(spec.departments)} departments, {len(spec.resources)} resources, "
        f"{sum(len(r.items) for r in spec.resources)} info items: all rules pass"
    )
    return 0


def _import(args: argparse.Namespace, settings: Settings) -> int:
    args.file = args.file or SAMPLE_CATALOG_PATH
    spec = read_catalog(args.file, args.encoding)
    store = _store(settings)
    before = store.latest_number()
    number = store.apply(
        spec,
        author=args.author,
        reason=args.reason,
        department=args.department,
        district=args.district,
    )
    if number == before:
        print(f"no change: {_what(args)} already matches {args.file} (version {number})")
    else:
        summary = store.history()[-1].summary if _scoped(args) else ""
        note = f" as {_what(args)} ({summary})" if summary else ""
        print(f"catalog version {number}: imported {args.file}{note}")
    return 0


def _export(args: argparse.Namespace, settings: Settings) -> int:
    store = _store(settings)
    if args.version is not None and args.as_of is not None:
        raise UserError("give --version or --as-of, not both")
    version = args.version
    if args.as_of is not None:
        version = store.version_at(args.as_of)
    # A missing version is one line naming the versions there are (VersionNotFoundError).
    if _scoped(args):
        spec = store.part(version=version, department=args.department, district=args.district)
    else:
        spec = store.version(version) if version is not None else store.current()
    write_catalog(spec, args.file)
    where = "standard output" if str(args.file) == "-" else args.file
    # On standard output the catalog is the output; the note goes to stderr.
    note = sys.stderr if is_stream(args.file) else sys.stdout
    print(f"wrote {len(spec.resources)} resources to {where}", file=note)
    return 0


def _show_platform(args: argparse.Namespace, settings: Settings) -> int:
    """``--platform P``: P's own catalog, or, run on another platform, P as seen there: the
    mirrored entries of the active agreements from P and P's mirrored catalog (article 8)."""
    peer = args.show_platform
    root = root_settings(settings)
    read_platform(root, peer)
    if not settings.platform or settings.platform == peer:
        with CatalogStore.opened(platform_settings(root, peer)) as store:
            spec = store.current()
        names = {d.code: d.name for d in spec.departments}
        for r in spec.resources:
            print(f"{r.code}  {r.share_type:<13} {r.name}  ({names.get(r.provider, r.provider)})")
        print(f"{len(spec.resources)} resources, {len(spec.departments)} departments of {peer}")
        return 0
    here = settings.platform
    agreements = [
        a
        for a in AgreementBook(root.state_dir).all()
        if a.active and a.source == peer and a.target == here
    ]
    if not agreements:
        raise UserError(
            f"{here} has no active agreement with {peer}: nothing of {peer} is mirrored here "
            "(`govbus federation list`)"
        )
    for a in agreements:
        readers = ", ".join(a.consumers) or "every department"
        for offered in a.resources:
            topic = settings.naming.mirrored_topic(peer, offered.topic)
            print(
                f"{offered.code}  mirrored      {offered.name}  ({offered.provider_name}, "
                f"{peer})  {topic}  "
                f"{a.share_type} here: {readers}"
            )
    if any(a.catalog for a in agreements):
        topic, spec = mirrored_catalog(settings, peer)
        names = {d.code: d.name for d in spec.departments}
        print(f"{peer}'s catalog as mirrored to {here} ({topic}):")
        for r in spec.resources:
            print(
                f"  {r.code}  {r.share_type:<13} {r.name}  "
                f"({names.get(r.provider, r.provider)}, {peer})"
            )
        print(f"  {len(spec.resources)} resources, {len(spec.departments)} departments")
    return 0


def _show(args: argparse.Namespace, settings: Settings) -> int:
    if args.show_platform:
        return _show_platform(args, settings)
    store = _store(settings)
    spec = (
        store.part(department=args.department, district=args.district)
        if _scoped(args)
        else store.current()
    )
    if args.resource:
        resource = spec.resource(args.resource)
        if resource is None:
            raise UserError(
                f"no resource {args.resource} in the catalog: `govbus catalog show` lists the "
                "resource codes, `govbus catalog search WORD` finds one by an info item"
            )
        one = CatalogSpec(
            tuple(d for d in spec.departments if d.code == resource.provider), (resource,)
        )
        print(to_yaml_text(one), end="")
        return 0
    names = {d.code: d.name for d in spec.departments}
    for r in spec.resources:
        print(f"{r.code}  {r.share_type:<13} {r.name}  ({names.get(r.provider, r.provider)})")
    if _scoped(args):
        mine = {r.provider for r in spec.resources}
        print(f"{len(spec.resources)} resources of {_what(args)} ({len(mine)} provider(s))")
    else:
        print(f"{len(spec.resources)} resources, {len(spec.departments)} departments")
    return 0


def _diff(args: argparse.Namespace, settings: Settings) -> int:
    diff = _store(settings).diff(args.a, args.b)
    for line in diff.render():
        print(line)
    return 0


def _history(args: argparse.Namespace, settings: Settings) -> int:
    for v in _store(settings).history(department=args.department):
        print(
            f"v{v.number}  {v.created_at:%Y-%m-%d %H:%M}  {v.scope}  {v.author}: {v.reason}  "
            f"[{v.summary}]"
        )
    return 0


def _search(args: argparse.Namespace, settings: Settings) -> int:
    if not args.query.strip():
        raise UserError("give a word to search for, e.g. `govbus catalog search 身份`")
    hits = SearchIndex.build(_store(settings).current()).search(args.query, limit=args.limit)
    if not hits:
        print(f"no info item matches {args.query!r}")
        return 1
    for h in hits:
        print(f"{h.item_name} ({h.item_code})  {h.resource_name} {h.resource_code}")
        print(f"    {h.role}: {h.provider_name}  share: {h.share_type}  → {h.how_to_get}")
    return 0


def _schemas(args: argparse.Namespace, settings: Settings) -> int:
    paths = write_schemas(_store(settings).current(), args.dir)
    print(f"wrote {len(paths)} Avro schemas to {args.dir}")
    return 0


def _trigger(args: argparse.Namespace, settings: Settings) -> int:
    if not args.description.strip():
        raise UserError("--description is empty: say which law or mandate changed, and how")
    info = record_trigger(
        _store(settings), args.kind, args.description, args.department, args.starts_on
    )
    print(f"trigger {info.id} recorded; catalog updates due within 15 working days:")
    for d in info.deadlines:
        note = "" if d.certain else f"  (uncertain: {d.reason})"
        print(f"  {d.department}: due {d.due}{note}")
    return 0


def _deadlines(args: argparse.Namespace, settings: Settings) -> int:
    rows = deadlines(
        _store(settings), args.today, department=args.department, district=args.district
    )
    for d in rows:
        note = "" if d.certain else f"  (uncertain: {d.reason})"
        met = f" by version {d.met_by_version}" if d.met_by_version is not None else ""
        name = f" {d.department_name}" if d.department_name else ""
        print(
            f"{d.state:<8} {d.department}{name}  district {d.region or '-'}  due {d.due}  "
            f"trigger {d.trigger}{met}{note}"
        )
    if not rows:
        print(f"no catalog update deadlines recorded for {_what(args)}")
        return 0
    # Per department and per district: how many are open, met and overdue.
    for label, key in (("department", "department"), ("district", "region")):
        counts: dict[str, Counter[str]] = {}
        for d in rows:
            counts.setdefault(getattr(d, key) or "-", Counter())[d.state] += 1
        for who, c in sorted(counts.items()):
            print(f"{label} {who}: {c['open']} open, {c['met']} met, {c['overdue']} overdue")
    return 0


def _relay(args: argparse.Namespace, settings: Settings) -> int:
    relay = OutboxRelay.for_settings(_store(settings), settings)
    relay.ensure_topic(kafka_clients.admin_client(settings))
    sent = relay.run_once()
    print(f"relayed {sent} catalog event(s) to {relay.topic}")
    return 0


def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _when(text: str) -> dt.datetime:
    """A date (its end, China time) or a date and time (China time unless it says)."""
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime.combine(day, dt.time.max, tzinfo=CHINA_TZ)
        when = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date or time like 2026-01-31 or 2026-01-31T09:30"
        ) from exc
    return when if when.tzinfo else when.replace(tzinfo=CHINA_TZ)


def _add_scope(p: argparse.ArgumentParser, verb: str) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--department", metavar="ID", help=f"{verb} only this department's part (id or code)"
    )
    group.add_argument(
        "--district", metavar="REGION", help=f"{verb} only this district's catalog (e.g. 320402)"
    )


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    catalog = sub.add_parser("catalog", help="the resource catalog: import, search, versions")
    cs = catalog.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = cs.add_parser("validate", help="check a catalog file against every rule")
    p.add_argument("file", type=Path, help=".yaml, .xlsx or a directory of CSV files")
    _add_scope(p, "check the file as")
    add_encoding_option(p)
    p.set_defaults(handler=_validate)

    p = cs.add_parser("import", help="make a catalog file the new catalog version")
    p.add_argument("file", type=Path, nargs="?", default=None, help="default: the sample")
    p.add_argument("--author", default="operator", help="who makes the change")
    p.add_argument("--reason", default="catalog import", help="why (kept in the history)")
    _add_scope(p, "replace")
    add_encoding_option(p)
    p.set_defaults(handler=_import)

    p = cs.add_parser("export", help="write the catalog (or an old version) to a file")
    p.add_argument(
        "file", type=Path, help=".yaml, .xlsx, a directory for CSV files, or - (YAML to stdout)"
    )
    p.add_argument("--version", type=int, help="a past version number")
    p.add_argument(
        "--as-of", type=_when, help="the catalog as it was then: YYYY-MM-DD[THH:MM] (China time)"
    )
    _add_scope(p, "write")
    p.set_defaults(handler=_export)

    p = cs.add_parser("show", help="list resources, or show one in full")
    p.add_argument("resource", nargs="?", help="a resource code")
    _add_scope(p, "list")
    p.add_argument(
        "--platform",
        dest="show_platform",
        metavar="ID",
        help="a named platform's catalog; run on another platform (`govbus --platform city "
        "catalog show --platform tianning`): what that platform mirrors here",
    )
    p.set_defaults(handler=_show)

    p = cs.add_parser("diff", help="what changed between two catalog versions")
    p.add_argument("a", type=int)
    p.add_argument("b", type=int)
    p.set_defaults(handler=_diff)

    p = cs.add_parser("history", help="every catalog version: who, when, why")
    p.add_argument("--department", metavar="ID", help="only versions that changed its catalog")
    p.set_defaults(handler=_history)

    p = cs.add_parser("search", help="who holds an info item (article 17), by its name")
    p.add_argument("query", help="an info item name, e.g. 公民身份号码 or 身份")
    p.add_argument("--limit", type=int, default=10)
    p.set_defaults(handler=_search)

    p = cs.add_parser("schemas", help="write every resource's Avro schema")
    p.add_argument("--dir", type=Path, default=Path("schemas/avro"))
    p.set_defaults(handler=_schemas)

    p = cs.add_parser("trigger", help="record a law/mandate change: 15-working-day deadlines")
    p.add_argument("--kind", required=True, choices=("law-revised", "mandate-changed"))
    p.add_argument("--description", required=True)
    p.add_argument("--department", action="append", required=True, help="repeatable: codes")
    p.add_argument("--starts-on", type=_date, default=dt.date.today(), help="YYYY-MM-DD")
    p.set_defaults(handler=_trigger)

    p = cs.add_parser("deadlines", help="catalog update deadlines: open, met, overdue")
    p.add_argument("--today", type=_date, default=dt.date.today())
    _add_scope(p, "list")
    p.set_defaults(handler=_deadlines)

    cs.add_parser("relay", help="publish pending catalog events to Kafka").set_defaults(
        handler=_relay
    )
