"""Satisfaction surveys: after a no-property closure (终本) the parties rate the handling."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from zhixing.cases import models as _cases  # noqa: F401 (tables the foreign keys name)
from zhixing.core.db import Base
from zhixing.courts import models as _courts  # noqa: F401

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


class IndicatorDay(Base):
    """Pre-aggregated indicator components of one court for one day (China's calendar).

    Every column is additive, so any period and any subtree is a SUM over rows. A row is
    recomputed from the base tables whenever something of that court and day changes
    (``analytics.refresh_day`` jobs, enqueued in the changing transaction), and
    ``zhixing analytics rebuild`` recomputes them all; the direct computation in
    ``indicators.components_direct`` is the reference they are tested against.
    """

    __tablename__ = "indicator_days"

    court_id: Mapped[int] = mapped_column(ForeignKey("courts.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    received: Mapped[int] = mapped_column(Integer, default=0)
    concluded: Mapped[int] = mapped_column(Integer, default=0)
    performed: Mapped[int] = mapped_column(Integer, default=0)
    concluded_with_property: Mapped[int] = mapped_column(Integer, default=0)
    concluded_with_property_in_time: Mapped[int] = mapped_column(Integer, default=0)
    closed_for_now: Mapped[int] = mapped_column(Integer, default=0)
    closed_for_now_compliant: Mapped[int] = mapped_column(Integer, default=0)
    days_to_conclude_sum: Mapped[int] = mapped_column(BigInteger, default=0)
    applied_fen_received: Mapped[int] = mapped_column(BigInteger, default=0)
    applied_fen_concluded: Mapped[int] = mapped_column(BigInteger, default=0)
    recovered_fen_concluded: Mapped[int] = mapped_column(BigInteger, default=0)
    recovered_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    disbursed_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    surveys_answered: Mapped[int] = mapped_column(Integer, default=0)
    surveys_satisfied: Mapped[int] = mapped_column(Integer, default=0)


DAY_COMPONENTS = tuple(c.name for c in IndicatorDay.__table__.columns
                       if c.name not in ("court_id", "day"))


class IndicatorDirty(Base):
    """A (court, day) whose pre-aggregated row must be recomputed. ``version`` goes up with
    every change; the refresher deletes the marker only if the version it saw is unchanged,
    so a change that lands while a refresh is running is never lost."""

    __tablename__ = "indicator_dirty"

    court_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
