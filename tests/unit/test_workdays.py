"""Working-day deadlines. Expected dates are worked out by hand from the State Council notices
for 2025 and 2026 (as carried by chinese_calendar); each test lists the days it counts."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from govbus.vocabulary.workdays import (
    DEFAULT_OVERRIDES_PATH,
    OVERRIDES_ENV_VAR,
    Deadline,
    UncoveredYearError,
    WorkdayCalendar,
    WorkdayCount,
    WorkdayDataError,
)

# Invented for the tests; NOT the real 2027 arrangement, which had not been published.
FAKE_2027 = """\
2027:
  source: test data
  holidays:
    - 2027-01-01..2027-01-03
"""


@pytest.fixture(autouse=True)
def _no_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OVERRIDES_ENV_VAR, raising=False)


@pytest.fixture
def cal() -> WorkdayCalendar:
    return WorkdayCalendar()


def overrides(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "overrides.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --- deadlines over the official calendar ---------------------------------------------


def test_ten_days_across_national_day_2025(cal: WorkdayCalendar) -> None:
    # Submitted Tue 2025-09-30. Oct 1-8 (Wed-Wed) 国庆/中秋 off; then
    # Thu 10-09 (1), Fri 10-10 (2), Sat 10-11 worked 调休 (3), Sun 10-12 off, Mon 10-13 (4),
    # 10-14 (5), 10-15 (6), 10-16 (7), Fri 10-17 (8), weekend, Mon 10-20 (9), Tue 10-21 (10).
    assert cal.add_workdays(date(2025, 9, 30), 10) == Deadline(date(2025, 10, 21), True, None)


def test_fifteen_days_catalog_update_deadline(cal: WorkdayCalendar) -> None:
    # Continuing the count above: Wed 10-22 (11), 10-23 (12), Fri 10-24 (13), weekend,
    # Mon 10-27 (14), Tue 10-28 (15).
    assert cal.add_workdays(date(2025, 9, 30), 15).due == date(2025, 10, 28)
    # Across 劳动节 2026, submitted Thu 2026-04-30. May 1-5 (Fri-Tue) off; Wed 05-06 (1),
    # 05-07 (2), Fri 05-08 (3), Sat 05-09 worked 调休 (4), Sun off, Mon 05-11 (5), 05-12 (6),
    # 05-13 (7), 05-14 (8), Fri 05-15 (9), Mon 05-18 (10), 05-19 (11), 05-20 (12), 05-21 (13),
    # Fri 05-22 (14), Mon 05-25 (15).
    deadline = cal.add_workdays(date(2026, 4, 30), 15)
    assert deadline == Deadline(date(2026, 5, 25), True, None)


def test_ten_days_across_spring_festival_2026(cal: WorkdayCalendar) -> None:
    # Submitted Fri 2026-02-13. Sat 02-14 worked 调休 (1); Feb 15-23 (Sun-Mon) 春节 off;
    # Tue 02-24 (2), 02-25 (3), 02-26 (4), Fri 02-27 (5), Sat 02-28 worked 调休 (6), Sun 03-01 off,
    # Mon 03-02 (7), 03-03 (8), 03-04 (9), Thu 03-05 (10).
    assert cal.add_workdays(date(2026, 2, 13), 10) == Deadline(date(2026, 3, 5), True, None)


def test_spring_festival_2026_data(cal: WorkdayCalendar) -> None:
    # The days the test above relies on, as the 2026 notice fixes them.
    assert cal.is_workday(date(2026, 2, 14))  # Saturday, worked
    assert cal.is_workday(date(2026, 2, 28))  # Saturday, worked
    for day in range(15, 24):
        assert not cal.is_workday(date(2026, 2, day))
    assert cal.is_workday(date(2026, 2, 24))


def test_weekend_adjusted_working_day_counts(cal: WorkdayCalendar) -> None:
    # Submitted Fri 2025-09-26: Sat 09-27 off, Sun 09-28 worked 调休 (1), Mon 09-29 (2).
    assert cal.is_workday(date(2025, 9, 28))
    assert cal.add_workdays(date(2025, 9, 26), 1).due == date(2025, 9, 28)
    assert cal.add_workdays(date(2025, 9, 26), 2).due == date(2025, 9, 29)
    assert not cal.is_workday(date(2025, 9, 27))


def test_starting_day_is_not_counted(cal: WorkdayCalendar) -> None:
    # 民法典 第二百零一条: a request on working day Mon 2025-11-03 has its first day on Tue 11-04.
    assert cal.add_workdays(date(2025, 11, 3), 1).due == date(2025, 11, 4)
    # From a Saturday or a holiday, the first working day after it.
    assert cal.add_workdays(date(2025, 11, 1), 1).due == date(2025, 11, 3)
    assert cal.add_workdays(date(2025, 10, 1), 1).due == date(2025, 10, 9)
    assert cal.add_workdays(date(2025, 11, 3), 0).due == date(2025, 11, 3)


def test_datetime_start_uses_its_day(cal: WorkdayCalendar) -> None:
    assert cal.add_workdays(datetime(2025, 11, 3, 23, 59), 1).due == date(2025, 11, 4)


def test_negative_count_is_rejected(cal: WorkdayCalendar) -> None:
    with pytest.raises(ValueError, match=">= 0"):
        cal.add_workdays(date(2025, 11, 3), -1)


# --- years without official data ---------------------------------------------------------


def test_deadline_into_2027_is_flagged_uncertain(cal: WorkdayCalendar) -> None:
    # Submitted Thu 2026-12-24. Fri 12-25 (1), weekend, Mon 12-28 (2), 12-29 (3), 12-30 (4),
    # Thu 12-31 (5); 2027 has no data, so Monday-Friday: Fri 01-01 (6), weekend, Mon 01-04 (7),
    # 01-05 (8), 01-06 (9), Thu 01-07 (10).
    deadline = cal.add_workdays(date(2026, 12, 24), 10)
    assert deadline.due == date(2027, 1, 7)
    assert not deadline.certain
    reason = deadline.reason or ""
    assert "no official holiday data for 2027" in reason
    assert "关于2027年部分节假日安排的通知" in reason and "国务院办公厅" in reason
    assert str(DEFAULT_OVERRIDES_PATH) in reason
    assert "2028" not in reason


def test_same_deadline_is_certain_with_2027_override(tmp_path: Path) -> None:
    cal = WorkdayCalendar(overrides(tmp_path, FAKE_2027))
    # As above, but Fri 2027-01-01 is now a holiday: 12-25 (1), 12-28 (2), 12-29 (3), 12-30 (4),
    # 12-31 (5), Mon 01-04 (6), 01-05 (7), 01-06 (8), 01-07 (9), Fri 01-08 (10).
    assert cal.add_workdays(date(2026, 12, 24), 10) == Deadline(date(2027, 1, 8), True, None)
    assert 2027 in cal.covered_years()


def test_override_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = overrides(tmp_path, FAKE_2027)
    monkeypatch.setenv(OVERRIDES_ENV_VAR, str(path))
    cal = WorkdayCalendar()
    assert cal.overrides_path == path
    assert cal.add_workdays(date(2026, 12, 24), 10).certain


def test_late_december_waits_for_next_years_notice(cal: WorkdayCalendar) -> None:
    # The 2027 元旦 arrangement may still move 2026-12-29..31, so a deadline landing there is
    # uncertain even though 2026 itself is covered; one before Dec 29 is not.
    deadline = cal.add_workdays(date(2026, 12, 28), 1)
    assert deadline.due == date(2026, 12, 29) and not deadline.certain
    assert "2027" in (deadline.reason or "")
    assert cal.add_workdays(date(2026, 12, 24), 2) == Deadline(date(2026, 12, 28), True, None)
    with pytest.raises(UncoveredYearError, match="2027"):
        cal.is_workday(date(2026, 12, 30))


def test_override_may_reach_back_into_december(tmp_path: Path) -> None:
    # Invented: 2026-12-31 off, Sat 2026-12-26 worked, as an 元旦 notice for 2027 could decide.
    text = "2027:\n  holidays: [2026-12-31..2027-01-03]\n  workdays: [2026-12-26]\n"
    path = overrides(tmp_path, text)
    cal = WorkdayCalendar(path)
    assert cal.is_workday(date(2026, 12, 26)) and not cal.is_workday(date(2026, 12, 31))
    # Submitted Thu 12-24: Fri 12-25 (1), Sat 12-26 (2), Mon 12-28 (3), 12-29 (4), 12-30 (5).
    assert cal.add_workdays(date(2026, 12, 24), 5) == Deadline(date(2026, 12, 30), True, None)


def test_is_workday_refuses_to_guess(cal: WorkdayCalendar) -> None:
    with pytest.raises(UncoveredYearError) as info:
        cal.is_workday(date(2027, 3, 1))
    assert "2027" in str(info.value) and str(DEFAULT_OVERRIDES_PATH) in str(info.value)
    with pytest.raises(UncoveredYearError, match="2003"):
        cal.is_workday(date(2003, 3, 3))


def test_several_missing_years_are_all_named(cal: WorkdayCalendar) -> None:
    deadline = cal.add_workdays(date(2026, 12, 24), 300)
    assert not deadline.certain and deadline.due.year == 2028
    assert "no official holiday data for 2027, 2028" in (deadline.reason or "")


def test_covered_years(cal: WorkdayCalendar) -> None:
    years = cal.covered_years()
    assert years[0] == 2004 and 2025 in years and 2026 in years and 2027 not in years
    assert years == tuple(range(years[0], years[-1] + 1))
    assert cal.is_covered(2026) and not cal.is_covered(2027)


def test_a_listed_year_replaces_chinese_calendar(tmp_path: Path) -> None:
    # Only 元旦 listed for 2026: the 春节 days become ordinary working days.
    cal = WorkdayCalendar(overrides(tmp_path, "2026:\n  holidays: [2026-01-01]\n"))
    assert cal.is_workday(date(2026, 2, 16))
    assert not cal.is_workday(date(2026, 2, 14))  # no longer a worked Saturday
    assert cal.is_workday(date(2025, 10, 11))  # other years still from chinese_calendar


def test_shipped_override_file_loads() -> None:
    cal = WorkdayCalendar()
    assert cal.overrides_path == DEFAULT_OVERRIDES_PATH
    assert DEFAULT_OVERRIDES_PATH.is_file()


# --- measuring answer times ---------------------------------------------------------------


def test_workdays_between(cal: WorkdayCalendar) -> None:
    # The same days as the deadline tests, counted the other way.
    assert cal.workdays_between(date(2025, 9, 30), date(2025, 10, 21)) == WorkdayCount(10, True)
    assert cal.workdays_between(date(2026, 2, 13), date(2026, 3, 5)).days == 10
    # Answered the same day, or on a day off before any working day: 0.
    assert cal.workdays_between(date(2025, 9, 30), date(2025, 9, 30)).days == 0
    assert cal.workdays_between(date(2025, 9, 30), date(2025, 10, 8)).days == 0
    # Ending on a weekend that is worked counts it: Sun 2025-09-28 (1).
    assert cal.workdays_between(date(2025, 9, 26), date(2025, 9, 28)).days == 1


def test_workdays_between_into_uncovered_year(cal: WorkdayCalendar) -> None:
    count = cal.workdays_between(date(2026, 12, 24), date(2027, 1, 7))
    assert count.days == 10 and not count.certain
    assert "2027" in (count.reason or "")


def test_workdays_between_rejects_reversed_range(cal: WorkdayCalendar) -> None:
    with pytest.raises(ValueError, match="before start"):
        cal.workdays_between(date(2025, 10, 2), date(2025, 10, 1))


# --- override file validation ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027:\n  holidays: [2027-02-30]\n", ["year 2027", "'2027-02-30'", "not a date"]),
        (
            "2027:\n  holidays: ['2027-02-06..2027-02-31']\n",
            ["year 2027", "2027-02-06..2027-02-31", "not a date"],
        ),
        ("2027:\n  holidays: [2027-01-01]\n  workdays: [2027-01-04]\n", ["2027-01-04", "Monday"]),
        (
            "2027:\n  holidays: [2027-01-02]\n  workdays: [2027-01-02]\n",
            ["both holiday and workday"],
        ),
        ("2027:\n  holidays: ['2027-01-03..2027-01-01']\n", ["ends before it starts"]),
        ("2027:\n  holidays: [2028-01-01]\n", ["year 2027", "outside 2027"]),
        ("2027:\n  holidays: [2026-11-30]\n", ["outside 2027"]),
        ("2027:\n  holiday: [2027-01-01]\n", ["unknown keys", "holiday"]),
        ("2027:\n  holidays: []\n", ["non-empty list"]),
        ("2027:\n  workdays: [2027-01-09]\n", ["non-empty list"]),
        ("27:\n  holidays: [2027-01-01]\n", ["top-level key 27"]),
        (
            "2027:\n  holidays: [2027-01-01]\n'2027':\n  holidays: [2027-01-02]\n",
            ["year 2027", "listed twice"],
        ),
        (
            "2026:\n  holidays: [2026-12-26]\n2027:\n  holidays: [2027-01-01]\n"
            "  workdays: [2026-12-26]\n",
            ["year 2027", "2026-12-26 listed as both holiday and workday"],
        ),
        ("2027:\n  holidays: [20270101]\n", ["20270101", "not a date"]),
        ("- 2027-01-01\n", ["top level"]),
        ("2027: [2027-01-01]\n", ["year 2027", "expected a mapping"]),
        ("2027:\n  holidays: [2027-01-01\n", ["not valid YAML"]),
    ],
)
def test_bad_override_file(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = overrides(tmp_path, text)
    with pytest.raises(WorkdayDataError) as info:
        WorkdayCalendar(path)
    message = str(info.value)
    assert str(path) in message
    for part in expected:
        assert part in message


def test_missing_override_file(tmp_path: Path) -> None:
    with pytest.raises(WorkdayDataError, match="cannot read"):
        WorkdayCalendar(tmp_path / "absent.yaml")


def test_comment_only_override_file(tmp_path: Path) -> None:
    cal = WorkdayCalendar(overrides(tmp_path, "# nothing yet\n"))
    assert 2027 not in cal.covered_years()
