"""Parties: one record per person or organisation across every case, matched by ID number."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.cases.identifiers import check_identity
from zhixing.cases.models import IdKind, Party, PartyKind, ResponsiblePerson
from zhixing.cases.schemas import PartyIn
from zhixing.core.errors import Conflict, ValidationFailed

RESPONSIBLE_ROLES = ("legal_representative", "principal", "directly_responsible",
                     "actual_controller")
PERSON_ID_KINDS = (IdKind.RIC, IdKind.RIC15, IdKind.OTHER)
ORG_ID_KINDS = (IdKind.USCC, IdKind.ORG_CODE, IdKind.OTHER)


def _same_name(a: str, b: str) -> bool:
    return a.replace(" ", "") == b.replace(" ", "")


def resolve(session: Session, data: PartyIn, field: str) -> Party:
    """The existing party with this ID number, or a new one. A different name under the same
    number is refused: one of the two is a typing error a person must look at."""
    kind = PartyKind(data.kind)
    allowed = PERSON_ID_KINDS if kind == PartyKind.PERSON else ORG_ID_KINDS
    if data.id_kind not in allowed:
        raise ValidationFailed(f"a {kind.value} cannot be identified by {data.id_kind}",
                               code="id_kind_mismatch", field=f"{field}.id_kind")
    checked = check_identity(IdKind(data.id_kind), data.id_number,
                             field=f"{field}.id_number",
                             region_confirmed=data.id_region_confirmed)
    existing = session.scalar(select(Party).where(Party.id_kind == checked.kind,
                                                  Party.id_number == checked.number))
    if existing is not None:
        if not _same_name(existing.name, data.name):
            raise Conflict(f"ID number {checked.number} is already recorded for "
                           f"{existing.name}, not {data.name}", code="id_name_mismatch",
                           field=f"{field}.name")
        for attr in ("address", "phone", "legal_representative"):
            if getattr(existing, attr) is None and getattr(data, attr, None):
                setattr(existing, attr, getattr(data, attr))
        party = existing
    else:
        party = Party(kind=kind, name=data.name.strip(), id_kind=checked.kind,
                      id_number=checked.number, sex=checked.sex, birth_date=checked.birth_date,
                      id_region_unverified=checked.region_unverified, address=data.address,
                      phone=data.phone, legal_representative=data.legal_representative)
        session.add(party)
        session.flush()
    if kind == PartyKind.ORGANISATION:
        known = {(r.person_id, r.role) for r in party.responsible_persons}
        for i, rp in enumerate(data.responsible_persons):
            if rp.role not in RESPONSIBLE_ROLES:
                raise ValidationFailed(f"unknown responsible-person role {rp.role!r}",
                                       code="unknown_role",
                                       field=f"{field}.responsible_persons.{i}.role")
            person = resolve(session, rp.person, f"{field}.responsible_persons.{i}.person")
            if person.kind != PartyKind.PERSON:
                raise ValidationFailed("a responsible person must be a natural person",
                                       code="not_a_person",
                                       field=f"{field}.responsible_persons.{i}.person")
            if (person.id, rp.role) not in known:
                party.responsible_persons.append(
                    ResponsiblePerson(organisation_id=party.id, person_id=person.id,
                                      role=rp.role))
                known.add((person.id, rp.role))
        session.flush()
    elif data.responsible_persons:
        raise ValidationFailed("only organisations have responsible persons",
                               code="not_an_organisation", field=f"{field}.responsible_persons")
    return party
