"""Words the console shows that come from data (roles, levels, navigation), marked for Babel.

``N_`` marks a string for extraction without translating it; templates translate it at render.
"""

from __future__ import annotations


def N_(message: str) -> str:
    return message


ROLE_LABELS = (
    N_("officer"), N_("approver"), N_("duty_officer"), N_("duty_leader"), N_("bailiff"),
    N_("admin"), N_("auditor"),
)
COURT_LEVELS = (N_("high"), N_("intermediate"), N_("basic"))
NAV_LABELS = (N_("Workbench"), N_("My work"), N_("Cases"), N_("Register a case"),
              N_("Courts & command centers"), N_("Users"), N_("Audit trail"),
              N_("Indicators"), N_("Big screen"), N_("Network query & control"))
