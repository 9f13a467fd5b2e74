"""Comparison rules of multi-source verification: equivalent and different value pairs."""

from __future__ import annotations

import pytest

from stream_apps.verification.compare import compare, parse_date, parse_number

EQUAL = [
    ("exact", "ABC", "ABC", None),
    ("exact", None, None, None),
    ("text", "张三", "张三", None),
    ("text", "ＡＢＣ１２３", "abc123", None),  # full-width, case
    ("text", "天宁区\u3000青果巷 8 号", "天宁区 青果巷 8 号", None),  # ideographic space
    ("text", "  Zhang   San ", "zhang san", None),
    ("text", "", None, None),
    ("text", "Straße", "STRASSE", None),  # casefold
    ("numeric", "1000", "1,000.00", None),
    ("numeric", "１０００", "1000", None),  # full-width digits
    ("numeric", "12.30", "12.3", None),
    ("numeric", "100.00", "100.01", 0.01),  # within tolerance, exactly at the bound
    ("numeric", "0.1", "0.3", 0.2),  # decimal-safe: 0.3 - 0.1 == 0.2
    ("numeric", "n/a", " n/a ", None),  # no number: compared as text
    ("date", "2024-01-05", "2024/1/5", None),
    ("date", "2024-01-05", "20240105", None),
    ("date", "2024-01-05", "2024年1月5日", None),
    ("date", "2024-01-05", "2024.01.05", None),
    ("date", "2024-01-05", "2024-01-05T00:00:00+08:00", None),
    ("date", "2024-01-05", "2024-01-05 00:00", None),
    ("date", "２０２４年１月５日", "2024-01-05", None),
    ("date", "2024-01-05T10:30:00+08:00", "2024-01-05T02:30:00Z", None),  # same instant
]

DIFFERENT = [
    ("exact", "ABC", "abc", None),
    ("exact", "ABC", None, None),
    ("exact", "1000", "1,000", None),
    ("text", "张三", "张叁", None),
    ("text", "abc", "abd", None),
    ("text", "a b", "ab", None),  # inner space kept (collapsed, not removed)
    ("text", "x", None, None),
    ("numeric", "1000", "1000.01", None),  # no tolerance: exact number
    ("numeric", "100.00", "100.02", 0.01),
    ("numeric", "0.1", "0.31", 0.2),
    ("numeric", "100", None, 5),
    ("numeric", "100", "abc", 1000),
    ("date", "2024-01-05", "2024-01-06", None),
    ("date", "2024-01-05", "2024/5/1", None),
    ("date", "2024-01-05", "2024-01-05T10:00:00+08:00", None),  # not midnight
    ("date", "2024-01-05", "2024-1-5x", None),
    ("date", "2024-02-30", "2024-03-01", None),  # no such date: compared as text
    ("date", "2024-01-05T10:30:00+08:00", "2024-01-05T10:30:00Z", None),
]


@pytest.mark.parametrize(("rule", "a", "b", "tolerance"), EQUAL)
def test_equivalent_values_agree(rule: str, a: str | None, b: str | None, tolerance: float | None):
    assert compare(rule, a, b, tolerance)  # type: ignore[arg-type]
    assert compare(rule, b, a, tolerance)  # type: ignore[arg-type]  # symmetric


@pytest.mark.parametrize(("rule", "a", "b", "tolerance"), DIFFERENT)
def test_different_values_disagree(
    rule: str, a: str | None, b: str | None, tolerance: float | None
):
    assert not compare(rule, a, b, tolerance)  # type: ignore[arg-type]
    assert not compare(rule, b, a, tolerance)  # type: ignore[arg-type]


def test_parsers_read_the_forms_they_claim():
    assert str(parse_number("1,234,567.80")) == "1234567.80"
    assert parse_number("12abc") is None
    assert parse_number("NaN") is None
    assert str(parse_date("2024年12月31日")) == "2024-12-31"
    assert parse_date("2024-13-01") is None


def test_unknown_rule_is_refused_with_the_rules_named():
    with pytest.raises(ValueError, match="exact, text, numeric, date"):
        compare("fuzzy", "a", "b")  # type: ignore[arg-type]
