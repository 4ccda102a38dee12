"""Satisfaction surveys after 终本: each party gets a one-time link to rate the handling.

The code in the link is derived from the server secret and the survey id (so the case page can
show it again for printing) and only its SHA-256 is stored (so the table alone reveals none).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.analytics.models import SatisfactionSurvey
from zhixing.cases.models import Case, CaseParty
from zhixing.core import audit, jobs
from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.core.errors import Conflict, NotFound, ValidationFailed
from zhixing.core.security import token_digest
from zhixing.core.settings import get_settings

SURVEY_VALID = timedelta(days=30)


def survey_code(survey_id: int) -> str:
    mac = hmac.new(get_settings().secret_key.encode(), f"survey:{survey_id}".encode(),
                   hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")[:22]


@jobs.handler("analytics.open_surveys")
def open_surveys(session: Session, payload: dict[str, Any]) -> None:
    """One survey per party of a case closed for now (idempotent: a party gets one)."""
    case = session.get(Case, int(payload["case_id"]))
    if case is None:
        return
    existing = set(session.scalars(select(SatisfactionSurvey.party_id)
                                   .where(SatisfactionSurvey.case_id == case.id)))
    for cp in session.scalars(select(CaseParty).where(CaseParty.case_id == case.id)):
        if cp.party_id in existing:
            continue
        survey = SatisfactionSurvey(case_id=case.id, party_id=cp.party_id,
                                    court_id=case.court_id, code_hash="pending",
                                    sent_at=utcnow(), expires_at=utcnow() + SURVEY_VALID)
        session.add(survey)
        session.flush()
        survey.code_hash = token_digest(survey_code(survey.id))
        existing.add(cp.party_id)


def links_for_case(session: Session, case_id: int) -> list[dict[str, Any]]:
    rows = session.execute(select(SatisfactionSurvey, CaseParty.role)
                           .join(CaseParty, (CaseParty.case_id == SatisfactionSurvey.case_id)
                                 & (CaseParty.party_id == SatisfactionSurvey.party_id))
                           .where(SatisfactionSurvey.case_id == case_id)
                           .order_by(SatisfactionSurvey.id)).tuples().all()
    return [{"role": role, "path": f"/survey/{survey_code(s.id)}", "answered": s.answered_at,
             "score": s.score} for s, role in rows]


def find(session: Session, code: str) -> SatisfactionSurvey:
    survey = session.scalar(select(SatisfactionSurvey)
                            .where(SatisfactionSurvey.code_hash == token_digest(code)))
    if survey is None or survey.expires_at <= utcnow():
        raise NotFound("this survey link is unknown or has expired", code="survey_not_found")
    return survey


def answer(session: Session, code: str, score: int, comment: str | None,
           client_ip: str | None) -> SatisfactionSurvey:
    survey = find(session, code)
    if survey.answered_at is not None:
        raise Conflict("this survey has already been answered", code="survey_answered")
    if not 1 <= score <= 5:
        raise ValidationFailed("choose a score from 1 to 5", code="invalid_score", field="score")
    survey.score = score
    survey.comment = (comment or "").strip()[:500] or None
    survey.answered_at = utcnow()
    audit.record(session, Actor(kind="anonymous", client_ip=client_ip), "survey.answered",
                 object_type="survey", object_id=survey.id, court_id=survey.court_id,
                 case_id=survey.case_id)
    return survey
