"""Satisfaction surveys: after a no-property closure (终本) the parties rate the handling."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from zhixing.core.db import Base

BigId = BigInteger().with_variant(Integer, "sqlite")


class SatisfactionSurvey(Base):
    __tablename__ = "satisfaction_surveys"
    __table_args__ = (Index("ix_surveys_court_answered", "court_id", "answered_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    court_id: Mapped[int] = mapped_column(ForeignKey("courts.id"))
    # The one-time code on the party's link; only its SHA-256 is kept.
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    sent_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    score: Mapped[int | None] = mapped_column(SmallInteger)  # 1 (very dissatisfied) … 5
    comment: Mapped[str | None] = mapped_column(String(500))
