"""Helpers of the web console's tests: a console on a catalog store, accounts, logged-in
HTTP clients (Starlette's TestClient over https, so the Secure session cookie is sent)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.testclient import TestClient

from govbus.accounts.store import Accounts
from govbus.catalog.store import CatalogStore
from govbus.catalog.yaml_io import SAMPLE_CATALOG_PATH, load_yaml
from govbus.vocabulary.config import Settings
from govbus.vocabulary.spec import CatalogSpec
from govbus.web.app import build_app
from govbus.web.auth import LoginLimiter

PASSWORD = "correct-horse-7"
# The sample catalog of Changzhou: 人社局 provides 就业创业人员信息 (conditional).
EMPLOYMENT = "20101/11320400014100475P-000001"
# 民政局 provides 社会救助对象信息 (conditional).
ASSISTANCE = "20201/1132040001410023XJ-000002"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

# user name -> (department id, role)
USERS: dict[str, tuple[str, str]] = {
    "mzj-viewer": ("cz-mzj", "viewer"),
    "mzj-steward": ("cz-mzj", "steward"),
    "mzj-approver": ("cz-mzj", "approver"),
    "rsj-steward": ("cz-rsj", "steward"),
    "rsj-approver": ("cz-rsj", "approver"),
    "dsjj-operator": ("cz-dsjj", "operator"),
}


@dataclass
class ConsoleWorld:
    settings: Settings
    store: CatalogStore
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    secure: bool = True

    @property
    def accounts(self) -> Accounts:
        return Accounts(self.store, coordinator=self.settings.share_coordinator)

    def app(self) -> Starlette:
        return build_app(
            self.settings, store=self.store, secure_cookies=self.secure, limiter=self.limiter
        )

    def client(self, username: str | None = None) -> TestClient:
        client = TestClient(self.app(), base_url="https://testserver")
        if username is not None:
            response = login(client, username, PASSWORD)
            assert response.status_code == 200 and "/login" not in str(response.url), response.text
        return client


def make_world(
    state_dir: Path, dsn: str | None = None, spec: CatalogSpec | None = None
) -> ConsoleWorld:
    """A migrated store with the catalog (default: the sample) and the accounts of ``USERS``."""
    settings = Settings(
        state_dir=state_dir,
        catalog_dsn=dsn or "",
        bootstrap_servers="127.0.0.1:1",  # nothing listens: no test here reaches Kafka
    )
    store = CatalogStore.for_settings(settings)
    store.migrate()
    store.apply(spec or load_yaml(SAMPLE_CATALOG_PATH), author="test", reason="test catalog")
    world = ConsoleWorld(settings, store)
    for username, (dept, role) in USERS.items():
        world.accounts.create(username, PASSWORD, dept, role)
    return world


def csrf(client: TestClient, path: str = "/login") -> str:
    found = CSRF.search(client.get(path).text)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def login(client: TestClient, username: str, password: str):  # type: ignore[no-untyped-def]
    token = csrf(client)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token, "next": "/"},
    )


def post(client: TestClient, path: str, data: dict[str, object]):  # type: ignore[no-untyped-def]
    """A form POST with the session's CSRF token; redirects are not followed."""
    token = csrf(client, "/catalog")
    return client.post(path, data={**data, "csrf_token": token}, follow_redirects=False)
