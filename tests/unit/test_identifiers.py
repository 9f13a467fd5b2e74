"""Identifier validators: valid samples are built with the check helpers, then broken one rule
at a time; every error must name the rule (its standard) and what was expected."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from govbus.vocabulary.identifiers import (
    IdentifierError,
    ResourceCode,
    citizen_id_check_digit,
    classification_of,
    is_valid_citizen_id,
    is_valid_org_code,
    is_valid_resource_code,
    is_valid_uscc,
    normalize_citizen_id,
    org_code_check_char,
    parse_resource_code,
    uscc_check_char,
    validate_citizen_id,
    validate_org_code,
    validate_resource_code,
    validate_uscc,
)

USCC_RULE = "GB 32100-2015"
ORG_RULE = "GB 11714-1997"
ID_RULE = "GB 11643-1999"
RESOURCE_RULE = "政务信息资源代码"
TODAY = date(2025, 6, 1)


def make_uscc(first17: str) -> str:
    return first17 + uscc_check_char(first17)


def make_org(first8: str) -> str:
    return first8 + org_code_check_char(first8)


def make_id(first17: str) -> str:
    return first17 + citizen_id_check_digit(first17)


# A Changzhou (320400) enterprise (9 = 工商 registration, 1 = enterprise) with a GB 11714-valid
# 主体标识码; the check characters are computed, not copied.
CZ_ORG = make_org("MA1MB0K0")
CZ_USCC = make_uscc("91320400" + CZ_ORG)


def wrong_char(correct: str, alphabet: str) -> str:
    return next(c for c in alphabet if c != correct)


def error(func: Callable[..., object], *args: object, **kwargs: object) -> str:
    with pytest.raises(IdentifierError) as info:
        func(*args, **kwargs)
    return str(info.value)


# --- 统一社会信用代码 -----------------------------------------------------------------------


def test_check_char_known_values() -> None:
    # Hand computation for the Changzhou sample:
    # 9 1 3 2 0 4 0 0 M=21 A=10 1 M=21 B=11 0 K=19 0 6, weights 1 3 9 27 19 26 16 17 20 29 25 13
    # 8 24 10 30 28: 9+3+27+54+0+104+0+0+420+290+25+273+88+0+190+0+168 = 1651; 1651 mod 31 = 8;
    # 31-8 = 23 -> alphabet[23] = 'P'. The org part: M=22 A=10 1 M=22 B=11 0 K=20 0 with weights
    # 3 7 9 10 5 8 4 2: 66+70+9+220+55+0+80+0 = 500; 500 mod 11 = 5; 11-5 = 6.
    assert CZ_ORG == "MA1MB0K06"
    assert CZ_USCC == "91320400MA1MB0K06P"


@pytest.mark.parametrize(
    "code",
    [
        CZ_USCC,
        "91330100799655058B",  # 阿里巴巴（中国）有限公司, as published in its business licence
        "914403001922038216",  # 华为技术有限公司, as published
        make_uscc("12320400" + make_org("46601234")),  # 1 = 机构编制 (a public institution)
        make_uscc("Y1320402" + "MA1XY0Y0" + "X"),  # Y check chars and letters at 9-17
    ],
)
def test_valid_uscc(code: str) -> None:
    validate_uscc(code)
    assert is_valid_uscc(code)


def test_uscc_wrong_check_char() -> None:
    bad = CZ_USCC[:17] + wrong_char("P", "0123456789ABCDEFGHJKLMNPQRTUWXY")
    msg = error(validate_uscc, bad)
    assert bad in msg and USCC_RULE in msg
    assert "check character is '0', expected 'P'" in msg
    assert not is_valid_uscc(bad)


def test_uscc_single_digit_typo_is_caught() -> None:
    typo = CZ_USCC[:3] + "3" + CZ_USCC[4:]  # 9132 -> 9133
    assert "check character" in error(validate_uscc, typo)


@pytest.mark.parametrize("code", [CZ_USCC[:17], CZ_USCC + "0", ""])
def test_uscc_wrong_length(code: str) -> None:
    msg = error(validate_uscc, code)
    assert USCC_RULE in msg and "expected 18" in msg


@pytest.mark.parametrize("letter", ["I", "O", "Z", "S", "V"])
def test_uscc_forbidden_letters(letter: str) -> None:
    code = CZ_USCC[:9] + letter + CZ_USCC[10:]
    msg = error(validate_uscc, code)
    assert USCC_RULE in msg and f"position 10 character {letter!r}" in msg
    assert "not in the alphabet" in msg


def test_uscc_lowercase_is_rejected_with_hint() -> None:
    msg = error(validate_uscc, CZ_USCC.lower())
    assert "upper case" in msg and USCC_RULE in msg


def test_uscc_division_code_must_be_digits() -> None:
    code = make_uscc("9132040A" + CZ_ORG)  # a valid check char, so only the division rule fails
    msg = error(validate_uscc, code)
    assert "administrative division code (positions 3-8)" in msg
    assert "'32040A'" in msg and "6 digits" in msg and USCC_RULE in msg


@pytest.mark.parametrize("value", [None, 91320400, b"91320400MA1MB0K06P"])
def test_uscc_non_string(value: object) -> None:
    assert "must be a string" in error(validate_uscc, value)
    assert not is_valid_uscc(value)  # type: ignore[arg-type]


def test_uscc_check_char_rejects_bad_body() -> None:
    assert "expected 17" in error(uscc_check_char, "9132")
    assert "not in the alphabet" in error(uscc_check_char, "9132040OMA1MB0K06")


# --- 组织机构代码 -------------------------------------------------------------------------


def test_org_code_check_char() -> None:
    # 1*3+9*7+2*9+2*10+0*5+3*8+8*4+2*2 = 164; 164 mod 11 = 10; 11-10 = 1 (Huawei's 19220382-1)
    assert org_code_check_char("19220382") == "1"
    assert org_code_check_char("00000006") == "X"  # 6*2 = 12; 12 mod 11 = 1; 11-1 = 10 -> X
    assert org_code_check_char("00000000") == "0"  # 0 mod 11 = 0; 11-0 = 11 -> 0


def test_valid_org_code() -> None:
    validate_org_code("799655058")  # characters 9-17 of the Alibaba USCC
    assert is_valid_org_code(CZ_ORG)


def test_org_code_errors() -> None:
    msg = error(validate_org_code, "79965505-8")
    assert ORG_RULE in msg and "expected 9" in msg and "without the hyphen" in msg
    msg = error(validate_org_code, "799655059")
    assert ORG_RULE in msg and "check character is '9', expected '8'" in msg
    assert "8 digits or capital letters" in error(validate_org_code, "7996550a8")
    assert not is_valid_org_code("799655059")


# --- 公民身份号码 -------------------------------------------------------------------------

# Hand computation: 3 2 0 4 0 2 1 9 9 0 0 3 0 7 1 2 3 with weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5
# 8 4 2: 21+18+0+20+0+8+2+9+54+0+0+27+0+35+8+8+6 = 216; 216 mod 11 = 7; "10X98765432"[7] = '5'.
CITIZEN_ID = "320402199003071235"
# 3 2 0 4 0 2 1 9 8 5 0 2 1 5 1 1 8: 21+18+0+20+0+8+2+9+48+15+0+18+10+25+8+4+16 = 222;
# 222 mod 11 = 2 -> 'X'.
CITIZEN_ID_X = "32040219850215118X"


def test_citizen_id_check_digit_known_values() -> None:
    assert citizen_id_check_digit(CITIZEN_ID[:17]) == "5"
    assert citizen_id_check_digit(CITIZEN_ID_X[:17]) == "X"


def test_valid_citizen_ids() -> None:
    validate_citizen_id(CITIZEN_ID, today=TODAY)
    validate_citizen_id(CITIZEN_ID_X, today=TODAY)
    assert is_valid_citizen_id(CITIZEN_ID_X, today=TODAY)
    validate_citizen_id(make_id("32040220000229123"), today=TODAY)  # a real leap day


def test_lowercase_x_is_accepted_and_normalized() -> None:
    lower = CITIZEN_ID_X.lower()
    validate_citizen_id(lower, today=TODAY)
    assert normalize_citizen_id(lower, today=TODAY) == CITIZEN_ID_X
    assert normalize_citizen_id(CITIZEN_ID, today=TODAY) == CITIZEN_ID


def test_citizen_id_wrong_check_digit() -> None:
    bad = CITIZEN_ID[:17] + "6"
    msg = error(validate_citizen_id, bad, today=TODAY)
    assert ID_RULE in msg and "check digit is '6', expected '5'" in msg
    # Personal data: the message shows the number masked, never in full.
    assert bad not in msg and "320402********1236" in msg
    assert not is_valid_citizen_id(bad, today=TODAY)


@pytest.mark.parametrize("value", [CITIZEN_ID[:17], CITIZEN_ID + "1", "320402900307123"])
def test_citizen_id_wrong_length(value: str) -> None:
    msg = error(validate_citizen_id, value, today=TODAY)
    assert ID_RULE in msg and "expected 18" in msg and value not in msg


def test_fifteen_digit_id_gets_a_hint() -> None:
    assert "first-generation" in error(validate_citizen_id, "320402900307123", today=TODAY)


@pytest.mark.parametrize(
    ("first17", "problem"),
    [
        ("32040219900230123", "not a real date"),  # 30 February
        ("32040219011329123", "not a real date"),  # month 13
        ("32040220230229123", "not a real date"),  # 2023 is not a leap year
        ("32040200000101123", "not a real date"),  # year 0000
        ("32040220250602123", "in the future"),  # the day after TODAY
    ],
)
def test_citizen_id_impossible_birth_date(first17: str, problem: str) -> None:
    value = make_id(first17)  # a correct check digit: only the birth date is wrong
    msg = error(validate_citizen_id, value, today=TODAY)
    assert ID_RULE in msg and "birth date (positions 7-14)" in msg and problem in msg
    assert value not in msg and value[-4:] not in msg.split("birth date")[0]


def test_birth_date_today_is_allowed() -> None:
    validate_citizen_id(make_id("32040220250601123"), today=TODAY)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("3204021990030712A5", "positions 1-17 must be digits"),
        ("32040219900307123Y", "must be 0-9 or X"),
        ("３２０４０２199003071235", "positions 1-17 must be digits"),  # full-width digits
    ],
)
def test_citizen_id_bad_characters(value: str, problem: str) -> None:
    msg = error(validate_citizen_id, value, today=TODAY)
    assert ID_RULE in msg and problem in msg


def test_citizen_id_check_digit_rejects_bad_body() -> None:
    assert "exactly 17 digits" in error(citizen_id_check_digit, "3204021990030712")


# --- 政务信息资源代码 ---------------------------------------------------------------------


def test_parse_resource_code_with_uscc() -> None:
    code = f"10101/{CZ_USCC}-000001"
    rc = parse_resource_code(code)
    assert rc == ResourceCode("base", ("01", "01"), CZ_USCC, "000001")
    assert str(rc) == code and rc.front == "10101"
    validate_resource_code(code)
    assert is_valid_resource_code(code)
    assert classification_of(code) == "base"


def test_parse_resource_code_with_org_code_and_subitem() -> None:
    code = f"30201001/{CZ_ORG}-000123"
    rc = parse_resource_code(code)
    assert rc == ResourceCode("department", ("02", "01", "001"), CZ_ORG, "000123")
    assert str(rc) == code
    assert classification_of(f"21203/{CZ_ORG}-999999") == "theme"


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        (f"10101{CZ_USCC}-000001", "exactly one '/'"),
        (f"10101/{CZ_USCC}/000001", "exactly one '/'"),
        (f"101/{CZ_USCC}-000001", "must be 5 or 8 digits"),
        (f"1010100/{CZ_USCC}-000001", "must be 5 or 8 digits"),
        (f"1010A/{CZ_USCC}-000001", "must be 5 or 8 digits"),
        (f"40101/{CZ_USCC}-000001", "class digit is '4'"),
        (f"00101/{CZ_USCC}-000001", "class digit is '0'"),
        (f"10001/{CZ_USCC}-000001", "项 is '00'"),
        (f"10100/{CZ_USCC}-000001", "目 is '00'"),
        (f"10101000/{CZ_USCC}-000001", "细目 is '000'"),
        (f"10101/{CZ_USCC}000001", "<provider-code>-<6-digit serial>"),
        ("10101/79965505-8-000001", "without its hyphen"),
        (f"10101/{CZ_USCC}-00001", "serial '00001' must be 6 digits"),
        (f"10101/{CZ_USCC}-00000A", "must be 6 digits"),
        (f"10101/{CZ_USCC}-000000", "must be 6 digits from 000001"),
        ("10101/9132040-000001", "expected an 18-character 统一社会信用代码"),
        (f"10101/{CZ_USCC[:17]}0-000001", USCC_RULE),
        ("10101/799655059-000001", ORG_RULE),
    ],
)
def test_malformed_resource_codes(code: str, problem: str) -> None:
    msg = error(parse_resource_code, code)
    assert RESOURCE_RULE in msg and "政务信息资源目录编制指南" in msg
    assert problem in msg and repr(code) in msg
    assert not is_valid_resource_code(code)
    with pytest.raises(IdentifierError):
        classification_of(code)


def test_resource_code_non_string() -> None:
    assert "must be a string" in error(parse_resource_code, None)
