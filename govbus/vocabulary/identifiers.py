"""Validators for the Chinese government identifiers that travel on the bus.

Each ``validate_*`` function returns None for a valid value and otherwise raises
:class:`IdentifierError` whose message names the value, the rule that failed, what was expected
and the standard (e.g. ``(GB 32100-2015)``). Each ``is_valid_*`` helper is the boolean form.

* 统一社会信用代码 (USCC), GB 32100-2015: 18 characters from ``0123456789ABCDEFGHJKLMNPQRTUWXY``;
  1 registration authority, 2 organisation type, 3-8 administrative division code (digits),
  9-17 主体标识码 (组织机构代码), 18 check character.
* 组织机构代码, GB 11714-1997: 8 digits/capital letters plus a check character (0-9 or X).
* 公民身份号码, GB 11643-1999: 6-digit address code, 8-digit birth date (YYYYMMDD), 3-digit
  sequence code, check digit (0-9 or X).
* 政务信息资源代码. The 政务信息资源目录编制指南 splits a resource code into a 前段码
  (classification) and a 后段码 (resource serial). govbus fixes the concrete form as::

      <front>/<provider-code>-<serial>        e.g. 10101/91320400MA1XXXXXXX-000001

  front          5 or 8 digits: 类 (1 digit: 1 基础 base, 2 主题 theme, 3 部门 department),
                 项 (2 digits), 目 (2 digits) and optionally 细目 (3 digits); none of 项, 目,
                 细目 may be all zeros (numbering starts at 1).
  provider-code  the providing organisation's 18-character USCC, or its 9-character
                 组织机构代码 (characters 9-17 of the USCC, written without the usual hyphen).
  serial         6 digits, not 000000.

Personal data: a 公民身份号码 is sensitive personal information (个人信息保护法 art. 28) and error
messages end up in logs and dead-letter topics, so messages about one show it masked
(``320402********123X``) instead of in full.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from govbus.vocabulary.errors import UserError

__all__ = [
    "Classification",
    "IdentifierError",
    "ResourceCode",
    "citizen_id_check_digit",
    "classification_of",
    "is_valid_citizen_id",
    "is_valid_org_code",
    "is_valid_resource_code",
    "is_valid_uscc",
    "normalize_citizen_id",
    "org_code_check_char",
    "parse_resource_code",
    "uscc_check_char",
    "validate_citizen_id",
    "validate_org_code",
    "validate_resource_code",
    "validate_uscc",
]


class IdentifierError(UserError):
    """An identifier breaks its rule; the message names the value, the rule and the standard."""


def _require_str(value: object, what: str, standard: str) -> str:
    # Values come from JSON/Avro payloads, so None or numbers are a data error, not a bug here.
    if not isinstance(value, str):
        raise IdentifierError(
            f"{what} {value!r} must be a string, got {type(value).__name__} ({standard})"
        )
    return value


# --- 统一社会信用代码, GB 32100-2015 -------------------------------------------------------

USCC_STANDARD = "GB 32100-2015"
# I, O, Z, S, V are left out so they cannot be confused with 1, 0, 2, 5, U.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
# 3**i mod 31 for i = 0..16.
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_VALUE = {c: i for i, c in enumerate(USCC_ALPHABET)}


def _uscc_alphabet_error(what: str, code: str, pos: int) -> IdentifierError:
    char = code[pos]
    hint = " (letters must be upper case)" if char.upper() in _USCC_VALUE else ""
    return IdentifierError(
        f"{what} {code!r} position {pos + 1} character {char!r} is not in the alphabet "
        f"{USCC_ALPHABET}{hint}; I, O, Z, S, V are never used ({USCC_STANDARD})"
    )


def uscc_check_char(first17: str) -> str:
    """The GB 32100-2015 check character for the first 17 characters of a USCC."""
    what = "统一社会信用代码 body"
    _require_str(first17, what, USCC_STANDARD)
    if len(first17) != 17:
        raise IdentifierError(
            f"{what} {first17!r} has {len(first17)} characters, expected 17 ({USCC_STANDARD})"
        )
    for pos, char in enumerate(first17):
        if char not in _USCC_VALUE:
            raise _uscc_alphabet_error(what, first17, pos)
    total = sum(_USCC_VALUE[c] * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def validate_uscc(code: str) -> None:
    """Validate a 统一社会信用代码 (GB 32100-2015).

    Positions 1 and 2 are only checked against the alphabet: the list of registration
    authorities and organisation types has been extended by later notices, and a closed list
    here would reject real codes. Characters 9-17 are not held to the GB 11714 check either;
    the GB 32100 check character already covers them.
    """
    what = "统一社会信用代码"
    _require_str(code, what, USCC_STANDARD)
    _require_length(what, code, 18, USCC_STANDARD)
    for pos, char in enumerate(code):
        if char not in _USCC_VALUE:
            raise _uscc_alphabet_error(what, code, pos)
    division = code[2:8]
    if not division.isdigit():
        raise IdentifierError(
            f"{what} {code!r} administrative division code (positions 3-8) is {division!r}, "
            f"expected 6 digits ({USCC_STANDARD})"
        )
    _require_check_char(what, code, uscc_check_char(code[:17]), USCC_STANDARD)


def is_valid_uscc(code: str) -> bool:
    # Like every is_valid_* helper: also False (not TypeError) for None or a number.
    try:
        validate_uscc(code)
    except IdentifierError:
        return False
    return True


# --- 组织机构代码, GB 11714-1997 -------------------------------------------------------

ORG_CODE_STANDARD = "GB 11714-1997"
ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_BODY = re.compile(r"[0-9A-Z]{8}")


def org_code_check_char(first8: str) -> str:
    """The GB 11714-1997 check character for the 8-character body of a 组织机构代码."""
    what = "组织机构代码 body"
    _require_str(first8, what, ORG_CODE_STANDARD)
    if not _ORG_BODY.fullmatch(first8):
        raise IdentifierError(
            f"{what} {first8!r} must be 8 digits or capital letters ({ORG_CODE_STANDARD})"
        )
    # int(c, 36) maps 0-9 to 0-9 and A-Z to 10-35, which is the standard's character value.
    total = sum(int(c, 36) * w for c, w in zip(first8, ORG_CODE_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def validate_org_code(code: str) -> None:
    """Validate a 9-character 组织机构代码 written without its hyphen (GB 11714-1997)."""
    what = "组织机构代码"
    _require_str(code, what, ORG_CODE_STANDARD)
    hint = "; write it without the hyphen" if "-" in code else ""
    _require_length(what, code, 9, ORG_CODE_STANDARD, hint)
    _require_check_char(what, code, org_code_check_char(code[:8]), ORG_CODE_STANDARD)


def is_valid_org_code(code: str) -> bool:
    try:
        validate_org_code(code)
    except IdentifierError:
        return False
    return True


def _require_length(what: str, code: str, length: int, standard: str, hint: str = "") -> None:
    if len(code) != length:
        raise IdentifierError(
            f"{what} {code!r} has {len(code)} characters, expected {length}{hint} ({standard})"
        )


def _require_check_char(what: str, code: str, expected: str, standard: str) -> None:
    """``code`` ends in ``expected``, the check character its standard computes for the rest."""
    if code[-1] != expected:
        raise IdentifierError(
            f"{what} {code!r} check character is {code[-1]!r}, expected {expected!r} ({standard})"
        )


# --- 公民身份号码, GB 11643-1999 -------------------------------------------------------

CITIZEN_ID_STANDARD = "GB 11643-1999"
# 2**(17-i) mod 11 for i = 0..16.
CITIZEN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CITIZEN_ID_CHECK_MAP = "10X98765432"


def _masked(value: str, *, hide_tail: bool = False) -> str:
    """The value for an error message, without the part that identifies the person."""
    if len(value) <= 10:
        return "*" * len(value)
    if hide_tail:
        return value[:6] + "*" * (len(value) - 6)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def citizen_id_check_digit(first17: str) -> str:
    """The GB 11643-1999 check digit ('0'-'9' or 'X') for the first 17 digits."""
    what = "公民身份号码 body"
    _require_str(first17, what, CITIZEN_ID_STANDARD)
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise IdentifierError(
            f"{what} {_masked(first17)!r} must be exactly 17 digits ({CITIZEN_ID_STANDARD})"
        )
    return _check_digit(first17)


# The weighted sum of the ASCII codes, less what the 17 '0's (48 each) add: the digits' sum.
_ZEROS = 48 * sum(CITIZEN_ID_WEIGHTS)


def _check_digit(digits17: str) -> str:
    """The check digit of 17 ASCII digits (checked by the caller). Runs for every published
    record with a 公民身份号码: the bytes' codes, not ``int`` of each character."""
    total = sum(map(operator.mul, digits17.encode("ascii"), CITIZEN_ID_WEIGHTS)) - _ZEROS
    return CITIZEN_ID_CHECK_MAP[total % 11]


# Birth dates (YYYYMMDD) already parsed: None for no real date. A century of births is ~36,500
# keys (and a few digit strings that are no date); the cache stops growing at _BIRTHS_KEPT.
_BIRTHS: dict[str, date | None] = {}
_BIRTHS_KEPT = 100_000


def _birth_date(birth: str) -> date | None:
    """The date of 8 ASCII digits YYYYMMDD, or None if there is no such day."""
    if birth in _BIRTHS:
        return _BIRTHS[birth]
    try:
        born: date | None = date(int(birth[:4]), int(birth[4:6]), int(birth[6:]))
    except ValueError:
        born = None
    if len(_BIRTHS) < _BIRTHS_KEPT:
        _BIRTHS[birth] = born
    return born


def validate_citizen_id(citizen_id: str, *, today: date | None = None) -> None:
    """Validate an 18-digit 公民身份号码 (GB 11643-1999); a lowercase 'x' check digit is accepted.

    ``today`` bounds the birth date (default: the current date); tests pass a fixed day.
    """
    what = "公民身份号码"
    value = _require_str(citizen_id, what, CITIZEN_ID_STANDARD)
    if len(value) != 18:
        shown = _masked(value)
        hint = "; 15-digit first-generation numbers must be converted" if len(value) == 15 else ""
        raise IdentifierError(
            f"{what} {shown!r} has {len(value)} characters, expected 18{hint} "
            f"({CITIZEN_ID_STANDARD})"
        )
    body, check = value[:17], value[17].upper()
    if not (body.isascii() and body.isdigit()):
        raise IdentifierError(
            f"{what} {_masked(value)!r} positions 1-17 must be digits ({CITIZEN_ID_STANDARD})"
        )
    if check not in CITIZEN_ID_CHECK_MAP:
        raise IdentifierError(
            f"{what} {_masked(value)!r} check digit (position 18) must be 0-9 or X "
            f"({CITIZEN_ID_STANDARD})"
        )
    birth = body[6:14]
    born = _birth_date(birth)
    if born is None:
        raise IdentifierError(
            f"{what} {_masked(value, hide_tail=True)!r} birth date (positions 7-14) {birth!r} "
            f"is not a real date, expected YYYYMMDD ({CITIZEN_ID_STANDARD})"
        )
    today = today or date.today()
    if born > today:
        raise IdentifierError(
            f"{what} {_masked(value, hide_tail=True)!r} birth date (positions 7-14) {birth!r} "
            f"is in the future, expected a date up to {today:%Y%m%d} ({CITIZEN_ID_STANDARD})"
        )
    expected = _check_digit(body)
    if check != expected:
        raise IdentifierError(
            f"{what} {_masked(value)!r} check digit is {value[17]!r}, expected {expected!r} "
            f"({CITIZEN_ID_STANDARD})"
        )


def normalize_citizen_id(citizen_id: str, *, today: date | None = None) -> str:
    """The canonical form (upper-case 'X') of a valid 公民身份号码; raises if it is invalid."""
    validate_citizen_id(citizen_id, today=today)
    return citizen_id.upper()


def is_valid_citizen_id(citizen_id: str, *, today: date | None = None) -> bool:
    try:
        validate_citizen_id(citizen_id, today=today)
    except IdentifierError:
        return False
    return True


# --- 政务信息资源代码 ------------------------------------------------------------------

RESOURCE_CODE_RULE = "政务信息资源代码 <front>/<provider-code>-<serial>, 政务信息资源目录编制指南"
Classification = Literal["base", "theme", "department"]
_CLASSES: dict[str, Classification] = {"1": "base", "2": "theme", "3": "department"}


@dataclass(frozen=True)
class ResourceCode:
    """A parsed 政务信息资源代码; ``category_path`` is (项, 目) or (项, 目, 细目)."""

    classification: Classification
    category_path: tuple[str, ...]
    provider_code: str
    serial: str

    @property
    def front(self) -> str:
        digit = next(d for d, c in _CLASSES.items() if c == self.classification)
        return digit + "".join(self.category_path)

    def __str__(self) -> str:
        return f"{self.front}/{self.provider_code}-{self.serial}"


def parse_resource_code(code: str) -> ResourceCode:
    """Parse and validate a 政务信息资源代码 in the form given in the module docstring."""
    what = "政务信息资源代码"

    def fail(problem: str) -> IdentifierError:
        return IdentifierError(f"{what} {code!r} {problem} ({RESOURCE_CODE_RULE})")

    _require_str(code, what, RESOURCE_CODE_RULE)
    if code.count("/") != 1:
        raise fail("must contain exactly one '/' between the front and back segments")
    front, back = code.split("/")

    if len(front) not in (5, 8) or not (front.isascii() and front.isdigit()):
        raise fail(f"front segment {front!r} must be 5 or 8 digits (类+项+目[+细目])")
    if front[0] not in _CLASSES:
        raise fail(
            f"front segment class digit is {front[0]!r}, expected 1 (基础 base), "
            "2 (主题 theme) or 3 (部门 department)"
        )
    path = (front[1:3], front[3:5]) + ((front[5:8],) if len(front) == 8 else ())
    for name, part in zip(("项", "目", "细目"), path, strict=False):
        if int(part) == 0:
            raise fail(f"front segment {name} is {part!r}, expected a number from 1")

    if back.count("-") != 1:
        hint = "; write the 组织机构代码 without its hyphen" if back.count("-") == 2 else ""
        raise fail(f"back segment {back!r} must be <provider-code>-<6-digit serial>{hint}")
    provider, serial = back.split("-")
    if len(serial) != 6 or not (serial.isascii() and serial.isdigit()) or serial == "000000":
        raise fail(f"serial {serial!r} must be 6 digits from 000001")
    if len(provider) not in (9, 18):
        raise fail(
            f"provider code {provider!r} has {len(provider)} characters, expected an 18-character "
            "统一社会信用代码 or a 9-character 组织机构代码"
        )
    try:
        (validate_uscc if len(provider) == 18 else validate_org_code)(provider)
    except IdentifierError as exc:
        raise fail(f"provider code is invalid: {exc}") from exc

    return ResourceCode(_CLASSES[front[0]], path, provider, serial)


def validate_resource_code(code: str) -> None:
    parse_resource_code(code)


def is_valid_resource_code(code: str) -> bool:
    try:
        parse_resource_code(code)
    except IdentifierError:
        return False
    return True


def classification_of(code: str) -> Classification:
    """'base', 'theme' or 'department' for a valid 政务信息资源代码; raises if it is invalid."""
    return parse_resource_code(code).classification
