"""A grant: an approved share request, as every part of govbus speaks of it (articles 16-17).

The share-request workflow (govbus.share) makes them; the reconciler turns valid ones into
ACLs; the consumer SDK and the dispute rules check them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Grant:
    """``department_code`` may read ``resource_code`` until expiry."""

    department_code: str  # 统一社会信用代码 of the consumer department
    resource_code: str
    expires_at: dt.datetime | None = None  # None: no expiry

    def valid_at(self, now: dt.datetime) -> bool:
        return self.expires_at is None or self.expires_at > now
