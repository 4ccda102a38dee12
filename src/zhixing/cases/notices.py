"""Generated documents: the execution notice (执行通知书) and property-report order (报告财产令),
printable HTML in the Chinese court layout, each carrying the parties' progress query code."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from zhixing.cases.documents import query_code
from zhixing.cases.models import Case
from zhixing.cases.service import today
from zhixing.core.errors import NotFound
from zhixing.courts.models import Court
from zhixing.web.templating import render

KINDS = {"execution_notice": "执行通知书", "property_report_order": "报告财产令"}


def court_name(session: Session, case: Case) -> str:
    court = session.get(Court, case.court_id)
    return court.name_zh if court else ""


def chinese_date(d: object) -> str:
    from datetime import date

    assert isinstance(d, date)
    return f"{d.year}年{d.month}月{d.day}日"


def render_notice(request: Request, session: Session, case: Case, kind: str) -> HTMLResponse:
    if kind not in KINDS:
        raise NotFound(f"no document kind {kind!r}", code="unknown_document_kind")
    applicants = [cp.party for cp in case.parties if cp.role == "applicant"]
    debtors = [cp.party for cp in case.parties if cp.role == "debtor"]
    return render(request, f"cases/notice_{kind}.html", {
        "case": case, "title": KINDS[kind], "court_name": court_name(session, case),
        "applicants": applicants, "debtors": debtors, "issued_on": chinese_date(today()),
        "query_code": query_code(case.case_number), "title_date": chinese_date(case.title_date),
    })
