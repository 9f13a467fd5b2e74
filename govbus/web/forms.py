"""Server-side form validation: each field parsed or refused with its name and the rule.

A form is read with ``FormData(form)``; each accessor returns the parsed value or raises
``FormError(field, message)``, which the page shows beside the field (and the message names
the field, in Chinese and by its form name). Nothing a browser sends is trusted: lengths are
bounded, choices checked against their list, dates and numbers parsed, control characters
refused. The rules of the domain (a purpose the catalog allows, a denial reason that is not
boilerplate, ...) are the services' own and come back as their ``UserError`` messages.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping, Sequence

from govbus.vocabulary.errors import UserError

__all__ = ["FIELD_LABELS", "FormData", "FormError"]

FIELD_LABELS: Mapping[str, str] = {
    "username": "用户名",
    "password": "密码",
    "resource": "资源代码",
    "purpose": "用途",
    "duty": "履行职责",
    "until": "有效期至",
    "items": "信息项",
    "reason": "理由",
    "note": "说明",
    "outcome": "结果",
    "agreed": "是否达成一致",
    "key": "记录主键",
    "item": "信息项",
    "evidence": "证据",
    "corrected_offset": "更正记录位置",
    "corrected_trace_id": "更正记录 trace id",
    "q": "查询",
    "workdays": "整改期限（工作日）",
    "response": "整改情况",
    "department": "部门",
    "kind": "违规类型",
    "state": "状态",
}


class FormError(UserError):
    """One field is missing or invalid."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        label = FIELD_LABELS.get(field, field)
        super().__init__(f"字段「{label}」({field})：{message}")


class FormData:
    """Typed access to a submitted form (a Starlette ``FormData`` or any mapping of lists)."""

    def __init__(self, form: Mapping[str, object] | object) -> None:
        self._form = form

    def _values(self, name: str) -> list[str]:
        getlist = getattr(self._form, "getlist", None)
        raw: Sequence[object]
        if getlist is not None:
            raw = getlist(name)
        else:
            value = self._form.get(name) if isinstance(self._form, Mapping) else None
            raw = [] if value is None else [value]
        out = []
        for value in raw:
            if not isinstance(value, str):
                raise FormError(name, "应为文本，不接受文件")
            out.append(value)
        return out

    def text(self, name: str, *, required: bool = True, max_len: int = 2000) -> str:
        values = self._values(name)
        if len(values) > 1:
            raise FormError(name, "只能填写一次")
        value = values[0].strip() if values else ""
        if not value:
            if required:
                raise FormError(name, "必填")
            return ""
        if len(value) > max_len:
            raise FormError(name, f"最多 {max_len} 个字符（现有 {len(value)} 个）")
        bad = [c for c in value if unicodedata.category(c) == "Cc" and c not in "\r\n\t"]
        if bad:
            raise FormError(name, f"含有控制字符 {bad[0]!r}")
        return value

    def optional(self, name: str, *, max_len: int = 2000) -> str | None:
        return self.text(name, required=False, max_len=max_len) or None

    def choice(self, name: str, choices: Sequence[str], *, required: bool = True) -> str | None:
        value = self.text(name, required=required, max_len=200)
        if not value:
            return None
        if value not in choices:
            raise FormError(name, f"{value!r} 不是可选值之一：{'、'.join(choices)}")
        return value

    def date(self, name: str, *, required: bool = True) -> dt.date | None:
        value = self.text(name, required=required, max_len=10)
        if not value:
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise FormError(name, f"{value!r} 不是日期，应为 2026-12-31 这样的格式") from None

    def codes(self, name: str, *, max_count: int = 500) -> list[str]:
        """Repeated fields or one comma-separated field (info item codes)."""
        values = self._values(name)
        if len(values) > max_count:
            raise FormError(name, f"最多 {max_count} 项")
        codes: list[str] = []
        for value in values:
            for part in value.replace("，", ",").split(","):
                code = part.strip()
                if not code:
                    continue
                if len(code) > 100 or not code.isprintable():
                    raise FormError(name, f"{code[:40]!r} 不是信息项代码")
                codes.append(code)
        return codes

    def flag(self, name: str) -> bool:
        value = self.text(name, required=False, max_len=10)
        if value not in ("", "on", "1", "true", "yes"):
            raise FormError(name, f"{value!r} 应为勾选框（on）")
        return bool(value)
