"""Enforcement cases (执行案件): parties, the case file, its history, and the property ledger."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from zhixing.core.db import Base, EnumText, utcnow_column_default
from zhixing.courts import models as _courts  # noqa: F401 (tables the foreign keys name)

BigId = BigInteger().with_variant(Integer, "sqlite")


class PartyKind(enum.StrEnum):
    PERSON = "person"
    ORGANISATION = "organisation"


class IdKind(enum.StrEnum):
    RIC = "ric"  # 18-digit resident ID (GB 11643)
    RIC15 = "ric15"  # old 15-digit resident ID, still printed on old judgments
    USCC = "uscc"  # unified social credit code (GB 32100)
    ORG_CODE = "org_code"  # old 9-character organisation code
    OTHER = "other"  # passport, HK/Macau/Taiwan permits, foreign registrations


class CaseType(enum.StrEnum):
    ENFORCEMENT = "执"
    RESUMED = "执恢"
    PRESERVATION = "执保"
    OBJECTION = "执异"
    REVIEW = "执复"
    SUPERVISION = "执监"
    ASSISTANCE = "执协"


class CaseState(enum.StrEnum):
    FILED = "filed"  # 立案
    NOTICE_SERVED = "notice_served"  # 执行通知书、报告财产令已送达
    INVESTIGATING = "investigating"  # 财产调查
    CONTROLLING = "controlling"  # 财产控制
    DISPOSING = "disposing"  # 财产处置
    DISBURSING = "disbursing"  # 执行款发放
    SUSPENDED = "suspended"  # 中止
    CONCLUDED = "concluded"  # 结案


class Conclusion(enum.StrEnum):
    PERFORMED = "performed"  # 执行完毕
    CLOSED_FOR_NOW = "closed_for_now"  # 终结本次执行程序 (终本)
    TERMINATED = "terminated"  # 终结执行
    NOT_ENFORCED = "not_enforced"  # 不予执行
    REJECTED = "rejected"  # 驳回申请
    WITHDRAWN_TRANSFER = "closed_after_transfer"  # 销案


class Party(Base):
    """A person or organisation, one record across all cases (matched by ID number)."""

    __tablename__ = "parties"
    __table_args__ = (
        UniqueConstraint("id_kind", "id_number", name="uq_parties_identity"),
        # (name, id): the public list search reads party ids by exact name from the index alone.
        Index("ix_parties_name_id", "name", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[PartyKind] = mapped_column(EnumText(PartyKind, 16))
    name: Mapped[str] = mapped_column(String(128))
    id_kind: Mapped[IdKind | None] = mapped_column(EnumText(IdKind, 16))
    id_number: Mapped[str | None] = mapped_column(String(32))
    sex: Mapped[str | None] = mapped_column(String(1))  # M / F, persons only
    birth_date: Mapped[date | None] = mapped_column(Date)
    # The ID's region code was not in use in the birth year; an officer confirmed the number.
    id_region_unverified: Mapped[bool] = mapped_column(Boolean, default=False)
    address: Mapped[str | None] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(32))
    legal_representative: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)

    responsible_persons: Mapped[list[ResponsiblePerson]] = relationship(
        foreign_keys="ResponsiblePerson.organisation_id", cascade="all, delete-orphan",
        lazy="selectin")


class ResponsiblePerson(Base):
    """Persons bound with an organisation (legal representative, principal, directly
    responsible person, actual controller): restrictions on the organisation reach them."""

    __tablename__ = "responsible_persons"

    organisation_id: Mapped[int] = mapped_column(ForeignKey("parties.id"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("parties.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(32), primary_key=True)

    person: Mapped[Party] = relationship(foreign_keys=[person_id], lazy="joined")


class CaseSequence(Base):
    """Next serial number per court, year and case type (the court's register)."""

    __tablename__ = "case_sequences"

    court_id: Mapped[int] = mapped_column(ForeignKey("courts.id"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_type: Mapped[str] = mapped_column(String(8), primary_key=True)
    last_serial: Mapped[int] = mapped_column(Integer, default=0)


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        # The officer's work queue and every list filter lead with the court or the officer;
        # the id last makes keyset pages stable.
        Index("ix_cases_court_filed", "court_id", "filed_on", "id"),
        # Lists in filing order for users who see many courts (the high court): the court
        # filter cannot give the order there, this index can (bench.cases: 415 -> 20 ms p95).
        Index("ix_cases_filed", "filed_on", "id"),
        Index("ix_cases_court_state", "court_id", "state", "id"),
        Index("ix_cases_officer_state", "officer_id", "state", "id"),
        Index("ix_cases_open_deadline", "court_id", "period_deadline", "id"),
        Index("ix_cases_officer_due", "officer_id", "next_due_on"),
        Index("ix_cases_court_type", "court_id", "case_type", "id"),
        # Covers the durations of concluded cases (indicators) without touching the heap.
        Index("ix_cases_court_concluded", "court_id", "concluded_on", "filed_on"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    court_id: Mapped[int] = mapped_column(ForeignKey("courts.id"))
    case_number: Mapped[str] = mapped_column(String(48), unique=True)
    year: Mapped[int] = mapped_column(Integer)
    case_type: Mapped[CaseType] = mapped_column(EnumText(CaseType, 8))
    serial: Mapped[int] = mapped_column(Integer)
    # The title enforced (执行依据)
    title_issuer: Mapped[str] = mapped_column(String(128))
    title_document_number: Mapped[str] = mapped_column(String(64))
    title_date: Mapped[date] = mapped_column(Date)
    title_effective_date: Mapped[date] = mapped_column(Date)
    # Amount to enforce, in fen
    principal_fen: Mapped[int] = mapped_column(BigInteger)
    interest_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    costs_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    recovered_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # sum of the ledger
    disbursed_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # sum of the ledger
    filed_on: Mapped[date] = mapped_column(Date)
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approver_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    state: Mapped[CaseState] = mapped_column(EnumText(CaseState, 16))
    state_before_suspension: Mapped[CaseState | None] = mapped_column(EnumText(CaseState, 16))
    state_changed_at: Mapped[datetime]
    conclusion: Mapped[Conclusion | None] = mapped_column(EnumText(Conclusion, 32))
    conclusion_ground: Mapped[str | None] = mapped_column(String(64))
    concluded_on: Mapped[date | None] = mapped_column(Date)
    # The statutory deadline as it stood when the case concluded: "concluded within the
    # statutory period" is then a plain comparison for the indicators.
    deadline_at_conclusion: Mapped[date | None] = mapped_column(Date)
    # The statutory clock, recomputed from the history on every change; NULL while paused
    # or concluded, so "overdue" is one indexed range condition.
    period_deadline: Mapped[date | None] = mapped_column(Date)
    extension_months: Mapped[int] = mapped_column(Integer, default=0)
    # The nearest open node deadline (or the period deadline), for the work queue.
    next_due_on: Mapped[date | None] = mapped_column(Date)
    next_due_kind: Mapped[str | None] = mapped_column(String(32))
    resumed_from_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)

    parties: Mapped[list[CaseParty]] = relationship(back_populates="case", lazy="selectin",
                                                    cascade="all, delete-orphan")

    @property
    def applied_fen(self) -> int:
        return self.principal_fen + self.interest_fen + self.costs_fen

    @property
    def outstanding_fen(self) -> int:
        """Never typed: what was applied for, less what has been recovered."""
        return max(0, self.applied_fen - self.recovered_fen)


class CaseParty(Base):
    __tablename__ = "case_parties"
    __table_args__ = (Index("ix_case_parties_party", "party_id", "case_id"),)

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)  # applicant / debtor

    case: Mapped[Case] = relationship(back_populates="parties")
    party: Mapped[Party] = relationship(lazy="joined")


class CaseEvent(Base):
    """One entry of the case's timeline: transitions, facts, notes, documents, ledger moves."""

    __tablename__ = "case_events"
    __table_args__ = (Index("ix_case_events_case", "case_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    occurred_at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))  # transition, fact, note, document, asset, …
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_name: Mapped[str | None] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(String(255))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CaseFact(Base):
    """A procedural fact a rule depends on (notice issued, interview held, …), with its date."""

    __tablename__ = "case_facts"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    on: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(String(255))


class CasePause(Base):
    """An interval in which the statutory clock stands still (suspension, audit, valuation,
    settlement, auction). ``ended_on`` is NULL while the pause lasts."""

    __tablename__ = "case_pauses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    started_on: Mapped[date] = mapped_column(Date)
    ended_on: Mapped[date | None] = mapped_column(Date)


class CaseExtension(Base):
    """An approved extension of the statutory period (+3 months by the president, more only
    reported to the high court)."""

    __tablename__ = "case_extensions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    months: Mapped[int] = mapped_column(Integer)
    approved_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    approved_on: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(255))


class AssetKind(enum.StrEnum):
    DEPOSIT = "deposit"  # 存款 / 理财
    REAL_ESTATE = "real_estate"
    VEHICLE = "vehicle"
    EQUITY = "equity"
    SECURITIES = "securities"
    OTHER = "other"


class ControlState(enum.StrEnum):
    NONE = "none"
    FROZEN = "frozen"  # 冻结 (deposits, securities, equity)
    SEALED = "sealed"  # 查封 (real estate, movables)
    SEIZED = "seized"  # 扣押 (vehicles, movables)
    RELEASED = "released"
    DISPOSED = "disposed"


class Asset(Base):
    """A known asset of a debtor, in the context of one case."""

    __tablename__ = "assets"
    __table_args__ = (
        Index("ix_assets_case", "case_id", "id"),
        Index("ix_assets_expiry", "control_state", "control_expires_on"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    kind: Mapped[AssetKind] = mapped_column(EnumText(AssetKind, 16))
    description: Mapped[str] = mapped_column(String(255))
    identifier: Mapped[str | None] = mapped_column(String(64))  # account, certificate, plate
    holder: Mapped[str | None] = mapped_column(String(128))  # bank or registry
    value_fen: Mapped[int | None] = mapped_column(BigInteger)
    provenance: Mapped[str] = mapped_column(String(16))  # network_query, tip, manual
    source_ref: Mapped[str | None] = mapped_column(String(64))
    # The linked unit that holds it (a network query found it there): control goes online.
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("linkage_units.id"))
    control_state: Mapped[ControlState] = mapped_column(EnumText(ControlState, 16),
                                                       default=ControlState.NONE)
    control_amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    control_started_on: Mapped[date | None] = mapped_column(Date)
    control_expires_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)


class LedgerEntry(Base):
    """Money recovered into the case account (执行到位) or paid out to an applicant."""

    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_case", "case_id", "id"), Index("ix_ledger_on", "on"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    kind: Mapped[str] = mapped_column(String(16))  # recovered / disbursed
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    on: Mapped[date] = mapped_column(Date)
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id"))
    party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"))  # payee
    note: Mapped[str | None] = mapped_column(String(255))
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)


class CaseDocument(Base):
    __tablename__ = "case_documents"
    __table_args__ = (Index("ix_case_documents_case", "case_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)
    note: Mapped[str | None] = mapped_column(Text)
