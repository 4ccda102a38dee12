"""Identity numbers of parties, checked with python-stdnum (RULES.md, Identifiers).

Hard rules (refused): length, digits, check digit, a real birth date not in the future. The
region code having been in use in the birth year is a *soft* rule: real numbers fail it (codes
assigned after birth, re-zoned counties) and a court must record the number printed on the
judgment, so it is a warning the officer confirms.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from stdnum.cn import ric, uscc
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)

from zhixing.cases.models import IdKind
from zhixing.core.clock import to_local, utcnow
from zhixing.core.errors import ValidationFailed


@dataclass(frozen=True)
class CheckedId:
    kind: IdKind
    number: str
    birth_date: date | None = None
    sex: str | None = None
    region_unverified: bool = False


def _refuse(field: str, code: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, code=code, field=field)


def check_resident_id(raw: str, *, field: str = "id_number",
                      region_confirmed: bool = False) -> CheckedId:
    """An 18-digit resident ID (GB 11643). See the module doc for what is hard and soft."""
    number = ric.compact(raw).upper()
    if len(number) != 18:
        raise _refuse(field, "invalid_id_length", "a resident ID number has 18 characters")
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        raise _refuse(field, "invalid_id_format", "a resident ID number is 17 digits and a "
                      "check character (0-9 or X)")
    if number[-1] != ric.calc_check_digit(number):
        raise _refuse(field, "invalid_id_checksum",
                      "the check digit of this resident ID number is wrong")
    try:
        born = ric.get_birth_date(number)
    except (InvalidComponent, ValueError):
        raise _refuse(field, "invalid_birth_date",
                      "the birth date in this resident ID number does not exist") from None
    if born > to_local(utcnow()).date() or born.year < 1880:
        raise _refuse(field, "invalid_birth_date",
                      "the birth date in this resident ID number is impossible")
    unverified = False
    try:
        ric.get_birth_place(number)
    except InvalidComponent:
        if not region_confirmed:
            raise ValidationFailed(
                "the region code of this ID number was not in use in the birth year; "
                "confirm the number as printed on the title to record it",
                code="id_region_unconfirmed", field=field) from None
        unverified = True
    sex = "M" if int(number[16]) % 2 else "F"
    return CheckedId(IdKind.RIC, number, born, sex, unverified)


def check_old_resident_id(raw: str, *, field: str = "id_number") -> CheckedId:
    """A 15-digit resident ID (issued before 1999): 6 region digits, YYMMDD, 3 digits."""
    number = ric.compact(raw)
    if len(number) != 15 or not number.isdigit():
        raise _refuse(field, "invalid_id_format", "an old resident ID number has 15 digits")
    try:
        born = date(1900 + int(number[6:8]), int(number[8:10]), int(number[10:12]))
    except ValueError:
        raise _refuse(field, "invalid_birth_date",
                      "the birth date in this ID number does not exist") from None
    sex = "M" if int(number[14]) % 2 else "F"
    return CheckedId(IdKind.RIC15, number, born, sex)


def check_credit_code(raw: str, *, field: str = "id_number") -> CheckedId:
    try:
        number = uscc.validate(raw)
    except InvalidLength:
        raise _refuse(field, "invalid_credit_code_length",
                      "a unified social credit code has 18 characters") from None
    except InvalidChecksum:
        raise _refuse(field, "invalid_credit_code_checksum",
                      "the check character of this credit code is wrong") from None
    except (InvalidFormat, InvalidComponent, ValidationError):
        raise _refuse(field, "invalid_credit_code",
                      "this is not a valid unified social credit code") from None
    return CheckedId(IdKind.USCC, number)


def check_org_code(raw: str, *, field: str = "id_number") -> CheckedId:
    """The old 9-character organisation code (GB 11714), still on pre-2015 judgments."""
    number = raw.replace("-", "").replace(" ", "").upper()
    if len(number) != 9 or not number[:8].isalnum():
        raise _refuse(field, "invalid_org_code", "an organisation code has 9 characters")
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    total = sum(alphabet.index(c) * w for c, w in zip(number[:8], weights, strict=True))
    check = 11 - total % 11
    expected = {10: "X", 11: "0"}.get(check, str(check))
    if number[8] != expected:
        raise _refuse(field, "invalid_org_code_checksum",
                      "the check character of this organisation code is wrong")
    return CheckedId(IdKind.ORG_CODE, number)


def check_identity(kind: IdKind, raw: str, *, field: str = "id_number",
                   region_confirmed: bool = False) -> CheckedId:
    if kind == IdKind.RIC:
        return check_resident_id(raw, field=field, region_confirmed=region_confirmed)
    if kind == IdKind.RIC15:
        return check_old_resident_id(raw, field=field)
    if kind == IdKind.USCC:
        return check_credit_code(raw, field=field)
    if kind == IdKind.ORG_CODE:
        return check_org_code(raw, field=field)
    number = raw.strip().upper()
    if not 4 <= len(number) <= 32 or not all(c.isalnum() or c in "-()" for c in number):
        raise _refuse(field, "invalid_id_format", "4-32 letters, digits, '-' or brackets")
    return CheckedId(IdKind.OTHER, number)


def masked(number: str | None) -> str:
    """For public pages: the first 4 and the last 4 characters (4501**********123X)."""
    if not number:
        return ""
    if len(number) <= 8:
        return "*" * len(number)
    return number[:4] + "*" * (len(number) - 8) + number[-4:]
