"""The web console in a real headless browser: Playwright driving Debian's chromium against
``govbus web serve``'s app (uvicorn, in a thread), on the real broker with the dispute app
running as its own worker process, in a namespace of the test's own.

Story: 民政局's steward applies for 公安局's conditional resource; another department's
approver is refused; the provider's approver is refused a denial without a reason and with
boilerplate, then approves, and the grant appears for both. A holder's steward files a doubt;
the provider's steward acknowledges and resolves it; the operator's open dispute list shows
each step live (server-sent events from the dispute topics), without reloading.

Screenshots of the main pages go to ``$GOVBUS_WEB_SCREENSHOTS`` (docs/console/ holds the
committed ones), else to the test's temporary directory.

Chromium is started as the machine notes require (no sandbox as root, no GPU, no background
networking); Playwright gives every launch a new, empty user-data directory of its own.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from confluent_kafka.admin import AdminClient
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from govbus.catalog.store import CatalogStore
from govbus.share.requests import ShareRequests
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.config import Settings
from govbus.vocabulary.processes import stop_process
from govbus.vocabulary.spec import CatalogSpec, InfoItem
from stream_apps.disputes import app as disputes_app
from stream_apps.registry import AppContext
from tests.factories import person_resource
from tests.integration.test_disputes import PARTITIONS, DisputesExchange, citizen
from tests.integration.test_disputes import catalog as disputes_catalog
from tests.webconsole import PASSWORD, ConsoleWorld

pytestmark = pytest.mark.kafka

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PORTS = range(39000, 39400)
LIVE_MS = 120_000  # the dispute app's answer under a loaded machine (not a timing assert)


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail("no free port in 39000..39399 for the console")


def browser_catalog(ex: DisputesExchange) -> CatalogSpec:
    """The disputes tests' catalog (公安局 provides, 市场监管局 holds a copy of the name, 民政局,
    大数据局 operates) plus 公安局's conditional 机动车驾驶证信息, for the share requests."""
    spec = disputes_catalog(ex)
    gaj = spec.departments[0]
    # The catalog store checks the city's rules, which the disputes tests' catalog need not.
    population = dataclasses.replace(
        spec.resources[0], base_category="population", share_methods=("system-integration",)
    )
    licence = person_resource(
        (
            InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),
            InfoItem("准驾车型", "driving_class", "C", 10),
        ),
        provider=gaj.code,
        code=f"30101/{gaj.code}-000002",
        name="机动车驾驶证信息",
        abstract="驾驶证",
        category=("交通", "驾驶证"),
        share_type="conditional",
        share_conditions="用于履行法定职责",
        share_methods=("online-lookup",),
        purposes=("administrative-basis",),
    )
    return dataclasses.replace(spec, resources=(population, licence))


@dataclasses.dataclass
class Live:
    url: str
    world: ConsoleWorld
    ex: DisputesExchange
    browser: Browser
    shots: Path

    def open(self, username: str) -> tuple[BrowserContext, Page]:
        """A browser context of its own (own cookies), logged in as ``username``."""
        ctx = self.browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        page = ctx.new_page()
        page.goto(f"{self.url}/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("#who")).to_contain_text(username)
        return ctx, page

    def shot(self, page: Page, name: str) -> None:
        page.screenshot(path=str(self.shots / f"{name}.png"))

    @property
    def share(self) -> ShareRequests:
        return ShareRequests(self.world.store, coordinator=self.world.settings.share_coordinator)


@pytest.fixture(scope="module")
def live(
    admin: AdminClient, kafka_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("web")
    with DisputesExchange(
        admin=admin, settings=kafka_settings, state_dir=tmp / "state", tmp=tmp
    ) as ex:
        ex.spec = browser_catalog(ex)
        context = AppContext(ex.naming, partitions=PARTITIONS, operator=ex.id("dsj"))
        needs = disputes_app.needs(ex.spec, context)
        ex.reconcile(ex.desired(partitions=PARTITIONS, stream_apps=[needs]))
        ex.start_worker()
        settings = dataclasses.replace(
            kafka_settings,
            state_dir=ex.state_dir,
            namespace=ex.naming.prefix,
            share_coordinator=ex.id("dsj"),
            catalog_dsn=f"sqlite:///{tmp / 'catalog.db'}",
            admin_password=kafka_clients.admin_password_of(kafka_settings),
        )
        store = CatalogStore.for_settings(settings)
        store.migrate()
        store.apply(ex.spec, author="test", reason="the browser test's catalog")
        world = ConsoleWorld(settings, store)
        for label, role in [
            ("mzj", "steward"),
            ("mzj", "approver"),
            ("gaj", "approver"),
            ("gaj", "steward"),
            ("scj", "steward"),
            ("dsj", "operator"),
        ]:
            world.accounts.create(f"{label}-{role}", PASSWORD, ex.id(label), role)  # fmt: skip
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                world.app(), host="127.0.0.1", port=port, log_level="warning",
                timeout_graceful_shutdown=5,
            )
        )  # fmt: skip
        thread = threading.Thread(target=server.run, name="console", daemon=True)
        thread.start()
        while not server.started:
            assert thread.is_alive(), "the console's server did not start"
            time.sleep(0.1)
        shots = Path(os.environ.get("GOVBUS_WEB_SCREENSHOTS") or tmp / "shots")
        shots.mkdir(parents=True, exist_ok=True)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
                try:
                    yield Live(f"http://127.0.0.1:{port}", world, ex, browser, shots)
                finally:
                    browser.close()
        finally:
            server.should_exit = True
            thread.join(30)
            store.dispose()
            for proc in ex.workers:
                stop_process(proc, signal.SIGTERM)


def forged_post(ctx: BrowserContext, page: Page, url: str, form: dict[str, str]) -> tuple[int, str]:
    """What a user could send without the page offering the button: the session's own CSRF
    token (from the page), the form posted directly."""
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    response = ctx.request.post(url, form={**form, "csrf_token": token}, max_redirects=0)
    return response.status, response.text()


def test_apply_refusals_approve_and_the_grant_appears(live: Live) -> None:
    licence = live.ex.spec.resources[-1]
    login_ctx = live.browser.new_context(viewport={"width": 1366, "height": 768})
    login_page = login_ctx.new_page()
    login_page.goto(f"{live.url}/login")
    live.shot(login_page, "01-login")
    login_ctx.close()

    consumer_ctx, consumer = live.open("mzj-steward")
    consumer.goto(f"{live.url}/catalog")
    expect(consumer.locator("#resources")).to_contain_text("机动车驾驶证信息")
    live.shot(consumer, "02-catalog")
    consumer.goto(f"{live.url}/catalog/search?q=公民身份号码")
    expect(consumer.locator("#hits")).to_contain_text("权威提供部门")
    live.shot(consumer, "03-search")
    consumer.goto(f"{live.url}/catalog/r/{licence.code}")
    expect(consumer.locator("#resource-code")).to_have_text(licence.code)
    live.shot(consumer, "04-resource")
    consumer.click("#apply")
    consumer.select_option("select[name=purpose]", "administrative-basis")
    consumer.fill("textarea[name=duty]", "交通违法联合惩戒核查")
    consumer.fill("input[name=until]", "2099-12-31")
    consumer.check("input[name=items][value=driving_class]")
    consumer.click("#apply-form button[type=submit]")
    expect(consumer.locator("#request-state")).to_have_text("待答复")
    expect(consumer.locator("#countdown")).to_contain_text("个工作日")
    request_id = int(re.findall(r"/requests/(\d+)$", consumer.url)[0])
    assert live.share.request(request_id).items == ("driving_class",)

    # 民政局's approver: no answer buttons on its own request, and a forged answer is refused.
    other_ctx, other = live.open("mzj-approver")
    other.goto(f"{live.url}/requests/{request_id}")
    expect(other.locator("#approve")).to_have_count(0)
    status, body = forged_post(other_ctx, other, f"{live.url}/requests/{request_id}/approve", {})
    assert status == 403 and "不能同意" in body
    assert live.share.request(request_id).state == "pending"

    provider_ctx, provider = live.open("gaj-approver")
    provider.goto(f"{live.url}/requests")
    row = provider.locator(f"#inbox #request-{request_id}")
    expect(row.locator(".countdown")).to_contain_text("个工作日")
    live.shot(provider, "05-inbox")
    row.locator("a").first.click()
    provider.click("#deny")  # no reason
    expect(provider.locator("#form-error")).to_contain_text("字段「理由」(reason)：必填")
    provider.fill("textarea[name=reason]", "不同意")
    provider.click("#deny")
    expect(provider.locator("#form-error")).to_contain_text("boilerplate")
    expect(provider.locator("textarea[name=reason]")).to_have_class("invalid")
    live.shot(provider, "06-deny-refused")
    assert live.share.request(request_id).state == "pending"
    provider.click("#approve")
    expect(provider.locator("#request-state")).to_have_text("已同意")
    expect(provider.locator("#grant")).to_contain_text("有效")
    live.shot(provider, "07-approved")
    grant = live.share.grant_of(request_id)
    assert grant is not None and grant.items == ("driving_class",)

    consumer.goto(f"{live.url}/requests")
    expect(consumer.locator(f"#mine #request-{request_id}")).to_contain_text(f"授权 {grant.id}")
    actions = {(e.username, e.action, e.outcome) for e in live.world.accounts.audit_log()}
    assert {("mzj-steward", "share.apply", "ok"), ("mzj-approver", "share.approve", "refused"),
            ("gaj-approver", "share.deny", "refused"),
            ("gaj-approver", "share.approve", "ok")} <= actions  # fmt: skip
    for ctx in (consumer_ctx, other_ctx, provider_ctx):
        ctx.close()


def test_a_dispute_is_acknowledged_and_resolved_live_on_another_page(live: Live) -> None:
    resource = live.ex.spec.resources[0]
    key = citizen(901)
    watcher_ctx, watcher = live.open("dsj-operator")
    watcher.goto(f"{live.url}/disputes")
    expect(watcher.locator("#live-status")).to_have_attribute("data-state", "live")

    holder_ctx, holder = live.open("scj-steward")
    holder.goto(f"{live.url}/disputes/new")
    holder.select_option("select[name=resource]", resource.code)
    holder.fill("input[name=key]", key)
    holder.fill("input[name=item]", "citizen_name")
    holder.fill("textarea[name=reason]", "姓名与本部门登记不一致")
    holder.click("#dispute-form button[type=submit]")
    flash = holder.locator(".flash")
    expect(flash).to_contain_text("已提出异议")
    dispute_id = re.findall(r"已提出异议 ([0-9a-f]{16})", flash.inner_text())[0]

    row = watcher.locator(f"#d-{dispute_id}")
    expect(row).to_have_attribute("data-state", "open", timeout=LIVE_MS)
    expect(row).to_contain_text("核实中")

    # The holder is not the provider: no acknowledge button, and a forged one is refused.
    holder.goto(f"{live.url}/disputes/{dispute_id}")
    expect(holder.locator("#ack")).to_have_count(0)
    status, body = forged_post(holder_ctx, holder, f"{live.url}/disputes/{dispute_id}/ack", {})
    assert status == 400 and "provider" in body

    provider_ctx, provider = live.open("gaj-steward")
    provider.goto(f"{live.url}/disputes/{dispute_id}")
    expect(provider.locator("#flag")).to_contain_text("核实中")
    provider.click("#ack")
    expect(provider.locator(".flash")).to_contain_text("开始核实")
    expect(row).to_have_attribute("data-state", "acknowledged", timeout=LIVE_MS)
    provider.goto(f"{live.url}/disputes/{dispute_id}")
    expect(provider.locator("#dispute-state")).to_have_text("核实中")
    provider.click("#resolve")  # no note
    expect(provider.locator("#form-error")).to_contain_text("字段「说明」(note)：必填")
    provider.select_option("select[name=outcome]", "confirmed")
    provider.fill("textarea[name=note]", "经核对户籍登记，姓名无误")
    provider.click("#resolve")
    expect(provider.locator(".flash")).to_contain_text("已处理")
    expect(row).to_have_attribute("data-state", "resolved", timeout=LIVE_MS)
    expect(row).not_to_contain_text("核实中")
    live.shot(watcher, "08-disputes-live")
    provider.goto(f"{live.url}/disputes/{dispute_id}")
    expect(provider.locator("#dispute-state")).to_have_text("已处理")
    live.shot(provider, "09-dispute")
    actions = [(e.username, e.action, e.outcome) for e in live.world.accounts.audit_log()]
    assert ("gaj-steward", "dispute.resolve", "ok") in actions
    assert ("scj-steward", "dispute.ack", "refused") in actions
    for ctx in (holder_ctx, provider_ctx):
        ctx.close()

    watcher.goto(f"{live.url}/overview")
    apps = watcher.locator("#stream-apps")
    expect(apps).to_contain_text(live.ex.topics.app_id)
    running = apps.locator("tr", has_text=live.ex.topics.app_id)
    expect(running).to_contain_text("正常")
    watcher.click("#plan")  # plan_for, as `govbus plan`: the namespace is reconciled
    expect(watcher.locator("#reconciler")).to_contain_text("计划共")
    expect(watcher.locator("#reconciler")).to_contain_text("上次计划")
    live.shot(watcher, "10-overview")
    watcher.goto(f"{live.url}/supervision")
    expect(watcher.locator("#violations")).to_be_visible()
    watcher_ctx.close()
