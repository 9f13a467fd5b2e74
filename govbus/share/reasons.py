"""Whether a denial (or revocation) states a real reason (article 17: 对不予共享的, 应说明理由).

The one list of boilerplate answers lives here. Texts are compared after normalising width
(NFKC: full-width letters and punctuation become half-width), case, and removing punctuation,
symbols and spaces, so "ＮＯ。", "No!" and "no" are the same answer. A text made only of
boilerplate phrases (e.g. "不同意，不予共享") is boilerplate too.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["BOILERPLATE_REASONS", "MIN_REASON_CHARS", "reason_problem"]

MIN_REASON_CHARS = 10

BOILERPLATE_REASONS: tuple[str, ...] = (
    "不同意",
    "不予共享",
    "不共享",
    "暂不共享",
    "不批准",
    "不予批准",
    "拒绝",
    "驳回",
    "不符合条件",
    "不符合要求",
    "不符合规定",
    "不适用",
    "无理由",
    "无",
    "其他",
    "其它",
    "略",
    "见附件",
    "no",
    "none",
    "nope",
    "deny",
    "denied",
    "reject",
    "rejected",
    "refused",
    "not approved",
    "not applicable",
    "n/a",
    "na",
    "other",
    "others",
    "see attachment",
)


def _normalise(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(c for c in folded if unicodedata.category(c)[0] not in "PSZC")


_PHRASES = sorted({_normalise(p) for p in BOILERPLATE_REASONS}, key=len, reverse=True)
_ONLY_PHRASES = re.compile("(?:" + "|".join(map(re.escape, _PHRASES)) + ")+")


def reason_problem(reason: str | None) -> str | None:
    """Why ``reason`` is not a real reason, or None when it is one."""
    text = (reason or "").strip()
    if not text:
        return "a reason is mandatory (article 17: a denial states its reasons)"
    if _ONLY_PHRASES.fullmatch(_normalise(text)) or not _normalise(text):
        return (
            f"{text!r} is boilerplate, not a reason: say which condition is not met, which law "
            "or rule forbids it, or what the consumer must provide"
        )
    if len(text) < MIN_REASON_CHARS:
        return (
            f"{text!r} is too short ({len(text)} characters, at least {MIN_REASON_CHARS}): say "
            "which condition is not met, which law or rule forbids it, or what is missing"
        )
    return None
