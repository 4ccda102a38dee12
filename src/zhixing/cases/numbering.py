"""Case numbers: （2025）桂0103执1234号 — year, court code, type, serial in the court's register."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from zhixing.cases.models import CaseSequence, CaseType
from zhixing.core.errors import ValidationFailed

# Longest type first, so 执恢 is not read as 执.
_TYPES = "|".join(sorted((t.value for t in CaseType), key=len, reverse=True))
CASE_NUMBER_RE = re.compile(rf"^[（(](\d{{4}})[）)](桂\d{{0,4}})({_TYPES})(\d{{1,6}})号$")


@dataclass(frozen=True)
class CaseNumber:
    year: int
    court_code: str
    case_type: CaseType
    serial: int

    def __str__(self) -> str:
        return f"（{self.year}）{self.court_code}{self.case_type.value}{self.serial}号"


def parse(text: str, field: str = "case_number") -> CaseNumber:
    match = CASE_NUMBER_RE.match(text.strip())
    if not match:
        raise ValidationFailed("a case number looks like （2025）桂0103执1234号",
                               code="invalid_case_number", field=field)
    year, court, kind, serial = match.groups()
    return CaseNumber(int(year), court, CaseType(kind), int(serial))


def _locked_register(session: Session, court_id: int, year: int,
                     case_type: CaseType) -> CaseSequence:
    """The register row under a row lock (SQLite: the write lock), created if missing."""
    for _ in range(3):
        seq = session.scalar(
            select(CaseSequence)
            .where(CaseSequence.court_id == court_id, CaseSequence.year == year,
                   CaseSequence.case_type == case_type.value)
            .with_for_update())
        if seq is not None:
            return seq
        try:
            with session.begin_nested():
                session.add(CaseSequence(court_id=court_id, year=year,
                                         case_type=case_type.value, last_serial=0))
        except IntegrityError:
            continue  # another registration created the register first; lock that one
    raise RuntimeError("case register could not be locked")


def next_serial(session: Session, court_id: int, year: int, case_type: CaseType) -> int:
    """Take the next serial of the register."""
    seq = _locked_register(session, court_id, year, case_type)
    seq.last_serial += 1
    session.flush()
    return seq.last_serial


def reserve_serial(session: Session, court_id: int, year: int, case_type: CaseType,
                   serial: int) -> None:
    """A case entered with its existing number (migration from another system) moves the
    register past it, so generated numbers never collide with it."""
    seq = _locked_register(session, court_id, year, case_type)
    seq.last_serial = max(seq.last_serial, serial)
    session.flush()
