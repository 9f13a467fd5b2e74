"""The demo's last part: one web-console account per role, and where the console answers.

The accounts belong to the sample catalog's departments: 民政局 (viewer, steward), 人社局
(approver, the provider of 就业创业人员信息) and 市大数据管理局 (operator). Each password is
generated once and kept under the state directory (``secrets/web/<user>.password``), so a
second demo prints the same logins and they keep working.
"""

from __future__ import annotations

from collections.abc import Callable

from govbus.accounts.store import Accounts
from govbus.catalog.store import CatalogStore
from govbus.vocabulary.config import Settings
from govbus.vocabulary.errors import Conflict
from govbus.vocabulary.secrets import ensure_secret

Printer = Callable[[str], None]

WEB_PORT = 8080  # `govbus web serve`'s default
# user name -> (department id, role, display name); the operator's is the share coordinator.
DEMO_ACCOUNTS: dict[str, tuple[str, str, str]] = {
    "mzj-viewer": ("cz-mzj", "viewer", "民政局 查看者"),
    "mzj-steward": ("cz-mzj", "steward", "民政局 数据专员"),
    "rsj-approver": ("cz-rsj", "approver", "人社局 审批人"),
    "dsjj-operator": ("", "operator", "大数据管理局 运营"),
}


def demo_accounts(settings: Settings) -> list[tuple[str, str, str, str]]:
    """(user name, password, department id, role) of each demo account, made if missing."""
    out = []
    with CatalogStore.opened(settings) as store:
        accounts = Accounts(store, coordinator=settings.share_coordinator)
        for username, (dept, role, name) in DEMO_ACCOUNTS.items():
            dept = dept or settings.share_coordinator
            password = ensure_secret(settings.state_dir, username, "web")
            try:
                accounts.create(username, password, dept, role, name)
            except Conflict:  # an earlier demo made it: the stored password is its password
                accounts.set_password(username, password)
            out.append((username, password, dept, role))
    return out


def run(settings: Settings, out: Printer) -> None:
    logins = demo_accounts(settings)
    out(
        f"24. web console: run `govbus web serve` (add --port N for another port), then open "
        f"http://127.0.0.1:{WEB_PORT}/ and log in as:"
    )
    for username, password, dept, role in logins:
        out(f"     {role:<9} {username:<14} password {password}   ({dept})")
