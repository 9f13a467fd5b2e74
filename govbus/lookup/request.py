"""The lookup request parser (pure): headers, keys and batches, each refusal with its code.

Every request carries, besides the department's API key (``apikeys``):

- ``X-Govbus-Purpose``: one of the measures' purposes (行政依据 ``administrative-basis``, 工作参考
  ``work-reference``, 数据校核 ``data-verification``, 业务协同 ``business-collaboration``);
  article 18: shared data is used only for the purpose stated;
- ``X-Govbus-Case-Number``: the 办件编号 of the case the lookup serves (1-64 printable ASCII
  characters);
- ``X-Govbus-End-User``: the 经办人, the civil servant who asks (1-64 characters; HTTP headers
  are Latin-1, so a Chinese name is sent percent-encoded UTF-8, e.g. ``%E5%BC%A0%E4%B8%89``).

A key is the record's one-data-one-source key as the producers write it
(``producers.validate.record_key``): the key items' values in the catalog's key order joined
with ``|``. A 公民身份号码 (GB 11643) or 统一社会信用代码 (GB 32100) key item must have a valid
check character (a lower-case ``x`` is upper-cased, as the producers do). A batch is a JSON
object ``{"keys": [...]}`` of at most ``MAX_BATCH`` distinct keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_args
from urllib.parse import unquote

from govbus.lookup.errors import LookupRefused
from govbus.vocabulary.identifiers import IdentifierError, validate_citizen_id, validate_uscc
from govbus.vocabulary.spec import Purpose, Resource
from producers.validate import KEY_SEPARATOR, identifier_kind

PURPOSES: tuple[str, ...] = get_args(Purpose)
MAX_BATCH = 100
MAX_KEY_LENGTH = 512
MAX_BODY_BYTES = MAX_BATCH * (MAX_KEY_LENGTH + 8) + 64

PURPOSE_HEADER = "X-Govbus-Purpose"
CASE_HEADER = "X-Govbus-Case-Number"
END_USER_HEADER = "X-Govbus-End-User"
API_KEY_HEADER = "X-Govbus-Api-Key"

_CASE = re.compile(r"[\x21-\x7e]{1,64}")


@dataclass(frozen=True)
class QueryContext:
    """Why a lookup is made: the evidence the audit keeps with it (article 18)."""

    purpose: str
    case_number: str
    end_user: str


def api_key(headers: Mapping[str, str]) -> str:
    """The key of ``Authorization: Bearer <key>`` or ``X-Govbus-Api-Key``."""
    auth = headers.get("Authorization", "")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise LookupRefused(
                "unauthenticated", "Authorization must be 'Bearer <the department's API key>'"
            )
        return value.strip()
    value = headers.get(API_KEY_HEADER, "").strip()
    if not value:
        raise LookupRefused(
            "unauthenticated",
            f"no API key: send 'Authorization: Bearer <key>' or {API_KEY_HEADER} (`govbus apply` "
            "issues each department's key to secrets/lookup-keys/<department id>.key)",
        )
    return value


def query_context(headers: Mapping[str, str]) -> QueryContext:
    """The purpose, case number and end user, all three present and acceptable."""
    missing = [h for h in (PURPOSE_HEADER, CASE_HEADER, END_USER_HEADER) if not headers.get(h)]
    if missing:
        raise LookupRefused(
            "missing-header",
            f"missing header(s) {', '.join(missing)}: every lookup states its purpose, the case "
            "number (办件编号) it serves and the end user (经办人) who asks (article 18)",
        )
    purpose = headers[PURPOSE_HEADER].strip()
    if purpose not in PURPOSES:
        raise LookupRefused(
            "bad-header",
            f"{PURPOSE_HEADER}: {purpose[:40]!r} is not a purpose of the measures; one of "
            f"{', '.join(PURPOSES)}",
        )
    case = headers[CASE_HEADER].strip()
    if not _CASE.fullmatch(case):
        raise LookupRefused(
            "bad-header",
            f"{CASE_HEADER}: a case number (办件编号) is 1-64 printable ASCII characters without "
            "spaces",
        )
    raw_user = headers[END_USER_HEADER].strip()
    try:
        end_user = unquote(raw_user, errors="strict").strip()
    except UnicodeDecodeError:
        end_user = ""
    if not end_user or len(end_user) > 64 or not end_user.isprintable():
        raise LookupRefused(
            "bad-header",
            f"{END_USER_HEADER}: the end user (经办人) is 1-64 printable characters; send a "
            "Chinese name percent-encoded in UTF-8",
        )
    return QueryContext(purpose, case, end_user)


def normalize_key(resource: Resource, key: object) -> str:
    """The key as the producers write it, or ``malformed-key`` saying which part is wrong."""
    if not isinstance(key, str) or not key.strip():
        raise LookupRefused("malformed-key", "a key is a non-empty text")
    if len(key) > MAX_KEY_LENGTH:
        raise LookupRefused("malformed-key", f"a key has at most {MAX_KEY_LENGTH} characters")
    parts = key.split(KEY_SEPARATOR)
    items = resource.key.items
    if len(parts) != len(items):
        raise LookupRefused(
            "malformed-key",
            f"resource {resource.code}'s key has {len(items)} part(s) ({', '.join(items)}, joined "
            f"with {KEY_SEPARATOR!r}); the key given has {len(parts)}",
        )
    out = []
    for code, part in zip(items, parts, strict=True):
        item = resource.item(code)
        kind = identifier_kind(resource, item) if item is not None else None
        if not part or part != part.strip() or not part.isprintable():
            raise LookupRefused(
                "malformed-key", f"key item {code}: empty, or with spaces or control characters"
            )
        if kind is not None:
            try:
                (validate_citizen_id if kind == "citizen-id" else validate_uscc)(part.upper())
            except IdentifierError as exc:
                raise LookupRefused("malformed-key", f"key item {code}: {exc}") from None
            part = part.upper()
        out.append(part)
    return KEY_SEPARATOR.join(out)


def batch_keys(body: bytes) -> Sequence[object]:
    """The raw keys of a batch body ``{"keys": [...]}`` (not yet normalized)."""
    if len(body) > MAX_BODY_BYTES:
        raise LookupRefused(
            "batch-too-large", f"a batch body has at most {MAX_BODY_BYTES} bytes ({MAX_BATCH} keys)"
        )
    try:
        data: Any = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise LookupRefused("bad-body", f"the body is not JSON in UTF-8 ({exc})") from None
    if not isinstance(data, dict) or set(data) != {"keys"} or not isinstance(data["keys"], list):
        raise LookupRefused("bad-body", 'the body is {"keys": ["<key>", ...]} and nothing else')
    keys: list[object] = data["keys"]
    if not keys:
        raise LookupRefused("bad-body", "a batch names at least one key")
    if len(keys) > MAX_BATCH:
        raise LookupRefused(
            "batch-too-large", f"a batch has at most {MAX_BATCH} keys; this one has {len(keys)}"
        )
    return keys


def parse_batch(resource: Resource, body: bytes) -> list[str]:
    """The batch's distinct normalized keys, in the order given."""
    keys = [normalize_key(resource, k) for k in batch_keys(body)]
    return list(dict.fromkeys(keys))
