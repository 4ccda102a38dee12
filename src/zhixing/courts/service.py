"""Court hierarchy: reference data loading and the questions every domain asks of it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.courts.models import CommandCenter, Court, CourtLevel

COURT_DATA_FILE = "guangxi_courts.json"


def load_reference_data() -> list[dict[str, Any]]:
    text = resources.files("zhixing.courts").joinpath("data", COURT_DATA_FILE).read_text("utf-8")
    courts: list[dict[str, Any]] = json.loads(text)["courts"]
    return courts


@dataclass(frozen=True)
class SyncResult:
    created: int
    updated: int


def sync_courts(session: Session, rows: list[dict[str, Any]] | None = None) -> SyncResult:
    """Insert or update courts and their command centers from reference data (idempotent).

    Parents come before children in the file, so one pass resolves every parent.
    """
    rows = rows if rows is not None else load_reference_data()
    existing = {c.code: c for c in session.scalars(select(Court))}
    created = updated = 0
    for row in rows:
        parent = existing.get(row["parent"]) if row.get("parent") else None
        if row.get("parent") and parent is None:
            raise ValueError(
                f"court {row['code']}: parent {row['parent']} is not defined before it"
            )
        path = f"{parent.path if parent else '/'}{row['code']}/"
        values = {
            "division_code": row["division_code"],
            "name_zh": row["name_zh"],
            "name_en": row["name_en"],
            "short_name_zh": row.get("short_name_zh") or row["name_zh"],
            "level": CourtLevel(row["level"]),
            "parent_id": parent.id if parent else None,
            "path": path,
            "lon": row.get("lon"),
            "lat": row.get("lat"),
        }
        court = existing.get(row["code"])
        if court is None:
            court = Court(code=row["code"], **values)
            session.add(court)
            session.flush()
            session.add(
                CommandCenter(
                    court_id=court.id,
                    name_zh=f"{row['name_zh']}执行指挥中心",
                    name_en=f"Enforcement Command Center, {row['name_en']}",
                )
            )
            existing[court.code] = court
            created += 1
        else:
            changed = False
            for key, value in values.items():
                if getattr(court, key) != value:
                    setattr(court, key, value)
                    changed = True
            updated += int(changed)
    session.flush()
    return SyncResult(created, updated)


def subordinate_court_ids(session: Session, court_id: int) -> frozenset[int]:
    """The court itself and every court below it."""
    path = session.scalar(select(Court.path).where(Court.id == court_id))
    if path is None:
        return frozenset()
    return court_ids_under(session, path)


def court_ids_under(session: Session, path: str) -> frozenset[int]:
    """The courts whose path starts with ``path``: a court and its subtree, one range scan."""
    return frozenset(session.scalars(select(Court.id).where(Court.path.startswith(path))))


def get_by_code(session: Session, code: str) -> Court | None:
    return session.scalar(select(Court).where(Court.code == code))


def chain_of_command(session: Session, court: Court) -> list[Court]:
    """From the high court down to ``court``."""
    codes = [c for c in court.path.strip("/").split("/") if c]
    by_code = {c.code: c for c in session.scalars(select(Court).where(Court.code.in_(codes)))}
    return [by_code[c] for c in codes]
