"""The registry of linked units: reference data, the on/off switch, delivery settings."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.core import audit
from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.core.errors import Forbidden, NotFound, ValidationFailed
from zhixing.courts.models import Court
from zhixing.linkage import keys, wire
from zhixing.linkage.models import DeliveryMode, LinkageUnit, UnitType

ADMIN_ROLES = ("admin",)
# Who sees the linked units, their health and the network figures (the console page and the
# JSON API alike): the people who query, order, coordinate or supervise. A bailiff works from
# dispatch tasks and has no use for them.
READ_ROLES = ("officer", "approver", "duty_officer", "duty_leader", "auditor", "admin")
# Which control actions make sense for which query kind's assets (deduction only for money).
CONTROLS_FOR_QUERY: dict[str, frozenset[str]] = {
    "deposits": frozenset({"freeze", "renew_freeze", "release", "deduct"}),
    "securities": frozenset({"freeze", "renew_freeze", "release"}),
    "business_registration": frozenset({"freeze", "renew_freeze", "release"}),
    "real_estate": frozenset({"seal", "renew_freeze", "release"}),
    "vehicles": frozenset({"seal", "renew_freeze", "release"}),
}


class UnitSpec(BaseModel):
    """One unit of a reference-data file (``linkage/data/guangxi_units.json`` is the demo's)."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[A-Za-z0-9._-]{1,58}$")
    name_zh: str = Field(min_length=2, max_length=128)
    name_en: str = Field(min_length=2, max_length=160)
    unit_type: Literal["bank", "department"]
    department: str | None = Field(default=None, max_length=32)
    query_kinds: list[str] = Field(min_length=1)
    control_kinds: list[str] = Field(default_factory=list)
    online_deduct: bool = False
    delivery_mode: Literal["pull", "push"] = "pull"
    push_url: str | None = Field(default=None, max_length=255)
    expected_response_minutes: int = Field(default=240, ge=1, le=7 * 24 * 60)

    @field_validator("query_kinds")
    @classmethod
    def _queries(cls, kinds: list[str]) -> list[str]:
        if unknown := set(kinds) - set(wire.QUERY_KINDS):
            raise ValueError(f"unknown query kinds {sorted(unknown)}")
        return sorted(set(kinds))

    @field_validator("control_kinds")
    @classmethod
    def _controls(cls, kinds: list[str]) -> list[str]:
        if unknown := set(kinds) - set(wire.CONTROL_KINDS):
            raise ValueError(f"unknown control kinds {sorted(unknown)}")
        return sorted(set(kinds))

    @model_validator(mode="after")
    def _consistent(self) -> UnitSpec:
        allowed = set().union(*(CONTROLS_FOR_QUERY.get(k, frozenset())
                                for k in self.query_kinds))
        if extra := set(self.control_kinds) - allowed:
            raise ValueError(f"{self.code}: controls {sorted(extra)} do not fit the assets of "
                             f"{self.query_kinds}")
        if self.online_deduct != ("deduct" in self.control_kinds):
            raise ValueError(f"{self.code}: online_deduct is true exactly when deduct is offered")
        if self.push_url is not None:
            check_push_url(self.push_url)
        return self


def check_push_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.fragment:
        raise ValueError("push_url is an absolute http(s) URL without a fragment")
    return url


def reference_units() -> list[UnitSpec]:
    raw = (resources.files("zhixing.linkage") / "data" / "guangxi_units.json").read_text("utf-8")
    return load_specs(json.loads(raw))


def load_specs(data: Any) -> list[UnitSpec]:
    if not isinstance(data, list):
        raise ValueError("a units file is a JSON list of units")
    specs = [UnitSpec.model_validate(item) for item in data]
    for attr in ("code", "name_zh"):
        values = [getattr(s, attr) for s in specs]
        if dupes := {v for v in values if values.count(v) > 1}:
            raise ValueError(f"duplicate {attr}: {sorted(dupes)}")
    return specs


def sync_units(session: Session, specs: list[UnitSpec]) -> tuple[int, int]:
    """Create or update units from reference data; returns (created, updated). The on/off
    switch and the push URL set by an administrator are kept."""
    existing = {u.code: u for u in session.scalars(select(LinkageUnit))}
    created = updated = 0
    now = utcnow()
    for spec in specs:
        unit = existing.get(spec.code)
        values = spec.model_dump(exclude={"code", "push_url"})
        values["unit_type"] = UnitType(spec.unit_type)
        values["delivery_mode"] = DeliveryMode(spec.delivery_mode)
        if unit is None:
            session.add(LinkageUnit(code=spec.code, push_url=spec.push_url, enabled=True,
                                    created_at=now, updated_at=now, **values))
            created += 1
            continue
        changed = False
        for name, value in values.items():
            if getattr(unit, name) != value:
                setattr(unit, name, value)
                changed = True
        if changed:
            unit.updated_at = now
            updated += 1
    session.flush()
    return created, updated


def require_reader(actor: Actor) -> None:
    if not actor.has_role(*READ_ROLES):
        raise Forbidden("your role may not see the linked units", code="role_forbidden")


def require_admin(session: Session, actor: Actor) -> None:
    """Units serve the whole region: only the high court's administrators manage them."""
    court = session.get(Court, actor.court_id) if actor.court_id else None
    if not actor.has_role(*ADMIN_ROLES) or court is None or court.parent_id is not None:
        raise Forbidden("only administrators of the high court manage linked units",
                        code="role_forbidden")


def get_unit(session: Session, unit_id: int) -> LinkageUnit:
    unit = session.get(LinkageUnit, unit_id)
    if unit is None:
        raise NotFound(f"linked unit {unit_id} not found", code="unit_not_found")
    return unit


class UnitUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    delivery_mode: Literal["pull", "push"] | None = None
    push_url: str | None = Field(default=None, max_length=255)
    expected_response_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)

    @field_validator("push_url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        return None if url is None else check_push_url(url)


def update_unit(session: Session, actor: Actor, unit: LinkageUnit, body: UnitUpdate) -> None:
    require_admin(session, actor)
    changes = body.model_dump(exclude_unset=True)
    mode = changes.get("delivery_mode", unit.delivery_mode)
    url = changes.get("push_url", unit.push_url)
    if mode == "push" and not url:
        raise ValidationFailed("a unit in push mode needs its push_url", code="push_url_required",
                               field="push_url")
    for name, value in changes.items():
        setattr(unit, name, DeliveryMode(value) if name == "delivery_mode" else value)
    unit.updated_at = utcnow()
    keys.forget_callers_after_commit(session)  # a unit switched off is refused at once
    audit.record(session, actor, "linkage.unit_updated", object_type="linkage_unit",
                 object_id=unit.id, details={k: str(v) for k, v in changes.items()})


def able_units(session: Session, kinds: set[str]) -> list[LinkageUnit]:
    """Enabled units answering at least one of ``kinds``."""
    return [u for u in session.scalars(select(LinkageUnit).where(LinkageUnit.enabled.is_(True))
                                       .order_by(LinkageUnit.id))
            if kinds & set(u.query_kinds)]
