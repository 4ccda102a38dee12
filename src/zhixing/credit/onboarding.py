"""Partners for a demo installation: the reference partners with an API key each for the ones
the Li story needs, and a listed person to screen."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.core.actor import SYSTEM
from zhixing.courts import identity
from zhixing.courts.models import ClientKind
from zhixing.credit import partners
from zhixing.credit.models import BoundRole, Entry, SourceKind

DEMO_PARTNERS = ("caac", "railway-12306", "nia-exit-entry")


def demo_partners(session: Session, codes: Sequence[str] = DEMO_PARTNERS) -> dict[str, Any]:
    """Load the reference partners and issue one key to each of ``codes`` (the platform acts:
    there is no administrator at the moment the demo is made). Returns what the demo prints
    and writes to its secret file."""
    partners.sync_partners(session)
    keys = {}
    for code in codes:
        key_id, secret, _ = identity.issue_api_key(session, ClientKind.PARTNER, code,
                                                   f"demo key of {code}", [], SYSTEM)
        keys[code] = f"{key_id}.{secret}"
    listed = session.execute(select(Entry.name, Entry.id_number).where(
        Entry.source_kind == SourceKind.LISTING, Entry.role == BoundRole.DEBTOR,
        Entry.active.is_(True), Entry.id_kind == "ric").order_by(Entry.id).limit(1)).first()
    return {"keys": keys, "listed": {"name": listed[0], "id_number": listed[1]}
            if listed else None}
