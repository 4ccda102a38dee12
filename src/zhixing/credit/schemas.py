"""Request bodies of the credit-discipline API (listings, restrictions, corrections)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from zhixing.courts.schemas import StrictModel
from zhixing.credit.models import BoundRole
from zhixing.credit.rules import DeletionGround, Exclusion, LiftReason


class BoundPersonIn(StrictModel):
    party_id: int = Field(gt=0, lt=2**63)
    role: BoundRole


class ListingIn(StrictModel):
    party_id: int = Field(gt=0, lt=2**63, description="the debtor to list")
    ground: int = Field(ge=1, le=6, description="RULES.md grounds 1-6")
    conduct: str = Field(min_length=2, max_length=500, description="the conduct, as published")
    exclusions: list[Exclusion] = Field(
        default_factory=list, description="ground 1 exclusions known to apply (each refuses)")
    extension_years: int = Field(default=0, ge=0, le=3)
    extension_reason: str | None = Field(default=None, max_length=255)
    grace_months: int = Field(default=0, ge=0, le=3)
    origin: Literal["officer", "applicant"] = "officer"
    requested_by_party_id: int | None = Field(default=None, gt=0, lt=2**63)
    request_received_on: date | None = None
    bound_persons: list[BoundPersonIn] | None = Field(
        default=None, max_length=20,
        description="for an organisation: the persons bound (default: its responsible persons)")


class ListingDecisionIn(StrictModel):
    approve: bool
    note: str | None = Field(default=None, max_length=500)
    on: date | None = None


class ListingDeletionIn(StrictModel):
    ground: DeletionGround
    note: str | None = Field(default=None, max_length=500)
    on: date | None = None


class ListingRevocationIn(StrictModel):
    reason: str = Field(min_length=2, max_length=500)
    on: date | None = None


class ListingExtensionIn(StrictModel):
    years: int = Field(ge=1, le=3)
    reason: str = Field(min_length=2, max_length=255)


class RestrictionIn(StrictModel):
    party_id: int = Field(gt=0, lt=2**63, description="the debtor restricted")
    kind: Literal["consumption", "exit"] = "consumption"
    categories: list[str] | None = Field(
        default=None, description="consumption only: the behaviours (default all nine)")
    bound_persons: list[BoundPersonIn] | None = Field(default=None, max_length=20)
    on: date | None = None


class RestrictionLiftIn(StrictModel):
    reason: LiftReason
    note: str | None = Field(default=None, max_length=500)
    on: date | None = None


class ExceptionIn(StrictModel):
    person_id: int = Field(gt=0, lt=2**63)
    activities: list[str] = Field(min_length=1, max_length=20)
    reason: str = Field(min_length=2, max_length=500)
    valid_until: date | None = None


class CorrectionIn(StrictModel):
    filed_by_name: str = Field(min_length=1, max_length=128)
    grounds: str = Field(min_length=2, max_length=4000)
    filed_on: date | None = None


class CorrectionDecisionIn(StrictModel):
    upheld: bool
    note: str = Field(min_length=2, max_length=500)
    on: date | None = None


class HigherReviewIn(StrictModel):
    on: date | None = None
