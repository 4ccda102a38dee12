"""A court's own reference data from files: courts and command centers, users, linked units
and partner agencies (``zhixing load-reference DIR``; docs/data-transfer.md has the formats).

Each file is checked whole before anything is written, and a problem is named by file, line
and field. Loading is idempotent: rows are matched by their code (users by username), created
when new, updated when they differ, and every created or changed row is audited. What the files
do not mention is left alone. The rules of each kind stay where they live: courts are synced by
:func:`zhixing.courts.service.sync_courts`, users created by
:func:`zhixing.courts.identity.create_user`, units by :func:`zhixing.linkage.units.sync_units`
and partners by :func:`zhixing.credit.partners.sync_partners`; this module adds the line
numbers, the cross-file checks and the audit trail of what changed.
"""

from __future__ import annotations

import bisect
import enum
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.core import audit
from zhixing.core.actor import Actor
from zhixing.core.errors import DomainError
from zhixing.courts import identity
from zhixing.courts.models import CommandCenter, Court, CourtLevel, Role, User, UserRole
from zhixing.courts.service import sync_courts
from zhixing.credit import partners
from zhixing.credit.models import Partner
from zhixing.linkage import units
from zhixing.linkage.models import LinkageUnit

FILES = ("courts.json", "users.json", "units.json", "partners.json")
# Long enough to be guessed by nobody, short enough to be read out over a telephone.
ONE_TIME_PASSWORD_BYTES = 12

M = TypeVar("M", bound=BaseModel)


class ReferenceInvalid(DomainError):
    """One or more reference files are invalid; ``problems`` names each by file, line, field."""

    status_code = 422
    code = "reference_invalid"

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the reference files: "
                         + "; ".join(problems[:3]), details={"problems": problems})
        self.problems = problems


# --- file shapes -----------------------------------------------------------------------------


class CenterSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name_zh: str = Field(min_length=2, max_length=96)
    name_en: str = Field(min_length=2, max_length=160)
    duty_phone: str | None = Field(default=None, max_length=32)


class CourtSpec(BaseModel):
    """One court of ``courts.json``: the shape of ``courts/data/guangxi_courts.json``."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^\S{1,16}$")
    division_code: str = Field(pattern=r"^\d{6}$")
    name_zh: str = Field(min_length=2, max_length=64)
    name_en: str = Field(min_length=2, max_length=128)
    short_name_zh: str | None = Field(default=None, max_length=32)
    level: CourtLevel
    parent: str | None = None
    city_zh: str | None = None  # informational, as in the Guangxi file
    county_zh: str | None = None
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    command_center: CenterSpec | None = None


class UserSpec(BaseModel):
    """One user of ``users.json``. Never a password: new users get a one-time password."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=identity.USERNAME_RE.pattern)
    display_name: str = Field(min_length=1, max_length=64)
    court: str = Field(min_length=1, max_length=16)
    roles: list[Role] = Field(min_length=1)
    active: bool = True
    certificate_number: str | None = Field(default=None, max_length=32)
    locale: Literal["zh_CN", "en"] | None = None


# --- reading JSON with line numbers ----------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """An element of a file's list, with the line it starts on and the line of each key."""

    file: str
    line: int
    value: Any
    key_lines: dict[str, int]

    def where(self, key: str | None = None) -> str:
        line = self.key_lines.get(key, self.line) if key else self.line
        return f"{self.file} line {line}" + (f", field {key}" if key else "")


_WS = " \t\n\r"
_DECODER = json.JSONDecoder()


class _Text:
    def __init__(self, text: str) -> None:
        self.text = text
        self._newlines = [i for i, c in enumerate(text) if c == "\n"]

    def line(self, pos: int) -> int:
        return bisect.bisect_left(self._newlines, pos) + 1

    def skip(self, pos: int) -> int:
        while pos < len(self.text) and self.text[pos] in _WS:
            pos += 1
        return pos

    def members(self, pos: int) -> list[tuple[str, int, int]]:
        """(key, key position, value position) of the object at ``pos`` (valid JSON)."""
        out: list[tuple[str, int, int]] = []
        pos = self.skip(pos + 1)
        while self.text[pos] != "}":
            key, end = _DECODER.raw_decode(self.text, pos)
            value_pos = self.skip(self.skip(end) + 1)  # past the colon
            out.append((key, pos, value_pos))
            _, end = _DECODER.raw_decode(self.text, value_pos)
            pos = self.skip(end)
            if self.text[pos] == ",":
                pos = self.skip(pos + 1)
        return out

    def elements(self, pos: int) -> list[int]:
        """Positions of the elements of the array at ``pos`` (valid JSON)."""
        out: list[int] = []
        pos = self.skip(pos + 1)
        while self.text[pos] != "]":
            out.append(pos)
            _, end = _DECODER.raw_decode(self.text, pos)
            pos = self.skip(end)
            if self.text[pos] == ",":
                pos = self.skip(pos + 1)
        return out


def read_items(path: Path, list_key: str | None = None) -> list[Item]:
    """The elements of a file holding a JSON list (or an object whose ``list_key`` is one)."""
    name = path.name
    try:
        text = path.read_text("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReferenceInvalid([f"{name}: not UTF-8 text ({exc.reason})"]) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReferenceInvalid([f"{name} line {exc.lineno}: not valid JSON ({exc.msg})"]) \
            from None
    doc = _Text(text)
    start = doc.skip(0)
    if isinstance(data, dict) and list_key is not None:
        found = [p for k, _, p in doc.members(start) if k == list_key]
        if not found or not isinstance(data[list_key], list):
            raise ReferenceInvalid([f"{name} line 1: expected a list under {list_key!r}"])
        start = found[-1]  # json.loads keeps the last of repeated keys too
    elif not isinstance(data, list):
        shape = "a JSON list" + (f" or an object with {list_key!r}" if list_key else "")
        raise ReferenceInvalid([f"{name} line 1: expected {shape}"])
    items = []
    for pos in doc.elements(start):
        value, _ = _DECODER.raw_decode(text, pos)
        keys = ({k: doc.line(kp) for k, kp, _ in doc.members(pos)}
                if isinstance(value, dict) else {})
        items.append(Item(name, doc.line(pos), value, keys))
    return items


def _validate(model: type[M], items: list[Item],
              problems: list[str]) -> list[tuple[Item, M]]:
    out = []
    for item in items:
        if isinstance(item.value, dict):
            for secret in ("password", "password_hash"):
                if secret in item.value:
                    problems.append(f"{item.where(secret)}: passwords never go in a reference "
                                    "file (new users get a one-time password)")
        try:
            out.append((item, model.model_validate(item.value)))
        except ValidationError as exc:
            for err in exc.errors():
                loc = err["loc"]
                key = str(loc[0]) if loc else None
                if key in ("password", "password_hash"):
                    continue  # reported above, in words
                where = item.where(key) + "".join(f"[{p}]" for p in loc[1:])
                found = err.get("input")
                shown = "" if err["type"] == "missing" or isinstance(found, dict | list) \
                    else f" (found {found!r})"
                problems.append(f"{where}: {err['msg']}{shown}")
    return out


def _duplicates(specs: list[tuple[Item, M]], attr: str,
                problems: list[str]) -> None:
    seen: dict[Any, int] = {}
    for item, spec in specs:
        value = getattr(spec, attr)
        if value in seen:
            problems.append(f"{item.where(attr)}: {value} is already on line {seen[value]}")
        else:
            seen[value] = item.key_lines.get(attr, item.line)


# --- what changed ----------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list):
        return list(value)
    return value


def _snapshot(session: Session, model: Any, fields: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    return {row.code: {f: _plain(getattr(row, f)) for f in fields}
            for row in session.scalars(select(model))}


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {k: {"from": before[k], "to": after[k]} for k in after if before.get(k) != after[k]}


@dataclass
class Counts:
    created: int = 0
    updated: int = 0


@dataclass
class LoadResult:
    files: list[str] = field(default_factory=list)
    courts: Counts = field(default_factory=Counts)
    centers: Counts = field(default_factory=Counts)
    users: Counts = field(default_factory=Counts)
    units: Counts = field(default_factory=Counts)
    partners: Counts = field(default_factory=Counts)
    # Username → one-time password of each user created: shown once, never stored in clear.
    new_passwords: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return any(c.created or c.updated for c in (self.courts, self.centers, self.users,
                                                    self.units, self.partners))


def _audit_diff(session: Session, actor: Actor, actions: tuple[str, str], object_type: str,
                before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]],
                ids: dict[str, int], counts: Counts,
                court_of: Callable[[str], int | None] = lambda _code: None) -> None:
    for code, values in after.items():
        if code not in before:
            counts.created += 1
            audit.record(session, actor, actions[0], object_type=object_type,
                         object_id=ids[code], court_id=court_of(code),
                         details={"code": code, "source": "reference file", **values})
        elif changes := _changes(before[code], values):
            counts.updated += 1
            audit.record(session, actor, actions[1], object_type=object_type,
                         object_id=ids[code], court_id=court_of(code),
                         details={"code": code, "source": "reference file", "changes": changes})


# --- loading ---------------------------------------------------------------------------------

COURT_FIELDS = ("division_code", "name_zh", "name_en", "short_name_zh", "level", "parent_id",
                "path", "lon", "lat")
UNIT_FIELDS = ("name_zh", "name_en", "unit_type", "department", "query_kinds", "control_kinds",
               "online_deduct", "delivery_mode", "push_url", "expected_response_minutes",
               "enabled")
PARTNER_FIELDS = ("name_zh", "name_en", "kind", "activities", "hashed_ids", "enabled")


@dataclass
class _Checked:
    courts: list[tuple[Item, CourtSpec]] = field(default_factory=list)
    users: list[tuple[Item, UserSpec]] = field(default_factory=list)
    units: list[tuple[Item, units.UnitSpec]] = field(default_factory=list)
    partners: list[tuple[Item, partners.PartnerSpec]] = field(default_factory=list)


def check_files(session: Session, directory: Path) -> tuple[_Checked, list[str]]:
    """Read and check every file of ``directory``; raise :class:`ReferenceInvalid` naming
    every problem found. Reads the database (codes that exist), writes nothing."""
    if not directory.is_dir():
        raise ReferenceInvalid([f"{directory}: not a directory"])
    present = sorted(p.name for p in directory.iterdir() if p.suffix.lower() == ".json")
    if unknown := [n for n in present if n not in FILES]:
        raise ReferenceInvalid([f"{n}: not a reference file (expected {', '.join(FILES)})"
                                for n in unknown])
    if not present:
        raise ReferenceInvalid([f"{directory}: none of {', '.join(FILES)} found"])
    problems: list[str] = []
    checked = _Checked()
    # Each file is read whole before the next: a syntax error stops only its own file.
    items: dict[str, list[Item]] = {}
    for name in present:
        try:
            items[name] = read_items(directory / name, "courts" if name == "courts.json" else None)
        except ReferenceInvalid as exc:
            problems.extend(exc.problems)
    checked.courts = _validate(CourtSpec, items.get("courts.json", []), problems)
    checked.users = _validate(UserSpec, items.get("users.json", []), problems)
    checked.units = _validate(units.UnitSpec, items.get("units.json", []), problems)
    checked.partners = _validate(partners.PartnerSpec, items.get("partners.json", []), problems)
    _duplicates(checked.courts, "code", problems)
    _duplicates(checked.users, "username", problems)
    _duplicates(checked.units, "code", problems)
    _duplicates(checked.units, "name_zh", problems)
    _duplicates(checked.partners, "code", problems)
    court_codes = set(session.scalars(select(Court.code)))
    for item, court in checked.courts:
        if court.parent is not None and court.parent not in court_codes:
            problems.append(f"{item.where('parent')}: court {court.parent} is neither in the "
                            "database nor earlier in the file")
        court_codes.add(court.code)
    for item, user in checked.users:
        if user.court not in court_codes:
            problems.append(f"{item.where('court')}: no court {user.court}")
    unit_names = dict(session.execute(select(LinkageUnit.name_zh, LinkageUnit.code)).tuples().all())
    for item, unit in checked.units:
        holder = unit_names.get(unit.name_zh)
        if holder is not None and holder != unit.code:
            problems.append(f"{item.where('name_zh')}: the name of unit {holder} already")
    return checked, problems


def load_reference(session: Session, actor: Actor, directory: Path) -> LoadResult:
    """Load the reference files of ``directory`` into the caller's transaction (the caller
    commits). Refuses, before writing anything, when any file has a problem."""
    checked, problems = check_files(session, directory)
    if problems:
        raise ReferenceInvalid(problems)
    result = LoadResult(files=sorted({i.file for i, _ in [*checked.courts, *checked.users,
                                                          *checked.units, *checked.partners]}))
    if checked.courts:
        _load_courts(session, actor, checked.courts, result)
    if checked.users:
        _load_users(session, actor, checked.users, result)
    if checked.units:
        before = _snapshot(session, LinkageUnit, UNIT_FIELDS)
        units.sync_units(session, [spec for _, spec in checked.units])
        after = _snapshot(session, LinkageUnit, UNIT_FIELDS)
        ids = dict(session.execute(select(LinkageUnit.code, LinkageUnit.id)).tuples().all())
        _audit_diff(session, actor, ("linkage.unit_created", "linkage.unit_updated"),
                    "linkage_unit", before, after, ids, result.units)
    if checked.partners:
        before = _snapshot(session, Partner, PARTNER_FIELDS)
        partners.sync_partners(session, [spec for _, spec in checked.partners])
        after = _snapshot(session, Partner, PARTNER_FIELDS)
        ids = dict(session.execute(select(Partner.code, Partner.id)).tuples().all())
        _audit_diff(session, actor, ("credit.partner_created", "credit.partner_updated"),
                    "credit_partner", before, after, ids, result.partners)
    session.flush()
    return result


def _load_courts(session: Session, actor: Actor, specs: list[tuple[Item, CourtSpec]],
                 result: LoadResult) -> None:
    before = _snapshot(session, Court, COURT_FIELDS)
    sync_courts(session, [spec.model_dump(exclude={"command_center"}) for _, spec in specs])
    after = _snapshot(session, Court, COURT_FIELDS)
    ids = dict(session.execute(select(Court.code, Court.id)).tuples().all())
    _audit_diff(session, actor, ("court.created", "court.updated"), "court", before, after, ids,
                result.courts, court_of=ids.get)
    for _, spec in specs:
        if spec.command_center is None:
            continue
        center = session.scalar(select(CommandCenter).where(
            CommandCenter.court_id == ids[spec.code]))
        assert center is not None  # sync_courts makes one with every court
        wanted = spec.command_center.model_dump(exclude_unset=True)
        old = {k: getattr(center, k) for k in wanted}
        if changes := _changes(old, wanted):
            for key, value in wanted.items():
                setattr(center, key, value)
            result.centers.updated += 1
            audit.record(session, actor, "court.command_center_updated",
                         object_type="command_center", object_id=center.id,
                         court_id=center.court_id,
                         details={"code": spec.code, "source": "reference file",
                                  "changes": changes})


def _load_users(session: Session, actor: Actor, specs: list[tuple[Item, UserSpec]],
                result: LoadResult) -> None:
    court_ids = dict(session.execute(select(Court.code, Court.id)).tuples().all())
    existing = {u.username: u for u in session.scalars(
        select(User).where(User.username.in_([s.username for _, s in specs])))}
    for _, spec in specs:
        user = existing.get(spec.username)
        roles = sorted({r.value for r in spec.roles})
        if user is None:
            password = secrets.token_urlsafe(ONE_TIME_PASSWORD_BYTES)
            user = identity.create_user(session, actor, username=spec.username,
                                        display_name=spec.display_name,
                                        court_code=spec.court, password=password, roles=roles)
            for name in ("certificate_number", "locale"):
                if name in spec.model_fields_set:
                    setattr(user, name, getattr(spec, name))
            user.is_active = spec.active
            result.new_passwords[user.username] = password
            result.users.created += 1
            continue
        old: dict[str, Any] = {"display_name": user.display_name, "court": user.court.code,
                               "roles": sorted(r.value for r in user.roles),
                               "active": user.is_active}
        new: dict[str, Any] = {"display_name": spec.display_name, "court": spec.court,
                               "roles": roles, "active": spec.active}
        # Optional fields the file leaves out stay as an administrator set them.
        for name in ("certificate_number", "locale"):
            if name in spec.model_fields_set:
                old[name], new[name] = getattr(user, name), getattr(spec, name)
        if not (changes := _changes(old, new)):
            continue
        user.display_name = spec.display_name
        user.court_id = court_ids[spec.court]
        user.is_active = spec.active
        if "roles" in changes:
            user.role_rows = [UserRole(role=r) for r in roles]
        for name in ("certificate_number", "locale"):
            if name in new:
                setattr(user, name, new[name])
        result.users.updated += 1
        audit.record(session, actor, "user.updated", object_type="user", object_id=user.id,
                     court_id=court_ids[spec.court],
                     details={"username": user.username, "source": "reference file",
                              "changes": changes})
    session.flush()
