"""Small catalog objects for tests: one place to build a valid resource."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from govbus.vocabulary.identifiers import uscc_check_char
from govbus.vocabulary.spec import InfoItem, Resource, ResourceKey

# 常州市大数据管理局-like code with a correct GB 32100 check character.
PROVIDER = "11320400MB0152709" + uscc_check_char("11320400MB0152709")


def person_resource(items: tuple[InfoItem, ...], **overrides: Any) -> Resource:
    """A daily, unconditional population resource keyed by 公民身份号码 (citizen_id)."""
    resource = Resource(
        code=f"10101/{PROVIDER}-000001",
        name="人口基本信息",
        provider=PROVIDER,
        abstract="常住人口的基本信息",
        format="database",
        category=("人口", "户籍"),
        items=items,
        key=ResourceKey(("citizen_id",), "natural-person"),
        share_type="unconditional",
        update_cycle="daily",
        publish_date=dt.date(2024, 1, 1),
    )
    return dataclasses.replace(resource, **overrides)
