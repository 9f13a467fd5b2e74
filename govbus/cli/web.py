"""`govbus web serve | user add | users`: the web console and its accounts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from govbus.accounts.store import ROLES, Accounts
from govbus.catalog.store import CatalogStore
from govbus.vocabulary.config import Settings
from govbus.vocabulary.errors import UserError
from govbus.web.server import serve


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    serve(
        settings,
        args.host,
        args.port,
        secure_cookies=not args.plain_http_cookies,
        grafana_url=args.grafana_url,
    )
    return 0


def _password(path: Path | None) -> str:
    if path is None:
        if sys.stdin.isatty():
            raise UserError("give the password in a file: --password-file FILE (or - for stdin)")
        return sys.stdin.readline().strip()
    if str(path) == "-":
        return sys.stdin.readline().strip()
    return path.read_text(encoding="utf-8").strip()


def _user_add(args: argparse.Namespace, settings: Settings) -> int:
    password = _password(args.password_file)
    with CatalogStore.opened(settings) as store:
        accounts = Accounts(store, coordinator=settings.share_coordinator)
        made = accounts.create(args.username, password, args.department, args.role, args.name or "")
    print(f"account {made.username}: {made.role} of {made.department}")
    return 0


def _users(args: argparse.Namespace, settings: Settings) -> int:
    with CatalogStore.opened(settings) as store:
        accounts = Accounts(store, coordinator=settings.share_coordinator).all_accounts()
    for a in accounts:
        print(f"{a.username}  {a.role}  {a.department}  {a.display_name}")
    print(f"{len(accounts)} account(s)", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    top = sub.add_parser("web", help="the web console (共享门户) and its accounts")
    wsub = top.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = wsub.add_parser("serve", help="serve the web console until Ctrl-C")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (8080)")
    p.add_argument(
        "--grafana-url", default="http://127.0.0.1:3000", help="Grafana the overview links to"
    )
    p.add_argument(
        "--plain-http-cookies",
        action="store_true",
        help="session cookies without the Secure flag (plain HTTP beyond localhost; avoid)",
    )
    p.set_defaults(handler=_serve)

    p = wsub.add_parser("user", help="manage console accounts")
    usub = p.add_subparsers(dest="user_action", metavar="ACTION", required=True)
    p = usub.add_parser("add", help="create an account for a department")
    p.add_argument("username", help="login name: lower-case letters, digits, . _ -")
    p.add_argument("--department", required=True, help="the department's id (its principal)")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--name", help="display name, e.g. 张三")
    p.add_argument(
        "--password-file", type=Path, help="file with the password (- reads one line of stdin)"
    )
    p.set_defaults(handler=_user_add)

    p = wsub.add_parser("users", help="list the console accounts")
    p.set_defaults(handler=_users)
