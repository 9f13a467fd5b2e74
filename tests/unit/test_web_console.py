"""The web console over HTTP (Starlette's test client) on a SQLite catalog: accounts and
roles, sessions, CSRF, the login rate limit, the share-request pages and their refusals, and
the audit trail. The PostgreSQL run of the same flows is tests/integration/test_web_pg.py;
the browser run is tests/integration/test_web_browser.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from govbus.accounts.store import AccountError, Accounts
from govbus.share.requests import ShareRequests
from govbus.vocabulary.errors import Conflict
from govbus.web.auth import LoginLimiter
from tests.webconsole import (
    EMPLOYMENT,
    PASSWORD,
    ConsoleWorld,
    csrf,
    login,
    make_world,
    post,
)


@pytest.fixture
def world(tmp_path: Path) -> ConsoleWorld:
    return make_world(tmp_path / "state")


def share(world: ConsoleWorld) -> ShareRequests:
    return ShareRequests(world.store, coordinator=world.settings.share_coordinator)


def apply_for_employment(world: ConsoleWorld) -> int:
    """民政局's steward applies through the console for 人社局's 就业创业人员信息."""
    client = world.client("mzj-steward")
    response = post(
        client,
        "/requests",
        {
            "resource": EMPLOYMENT,
            "purpose": "administrative-basis",
            "duty": "最低生活保障资格复核",
            "until": "2099-12-31",
            "items": ["citizen_id", "employment_status"],
        },
    )
    assert response.status_code == 303, response.text
    found = re.fullmatch(r"/requests/(\d+)", response.headers["location"])
    assert found, response.headers["location"]
    return int(found.group(1))


# --- accounts ---------------------------------------------------------------------------------


def test_accounts_store_argon2id_hashes_and_check_the_department(world: ConsoleWorld) -> None:
    accounts = world.accounts
    with world.store.connect() as conn:
        stored = conn.exec_driver_sql(
            "SELECT password_hash FROM account WHERE username = 'mzj-steward'"
        ).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert accounts.authenticate("mzj-steward", PASSWORD) is not None
    assert accounts.authenticate("mzj-steward", PASSWORD + "x") is None
    assert accounts.authenticate("nobody", PASSWORD) is None
    with pytest.raises(AccountError, match="not in the catalog"):
        accounts.create("x-user", PASSWORD, "no-such-dept", "viewer")
    with pytest.raises(AccountError, match="operator"):
        accounts.create("gaj-op", PASSWORD, "cz-gaj", "operator")
    with pytest.raises(AccountError, match="password"):
        accounts.create("short-pw", "abc", "cz-gaj", "viewer")
    with pytest.raises(AccountError, match="user name"):
        accounts.create("Bad Name", PASSWORD, "cz-gaj", "viewer")
    with pytest.raises(Conflict, match="taken"):
        accounts.create("mzj-steward", PASSWORD, "cz-mzj", "viewer")


def test_rights_follow_the_role(world: ConsoleWorld) -> None:
    by_name = {a.username: a for a in world.accounts.all_accounts()}
    assert not by_name["mzj-viewer"].may("apply")
    assert by_name["mzj-steward"].may("apply") and not by_name["mzj-steward"].may("answer")
    assert by_name["rsj-approver"].may("answer") and not by_name["rsj-approver"].may("operate")
    assert by_name["dsjj-operator"].may("operate")


def test_limiter_refuses_after_five_failures_until_the_window_passes() -> None:
    now = [1000.0]
    limiter = LoginLimiter(max_failures=5, window=300, clock=lambda: now[0])
    for _ in range(4):
        limiter.failed("user:a")
    assert limiter.retry_after("user:a") == 0
    limiter.failed("user:a")
    assert limiter.retry_after("user:a", "addr:x") == pytest.approx(300)
    now[0] += 299
    assert limiter.retry_after("user:a") == pytest.approx(1)
    now[0] += 2
    assert limiter.retry_after("user:a") == 0


# --- sessions, CSRF, rate limit ---------------------------------------------------------------


def test_pages_need_a_login(world: ConsoleWorld) -> None:
    response = world.client().get("/requests", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/requests"


def test_session_cookie_is_secure_httponly_samesite(world: ConsoleWorld) -> None:
    client = world.client()
    response = login(client, "mzj-viewer", PASSWORD)
    cookie = response.history[0].headers["set-cookie"]
    assert "govbus_session=" in cookie
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"secure", "httponly", "samesite=lax"} <= flags


def test_login_redirects_only_within_the_site(world: ConsoleWorld) -> None:
    client = world.client()
    token = csrf(client)
    data = {"username": "mzj-viewer", "password": PASSWORD, "csrf_token": token}
    response = client.post("/login", data={**data, "next": "//evil.example/x"},
                           follow_redirects=False)  # fmt: skip
    assert response.headers["location"] == "/catalog"


def test_post_without_the_csrf_token_is_refused(world: ConsoleWorld) -> None:
    client = world.client("mzj-steward")
    data = {"resource": EMPLOYMENT, "purpose": "administrative-basis", "duty": "复核",
            "until": "2099-12-31"}  # fmt: skip
    response = client.post("/requests", data=data, follow_redirects=False)
    assert response.status_code == 403 and "csrf_token" in response.text
    response = client.post("/requests", data={**data, "csrf_token": "forged"})
    assert response.status_code == 403
    cross = client.post(
        "/requests",
        data={**data, "csrf_token": csrf(client, "/catalog")},
        headers={"origin": "https://evil.example"},
    )
    assert cross.status_code == 403 and "evil.example" in cross.text
    assert share(world).list_requests() == []


def test_login_is_rate_limited_and_audited(world: ConsoleWorld) -> None:
    client = world.client()
    for _ in range(5):
        assert login(client, "rsj-approver", "wrong-password").status_code == 401
    refused = login(client, "rsj-approver", PASSWORD)  # right, but too many failures
    assert refused.status_code == 429 and "秒后再试" in refused.text
    assert int(refused.headers["retry-after"]) > 0
    log = world.accounts.audit_log(username="rsj-approver")
    assert [e.outcome for e in log] == ["refused"] * 6
    assert log[0].detail == {"rate_limited": True}
    # Another user from elsewhere is not held up by this user name (the address is a key too:
    # the test client's one address has 5 failures, so a second client address would pass).
    assert world.accounts.authenticate("rsj-steward", PASSWORD) is not None


# --- share requests ---------------------------------------------------------------------------


def test_apply_approve_and_the_grant_appears(world: ConsoleWorld) -> None:
    request_id = apply_for_employment(world)
    made = share(world).request(request_id)
    mzj = world.store.current().department_by_id("cz-mzj")
    assert mzj is not None
    assert (made.department, made.state, made.items, made.submitted_by) == (
        mzj.code, "pending", ("citizen_id", "employment_status"), "cz-mzj",
    )  # fmt: skip

    approver = world.client("rsj-approver")
    inbox = approver.get("/requests").text
    (pending, left), *_ = share(world).deadlines(within=100)
    assert pending.id == request_id
    row = re.search(rf'<tr id="request-{request_id}".*?</tr>', inbox, re.S)
    assert row and f"剩 {left} 个工作日" in row.group(0)

    response = post(approver, f"/requests/{request_id}/approve", {"until": ""})
    assert response.status_code == 303
    page = approver.get(response.headers["location"]).text
    grant = share(world).grant_of(request_id)
    assert grant is not None and f"授权 {grant.id}" in page and "有效" in page
    # The consumer sees its grant in its list.
    mine = world.client("mzj-steward").get("/requests").text
    assert f"授权 {grant.id}" in mine
    actions = [(e.username, e.department, e.action, e.outcome) for e in
               reversed(world.accounts.audit_log())]  # fmt: skip
    assert ("mzj-steward", "cz-mzj", "share.apply", "ok") in actions
    assert ("rsj-approver", "cz-rsj", "share.approve", "ok") in actions


def test_an_approver_of_another_department_cannot_approve(world: ConsoleWorld) -> None:
    request_id = apply_for_employment(world)
    # 民政局's approver tries to approve 人社局's request (it is the consumer, not the provider).
    response = post(world.client("mzj-approver"), f"/requests/{request_id}/approve", {})
    assert response.status_code == 403 and "不能同意" in response.text
    # 人社局's steward is the provider's, but a steward does not answer requests.
    response = post(world.client("rsj-steward"), f"/requests/{request_id}/approve", {})
    assert response.status_code == 403 and "无权" in response.text
    assert share(world).request(request_id).state == "pending"
    refused = [e for e in world.accounts.audit_log() if e.action == "share.approve"]
    assert {(e.username, e.outcome) for e in refused} == {
        ("mzj-approver", "refused"), ("rsj-steward", "refused"),
    }  # fmt: skip


def test_a_request_of_other_departments_is_not_shown(world: ConsoleWorld) -> None:
    request_id = apply_for_employment(world)
    gaj = world.accounts.create("gaj-viewer", PASSWORD, "cz-gaj", "viewer")
    response = world.client(gaj.username).get(f"/requests/{request_id}")
    assert response.status_code == 403 and "只能办理本部门的申请" in response.text
    # The operator coordinates, so it sees every request.
    assert world.client("dsjj-operator").get(f"/requests/{request_id}").status_code == 200


def test_the_department_is_never_taken_from_the_form(world: ConsoleWorld) -> None:
    client = world.client("mzj-steward")
    response = post(client, "/requests", {
        "resource": ASSISTANCE_OTHER, "purpose": "administrative-basis", "duty": "复核",
        "until": "2099-12-31", "department": "cz-rsj",
    })  # fmt: skip
    assert response.status_code == 303
    (made,) = share(world).list_requests()
    assert made.submitted_by == "cz-mzj"


ASSISTANCE_OTHER = "30101/1132040001410015XY-000003"  # 公安局's 机动车驾驶证信息


def test_boilerplate_or_missing_denial_reason_is_refused_naming_the_field(
    world: ConsoleWorld,
) -> None:
    request_id = apply_for_employment(world)
    approver = world.client("rsj-approver")
    response = post(approver, f"/requests/{request_id}/deny", {"reason": "不同意"})
    assert response.status_code == 400
    assert "字段「理由」(reason)" in response.text and "boilerplate" in response.text
    assert 'data-field="reason"' in response.text
    response = post(approver, f"/requests/{request_id}/deny", {"reason": "  "})
    assert response.status_code == 400 and "字段「理由」(reason)：必填" in response.text
    assert share(world).request(request_id).state == "pending"
    reason = "该资源仅用于就业补贴审核，申请用途与共享条件不符，请补充说明"
    response = post(approver, f"/requests/{request_id}/deny", {"reason": reason})
    assert response.status_code == 303
    assert share(world).request(request_id).deny_reason == reason


def test_apply_form_names_the_bad_field(world: ConsoleWorld) -> None:
    client = world.client("mzj-steward")
    base = {"resource": EMPLOYMENT, "purpose": "administrative-basis", "duty": "复核",
            "until": "2099-12-31"}  # fmt: skip
    cases = {
        "duty": ({"duty": ""}, "字段「履行职责」(duty)：必填"),
        "until": ({"until": "31/12/2099"}, "字段「有效期至」(until)"),
        "purpose": ({"purpose": "curiosity"}, "字段「用途」(purpose)"),
    }
    for field_name, (change, message) in cases.items():
        response = post(client, "/requests", {**base, **change})
        assert response.status_code == 400, field_name
        assert message in response.text, (field_name, response.text[-2000:])
    # The service's own rules come back as they are (a purpose the catalog does not allow).
    response = post(client, "/requests", {**base, "purpose": "work-reference"})
    assert response.status_code == 400 and "not one the catalog allows" in response.text
    assert share(world).list_requests() == []


def test_a_viewer_cannot_apply(world: ConsoleWorld) -> None:
    response = post(world.client("mzj-viewer"), "/requests", {"resource": EMPLOYMENT})
    assert response.status_code == 403
    assert world.accounts.audit_log(username="mzj-viewer")[0].action == "login"


def test_negotiation_and_escalation_of_a_denial(world: ConsoleWorld) -> None:
    request_id = apply_for_employment(world)
    reason = "申请的信息项超出救助审核所需范围，请缩小范围后重新申请"
    assert post(world.client("rsj-approver"), f"/requests/{request_id}/deny",
                {"reason": reason}).status_code == 303  # fmt: skip
    steward = world.client("mzj-steward")
    assert post(steward, f"/requests/{request_id}/negotiate",
                {"note": "请协商范围"}).status_code == 303  # fmt: skip
    response = post(steward, f"/requests/{request_id}/escalate", {"note": ""})
    assert response.status_code == 400 and "字段「说明」(note)" in response.text
    assert post(steward, f"/requests/{request_id}/escalate",
                {"note": "协商未果"}).status_code == 303  # fmt: skip
    steps = share(world).steps(request_id)
    assert [(s.level, s.state) for s in steps] == [
        ("negotiation", "failed"), ("coordination", "open"),
    ]  # fmt: skip
    page = world.client("dsjj-operator").get(f"/requests/{request_id}").text
    assert "协调" in page and 'id="settle-form"' in page


# --- operator pages ---------------------------------------------------------------------------


def test_overview_is_the_operators_only(world: ConsoleWorld) -> None:
    assert world.client("rsj-approver").get("/overview").status_code == 403
    page = world.client("dsjj-operator").get("/overview")
    assert page.status_code == 200
    assert "/d/govbus-operator" in page.text  # the Grafana dashboard's link
    assert "govbus-disputes" in page.text  # every stream app has a row
    assert "govbus.catalog" in page.text or "无积压" in page.text


def test_outbox_backlog_counts_unrelayed_share_events(world: ConsoleWorld) -> None:
    apply_for_employment(world)
    page = world.client("dsjj-operator").get("/overview").text
    row = re.search(r"<td>govbus\.share</td><td>(\d+)</td>", page)
    assert row and int(row.group(1)) == 1  # the submission's event, not yet relayed


def test_every_account_sees_its_departments_audit_trail_only(world: ConsoleWorld) -> None:
    apply_for_employment(world)
    text = world.client("rsj-steward").get("/audit").text
    assert "mzj-steward" not in text and "rsj-steward" in text
    assert "mzj-steward" in world.client("dsjj-operator").get("/audit").text


def test_accounts_service_is_the_same_on_another_store(tmp_path: Path) -> None:
    other = make_world(tmp_path / "other")
    assert Accounts(other.store, coordinator="cz-dsjj").get(999) is None
