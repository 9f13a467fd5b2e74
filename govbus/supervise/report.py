"""The yearly evaluation report as files: an xlsx workbook with native charts, an HTML page with
inline SVG charts, and a department's own January report (article 20) as Markdown.

Reproducible: the same evaluation gives the same bytes. The workbook's document properties
(created, modified) are the period's cut-off, not the time of writing, and its zip entries carry
a fixed timestamp (openpyxl stamps both with "now"); the HTML and Markdown hold no time but the
cut-off. Charts in the workbook are Excel's own (``openpyxl.chart``: they stay live when a
reader edits the numbers); the HTML page draws its bar charts as inline SVG written here — a
few rectangles and labels, which needs no JavaScript, no network and no plotting library (one
that writes SVG, such as matplotlib, would add ~40 MB and stamps ids and dates into its output).
"""

from __future__ import annotations

import html
import io
import zipfile
from collections.abc import Sequence
from pathlib import Path

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Alignment, Font
from openpyxl.writer.excel import ExcelWriter

from govbus.supervise.evaluation import INDICATORS, METHOD_VERSION, DepartmentScore
from govbus.supervise.ledger import Violation
from govbus.supervise.records import Period

__all__ = ["department_report", "write_html", "write_xlsx"]

SCORE_CHART = "各部门综合得分"  # the chart the demo names
INDICATOR_CHART = "各指标全市平均得分"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _title(p: Period) -> str:
    return f"常州市政务信息资源共享工作{p.year}年度评价报告"


def _pct(v: float | None) -> str:
    return "不适用" if v is None else f"{v:.0%}"


def _city_means(scores: Sequence[DepartmentScore]) -> list[tuple[str, float | None]]:
    out = []
    for n, ind in enumerate(INDICATORS):
        values = [s.indicators[n].score for s in scores if s.indicators[n].score is not None]
        out.append(
            (ind.name, sum(v for v in values if v is not None) / len(values) if values else None)
        )
    return out


# --- xlsx ---------------------------------------------------------------------------------


def write_xlsx(scores: Sequence[DepartmentScore], p: Period, path: Path) -> Path:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "总览"
    ws.append([_title(p)])
    ws["A1"].font = Font(bold=True, size=14)
    ws.append(
        [f"评价方法第{METHOD_VERSION}版（docs/evaluation.md）；数据截至 {p.last_day.isoformat()}"]
    )
    ws.append(["排名", "部门", "部门编号", "统一社会信用代码", "综合得分", "等级"])
    for s in scores:
        y = s.year
        ws.append([s.rank, y.name, y.department_id, y.department_code, s.score, s.grade])
    last = 3 + len(scores)
    for column, width in zip("ABCDEF", (6, 30, 12, 22, 10, 8), strict=True):
        ws.column_dimensions[column].width = width
    if scores:
        chart = BarChart()
        chart.type = "bar"
        chart.title = SCORE_CHART
        chart.y_axis.title = "得分"
        chart.y_axis.scaling.min = 0
        chart.y_axis.scaling.max = 100
        chart.legend = None
        chart.add_data(Reference(ws, min_col=5, min_row=3, max_row=last), titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=2, min_row=4, max_row=last))
        chart.height = max(7.5, 0.6 * len(scores))
        chart.width = 18
        ws.add_chart(chart, "H3")

    ind = wb.create_sheet("指标")
    ind.append(["部门", *[f"{i.name}（权重{i.weight}）" for i in INDICATORS], "综合得分"])
    for s in scores:
        ind.append(
            [
                s.year.name,
                *[None if x.score is None else round(x.score, 4) for x in s.indicators],
                s.score,
            ]
        )
    ind.append([])
    means_row = ind.max_row + 1
    ind.append(["全市平均", *[None if m is None else round(m, 4) for _, m in _city_means(scores)]])
    for col in range(2, len(INDICATORS) + 2):
        for row in range(2, means_row + 1):
            ind.cell(row, col).number_format = "0%"
    ind.column_dimensions["A"].width = 30
    if scores:
        chart = BarChart()
        chart.title = INDICATOR_CHART
        chart.y_axis.scaling.min = 0
        chart.y_axis.scaling.max = 1
        chart.y_axis.number_format = "0%"
        chart.legend = None
        chart.add_data(
            Reference(ind, min_col=2, max_col=len(INDICATORS) + 1, min_row=means_row),
            from_rows=True,
            titles_from_data=False,
        )
        chart.set_categories(Reference(ind, min_col=2, max_col=len(INDICATORS) + 1, min_row=1))
        chart.width = 24
        ind.add_chart(chart, f"A{means_row + 2}")

    ev = wb.create_sheet("依据")
    ev.append(["部门", "指标", "权重", "得分", "依据"])
    for s in scores:
        for x in s.indicators:
            ev.append([s.year.name, x.name, x.weight, _pct(x.score), x.evidence])
    ev.column_dimensions["A"].width = 30
    ev.column_dimensions["B"].width = 18
    ev.column_dimensions["E"].width = 70

    op = wb.create_sheet("改进意见")
    op.append(["部门", "改进意见"])
    for s in scores:
        for text in s.opinions or ("各项指标良好，保持。",):
            op.append([s.year.name, text])
    op.column_dimensions["A"].width = 30
    op.column_dimensions["B"].width = 100
    for row in op.iter_rows(min_row=2):
        row[1].alignment = Alignment(wrap_text=True)

    stamp = p.cutoff.replace(tzinfo=None)
    wb.properties.creator = "govbus"
    wb.properties.title = _title(p)
    wb.properties.created = stamp
    wb.properties.modified = stamp
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(wb, archive).save()  # not save_workbook: that stamps "modified" with now
    path.write_bytes(_fixed_zip(buf.getvalue()))
    return path


def _fixed_zip(data: bytes) -> bytes:
    """The same archive with every entry dated 1980-01-01 (zip stamps the local time)."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o600 << 16
            dst.writestr(entry, src.read(info.filename))
    return out.getvalue()


# --- HTML ---------------------------------------------------------------------------------


def _svg_bars(title: str, bars: Sequence[tuple[str, float | None]], top: float, fmt: str) -> str:
    """A horizontal bar chart: one labelled bar per (label, value); None draws no bar."""
    row, label_w, bar_w = 24, 260, 380
    height = 40 + row * len(bars)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{label_w + bar_w + 70}" '
        f'height="{height}" viewBox="0 0 {label_w + bar_w + 70} {height}">',
        f"<title>{html.escape(title)}</title>",
        f'<text x="0" y="16" font-size="15" font-weight="bold">{html.escape(title)}</text>',
    ]
    for n, (label, value) in enumerate(bars):
        y = 30 + n * row
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" font-size="12" text-anchor="end">'
            f"{html.escape(label)}</text>"
        )
        if value is None:
            parts.append(f'<text x="{label_w + 4}" y="{y + 15}" font-size="12">不适用</text>')
            continue
        w = round(bar_w * max(0.0, min(value, top)) / top, 1)
        shown = format(value, fmt)
        parts.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{w}" height="{row - 8}" fill="#3b6ea8"/>'
            f'<text x="{label_w + w + 4}" y="{y + 15}" font-size="12">{shown}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def write_html(scores: Sequence[DepartmentScore], p: Period, path: Path) -> Path:
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>{e(_title(p))}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:70em}"
        "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.25em .5em}"
        "td.n{text-align:right}</style></head><body>",
        f"<h1>{e(_title(p))}</h1>",
        f"<p>评价方法第{METHOD_VERSION}版（docs/evaluation.md）；数据截至 "
        f"{p.last_day.isoformat()}；{len(scores)} 个部门。</p>",
        _svg_bars(SCORE_CHART, [(s.year.name, s.score) for s in scores], 100, ".1f"),
        _svg_bars(INDICATOR_CHART, _city_means(scores), 1, ".0%"),
        "<h2>排名</h2><table><tr><th>排名</th><th>部门</th><th>得分</th><th>等级</th></tr>",
    ]
    for s in scores:
        out.append(
            f'<tr><td class="n">{s.rank}</td><td>{e(s.year.name)} ({e(s.year.department_id)})'
            f'</td><td class="n">{s.score:.1f}</td><td>{e(s.grade)}</td></tr>'
        )
    out.append("</table>")
    for s in scores:
        out.append(f"<h2>{s.rank}. {e(s.year.name)} — {s.score:.1f}（{e(s.grade)}）</h2>")
        out.append("<table><tr><th>指标</th><th>权重</th><th>得分</th><th>依据</th></tr>")
        for x in s.indicators:
            out.append(
                f'<tr><td>{e(x.name)}</td><td class="n">{x.weight}</td>'
                f'<td class="n">{_pct(x.score)}</td><td>{e(x.evidence)}</td></tr>'
            )
        out.append("</table>")
        if s.opinions:
            out.append("<p>改进意见：</p><ol>")
            out.extend(f"<li>{e(t)}</li>" for t in s.opinions)
            out.append("</ol>")
    out.append("</body></html>\n")
    path.write_text("\n".join(out), encoding="utf-8")
    return path


# --- the department's January report (article 20) -----------------------------------------


def department_report(
    score: DepartmentScore,
    among: int,
    violations: Sequence[Violation],
    p: Period,
) -> str:
    """A draft of the department's report on its previous year, due by the end of January."""
    y = score.year
    lines = [
        f"# {y.name} {p.year}年度政务信息资源共享工作情况报告（草稿）",
        "",
        f"依据《常州市政务信息资源共享管理办法》第二十条，由 govbus 根据平台记录生成，"
        f"数据截至 {p.last_day.isoformat()}，请核实补充后于{p.year + 1}年1月底前报送。",
        "",
        "## 一、基本情况",
        "",
        f"- 提供政务信息资源 {y.resources} 项，其中元数据完整 {y.complete_resources} 项；",
        f"- 目录更新期限 {y.deadlines_due} 个，按期完成 {y.deadlines_met} 个；",
        f"- 收到共享申请（本年到期）{y.requests_received} 件，按期答复 "
        f"{y.requests_answered_in_time} 件；",
        f"- 作为使用部门提出共享申请 {y.requests_made} 件，获批 {y.grants_received} 件；",
        f"- 违反第二十六条的情形 {y.violations} 起，收到整改通知 {y.notices} 份，"
        f"按期整改 {y.rectified_in_time} 份。",
        "",
        "## 二、评价结果",
        "",
        f"综合得分 {score.score:.1f}，全市 {among} 个部门中排名第 {score.rank}，"
        f"等级：{score.grade}。",
        "",
        "| 指标 | 权重 | 得分 | 依据 |",
        "|---|---:|---:|---|",
    ]
    lines += [
        f"| {x.name} | {x.weight} | {_pct(x.score)} | {x.evidence} |" for x in score.indicators
    ]
    lines += ["", "## 三、违规事项及整改情况", ""]
    if not violations:
        lines.append("本年度无违规记录。")
    for v in violations:
        due = f"，整改期限 {v.due.isoformat()}" if v.due else ""
        lines.append(f"- [{v.id}] 第{v.article}项 {v.kind}：{v.summary}（状态 {v.state}{due}）")
    lines += ["", "## 四、存在问题和改进措施", ""]
    lines += [f"{n}. {t}" for n, t in enumerate(score.opinions, start=1)] or ["各项指标良好。"]
    lines.append("")
    return "\n".join(lines)
