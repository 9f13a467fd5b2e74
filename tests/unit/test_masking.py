"""Masks of public views: what each keeps, and never more for odd input."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest

from govbus.vocabulary.spec import Mask
from stream_apps.projection.masking import mask_text, mask_value


@pytest.mark.parametrize(
    ("mask", "value", "masked"),
    [
        ("citizen-id", "32040219900101123X", "320402********123X"),
        ("citizen-id", "320402900101123", "320402******123"),
        ("citizen-id", " 32040219900101123X ", "320402********123X"),
        ("name", "张三", "张*"),
        ("name", "欧阳娜娜", "欧***"),
        ("name", "阿依古丽·买买提", "阿*******"),
        ("phone", "13812345678", "138****5678"),
        ("phone", "0519-86881234", "*********1234"),
        ("all", "任何内容", "***"),
        ("none", "原样", "原样"),
    ],
)
def test_mask_keeps_what_its_rule_keeps(mask: Mask, value: str, masked: str) -> None:
    assert mask_text(mask, value) == masked


@pytest.mark.parametrize(
    ("mask", "value"),
    [
        ("citizen-id", "3204021990"),  # too short for an id: nothing kept
        ("citizen-id", "3204021990010112345"),  # 19 characters
        ("citizen-id", ""),
        ("name", "张"),
        ("phone", "1234567"),
        ("phone", "138"),
    ],
)
def test_odd_input_is_hidden_entirely(mask: Mask, value: str) -> None:
    assert mask_text(mask, value) == "*" * len(value)


# The most characters each rule ever keeps: id 6 + 4, name 1, phone 3 + 4, all none.
MOST_KEPT = {"citizen-id": 10, "name": 1, "phone": 7, "all": 0}


@pytest.mark.parametrize("mask", sorted(MOST_KEPT))
@pytest.mark.parametrize(
    "value", ["32040219900101123X", "320402900101123", "欧阳娜娜", "13812345678", "12", "x"]
)
def test_no_mask_keeps_more_than_its_rule_or_moves_a_character(mask: Mask, value: str) -> None:
    masked = mask_text(mask, value)
    assert len([c for c in masked if c != "*"]) <= MOST_KEPT[mask]
    if mask != "all":
        # Every visible character is the source's at the same place.
        assert len(masked) == len(value)
        assert all(m in ("*", v) for m, v in zip(masked, value, strict=True))


def test_null_stays_null_and_non_text_is_masked_as_text() -> None:
    for mask in ("none", "citizen-id", "name", "phone", "all"):
        assert mask_value(mask, None) is None  # type: ignore[arg-type]
    assert mask_value("phone", 13812345678) == "138****5678"
    assert mask_value("name", dt.date(2024, 3, 1)) == "2*********"
    assert mask_value("all", decimal.Decimal("5000.00")) == "***"
    assert mask_value("none", decimal.Decimal("5000.00")) == decimal.Decimal("5000.00")


def test_unknown_mask_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known: none, citizen-id"):
        mask_text("initials", "张三")  # type: ignore[arg-type]
