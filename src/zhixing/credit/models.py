"""Tables of credit discipline (失信惩戒): listings, restrictions, the screening entries partners
see, the ordered change feed they pull, partners, screening hits and correction requests.

A *listing* (失信决定) and a *restriction* (限制消费令 / 限制出境) are the court's measures. Each
measure binds one or more people (the debtor; for an organisation also its responsible persons),
and each bound person is an *entry*: the row partners receive in their feed and screen against,
with the mask of activities it restricts. Entries are never deleted: a lifted measure leaves an
inactive entry, and every change of an entry is a row of the feed (``seq`` without gaps, in
commit order), so a partner that pulls from its cursor sees every change exactly once.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from zhixing.cases.models import BigId
from zhixing.core.db import Base, EnumText, utcnow_column_default


class ListingStatus(enum.StrEnum):
    PROPOSED = "proposed"  # proposed by an officer or requested by the applicant; not decided
    REFUSED = "refused"  # decided against (minor, statutory exclusion, no ground)
    ACTIVE = "active"  # decided: in force (published once the grace period is over)
    DELETED = "deleted"  # a deletion event; hidden from the public and partners, kept here
    REVOKED = "revoked"  # a wrong listing, undone


class ListingOrigin(enum.StrEnum):
    OFFICER = "officer"  # the court on its own motion
    APPLICANT = "applicant"  # the applicant's request: decided within 15 days


class RestrictionKind(enum.StrEnum):
    CONSUMPTION = "consumption"  # 限制消费令
    EXIT = "exit"  # 限制出境


class RestrictionStatus(enum.StrEnum):
    ACTIVE = "active"
    LIFTED = "lifted"


class BoundRole(enum.StrEnum):
    """Who a measure binds (RULES.md, Consumption restriction: for an organisation)."""

    DEBTOR = "debtor"
    LEGAL_REPRESENTATIVE = "legal_representative"
    PRINCIPAL = "principal"  # principal responsible person
    DIRECTLY_RESPONSIBLE = "directly_responsible"
    ACTUAL_CONTROLLER = "actual_controller"


class SourceKind(enum.StrEnum):
    LISTING = "listing"
    RESTRICTION = "restriction"


class FeedOp(enum.StrEnum):
    ADD = "add"
    CHANGE = "change"
    DELETE = "delete"


class CorrectionStatus(enum.StrEnum):
    PENDING = "pending"  # with the listing court, 15 days
    UPHELD = "upheld"  # justified: corrected within 3 working days
    REJECTED = "rejected"  # may go to the higher court within 10 days
    HIGHER_PENDING = "higher_pending"  # with the higher court, 15 days
    HIGHER_UPHELD = "higher_upheld"
    HIGHER_REJECTED = "higher_rejected"


class Listing(Base):
    """One decision to put a debtor on the dishonest-debtor list (失信决定), from proposal on."""

    __tablename__ = "credit_listings"
    __table_args__ = (
        Index("ix_credit_listings_case", "case_id"),
        # Public search: a name's parties → their published listings, from the index alone.
        Index("ix_credit_listings_public", "party_id", "status", "publish_on", "id"),
        Index("ix_credit_listings_court_status", "court_id", "status"),
        Index("ix_credit_listings_deletion_due", "deletion_due_on"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    court_id: Mapped[int] = mapped_column(ForeignKey("courts.id"))
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    ground: Mapped[int] = mapped_column(Integer)  # 1..6 (RULES.md)
    conduct: Mapped[str] = mapped_column(String(500))  # the conduct, as published
    status: Mapped[ListingStatus] = mapped_column(EnumText(ListingStatus, 16))
    origin: Mapped[ListingOrigin] = mapped_column(EnumText(ListingOrigin, 16))
    requested_by_party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"))
    request_received_on: Mapped[date | None] = mapped_column(Date)
    decide_by: Mapped[date | None] = mapped_column(Date)  # an applicant's request: +15 days
    proposed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    proposed_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)
    extension_years: Mapped[int] = mapped_column(Integer, default=0)
    extension_reason: Mapped[str | None] = mapped_column(String(255))
    grace_months: Mapped[int] = mapped_column(Integer, default=0)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(String(500))  # why refused
    decision_number: Mapped[str | None] = mapped_column(String(64))
    effective_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)  # None: ground 1, until a deletion event
    publish_on: Mapped[date | None] = mapped_column(Date)
    deletion_ground: Mapped[str | None] = mapped_column(String(32))
    deletion_detected_on: Mapped[date | None] = mapped_column(Date)
    deletion_due_on: Mapped[date | None] = mapped_column(Date)  # 3 working days after detection
    deleted_on: Mapped[date | None] = mapped_column(Date)
    deleted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    revoked_on: Mapped[date | None] = mapped_column(Date)
    revoke_reason: Mapped[str | None] = mapped_column(String(500))
    requester_blocked_until: Mapped[date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, default=1)


class ListingVersion(Base):
    """Every state an entry has been in: the history of a listing is never lost."""

    __tablename__ = "credit_listing_versions"
    __table_args__ = (UniqueConstraint("listing_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("credit_listings.id"))
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(default=utcnow_column_default)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_name: Mapped[str | None] = mapped_column(String(64))
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)


class Restriction(Base):
    """A consumption-restriction order (限制消费令) or an exit restriction (限制出境)."""

    __tablename__ = "credit_restrictions"
    __table_args__ = (
        Index("ix_credit_restrictions_case", "case_id"),
        Index("ix_credit_restrictions_party", "party_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    court_id: Mapped[int] = mapped_column(ForeignKey("courts.id"))
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    kind: Mapped[RestrictionKind] = mapped_column(EnumText(RestrictionKind, 16))
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)  # consumption only
    listing_id: Mapped[int | None] = mapped_column(ForeignKey("credit_listings.id"))
    status: Mapped[RestrictionStatus] = mapped_column(EnumText(RestrictionStatus, 16))
    order_number: Mapped[str] = mapped_column(String(64))
    issued_on: Mapped[date] = mapped_column(Date)
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    lifted_on: Mapped[date | None] = mapped_column(Date)
    lift_reason: Mapped[str | None] = mapped_column(String(32))
    lifted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    version: Mapped[int] = mapped_column(Integer, default=1)


class BoundPerson(Base):
    """A person an organisation's measure binds (legal representative, …, actual controller)."""

    __tablename__ = "credit_bound_persons"
    __table_args__ = (
        UniqueConstraint("listing_id", "restriction_id", "person_id", "role"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    listing_id: Mapped[int | None] = mapped_column(ForeignKey("credit_listings.id"))
    restriction_id: Mapped[int | None] = mapped_column(ForeignKey("credit_restrictions.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    role: Mapped[BoundRole] = mapped_column(EnumText(BoundRole, 24))


class RestrictionException(Base):
    """An approved personal exception: a bound person spends their own money (RULES.md)."""

    __tablename__ = "credit_restriction_exceptions"
    __table_args__ = (Index("ix_credit_exceptions_restriction", "restriction_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    restriction_id: Mapped[int] = mapped_column(ForeignKey("credit_restrictions.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    activities: Mapped[list[str]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(String(500))
    approved_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    approved_on: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    withdrawn_on: Mapped[date | None] = mapped_column(Date)


class Entry(Base):
    """One bound person of one measure, as partners see and screen it."""

    __tablename__ = "credit_entries"
    __table_args__ = (
        UniqueConstraint("source_kind", "source_id", "party_id", "role"),
        Index("ix_credit_entries_id_number", "id_number"),
        Index("ix_credit_entries_active", "active"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_kind: Mapped[SourceKind] = mapped_column(EnumText(SourceKind, 16))
    source_id: Mapped[int] = mapped_column(BigInteger)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    role: Mapped[BoundRole] = mapped_column(EnumText(BoundRole, 24))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    court_id: Mapped[int] = mapped_column(ForeignKey("courts.id"))
    name: Mapped[str] = mapped_column(String(128))
    id_kind: Mapped[str | None] = mapped_column(String(16))
    id_number: Mapped[str | None] = mapped_column(String(32))
    birth_date: Mapped[date | None] = mapped_column(Date)
    region: Mapped[str | None] = mapped_column(String(6))
    mask: Mapped[int] = mapped_column(BigInteger, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)


class FeedHead(Base):
    """The last feed sequence number: locked to append, so numbers are given in commit order."""

    __tablename__ = "credit_feed_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class FeedItem(Base):
    """One change of one entry. ``seq`` has no gaps; partners pull ``seq > cursor``."""

    __tablename__ = "credit_feed"
    __table_args__ = (Index("ix_credit_feed_entry", "entry_id"),)

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    entry_id: Mapped[int] = mapped_column(ForeignKey("credit_entries.id"))
    op: Mapped[FeedOp] = mapped_column(EnumText(FeedOp, 8))
    mask: Mapped[int] = mapped_column(BigInteger)
    prev_mask: Mapped[int] = mapped_column(BigInteger, default=0)
    at: Mapped[datetime] = mapped_column(default=utcnow_column_default)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class PartnerKind(enum.StrEnum):
    CREDIT_BUREAU = "credit_bureau"  # People's Bank credit reference center
    AVIATION = "aviation"
    RAILWAY = "railway"
    EXIT_ENTRY = "exit_entry"
    MARKET_REGULATION = "market_regulation"
    LAND = "land"
    HOUSING = "housing"
    TAX = "tax"
    BANK = "bank"
    EMPLOYER = "employer"  # employers of state functionaries
    OTHER = "other"


class Partner(Base):
    """A partner agency (惩戒合作单位): receives the list and screens people against it."""

    __tablename__ = "credit_partners"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(48), unique=True)
    name_zh: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(160))
    kind: Mapped[PartnerKind] = mapped_column(EnumText(PartnerKind, 24))
    activities: Mapped[list[str]] = mapped_column(JSON, default=list)  # what it enforces
    hashed_ids: Mapped[bool] = mapped_column(Boolean, default=False)  # keyed hashes, not numbers
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    ack_seq: Mapped[int] = mapped_column(BigInteger, default=0)  # acknowledged up to
    fetched_seq: Mapped[int] = mapped_column(BigInteger, default=0)  # highest seq handed out
    last_fetch_at: Mapped[datetime | None]
    last_ack_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)


class ScreeningHit(Base):
    """A screening that found a listed or restricted person, logged for the entry's court."""

    __tablename__ = "credit_screening_hits"
    __table_args__ = (Index("ix_credit_hits_court_at", "court_id", "at"),
                      Index("ix_credit_hits_entry", "entry_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("credit_partners.id"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("credit_entries.id"))
    court_id: Mapped[int] = mapped_column(ForeignKey("courts.id"))
    activity: Mapped[str | None] = mapped_column(String(24))
    restricted: Mapped[bool] = mapped_column(Boolean)
    matched_by: Mapped[str] = mapped_column(String(8))  # id / name
    score: Mapped[float] = mapped_column(Float, default=1.0)
    reference: Mapped[str | None] = mapped_column(String(64))  # the partner's own reference
    at: Mapped[datetime] = mapped_column(default=utcnow_column_default)


class Correction(Base):
    """A correction request (纠正申请) against a listing and its review at the higher court."""

    __tablename__ = "credit_corrections"
    __table_args__ = (Index("ix_credit_corrections_listing", "listing_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("credit_listings.id"))
    filed_on: Mapped[date] = mapped_column(Date)
    filed_by_name: Mapped[str] = mapped_column(String(128))
    grounds: Mapped[str] = mapped_column(Text)
    status: Mapped[CorrectionStatus] = mapped_column(EnumText(CorrectionStatus, 16))
    review_due_on: Mapped[date] = mapped_column(Date)  # 15 days
    decided_on: Mapped[date | None] = mapped_column(Date)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision_note: Mapped[str | None] = mapped_column(String(500))
    correction_due_on: Mapped[date | None] = mapped_column(Date)  # 3 working days
    corrected_on: Mapped[date | None] = mapped_column(Date)
    higher_court_id: Mapped[int | None] = mapped_column(ForeignKey("courts.id"))
    higher_requested_on: Mapped[date | None] = mapped_column(Date)  # within 10 days
    higher_due_on: Mapped[date | None] = mapped_column(Date)  # 15 days
    higher_decided_on: Mapped[date | None] = mapped_column(Date)
    higher_decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    higher_note: Mapped[str | None] = mapped_column(String(500))
