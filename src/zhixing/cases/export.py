"""Spreadsheet export of a filtered case list (openpyxl, write-only: constant memory)."""

from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from sqlalchemy.orm import Session

from zhixing.cases import presenters, queries
from zhixing.cases.models import Case
from zhixing.core import audit
from zhixing.core.actor import Actor
from zhixing.core.errors import ValidationFailed

MAX_ROWS = 20_000
HEADERS = ("案号", "法院", "类型", "状态", "结案方式", "立案日期", "承办人", "申请执行人",
           "被执行人", "申请执行标的(元)", "未执行到位(元)", "审限届满日", "下一节点", "节点期限")


def _text(ws: Any, value: str) -> WriteOnlyCell:
    """A cell that stays text. openpyxl stores a string that starts with "=" as a formula, and
    names come from anyone (a party named '=HYPERLINK(...)' would run in the reader's Excel)."""
    cell = WriteOnlyCell(ws, value=value)
    cell.data_type = "s"
    return cell


def export(session: Session, actor: Actor, f: queries.CaseFilter) -> bytes:
    stmt = queries.filtered(session, actor, f).order_by(Case.filed_on.desc(), Case.id.desc())
    rows = list(session.scalars(stmt.limit(MAX_ROWS + 1)))
    if len(rows) > MAX_ROWS:
        raise ValidationFailed(f"more than {MAX_ROWS} cases match; narrow the filter",
                               code="export_too_large")
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("执行案件")
    bold = Font(bold=True)
    header = []
    for title in HEADERS:
        cell = WriteOnlyCell(ws, value=title)
        cell.font = bold
        header.append(cell)
    ws.append(header)
    for start in range(0, len(rows), 500):
        for s in presenters.summaries(session, rows[start:start + 500]):
            ws.append([_text(ws, v) if isinstance(v, str) else v for v in (
                s.case_number, s.court_code, s.case_type, s.state, s.conclusion or "",
                s.filed_on, s.officer or "", "、".join(s.applicants), "、".join(s.debtors),
                s.applied_fen / 100, s.outstanding_fen / 100, s.period_deadline,
                s.next_due_kind or "", s.next_due_on)])
    buf = io.BytesIO()
    wb.save(buf)
    audit.record(session, actor, "case.export", details={"rows": len(rows),
                                                         "filter": f.__dict__ | {
                                                             "filed_from": str(f.filed_from),
                                                             "filed_to": str(f.filed_to)}})
    return buf.getvalue()
