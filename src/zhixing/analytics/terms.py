"""Indicator names shown in the console, marked for translation (see web/terms.py)."""

from __future__ import annotations

from zhixing.web.terms import N_

INDICATORS = (
    N_("received"), N_("concluded"), N_("pending_at_end"), N_("overdue_open"),
    N_("closed_for_now"), N_("applied_fen_received"), N_("recovered_fen"), N_("disbursed_fen"),
    N_("conclusion_rate"), N_("property_cases_in_time_rate"), N_("actual_enforcement_rate"),
    N_("recovery_rate"), N_("closed_for_now_compliance_rate"), N_("average_days_to_conclude"),
    N_("median_days_to_conclude"), N_("satisfaction_rate"),
)
