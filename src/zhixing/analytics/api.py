"""JSON API and spreadsheet of the indicators."""

from __future__ import annotations

import io
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from openpyxl import Workbook
from openpyxl.styles import Font
from pydantic import BaseModel

from zhixing.analytics import indicators as ind
from zhixing.analytics import service
from zhixing.web.deps import CurrentUser, DbSession
from zhixing.web.errors import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["indicators"])

Figures = dict[str, float | int | None]
LABELS_ZH = {
    "received": "收案", "concluded": "结案", "pending_at_end": "期末未结",
    "overdue_open": "超审限未结", "closed_for_now": "终本", "applied_fen_received": "收案标的(元)",
    "recovered_fen": "执行到位(元)",
    "disbursed_fen": "发放(元)", "conclusion_rate": "结案率",
    "property_cases_in_time_rate": "有财产案件法定期限内执结率",
    "actual_enforcement_rate": "实际执行率", "recovery_rate": "执行到位率",
    "closed_for_now_compliance_rate": "终本合格率", "average_days_to_conclude": "平均结案天数",
    "median_days_to_conclude": "结案天数中位数", "satisfaction_rate": "无财产案件当事人满意度",
}


class CourtFigures(BaseModel):
    court_code: str
    court_name: str
    figures: Figures


class IndicatorReport(BaseModel):
    court_code: str
    court_name: str
    start: date
    end: date
    total: Figures
    children: list[CourtFigures]
    targets: dict[str, float]


class TrendPoint(BaseModel):
    month: str
    received: int
    concluded: int


Court = Annotated[str | None, Query(max_length=16, description="court code; default yours")]


@router.get("/indicators", response_model=IndicatorReport)
def indicators(actor: CurrentUser, db: DbSession, court: Court = None,
               start: date | None = None, end: date | None = None) -> IndicatorReport:
    """Every indicator for a court (its subtree rolled up) and each court directly below it.
    Money is in fen; rates are fractions (0.8112 = 81.12%); ``null`` where undefined."""
    rep = service.report(db, actor, court, service.parse_period(start, end))
    return IndicatorReport(
        court_code=rep.court.code, court_name=rep.court.name_zh, start=rep.period.start,
        end=rep.period.end, total=rep.total, targets=ind.TARGETS,
        children=[CourtFigures(court_code=r.court.code, court_name=r.court.name_zh,
                               figures=r.figures) for r in rep.children])


@router.get("/indicators/trend", response_model=list[TrendPoint])
def trend(actor: CurrentUser, db: DbSession, court: Court = None,
          months: Annotated[int, Query(ge=1, le=36)] = 12) -> list[TrendPoint]:
    return [TrendPoint(**p) for p in service.monthly_trend(db, actor, court, months)]


def _cell(key: str, value: float | int | None) -> Any:
    if value is None:
        return None
    if key.endswith("_fen"):
        return value / 100
    return round(value, 4) if isinstance(value, float) else value


@router.get("/indicators/report.xlsx", response_class=Response,
            responses={200: {"content": {"application/vnd.openxmlformats-officedocument."
                                         "spreadsheetml.sheet": {}}}})
def report_xlsx(actor: CurrentUser, db: DbSession, court: Court = None,
                start: date | None = None, end: date | None = None) -> Response:
    """The report as a spreadsheet: the court's total and one row per subordinate court."""
    rep = service.report(db, actor, court, service.parse_period(start, end))
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "执行质效指标"
    ws.append([f"{rep.court.name_zh} 执行质效指标  {rep.period.start} 至 {rep.period.end}"])
    ws["A1"].font = Font(bold=True, size=14)
    keys = list(rep.total)
    ws.append(["法院", *[LABELS_ZH.get(k, k) for k in keys]])
    for cell in ws[2]:
        cell.font = Font(bold=True)
    ws.append([f"{rep.court.name_zh}（合计）", *[_cell(k, rep.total[k]) for k in keys]])
    for r in rep.children:
        ws.append([r.court.name_zh, *[_cell(k, r.figures[k]) for k in keys]])
    buf = io.BytesIO()
    wb.save(buf)
    name = f"indicators-{rep.court.code}-{rep.period.start}-{rep.period.end}.xlsx"
    return Response(buf.getvalue(), media_type="application/vnd.openxmlformats-officedocument."
                    "spreadsheetml.sheet",
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{_quote(name)}"})


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name)
