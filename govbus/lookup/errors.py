"""Refusals of the lookup service: an HTTP status and a machine-readable code with the reason.

Every refusal a client can cause is a 4xx with ``{"error": {"code": ..., "message": ...}}``; the
codes are part of the API (docs/lookup.md) and never change meaning.
"""

from __future__ import annotations

from govbus.vocabulary.errors import UserError

# code -> HTTP status
CODES: dict[str, int] = {
    "unauthenticated": 401,  # no API key, or one no department holds
    "missing-header": 400,  # purpose, case number or end user absent
    "bad-header": 400,  # a header present but not acceptable (unknown purpose, too long...)
    "bad-body": 400,  # a batch body that is not {"keys": [text, ...]}
    "malformed-key": 400,  # wrong number of key parts, wrong check digit, ...
    "batch-too-large": 413,  # more keys than a batch may hold
    "no-rights": 403,  # the department may not see the resource at all
    "unknown-resource": 404,  # no such resource in the catalog
    "not-found": 404,  # a single lookup's key has no record (the query is audited all the same)
    "unknown-route": 404,
    "method-not-allowed": 405,
    "rate-limited": 429,  # the department's request rate is above its limit
    "not-ready": 503,  # the partition is still being loaded, or its owner is unreachable
}


class LookupRefused(UserError):
    """A request the service refuses; ``code`` is one of ``CODES``."""

    def __init__(self, code: str, message: str) -> None:
        if code not in CODES:
            raise ValueError(f"unknown refusal code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return CODES[self.code]

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}
