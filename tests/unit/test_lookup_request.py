"""The lookup request parser (govbus.lookup.request): refusals with their codes, and a fuzz test
that no input makes it fail any other way (a 500 instead of a 4xx)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from govbus.lookup import request as req
from govbus.lookup.errors import CODES, LookupRefused
from govbus.vocabulary.identifiers import citizen_id_check_digit, uscc_check_char
from govbus.vocabulary.spec import InfoItem, ResourceKey
from tests.factories import person_resource

PERSON = person_resource(
    (
        InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),
        InfoItem("姓名", "name", "C", 30),
    )
)
COMPOSITE = person_resource(
    (
        InfoItem("统一社会信用代码", "uscc", "C", 18, required=True),
        InfoItem("年度", "year", "C", 4, required=True),
    ),
    key=ResourceKey(("uscc", "year"), "legal-entity"),
)
FIRST17 = "32040219900101001"
CITIZEN = FIRST17 + citizen_id_check_digit(FIRST17)
USCC = "91320400MA1XY2W3A" + uscc_check_char("91320400MA1XY2W3A")
HEADERS = {
    req.PURPOSE_HEADER: "administrative-basis",
    req.CASE_HEADER: "CZ-2026-000123",
    req.END_USER_HEADER: "%E5%BC%A0%E4%B8%89",  # 张三
}


class refused:  # lower case: used like pytest.raises
    """``with refused("code"):`` the block raises LookupRefused with that code."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.ctx = pytest.raises(LookupRefused)

    def __enter__(self) -> None:
        self.info = self.ctx.__enter__()

    def __exit__(self, *exc: Any) -> bool:
        handled = self.ctx.__exit__(*exc)  # fails the test if nothing was raised
        assert self.info.value.code == self.code, self.info.value.message
        return bool(handled)


def test_the_three_headers_make_the_context_with_the_end_user_decoded() -> None:
    ctx = req.query_context(HEADERS)
    assert ctx == req.QueryContext("administrative-basis", "CZ-2026-000123", "张三")


@pytest.mark.parametrize("missing", [req.PURPOSE_HEADER, req.CASE_HEADER, req.END_USER_HEADER])
def test_a_missing_header_is_named(missing: str) -> None:
    headers = {k: v for k, v in HEADERS.items() if k != missing}
    with pytest.raises(LookupRefused) as info:
        req.query_context(headers)
    assert info.value.code == "missing-header" and info.value.status == 400
    assert missing in info.value.message


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (req.PURPOSE_HEADER, "curiosity"),
        (req.CASE_HEADER, "has space"),
        (req.CASE_HEADER, "x" * 65),
        (req.END_USER_HEADER, "%E5%BC"),  # a cut UTF-8 sequence
        (req.END_USER_HEADER, "%00"),
    ],
)
def test_an_unacceptable_header_is_bad_header(header: str, value: str) -> None:
    with refused("bad-header"):
        req.query_context({**HEADERS, header: value})


def test_api_key_from_bearer_or_own_header() -> None:
    assert req.api_key({"Authorization": "Bearer abc"}) == "abc"
    assert req.api_key({req.API_KEY_HEADER: "abc"}) == "abc"
    with refused("unauthenticated"):
        req.api_key({})
    with refused("unauthenticated"):
        req.api_key({"Authorization": "Basic abc"})


def test_citizen_id_key_is_checked_and_upper_cased() -> None:
    x_first17 = "32040219900101002"
    digit = citizen_id_check_digit(x_first17)
    assert req.normalize_key(PERSON, CITIZEN) == CITIZEN
    if digit == "X":
        assert req.normalize_key(PERSON, x_first17 + "x") == x_first17 + "X"
    wrong = FIRST17 + ("0" if CITIZEN[-1] != "0" else "1")
    with pytest.raises(LookupRefused) as info:
        req.normalize_key(PERSON, wrong)
    assert info.value.code == "malformed-key" and "citizen_id" in info.value.message
    assert "check" in info.value.message


def test_composite_key_has_its_parts_and_a_valid_uscc() -> None:
    assert req.normalize_key(COMPOSITE, f"{USCC}|2025") == f"{USCC}|2025"
    with refused("malformed-key"):
        req.normalize_key(COMPOSITE, USCC)  # one part of two
    with refused("malformed-key"):
        req.normalize_key(COMPOSITE, f"{USCC[:-1]}{'0' if USCC[-1] != '0' else '1'}|2025")
    with refused("malformed-key"):
        req.normalize_key(COMPOSITE, f"{USCC}| 2025")


def test_batch_limits_and_shape() -> None:
    keys = [CITIZEN] * 3
    assert req.parse_batch(PERSON, json.dumps({"keys": keys}).encode()) == [CITIZEN]
    with refused("batch-too-large"):
        req.parse_batch(PERSON, json.dumps({"keys": [CITIZEN] * (req.MAX_BATCH + 1)}).encode())
    for body in (b"", b"[]", b'{"keys": []}', b'{"keys": "x"}', b'{"keys": [], "x": 1}', b"\xff"):
        with refused("bad-body"):
            req.parse_batch(PERSON, body)
    with refused("malformed-key"):
        req.parse_batch(PERSON, b'{"keys": [1]}')


def test_every_code_has_a_4xx_or_503_status() -> None:
    assert all(400 <= s < 500 or s == 503 for s in CODES.values())
    with pytest.raises(ValueError, match="unknown refusal code"):
        LookupRefused("oops", "")


_text = st.text(st.characters(codec="utf-8"), max_size=80)
_json = st.recursive(
    st.none() | st.integers() | _text, lambda c: st.lists(c) | st.dictionaries(_text, c)
)


@settings(max_examples=400, deadline=None)
@given(
    headers=st.dictionaries(
        st.sampled_from([req.PURPOSE_HEADER, req.CASE_HEADER, req.END_USER_HEADER,
                         "Authorization", req.API_KEY_HEADER]),
        _text | st.sampled_from(list(HEADERS.values())),
    ),
    body=st.binary(max_size=300)
    | st.builds(lambda ks: json.dumps({"keys": ks}).encode(), st.lists(_text, max_size=120))
    | _json.map(lambda v: json.dumps(v).encode()),
    key=_text | st.just(CITIZEN),
)  # fmt: skip
def test_fuzz_the_parser_refuses_with_a_code_or_accepts(
    headers: dict[str, str], body: bytes, key: str
) -> None:
    """Whatever arrives, the parser answers or refuses with a known code: never another error."""
    for parse in (
        lambda: req.query_context(headers),
        lambda: req.api_key(headers),
        lambda: req.parse_batch(PERSON, body),
        lambda: req.parse_batch(COMPOSITE, body),
        lambda: req.normalize_key(PERSON, key),
        lambda: req.normalize_key(COMPOSITE, key),
    ):
        try:
            parse()
        except LookupRefused as exc:
            assert exc.code in CODES and exc.message
