"""Background jobs of the cases domain: re-query reminders after 终本, control expiry alerts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.cases import statutory
from zhixing.cases.ledger import UNDER_CONTROL
from zhixing.cases.models import Asset, Case, CaseEvent
from zhixing.cases.service import event, today
from zhixing.core import jobs


@jobs.handler("cases.requery_due")
def requery_due(session: Session, payload: dict[str, Any]) -> None:
    """Every 6 months for 5 years after 终本 the debtor's assets are looked at again: a network
    inquiry to every unit, on the court's behalf. Where none can be sent (no unit linked, a
    debtor without an identity number) the reminder stays on the case's timeline, where the
    officer's work queue shows it."""
    from zhixing.linkage import inquiries  # the linkage domain builds on cases, not vice versa

    case = session.get(Case, int(payload["case_id"]))
    if case is None:
        return
    sent = inquiries.requery(session, case, int(payload["round"]))
    event(session, case, None, "requery_due", f"终本后第 {payload['round']} 次财产复查到期"
          + (f"，已自动发起网络查控 ({sent.task_count} 项)" if sent else ""),
          round=payload["round"], inquiry_id=sent.id if sent else None)


@jobs.handler("cases.control_expiry_alerts")
def control_expiry_alerts(session: Session, _payload: dict[str, Any]) -> None:
    """Once per control and expiry date: a timeline alert when a freeze, seal or seizure will
    lapse within the warning period, so it is renewed in time."""
    horizon = today() + timedelta(days=statutory.RULES.freeze_warn_days)
    rows = session.scalars(select(Asset).where(Asset.control_state.in_(UNDER_CONTROL),
                                               Asset.control_expires_on <= horizon,
                                               Asset.control_expires_on >= today()))
    for asset in rows:
        key = f"{asset.id}:{asset.control_expires_on}"
        already = session.scalar(select(CaseEvent.id).where(
            CaseEvent.case_id == asset.case_id, CaseEvent.kind == "control_expiring",
            CaseEvent.summary.contains(key)))
        if already is not None:
            continue
        case = session.get(Case, asset.case_id)
        assert case is not None
        event(session, case, None, "control_expiring",
              f"控制即将到期 {asset.description} [{key}]", asset_id=asset.id,
              expires_on=asset.control_expires_on.isoformat() if asset.control_expires_on else None)


def schedule_recurring(session: Session) -> None:
    jobs.enqueue(session, "cases.control_expiry_alerts",
                 dedupe_key="recurring:cases.control_expiry_alerts", interval=timedelta(hours=6))
