"""Building the protocol messages the platform sends, from the case's records."""

from __future__ import annotations

import secrets
import time
from datetime import datetime, timedelta
from typing import Any

from zhixing.cases.models import Case, Party
from zhixing.core.errors import ValidationFailed
from zhixing.courts.models import Court, User
from zhixing.linkage import wire

# A unit is expected to answer the same day; an unanswered query expires after this.
QUERY_DUE = timedelta(hours=24)
CONTROL_DUE = timedelta(hours=24)


def new_task_id() -> str:
    """Time-ordered (so ids sort roughly by creation) and unguessable: ``zt_`` + 28 hex."""
    return f"zt_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(8)}"


def officer_of(user: User | None) -> wire.Officer:
    if user is None:
        return wire.Officer(name="执行指挥中心", certificate_number="ZX-SYSTEM")
    number = user.certificate_number or f"ZX{user.id:08d}"
    return wire.Officer(name=user.display_name[:64], certificate_number=number)


def subject_of(party: Party) -> wire.Subject:
    if not party.id_number or party.id_kind is None:
        raise ValidationFailed(f"debtor {party.name} has no identity number; a unit cannot be "
                               "asked about him", code="debtor_without_id",
                               details={"party_id": party.id})
    return wire.Subject(
        subject_type="person" if party.kind == "person" else "organisation",
        name=party.name[:128], id_kind=str(party.id_kind),  # type: ignore[arg-type]
        id_number=party.id_number)


class Envelope:
    """What every task of one request shares: case, court, officer, purpose, legal basis."""

    def __init__(self, case: Case, court: Court, user: User | None, purpose: str,
                 legal_basis: str, requested_at: datetime) -> None:
        self.case_number = case.case_number
        self.court_code = court.code
        self.court_name = court.name_zh
        self.officer = officer_of(user).model_dump(mode="json")
        self.purpose = purpose
        self.legal_basis = legal_basis
        self.requested_at = requested_at

    def task(self, task_id: str, kind: str, subject: wire.Subject, due: timedelta,
             control: wire.ControlOrder | None = None) -> dict[str, Any]:
        """The task as JSON, validated once here so a unit never receives an invalid one."""
        message = wire.Task(
            schema_version="1", task_id=task_id, kind=kind,  # type: ignore[arg-type]
            case_number=self.case_number, court_code=self.court_code,
            court_name=self.court_name, officer=wire.Officer(**self.officer),
            requested_at=self.requested_at, due_by=self.requested_at + due, subject=subject,
            purpose=self.purpose, legal_basis=self.legal_basis, control=control)
        return message.model_dump(mode="json")
