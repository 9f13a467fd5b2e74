"""Chinese names of the catalog's and the services' values, for display only (no rule here)."""

from __future__ import annotations

from collections.abc import Mapping

SHARE_TYPES: Mapping[str, str] = {
    "unconditional": "无条件共享",
    "conditional": "有条件共享",
    "none": "不予共享",
}
METHODS: Mapping[str, str] = {
    "system-integration": "系统对接",
    "front-end-agent": "前置机共享",
    "online-lookup": "联机查询",
    "batch-download": "部门批量下载",
}
PURPOSES: Mapping[str, str] = {
    "administrative-basis": "行政依据",
    "work-reference": "工作参考",
    "data-verification": "数据校核",
    "business-collaboration": "业务协同",
}
CYCLES: Mapping[str, str] = {
    "realtime": "实时",
    "daily": "每日",
    "weekly": "每周",
    "monthly": "每月",
    "quarterly": "每季度",
    "half-yearly": "每半年",
    "yearly": "每年",
    "other": "其他",
}
REQUEST_STATES: Mapping[str, str] = {
    "pending": "待答复",
    "approved": "已同意",
    "denied": "已拒绝",
    "not-shared": "不予共享（协商中）",
    "agreed": "协商一致，待审批",
    "revoked": "已撤销",
    "expired": "已到期",
}
LEVELS: Mapping[str, str] = {
    "negotiation": "协商",
    "coordination": "协调",
    "steering": "领导小组协调",
}
DISPUTE_STATES: Mapping[str, str] = {
    "open": "待核实",
    "acknowledged": "核实中",
    "resolved": "已处理",
    "settled": "已消除",
}
OUTCOMES: Mapping[str, str] = {
    "confirmed": "确认无误",
    "corrected": "已更正",
    "rejected": "异议不成立",
}
ROLES: Mapping[str, str] = {
    "viewer": "查看者",
    "steward": "数据专员",
    "approver": "审批人",
    "operator": "平台运营（市大数据管理局）",
}

FILTERS = {
    "share_type": SHARE_TYPES,
    "method": METHODS,
    "purpose": PURPOSES,
    "cycle": CYCLES,
    "request_state": REQUEST_STATES,
    "level": LEVELS,
    "dispute_state": DISPUTE_STATES,
    "outcome": OUTCOMES,
    "role": ROLES,
}
