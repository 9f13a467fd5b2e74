"""The provider's 10 working days (article 17) around holidays, 调休 and uncovered years.

Expected dates are counted by hand from the 国务院办公厅 notices:

- 2025 (国办发明电〔2024〕12号): 国庆节、中秋节 10-01 (Wed) to 10-08 (Wed) off; Sunday 09-28 and
  Saturday 10-11 worked.
- 2026: 春节 02-15 (Sun) to 02-23 (Mon) off; Saturdays 02-14 and 02-28 worked. 中秋节 09-25 (Fri)
  to 09-27 off; 国庆节 10-01 (Thu) to 10-07 (Wed) off; Sunday 09-20 and Saturday 10-10 worked.

The day of submission is not counted (民法典 第二百零一条). Submissions are at 10:00 China time.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from govbus.catalog.store import CatalogStore
from govbus.share.requests import ShareRequests
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.workdays import OVERRIDES_ENV_VAR, WorkdayCalendar

# The fixtures of the share-request tests: the sample catalog in a fresh SQLite database.
from tests.unit.test_share_requests import MARRIAGE, store, template  # noqa: F401

UNTIL = dt.date(2028, 12, 31)


def submit_on(svc: ShareRequests, day: dt.date, dept: str = "cz-rsj") -> int:
    at = dt.datetime.combine(day, dt.time(10), CHINA_TZ)
    return svc.submit(dept, MARRIAGE, "administrative-basis", "核定待遇", UNTIL, now=at).id


@pytest.mark.parametrize(
    ("submitted", "due", "counted"),
    [
        # Monday before 国庆 2025: 09-30; 10-09, 10-10, Saturday 10-11 (worked), 10-13..10-17,
        # 10-20.
        (dt.date(2025, 9, 29), dt.date(2025, 10, 20), "09-30, 10-09..11, 10-13..17, 10-20"),
        # Tuesday, the last working day before the holiday: the count starts after it.
        (dt.date(2025, 9, 30), dt.date(2025, 10, 21), "10-09..11, 10-13..17, 10-20, 10-21"),
        # Sunday 09-28 was a working day (调休): submitted on it, the count starts on 09-29.
        (dt.date(2025, 9, 28), dt.date(2025, 10, 17), "09-29, 09-30, 10-09..11, 10-13..17"),
        # Saturday 09-27 was not; Sunday 09-28 is the first working day counted.
        (dt.date(2025, 9, 27), dt.date(2025, 10, 16), "09-28..30, 10-09..11, 10-13..16"),
        # Friday before 春节 2026: Saturday 02-14 (worked), then 02-24..27, Saturday 02-28
        # (worked), 03-02..05.
        (dt.date(2026, 2, 13), dt.date(2026, 3, 5), "02-14, 02-24..28, 03-02..05"),
        (dt.date(2026, 2, 12), dt.date(2026, 3, 4), "02-13, 02-14, 02-24..28, 03-02..04"),
        # 2026: Sunday 09-20 worked, 中秋 Friday 09-25 and 国庆 10-01..07 off.
        (dt.date(2026, 9, 18), dt.date(2026, 10, 9), "09-20..24, 09-28..30, 10-08, 10-09"),
    ],
)
def test_due_day_across_holidays_and_adjusted_working_days(
    store: CatalogStore,  # noqa: F811
    submitted: dt.date,
    due: dt.date,
    counted: str,
) -> None:
    svc = ShareRequests(store, WorkdayCalendar())
    request = svc.request(submit_on(svc, submitted))
    assert (request.due, request.due_certain, request.due_reason) == (due, True, None), counted


def test_overdue_only_after_the_due_day_across_the_holiday(store: CatalogStore) -> None:  # noqa: F811
    svc = ShareRequests(store, WorkdayCalendar())
    rid = submit_on(svc, dt.date(2026, 2, 13))  # due Thursday 2026-03-05
    assert svc.sweep(dt.datetime(2026, 3, 5, 23, 0, tzinfo=CHINA_TZ)).overdue == ()
    assert svc.sweep(dt.datetime(2026, 3, 6, 8, 0, tzinfo=CHINA_TZ)).overdue == (rid,)


def test_answer_time_skips_the_holiday(store: CatalogStore) -> None:  # noqa: F811
    svc = ShareRequests(store, WorkdayCalendar())
    rid = submit_on(svc, dt.date(2025, 9, 30))
    # Answered on Friday 10-10: 10-09 and 10-10 are the working days since the submission.
    svc.approve(rid, "cz-mzj", now=dt.datetime(2025, 10, 10, 16, tzinfo=CHINA_TZ))
    assert svc.request(rid).answer_workdays == 2


# --- a year past the calendar data ----------------------------------------------------------
# chinese_calendar 1.11.0 covers 2004-2026. Submitted Thursday 2026-12-24, the count runs
# 12-25, 12-28..31 (5), then into 2027. Without 2027's notice, 2027 is counted Monday-Friday
# (and 12-29..31, which its 元旦 arrangement may move, are uncertain too): 01-01, 01-04..07, so
# 2027-01-07, flagged. With an override file giving 2027-01-01..03 off (test data, NOT the real
# 2027 notice): 01-04..08, so 2027-01-08, certain.
SUBMITTED_LATE = dt.date(2026, 12, 24)
OVERRIDE_2027 = """\
2027:
  source: test data for tests/unit/test_share_deadlines.py, not the real 2027 notice
  holidays:
    - 2027-01-01..2027-01-03
"""


def _override_file(tmp_path: Path) -> Path:
    path = tmp_path / "overrides.yaml"
    path.write_text(OVERRIDE_2027, encoding="utf-8")
    return path


def test_a_deadline_in_an_uncovered_year_is_flagged_with_the_reason(
    store: CatalogStore,  # noqa: F811
    tmp_path: Path,
) -> None:
    empty = tmp_path / "no-overrides.yaml"
    empty.write_text("# nothing entered yet\n", encoding="utf-8")
    svc = ShareRequests(store, WorkdayCalendar(empty))
    request = svc.request(submit_on(svc, SUBMITTED_LATE))
    assert (request.due, request.due_certain) == (dt.date(2027, 1, 7), False)
    assert request.due_reason is not None
    assert "no official holiday data for 2027" in request.due_reason
    assert "关于2027年部分节假日安排的通知" in request.due_reason
    assert str(empty) in request.due_reason  # where to enter it
    (listed,) = svc.list_requests()
    assert (listed.due_certain, listed.due_reason) == (False, request.due_reason)


def test_an_override_file_passed_as_argument_makes_it_certain(
    store: CatalogStore,  # noqa: F811
    tmp_path: Path,
) -> None:
    svc = ShareRequests(store, WorkdayCalendar(_override_file(tmp_path)))
    request = svc.request(submit_on(svc, SUBMITTED_LATE))
    assert (request.due, request.due_certain, request.due_reason) == (
        dt.date(2027, 1, 8),
        True,
        None,
    )


def test_the_override_file_from_the_environment_firms_up_a_stored_deadline(
    store: CatalogStore,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    empty = tmp_path / "no-overrides.yaml"
    empty.write_text("# nothing entered yet\n", encoding="utf-8")
    rid = submit_on(ShareRequests(store, WorkdayCalendar(empty)), SUBMITTED_LATE)
    # The notice is entered later; the stored, uncertain due day is recounted when read.
    monkeypatch.setenv(OVERRIDES_ENV_VAR, str(_override_file(tmp_path)))
    svc = ShareRequests(store)  # the default calendar reads $GOVBUS_WORKDAY_OVERRIDES
    request = svc.request(rid)
    assert (request.due, request.due_certain, request.due_reason) == (
        dt.date(2027, 1, 8),
        True,
        None,
    )
    # The sweep uses the firm day too: 01-08 is still in time, 01-09 is not.
    assert svc.sweep(dt.datetime(2027, 1, 8, 20, tzinfo=CHINA_TZ)).overdue == ()
    assert svc.sweep(dt.datetime(2027, 1, 9, 9, tzinfo=CHINA_TZ)).overdue == (rid,)
