"""The yearly evaluation of departments (articles 20 and 26), method version 1, as pure rules.

docs/evaluation.md is the published method; this module is its formulas. Each department gets
nine indicators, each a score in [0, 1] or "not applicable" (nothing to measure: no requests
received, no notices, ...); the department's score is the weighted mean of its applicable
indicators × 100, so a department is never punished for what did not happen to it. Ranks are by
score (higher first), ties sharing a rank, then by department id for the order. Improvement
opinions come from the two weakest applicable indicators below 0.9.

Everything is computed from the ``DepartmentYear`` figures ``govbus.supervise.records`` reads
from the system's own records; the same figures always give the same evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "INDICATORS",
    "METHOD_VERSION",
    "DepartmentScore",
    "DepartmentYear",
    "Indicator",
    "IndicatorScore",
    "evaluate",
    "grade",
]

METHOD_VERSION = "1"
ANSWER_LIMIT = 10  # working days (article 17)


@dataclass(frozen=True)
class DepartmentYear:
    """A department's figures for one year (China time), each from a named record."""

    department_id: str
    department_code: str
    name: str
    resources: int  # resources it provides in the catalog at year end
    complete_resources: int  # of those, with complete metadata (see docs/evaluation.md)
    deadlines_due: int  # article 9 deadlines due in the year
    deadlines_met: int  # of those, met by a catalog change on or before the due day
    late_resources: int  # distinct resources with a 26(2) late-provision violation in the year
    requests_received: int  # share requests to it, due in the year
    requests_answered_in_time: int  # of those, answered on or before the due day
    answer_workdays: tuple[int, ...]  # working days each answer (given in the year) took
    inconsistencies: int  # 26(4) violations in the year (disputes, dead-letter rate)
    requests_made: int  # share requests it filed as a consumer in the year
    grants_received: int  # of those, approved
    violations: int  # violations of any kind that occurred in the year
    notices: int  # rectification notices issued to it in the year
    rectified_in_time: int  # of those, answered or closed on or before their deadline


@dataclass(frozen=True)
class Indicator:
    key: str
    name: str  # Chinese name, as in the report
    weight: int
    formula: str  # as docs/evaluation.md states it
    score: Callable[[DepartmentYear], float | None]
    evidence: Callable[[DepartmentYear], str]
    opinion: str  # the improvement opinion when this indicator is weak


def _ratio(n: int, d: int) -> float | None:
    return None if d == 0 else n / d


def _answer_time(y: DepartmentYear) -> float | None:
    if not y.answer_workdays:
        return None
    mean = sum(y.answer_workdays) / len(y.answer_workdays)
    return max(0.0, min(1.0, (ANSWER_LIMIT - mean) / (ANSWER_LIMIT - 1)))


def _mean_days(y: DepartmentYear) -> str:
    if not y.answer_workdays:
        return "no answers in the year"
    mean = sum(y.answer_workdays) / len(y.answer_workdays)
    return f"{len(y.answer_workdays)} answer(s), mean {mean:.1f} working days"


INDICATORS: tuple[Indicator, ...] = (
    Indicator(
        "catalog_completeness",
        "目录完整性",
        10,
        "complete resources / resources provided (0 when the department provides none)",
        lambda y: 0.0 if y.resources == 0 else y.complete_resources / y.resources,
        lambda y: f"{y.complete_resources} of {y.resources} resources with complete metadata",
        "补全政务信息资源目录：每项资源应有摘要、共享方式、非主键信息项，有条件共享的应列明用途"
        "（第八条、第二十六条第一项）。",
    ),
    Indicator(
        "catalog_timeliness",
        "目录更新及时率",
        15,
        "article 9 deadlines met on time / deadlines due in the year",
        lambda y: _ratio(y.deadlines_met, y.deadlines_due),
        lambda y: (
            f"{y.deadlines_met} of {y.deadlines_due} catalog deadlines met in 15 working days"
        ),
        "法律法规或职能变化后15个工作日内更新目录（第九条）；建立目录更新责任人。",
    ),
    Indicator(
        "on_time_provision",
        "数据按时提供率",
        20,
        "1 - resources with a late-provision violation / resources provided",
        lambda y: None if y.resources == 0 else max(0.0, 1 - y.late_resources / y.resources),
        lambda y: f"{y.late_resources} of {y.resources} resources late at least once (26(2))",
        "按目录约定的更新周期及时发布共享数据（第十八条、第二十六条第二项）；对晚发资源设置"
        "自动发布任务。",
    ),
    Indicator(
        "request_answer_rate",
        "共享申请按时答复率",
        15,
        "requests answered by their 10th working day / requests due in the year",
        lambda y: _ratio(y.requests_answered_in_time, y.requests_received),
        lambda y: (
            f"{y.requests_answered_in_time} of {y.requests_received} share requests answered "
            "in 10 working days"
        ),
        "在10个工作日内答复共享申请，不予共享的说明理由（第十七条、第二十六条第三项）。",
    ),
    Indicator(
        "request_answer_time",
        "共享申请答复时长",
        5,
        "(10 - mean working days to answer) / 9, clamped to [0, 1]",
        _answer_time,
        _mean_days,
        "缩短共享申请答复时间：指定专人每日处理待答复申请。",
    ),
    Indicator(
        "consistency",
        "数据一致性",
        15,
        "1 - inconsistency violations (26(4)) / resources provided, at least 0",
        lambda y: None if y.resources == 0 else max(0.0, 1 - y.inconsistencies / y.resources),
        lambda y: f"{y.inconsistencies} inconsistency violation(s) on {y.resources} resources",
        "核实并更正与本部门掌握信息不一致的数据，降低死信率，按时处理异议（第十九条、"
        "第二十六条第四项）。",
    ),
    Indicator(
        "use_of_shared_data",
        "共享数据使用",
        10,
        "1 with an approved share request in the year, 0.5 with requests but none approved, else 0",
        lambda y: 1.0 if y.grants_received else (0.5 if y.requests_made else 0.0),
        lambda y: f"{y.requests_made} share request(s) filed, {y.grants_received} approved",
        "优先通过共享获取所需信息，避免重复采集（第四条、第二十六条第六项）。",
    ),
    Indicator(
        "violations",
        "违规情况",
        5,
        "1 - 0.2 × violations in the year, at least 0",
        lambda y: max(0.0, 1 - 0.2 * y.violations),
        lambda y: f"{y.violations} violation(s) of article 26 in the year",
        "针对本年度违规事项逐项整改，建立防止再次发生的制度（第二十六条）。",
    ),
    Indicator(
        "rectification",
        "整改及时率",
        5,
        "notices answered or closed by their deadline / notices issued in the year",
        lambda y: _ratio(y.rectified_in_time, y.notices),
        lambda y: f"{y.rectified_in_time} of {y.notices} rectification notices answered in time",
        "在整改期限内完成整改并书面报告，逾期未整改的将报告市人民政府（第二十六条）。",
    ),
)
assert sum(i.weight for i in INDICATORS) == 100


@dataclass(frozen=True)
class IndicatorScore:
    key: str
    name: str
    weight: int
    score: float | None  # None: not applicable
    evidence: str


@dataclass(frozen=True)
class DepartmentScore:
    year: DepartmentYear
    indicators: tuple[IndicatorScore, ...]
    score: float  # 0..100, rounded to 0.1
    rank: int
    grade: str
    opinions: tuple[str, ...]


def grade(score: float) -> str:
    if score >= 90:
        return "优秀"
    if score >= 75:
        return "良好"
    if score >= 60:
        return "合格"
    return "不合格"


def _score(y: DepartmentYear) -> tuple[tuple[IndicatorScore, ...], float, tuple[str, ...]]:
    parts = tuple(
        IndicatorScore(i.key, i.name, i.weight, i.score(y), i.evidence(y)) for i in INDICATORS
    )
    applicable = [p for p in parts if p.score is not None]
    weight = sum(p.weight for p in applicable)
    total = 0.0 if weight == 0 else 100 * sum(p.weight * (p.score or 0) for p in applicable)
    score = round(total / weight, 1) if weight else 0.0
    weak = sorted(
        (p for p in applicable if (p.score or 0) < 0.9), key=lambda p: (p.score, -p.weight, p.key)
    )[:2]
    texts = {i.key: i.opinion for i in INDICATORS}
    opinions = tuple(f"{p.name}（{p.score:.0%}，{p.evidence}）：{texts[p.key]}" for p in weak)
    return parts, score, opinions


def evaluate(years: Sequence[DepartmentYear]) -> list[DepartmentScore]:
    """Every department's score, rank, grade and opinions, best first (ties: by id)."""
    scored = [(y, *_score(y)) for y in years]
    scored.sort(key=lambda t: (-t[2], t[0].department_id))
    out: list[DepartmentScore] = []
    rank = 0
    previous: float | None = None
    for position, (y, parts, score, opinions) in enumerate(scored, start=1):
        if score != previous:
            rank, previous = position, score
        out.append(DepartmentScore(y, parts, score, rank, grade(score), opinions))
    return out
