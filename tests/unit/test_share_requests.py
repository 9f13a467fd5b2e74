"""Share requests on SQLite: the rules of articles 16-17, the state machine, history, sweep.

The catalog is the sample (常州) plus one provincial department, for the steering group. Times
are fixed: submissions on Monday 2026-03-02 10:00 China time, a March without holidays.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from prometheus_client import CollectorRegistry

from govbus.catalog.model import Base, OutboxRow
from govbus.catalog.store import CatalogStore
from govbus.catalog.yaml_io import SAMPLE_CATALOG_PATH, load_yaml
from govbus.share.metrics import ShareCollector, register_share_collector
from govbus.share.model import ShareEventRow
from govbus.share.reasons import BOILERPLATE_REASONS
from govbus.share.requests import ShareError, ShareGrant, ShareRequests
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.grants import Grant
from govbus.vocabulary.identifiers import uscc_check_char
from govbus.vocabulary.naming import SHARE_TOPIC
from govbus.vocabulary.spec import Department
from govbus.vocabulary.workdays import WorkdayCalendar

MARRIAGE = "30201/1132040001410023XJ-000003"  # 婚姻登记信息, conditional, 民政局 (cz-mzj)
ASSISTANCE = "20201/1132040001410023XJ-000002"  # 社会救助对象信息, conditional, 民政局
INCOME_TAX = "30403/11320400MB0154739Y-000003"  # 个人所得税纳税明细, not shared, 税务局
HOUSEHOLD = "10101/1132040001410015XY-000001"  # 人口户籍基本信息, unconditional, 公安局
MZJ = "1132040001410023XJ"  # 常州市民政局: provider
RSJ = "11320400014100475P"  # 常州市人力资源和社会保障局: consumer
_JS_BODY = "11320000014100123"
PROVINCIAL = Department(
    "js-gat", _JS_BODY + uscc_check_char(_JS_BODY), "江苏省公安厅", "province", "320000"
)

NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=CHINA_TZ)
UNTIL = dt.date(2026, 12, 31)
REASON = "申请用途超出婚姻登记信息的共享条件，且未提供当事人授权书"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database holding the catalog, made once and copied for each test."""
    spec = load_yaml(SAMPLE_CATALOG_PATH)
    path = tmp_path_factory.mktemp("share") / "template.db"
    s = CatalogStore(f"sqlite:///{path}")
    s.migrate()
    s.apply(dataclasses.replace(spec, departments=(*spec.departments, PROVINCIAL)), "a", "sample")
    s.dispose()
    return path


@pytest.fixture
def store(tmp_path: Path, template: Path) -> Iterator[CatalogStore]:
    shutil.copyfile(template, tmp_path / "catalog.db")
    s = CatalogStore(f"sqlite:///{tmp_path}/catalog.db")
    yield s
    s.dispose()


@pytest.fixture
def svc(store: CatalogStore) -> ShareRequests:
    return ShareRequests(store, WorkdayCalendar())


def submit(svc: ShareRequests, dept: str = "cz-rsj", code: str = MARRIAGE, **kw: object) -> int:
    args: dict[str, object] = {
        "purpose": "administrative-basis",
        "duty": "核定失业保险金发放对象的婚姻状况",
        "valid_until": UNTIL,
        "now": NOW,
    }
    args.update(kw)
    return svc.submit(dept, code, **args).id  # type: ignore[arg-type]


def kinds(svc: ShareRequests, request_id: int) -> list[str]:
    return [e.kind for e in svc.history(request_id)]


# --- schema ---------------------------------------------------------------------------------


def test_migrations_create_the_share_tables_the_model_declares(store: CatalogStore) -> None:
    with store.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert {"share_request", "share_grant", "share_step", "share_event", "share_violation"} <= (
        tables
    )
    assert differences == []


# --- applying -------------------------------------------------------------------------------


def test_submit_records_the_request_with_its_deadline_and_an_outbox_event(
    svc: ShareRequests, store: CatalogStore
) -> None:
    request = svc.submit(
        "cz-rsj",
        MARRIAGE,
        "administrative-basis",
        "核定失业保险金发放对象",
        UNTIL,
        items=["citizen_id", "marital_status"],
        now=NOW,
    )
    assert (request.department, request.provider, request.state) == (RSJ, MZJ, "pending")
    assert request.items == ("citizen_id", "marital_status")
    # Monday 3-02: the 10th working day after it is Monday 3-16 (no holiday in March 2026).
    assert (request.due, request.due_certain, request.due_reason) == (
        dt.date(2026, 3, 16),
        True,
        None,
    )
    assert request.submitted_by == "cz-rsj"
    assert kinds(svc, request.id) == ["submitted"]
    with store.connect() as conn:
        rows = conn.execute(sa.select(OutboxRow).where(OutboxRow.topic == SHARE_TOPIC)).all()
    assert [(r.key, r.value["kind"], r.value["actor"]) for r in rows] == [
        (str(request.id), "submitted", "cz-rsj")
    ]
    assert rows[0].value["state"] == "pending"


def test_a_department_given_by_code_applies_like_by_id(svc: ShareRequests) -> None:
    assert svc.request(submit(svc, dept=RSJ)).department == RSJ


@pytest.mark.parametrize(
    ("dept", "code", "kw", "message"),
    [
        ("cz-nobody", MARRIAGE, {}, "not registered in the catalog"),
        ("cz-rsj", "30201/1132040001410023XJ-000099", {}, "not in the catalog"),
        ("cz-rsj", HOUSEHOLD, {}, r"no request needed: read it directly \(无条件共享\)"),
        ("cz-mzj", MARRIAGE, {}, "is its provider"),
        ("cz-rsj", MARRIAGE, {"purpose": "work-reference"}, "allowed: administrative-basis, data"),
        ("cz-rsj", MARRIAGE, {"duty": "  "}, "state the duty"),
        ("cz-rsj", MARRIAGE, {"items": ["citizen_id", "salary"]}, "no info item.*salary"),
        ("cz-rsj", MARRIAGE, {"valid_until": dt.date(2026, 3, 2)}, "must end after today"),
        ("cz-rsj", MARRIAGE, {"actor": "cz-gaj"}, "a department applies for itself"),
    ],
)
def test_submit_rules(
    svc: ShareRequests, dept: str, code: str, kw: dict[str, object], message: str
) -> None:
    with pytest.raises(ShareError, match=message):
        submit(svc, dept=dept, code=code, **kw)
    assert svc.list_requests() == []


def test_a_second_request_while_one_waits_is_refused(svc: ShareRequests) -> None:
    first = submit(svc)
    with pytest.raises(ShareError, match=f"already has request {first} waiting"):
        submit(svc)
    assert submit(svc, dept="cz-gaj") != first  # another department may


def test_a_not_shared_resource_opens_a_negotiation_instead(svc: ShareRequests) -> None:
    request = svc.submit(
        "cz-rsj", INCOME_TAX, "data-verification", "核对社保缴费基数", UNTIL, now=NOW
    )
    assert request.state == "not-shared"
    assert request.step is not None
    assert (request.step.level, request.step.state) == ("negotiation", "open")
    assert set(request.step.owners) == {RSJ, request.provider}
    assert kinds(svc, request.id) == ["submitted", "not-shared", "negotiation-opened"]
    with pytest.raises(ShareError, match="not pending"):
        svc.approve(request.id, "cz-swj", now=NOW)


# --- answering ------------------------------------------------------------------------------


def test_approve_grants_until_the_end_of_the_validity_asked_for(svc: ShareRequests) -> None:
    rid = submit(svc)
    later = NOW + dt.timedelta(days=3)  # Thursday: 3 working days after Monday
    grant = svc.approve(rid, "cz-mzj", now=later)
    assert (grant.department, grant.resource, grant.purpose) == (
        RSJ,
        MARRIAGE,
        "administrative-basis",
    )
    assert grant.expires_at == dt.datetime(2027, 1, 1, tzinfo=CHINA_TZ)
    assert grant.granted_by == "cz-mzj" and grant.items == ()
    request = svc.request(rid)
    assert (request.state, request.answered_by, request.answer_workdays) == (
        "approved",
        "cz-mzj",
        3,
    )
    assert svc.grant_of(rid) == grant
    assert kinds(svc, rid) == ["submitted", "approved"]
    assert svc.history(rid)[1].grant == grant.id


def test_approve_may_narrow_items_and_validity_but_not_widen_them(svc: ShareRequests) -> None:
    rid = submit(svc, items=["citizen_id", "marital_status"])
    with pytest.raises(ShareError, match="marriage_reg_date were not requested"):
        svc.approve(rid, "cz-mzj", items=["marriage_reg_date"], now=NOW)
    with pytest.raises(ShareError, match="cannot outlast the validity requested"):
        svc.approve(rid, "cz-mzj", expires_at=dt.date(2027, 1, 1), now=NOW)
    with pytest.raises(ShareError, match="has passed"):
        svc.approve(rid, "cz-mzj", expires_at=dt.date(2026, 3, 1), now=NOW)
    assert svc.request(rid).state == "pending"  # refusals changed nothing
    grant = svc.approve(rid, "cz-mzj", dt.date(2026, 6, 30), items=["citizen_id"], now=NOW)
    assert grant.items == ("citizen_id",)
    assert grant.expires_at == dt.datetime(2026, 7, 1, tzinfo=CHINA_TZ)
    # The reconciler and the consumer SDK get the approved items, purpose and grant id.
    [acl_grant] = svc.grants(NOW)
    assert (acl_grant.items, acl_grant.purpose, acl_grant.grant_id) == (
        ("citizen_id",),
        "administrative-basis",
        grant.id,
    )


def test_only_the_provider_answers(svc: ShareRequests) -> None:
    rid = submit(svc)
    for actor in ("cz-rsj", "cz-dsjj", "cz-gaj"):
        with pytest.raises(ShareError, match=r"only the provider 常州市民政局 \(cz-mzj\)"):
            svc.approve(rid, actor, now=NOW)
        with pytest.raises(ShareError, match="only the provider"):
            svc.deny(rid, actor, REASON, now=NOW)
    assert svc.request(rid).state == "pending"


def test_an_answered_request_cannot_be_answered_again(svc: ShareRequests) -> None:
    rid = submit(svc)
    svc.deny(rid, "cz-mzj", REASON, now=NOW)
    with pytest.raises(ShareError, match="is denied, not pending"):
        svc.approve(rid, "cz-mzj", now=NOW)
    with pytest.raises(ShareError, match="is denied, not pending"):
        svc.deny(rid, "cz-mzj", REASON, now=NOW)
    with pytest.raises(ShareError, match="does not exist"):
        svc.approve(rid + 100, "cz-mzj", now=NOW)


@pytest.mark.parametrize(
    ("reason", "problem"),
    [
        ("", "mandatory"),
        ("   ", "mandatory"),
        (None, "mandatory"),
        ("不同意", "boilerplate"),
        ("不同意。", "boilerplate"),
        ("  不予共享！ ", "boilerplate"),
        ("ＮＯ！", "boilerplate"),
        ("N/A", "boilerplate"),
        ("Denied.", "boilerplate"),
        ("REJECTED", "boilerplate"),
        ("无", "boilerplate"),
        ("其他", "boilerplate"),
        ("不同意，不予共享，不同意。", "boilerplate"),
        ("Not applicable!!", "boilerplate"),
        ("涉及个人隐私", "too short"),
    ],
)
def test_a_denial_needs_a_real_reason(svc: ShareRequests, reason: str | None, problem: str) -> None:
    rid = submit(svc)
    with pytest.raises(ShareError, match=problem):
        svc.deny(rid, "cz-mzj", reason, now=NOW)  # type: ignore[arg-type]
    assert svc.request(rid).state == "pending"


def test_every_listed_boilerplate_reason_is_refused(svc: ShareRequests) -> None:
    rid = submit(svc)
    for reason in BOILERPLATE_REASONS:
        with pytest.raises(ShareError, match="boilerplate"):
            svc.deny(rid, "cz-mzj", reason.upper() + "。", now=NOW)


def test_a_real_reason_denies_and_is_kept(svc: ShareRequests) -> None:
    rid = submit(svc)
    denied = svc.deny(rid, "cz-mzj", f"  {REASON} ", now=NOW + dt.timedelta(days=1))
    assert (denied.state, denied.deny_reason, denied.answer_workdays) == ("denied", REASON, 1)
    assert svc.history(rid)[-1].detail == {"reason": REASON}
    assert svc.grants(NOW) == []


# --- grants: validity, revocation, expiry --------------------------------------------------


def test_grants_lists_only_valid_grants_for_the_reconciler(svc: ShareRequests) -> None:
    a = svc.approve(submit(svc), "cz-mzj", now=NOW)
    b = svc.approve(submit(svc, dept="cz-gaj"), "cz-mzj", dt.date(2026, 4, 30), now=NOW)
    purpose = "administrative-basis"

    def grant(g: ShareGrant) -> Grant:
        return Grant(g.department, MARRIAGE, g.expires_at, purpose=purpose, grant_id=g.id)

    assert grant(a).department_code == RSJ
    assert svc.grants(NOW) == [grant(a), grant(b)]
    assert svc.grants(NOW, department=RSJ) == [grant(a)]
    assert svc.grants(dt.datetime(2026, 5, 2, tzinfo=CHINA_TZ)) == [grant(a)]
    svc.revoke(a.id, "cz-mzj", "使用部门将数据用于申请用途以外的目的", now=NOW)
    assert svc.grants(NOW) == [grant(b)]


def test_revoke_by_the_provider_or_the_operator_with_a_reason(svc: ShareRequests) -> None:
    grant = svc.approve(submit(svc), "cz-mzj", now=NOW)
    with pytest.raises(ShareError, match="may not revoke it"):
        svc.revoke(grant.id, "cz-rsj", "我方不再需要这些数据了谢谢", now=NOW)
    with pytest.raises(ShareError, match=r"revocation refused.*boilerplate"):
        svc.revoke(grant.id, "cz-dsjj", "其他", now=NOW)
    later = NOW + dt.timedelta(hours=1)
    revoked = svc.revoke(grant.id, "cz-dsjj", "年度评估发现超范围使用，依第二十六条收回", now=later)
    assert (revoked.revoked_by, revoked.revoked_at) == ("cz-dsjj", later.astimezone(dt.UTC))
    assert svc.request(grant.request).state == "revoked"
    with pytest.raises(ShareError, match="already revoked by cz-dsjj"):
        svc.revoke(grant.id, "cz-mzj", REASON, now=later)
    assert [e.kind for e in svc.grant_history(grant.id)] == ["submitted", "approved", "revoked"]


def test_sweep_records_expired_grants_once(svc: ShareRequests) -> None:
    grant = svc.approve(submit(svc), "cz-mzj", dt.date(2026, 3, 31), now=NOW)
    assert svc.sweep(dt.datetime(2026, 3, 31, 23, 59, tzinfo=CHINA_TZ)).expired == ()
    after = dt.datetime(2026, 4, 1, 0, 0, 1, tzinfo=CHINA_TZ)
    assert svc.sweep(after).expired == (grant.id,)
    assert svc.sweep(after + dt.timedelta(days=1)).expired == ()
    assert svc.grant(grant.id).expired_at == after.astimezone(dt.UTC)
    assert svc.request(grant.request).state == "expired"
    assert [e.kind for e in svc.grant_history(grant.id)] == ["submitted", "approved", "expired"]
    with pytest.raises(ShareError, match="already expired"):
        svc.revoke(grant.id, "cz-mzj", REASON, now=after)
    # An expired grant no longer counts as a waiting request: the department may apply again.
    assert submit(svc, now=after) != grant.request


# --- deadlines and the sweep ---------------------------------------------------------------


def test_an_overdue_request_is_escalated_and_a_violation_recorded_once(svc: ShareRequests) -> None:
    rid = submit(svc)
    on_time = submit(svc, dept="cz-gaj")
    svc.approve(on_time, "cz-mzj", now=NOW + dt.timedelta(days=14))  # 3-16: the last day
    last_day = dt.datetime(2026, 3, 16, 23, 59, tzinfo=CHINA_TZ)
    assert svc.sweep(last_day).overdue == ()
    next_day = dt.datetime(2026, 3, 17, 0, 1, tzinfo=CHINA_TZ)
    assert svc.sweep(next_day).overdue == (rid,)
    assert svc.sweep(next_day + dt.timedelta(days=3)).overdue == ()

    (violation,) = svc.violations()
    assert (violation.department, violation.request, violation.kind) == (
        MZJ,
        rid,
        "unanswered-request",
    )
    assert violation.detail["article"] == "26(3)"
    assert svc.violations(department="cz-rsj") == []
    event = svc.history(rid)[-1]
    assert (event.kind, event.actor, event.detail["escalated_to"]) == (
        "overdue",
        "govbus",
        "cz-dsjj",
    )
    assert kinds(svc, rid).count("overdue") == 1
    # Late answers are still possible; the violation stays on record.
    svc.approve(rid, "cz-mzj", now=next_day)
    assert svc.request(rid).answer_workdays == 11
    assert len(svc.violations()) == 1


def test_listings_filter_by_department_provider_state_and_deadline(svc: ShareRequests) -> None:
    a = submit(svc)
    b = submit(svc, dept="cz-gaj", now=NOW + dt.timedelta(days=7))  # due 3-23
    c = submit(svc, code=ASSISTANCE)
    svc.deny(c, "cz-mzj", REASON, now=NOW)
    d = submit(svc, dept="cz-mzj", code="20101/11320400014100475P-000001")

    def ids(**kw: object) -> list[int]:
        return [r.id for r in svc.list_requests(**kw)]  # type: ignore[arg-type]

    assert ids() == [a, b, c, d]
    assert ids(department="cz-rsj") == [a, c]
    assert ids(department="cz-gaj") == [b]
    assert ids(provider="cz-mzj") == [a, b, c]
    assert ids(provider=RSJ) == [d]
    assert ids(state="denied") == [c]
    assert ids(due_before=dt.date(2026, 3, 17)) == [a, c, d]
    on = dt.datetime(2026, 3, 18, tzinfo=CHINA_TZ)
    assert ids(overdue=True, now=on) == [a, d]
    assert ids(overdue=False, now=on) == [b, c]
    with pytest.raises(ShareError, match="unknown state 'done'"):
        ids(state="done")


def test_deadlines_shows_requests_near_or_past_their_due_day(svc: ShareRequests) -> None:
    a = submit(svc)  # due Monday 3-16
    b = submit(svc, dept="cz-gaj", now=NOW + dt.timedelta(days=7))  # due Monday 3-23
    # Wednesday 3-11: a has 3 working days left (12, 13, 16), b 8.
    wed = dt.datetime(2026, 3, 11, 9, tzinfo=CHINA_TZ)
    assert [(r.id, left) for r, left in svc.deadlines(within=3, now=wed)] == [(a, 3)]
    assert [(r.id, left) for r, left in svc.deadlines(within=2, now=wed)] == []
    # Wednesday 3-18: a is 2 working days late, b has 3 left.
    assert [(r.id, left) for r, left in svc.deadlines(now=wed + dt.timedelta(days=7))] == [
        (a, -2),
        (b, 3),
    ]


# --- negotiation, coordination, steering group ----------------------------------------------


def test_a_denial_goes_to_negotiation_then_coordination_and_stops_there_for_city_departments(
    svc: ShareRequests,
) -> None:
    rid = submit(svc)
    with pytest.raises(ShareError, match="is pending: negotiation is for a denied request"):
        svc.negotiate(rid, actor="cz-rsj", now=NOW)
    svc.deny(rid, "cz-mzj", REASON, now=NOW)
    with pytest.raises(ShareError, match="may not open a negotiation"):
        svc.negotiate(rid, actor="cz-gaj", now=NOW)
    with pytest.raises(ShareError, match="has no negotiation yet"):
        svc.escalate(rid, "cz-rsj", "对方不同意", now=NOW)
    step = svc.negotiate(resource_code=MARRIAGE, department="cz-rsj", actor="cz-rsj", now=NOW)
    assert (step.request, step.level, step.state, step.opened_by) == (
        rid,
        "negotiation",
        "open",
        "cz-rsj",
    )
    assert set(step.owners) == {RSJ, MZJ}
    with pytest.raises(ShareError, match="already at negotiation"):
        svc.negotiate(rid, actor="cz-rsj", now=NOW)

    later = NOW + dt.timedelta(days=2)
    coordination = svc.escalate(rid, "cz-rsj", "两次协商未达成一致", now=later)
    assert (coordination.level, coordination.owner) == (
        "coordination",
        "常州市大数据管理局 (cz-dsjj)",
    )
    negotiation = svc.steps(rid)[0]
    assert (negotiation.state, negotiation.closed_at, negotiation.outcome) == (
        "failed",
        later.astimezone(dt.UTC),
        "两次协商未达成一致",
    )
    with pytest.raises(ShareError, match="neither department is provincial"):
        svc.escalate(rid, "cz-rsj", "协调未果", now=later)
    assert len(svc.steps(rid)) == 2  # the refused escalation changed nothing
    assert kinds(svc, rid) == [
        "submitted",
        "denied",
        "negotiation-opened",
        "step-failed",
        "escalated",
    ]


def test_a_provincial_department_takes_it_to_the_steering_group(svc: ShareRequests) -> None:
    rid = submit(svc, dept="js-gat")
    svc.deny(rid, "cz-mzj", REASON, now=NOW)
    svc.negotiate(rid, actor="js-gat", now=NOW)
    svc.escalate(rid, "js-gat", "协商未果", now=NOW)
    with pytest.raises(ShareError, match="does not lead the coordination"):
        svc.settle(rid, "cz-mzj", "协调未果", agreed=False, now=NOW)
    svc.settle(rid, "cz-dsjj", "协调未果，提请领导小组", agreed=False, now=NOW)
    steering = svc.escalate(rid, "cz-dsjj", "涉及省有关部门", now=NOW)
    assert (steering.level, steering.owners) == ("steering", ())
    assert "领导小组" in steering.owner
    with pytest.raises(ShareError, match="last level"):
        svc.escalate(rid, "cz-dsjj", "仍未解决", now=NOW)
    assert [s.level for s in svc.steps(rid)] == ["negotiation", "coordination", "steering"]
    assert [s.state for s in svc.steps(rid)] == ["failed", "failed", "open"]


def test_an_agreement_lets_the_provider_approve_after_all(svc: ShareRequests) -> None:
    rid = submit(svc)
    svc.deny(rid, "cz-mzj", REASON, now=NOW)
    svc.negotiate(rid, actor="cz-mzj", note="约定补交授权书", now=NOW)
    with pytest.raises(ShareError, match="record the outcome"):
        svc.settle(rid, "cz-rsj", " ", agreed=True, now=NOW)
    step = svc.settle(rid, "cz-rsj", "使用部门补交当事人授权书后共享", agreed=True, now=NOW)
    assert step.state == "settled"
    assert svc.request(rid).state == "agreed"
    with pytest.raises(ShareError, match="was settled"):
        svc.escalate(rid, "cz-rsj", "不需要", now=NOW)
    grant = svc.approve(rid, "cz-mzj", now=NOW)
    assert svc.grants(NOW) == [grant.as_acl_grant()]
    assert kinds(svc, rid) == [
        "submitted",
        "denied",
        "negotiation-opened",
        "note",
        "step-settled",
        "approved",
    ]


# --- events and the outbox -------------------------------------------------------------------


def test_every_event_has_its_outbox_row_and_refusals_write_nothing(
    svc: ShareRequests, store: CatalogStore
) -> None:
    rid = submit(svc)
    grant = svc.approve(rid, "cz-mzj", now=NOW)
    for bad in (
        lambda: svc.deny(rid, "cz-mzj", REASON, now=NOW),
        lambda: svc.revoke(grant.id, "cz-rsj", REASON, now=NOW),
    ):
        with pytest.raises(ShareError):
            bad()
    svc.revoke(grant.id, "cz-mzj", REASON, now=NOW + dt.timedelta(minutes=5))
    with store.connect() as conn:
        events = conn.execute(sa.select(ShareEventRow).order_by(ShareEventRow.id)).all()
        outbox = conn.execute(
            sa.select(OutboxRow).where(OutboxRow.topic == SHARE_TOPIC).order_by(OutboxRow.id)
        ).all()
    assert [e.kind for e in events] == ["submitted", "approved", "revoked"]
    assert [(o.value["event"], o.value["kind"], o.key) for o in outbox] == [
        (e.id, e.kind, str(rid)) for e in events
    ]
    assert [o.value["state"] for o in outbox] == ["pending", "approved", "revoked"]
    assert outbox[2].value["actor"] == "cz-mzj"
    assert outbox[2].value["grant"] == grant.id
    assert outbox[2].value["at"] == (NOW + dt.timedelta(minutes=5)).astimezone(dt.UTC).isoformat()


# --- metrics ---------------------------------------------------------------------------------


def test_metrics_are_derived_from_the_database(svc: ShareRequests, store: CatalogStore) -> None:
    scrape_at = dt.datetime(2026, 3, 20, 12, tzinfo=CHINA_TZ)
    registry = CollectorRegistry()
    registry.register(ShareCollector(store, svc, clock=lambda: scrape_at))
    a = submit(svc)
    b = submit(svc, dept="cz-gaj")
    submit(svc, dept="cz-fgw")  # never answered: due 3-16, overdue at the scrape
    d = submit(svc, dept="cz-jyj", now=dt.datetime(2026, 3, 19, tzinfo=CHINA_TZ))  # due 4-02
    submit(svc, dept="cz-mzj", code="20101/11320400014100475P-000001")  # 人社局 provides it
    svc.approve(a, "cz-mzj", now=NOW + dt.timedelta(days=2))  # Wednesday: 2 working days
    svc.deny(b, "cz-mzj", REASON, now=dt.datetime(2026, 3, 17, tzinfo=CHINA_TZ))  # 11

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("govbus_share_requests_open", provider="cz-mzj") == 2  # c, d
    assert value("govbus_share_requests_open", provider="cz-rsj") == 1
    assert value("govbus_share_requests_overdue", provider="cz-mzj") == 1  # c
    assert value("govbus_share_requests_overdue", provider="cz-rsj") == 1  # also due 3-16
    assert value("govbus_share_grants_active", provider="cz-mzj") == 1
    assert value("govbus_share_answer_workdays_bucket", provider="cz-mzj", le="1.0") == 0
    assert value("govbus_share_answer_workdays_bucket", provider="cz-mzj", le="2.0") == 1
    assert value("govbus_share_answer_workdays_bucket", provider="cz-mzj", le="10.0") == 1
    assert value("govbus_share_answer_workdays_bucket", provider="cz-mzj", le="15.0") == 2
    assert value("govbus_share_answer_workdays_bucket", provider="cz-mzj", le="+Inf") == 2
    assert value("govbus_share_answer_workdays_sum", provider="cz-mzj") == 2 + 11
    assert value("govbus_share_answer_workdays_count", provider="cz-mzj") == 2

    svc.revoke(svc.grant_of(a).id, "cz-mzj", REASON, now=scrape_at)  # type: ignore[union-attr]
    svc.approve(d, "cz-mzj", now=scrape_at)
    assert value("govbus_share_grants_active", provider="cz-mzj") == 1  # d's, not a's
    assert value("govbus_share_requests_open", provider="cz-mzj") == 1


def test_register_share_collector_adds_it_to_the_registry(store: CatalogStore) -> None:
    registry = CollectorRegistry()
    assert (
        registry.get_sample_value("govbus_share_answer_workdays_count", {"provider": "x"}) is None
    )
    collector = register_share_collector(store, registry)
    names = {m.name for m in registry.collect()}
    assert {"govbus_share_requests_open", "govbus_share_answer_workdays"} <= names
    registry.unregister(collector)
    assert not {m.name for m in registry.collect()}
