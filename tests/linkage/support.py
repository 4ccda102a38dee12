"""Linked units for tests: the reference units with keys, and SDK clients speaking through the
test client (the real protocol, signed both ways)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from zhixing.core.actor import SYSTEM
from zhixing.core.db import transaction
from zhixing.linkage import keys, signing, units
from zhixing.linkage.client import LinkageClient
from zhixing.linkage.models import LinkageUnit


def onboard(*, push_url: str | None = None) -> dict[str, keys.IssuedKeys]:
    """Every reference unit, enabled, in pull mode (or push to ``push_url``), with keys."""
    issued = {}
    with transaction() as session:
        units.sync_units(session, units.reference_units())
        for unit in session.query(LinkageUnit):
            if unit.delivery_mode == "push":
                unit.push_url = push_url
                if push_url is None:
                    unit.delivery_mode = "pull"  # type: ignore[assignment]
            issued[unit.code] = keys.issue(session, SYSTEM, unit)
    return issued


def sdk(client: TestClient, issued: keys.IssuedKeys, **kw: Any) -> LinkageClient:
    return LinkageClient(
        "http://testserver", issued.key_id, signing.decode_secret(issued.secret),
        platform_keys={issued.platform_key_id: signing.decode_secret(issued.platform_secret)},
        http=client, max_attempts=1, **kw)  # type: ignore[arg-type]


def unit_id(session: Session, code: str) -> int:
    found = session.query(LinkageUnit.id).filter(LinkageUnit.code == code).scalar()
    assert found is not None
    return int(found)
