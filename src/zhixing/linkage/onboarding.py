"""Onboarding linked units from a reference file, and the simulator's configuration.

A court loads its real units from its own file (the same shape as
``linkage/data/guangxi_units.json``) with ``zhixing linkage load-units FILE`` and hands each
unit its keys over a separate channel. The demo and the tests onboard the reference units and
write the keys to a configuration file (mode 0600) that ``zhixing simulate-units`` reads.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.core.actor import SYSTEM
from zhixing.linkage import keys, units
from zhixing.linkage.models import DeliveryMode, LinkageUnit

PUSH_PATH = "/zhixing/push"


def simulated_units(session: Session, base_url: str, *, push_host: str = "127.0.0.1",
                    push_port_start: int = 18_101, all_pull: bool = False) -> dict[str, Any]:
    """Onboard the reference units for simulation: fresh keys for every unit; push units get
    consecutive local ports. Returns the simulator's configuration (secrets included)."""
    units.sync_units(session, units.reference_units())
    out = []
    port = push_port_start
    for unit in session.scalars(select(LinkageUnit).order_by(LinkageUnit.id)):
        unit.enabled = True
        if all_pull:
            unit.delivery_mode = DeliveryMode.PULL
        if unit.delivery_mode == DeliveryMode.PUSH:
            unit.push_url = f"http://{push_host}:{port}{PUSH_PATH}"
            port += 1
        issued = keys.issue(session, SYSTEM, unit)
        out.append({
            "code": unit.code, "name": unit.name_zh, "unit_type": str(unit.unit_type),
            "query_kinds": unit.query_kinds, "control_kinds": unit.control_kinds,
            "delivery_mode": str(unit.delivery_mode), "push_url": unit.push_url,
            "key_id": issued.key_id, "secret": issued.secret,
            "platform_key_id": issued.platform_key_id,
            "platform_secret": issued.platform_secret, "online_deduct": unit.online_deduct})
    session.flush()
    return {"base_url": base_url, "units": out}


def write_secret_file(path: Path, data: dict[str, Any]) -> None:
    """Write JSON readable by the owner only: it holds every unit's signing secrets."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out, ensure_ascii=False, indent=1)
    os.chmod(path, 0o600)


def load_units_file(session: Session, path: Path) -> tuple[int, int]:
    """Create or update units from a court's own reference file."""
    specs = units.load_specs(json.loads(path.read_text(encoding="utf-8")))
    return units.sync_units(session, specs)
