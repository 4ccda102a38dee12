"""The registry of partner agencies (惩戒合作单位): reference data, subscriptions, keys.

A partner receives the part of the dishonest-debtor list it enforces (RULES.md, Dishonest-debtor
list: "partners notified") and screens people against it. What it enforces is its subscription,
a set of :class:`~zhixing.credit.activities.Activity`: an airline sees flights, a bank loans and
premium insurance. Everything it is shown (feed, snapshot, screening answers) is cut to that set.

Partners serve the whole region, like linked units: only the high court's administrators manage
them, and every change is audited.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.core import audit
from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.core.errors import Forbidden, NotFound, ValidationFailed
from zhixing.core.settings import get_settings
from zhixing.courts import identity
from zhixing.courts.models import ApiKey, ClientKind, Court
from zhixing.credit.activities import Activity, mask_of, parse_activities
from zhixing.credit.models import Partner, PartnerKind
from zhixing.credit.screening_index import normalise_number

ADMIN_ROLES = ("admin",)
ALL = "*"  # reference data: every activity (the credit bureau)
# Bumping this changes every partner's hashing key: partners must be given the new keys.
HASH_KEY_CONTEXT = b"zhixing-partner-id-hash/v1/"


class PartnerSpec(BaseModel):
    """One partner of the reference-data file ``credit/data/partners.json``."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{1,47}$")
    name_zh: str = Field(min_length=2, max_length=128)
    name_en: str = Field(min_length=2, max_length=160)
    kind: PartnerKind
    activities: list[str] = Field(min_length=1)
    hashed_ids: bool = False

    @field_validator("activities")
    @classmethod
    def _known(cls, values: list[str]) -> list[str]:
        if values == [ALL]:
            return [str(a) for a in Activity]
        known, unknown = parse_activities(values)
        if unknown:
            raise ValueError(f"unknown activities {sorted(unknown)}")
        return ordered(known)


def ordered(activities: list[Activity]) -> list[str]:
    """Activities in bit order, once each: stored and shown the same way everywhere."""
    chosen = set(activities)
    return [str(a) for a in Activity if a in chosen]


def reference_partners() -> list[PartnerSpec]:
    raw = (resources.files("zhixing.credit") / "data" / "partners.json").read_text("utf-8")
    return load_specs(json.loads(raw))


def load_specs(data: Any) -> list[PartnerSpec]:
    if not isinstance(data, list):
        raise ValueError("a partners file is a JSON list of partners")
    specs = [PartnerSpec.model_validate(item) for item in data]
    codes = [s.code for s in specs]
    if dupes := {c for c in codes if codes.count(c) > 1}:
        raise ValueError(f"duplicate partner codes: {sorted(dupes)}")
    return specs


def sync_partners(session: Session, specs: list[PartnerSpec] | None = None) -> tuple[int, int]:
    """Create partners from reference data, or refresh their names and kind; returns
    (created, updated). Subscriptions, hashed ids and the on/off switch are the
    administrators' once a partner exists, so a re-run never undoes their changes."""
    specs = reference_partners() if specs is None else specs
    existing = {p.code: p for p in session.scalars(select(Partner))}
    created = updated = 0
    for spec in specs:
        partner = existing.get(spec.code)
        if partner is None:
            session.add(Partner(code=spec.code, name_zh=spec.name_zh, name_en=spec.name_en,
                                kind=spec.kind, activities=spec.activities,
                                hashed_ids=spec.hashed_ids, enabled=True, ack_seq=0,
                                fetched_seq=0, created_at=utcnow()))
            created += 1
            continue
        if (partner.name_zh, partner.name_en, partner.kind) != (spec.name_zh, spec.name_en,
                                                                spec.kind):
            partner.name_zh, partner.name_en, partner.kind = spec.name_zh, spec.name_en, spec.kind
            updated += 1
    session.flush()
    return created, updated


# --- who may manage ---------------------------------------------------------------------------


def require_admin(session: Session, actor: Actor) -> None:
    """Partners serve the whole region: only the high court's administrators manage them
    (the same rule as :func:`zhixing.linkage.units.require_admin` for linked units)."""
    court = session.get(Court, actor.court_id) if actor.court_id else None
    if not actor.has_role(*ADMIN_ROLES) or court is None or court.parent_id is not None:
        raise Forbidden("only administrators of the high court manage partner agencies",
                        code="role_forbidden")


# --- reading and changing ---------------------------------------------------------------------


def subscription_mask(partner: Partner) -> int:
    known, _ = parse_activities(partner.activities)
    return mask_of(known)


def check_activities(values: list[str], field: str = "activities") -> list[Activity]:
    """Known activities, or 422 ``unknown_activity`` naming the unknown ones."""
    known, unknown = parse_activities(values)
    if unknown:
        raise ValidationFailed(f"unknown activities: {', '.join(sorted(set(unknown)))}",
                               code="unknown_activity", field=field,
                               details={"unknown": sorted(set(unknown)),
                                        "known": [str(a) for a in Activity]})
    return known


def list_partners(session: Session) -> list[Partner]:
    return list(session.scalars(select(Partner).order_by(Partner.id)))


def get_partner(session: Session, partner_id: int) -> Partner:
    partner = session.get(Partner, partner_id)
    if partner is None:
        raise NotFound(f"partner {partner_id} not found", code="partner_not_found")
    return partner


class PartnerUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    activities: list[str] | None = Field(default=None, min_length=1, max_length=64)
    enabled: bool | None = None
    hashed_ids: bool | None = None


@dataclass(frozen=True)
class UpdateResult:
    partner: Partner
    # Hex key the partner needs to compute the hashed ids on its side; only when hashed ids
    # were switched on by this update (handed over once, like an API key's secret).
    hashing_key: str | None


def update_partner(session: Session, actor: Actor, partner: Partner,
                   body: PartnerUpdate) -> UpdateResult:
    require_admin(session, actor)
    changes: dict[str, Any] = {}
    if body.activities is not None:
        activities = ordered(check_activities(body.activities))
        if activities != partner.activities:
            changes["activities"] = {"from": partner.activities, "to": activities}
            partner.activities = activities
    if body.enabled is not None and body.enabled != partner.enabled:
        changes["enabled"] = body.enabled
        partner.enabled = body.enabled
    key: str | None = None
    if body.hashed_ids is not None and body.hashed_ids != partner.hashed_ids:
        changes["hashed_ids"] = body.hashed_ids
        partner.hashed_ids = body.hashed_ids
        if body.hashed_ids:
            key = hashing_key(partner.code).hex()
    if changes:
        audit.record(session, actor, "credit.partner_updated", object_type="credit_partner",
                     object_id=partner.id, details={"code": partner.code, **changes})
    session.flush()
    return UpdateResult(partner, key)


# --- hashed identity numbers ------------------------------------------------------------------


def hashing_key(partner_code: str) -> bytes:
    """The partner's 32-byte key for hashed identity numbers, derived (HMAC-SHA256 as a PRF)
    from ZHIXING_SECRET_KEY: nothing to store, the same in every process, different for every
    partner, so two partners' hashes cannot be joined."""
    secret = get_settings().secret_key.encode()
    return hmac.new(secret, HASH_KEY_CONTEXT + partner_code.encode(), hashlib.sha256).digest()


def hash_id(key: bytes, number: str) -> str:
    """HMAC-SHA256 (hex) of the normalised number (upper case, no separators, a 15-digit
    resident ID in its 18-digit form), as docs/partner-api.md tells partners to compute it."""
    return hmac.new(key, normalise_number(number).encode(), hashlib.sha256).hexdigest()


# --- keys -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    secret: str
    created_at: datetime

    @property
    def token(self) -> str:
        return f"{self.key_id}.{self.secret}"


def keys_of(session: Session, partner: Partner) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).where(
        ApiKey.client_kind == ClientKind.PARTNER, ApiKey.client_ref == partner.code)
        .order_by(ApiKey.id)))


def issue_key(session: Session, actor: Actor, partner: Partner, name: str | None) -> IssuedKey:
    """A new API key for the partner; its other keys keep working (a partner rotates by
    taking a new key into use, then revoking the old one). The secret is shown once."""
    require_admin(session, actor)
    key_id, secret, row = identity.issue_api_key(
        session, ClientKind.PARTNER, partner.code, name or partner.name_zh, [], actor)
    audit.record(session, actor, "credit.partner_key_issued", object_type="credit_partner",
                 object_id=partner.id, details={"code": partner.code, "key_id": key_id})
    return IssuedKey(key_id, secret, row.created_at)


def revoke_key(session: Session, actor: Actor, partner: Partner, key_id: str) -> ApiKey:
    """The key stops working with the next request (keys are checked on every request).
    Revoking a revoked key changes nothing."""
    require_admin(session, actor)
    row = session.scalar(select(ApiKey).where(
        ApiKey.key_id == key_id, ApiKey.client_kind == ClientKind.PARTNER,
        ApiKey.client_ref == partner.code))
    if row is None:
        raise NotFound(f"key {key_id} of partner {partner.code} not found",
                       code="key_not_found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(session, actor, "credit.partner_key_revoked",
                     object_type="credit_partner", object_id=partner.id,
                     details={"code": partner.code, "key_id": key_id})
        session.flush()
    return row
