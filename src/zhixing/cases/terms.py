"""Case vocabulary shown in the console, marked for translation (see web/terms.py)."""

from __future__ import annotations

from zhixing.web.terms import N_

STATES = (N_("filed"), N_("notice_served"), N_("investigating"), N_("controlling"),
          N_("disposing"), N_("disbursing"), N_("suspended"), N_("concluded"), N_("open"))
CONCLUSIONS = (N_("performed"), N_("closed_for_now"), N_("terminated"), N_("not_enforced"),
               N_("rejected"), N_("closed_after_transfer"))
FACTS = (N_("officer_assigned"), N_("execution_notice"), N_("property_report_order"),
         N_("asset_search_started"), N_("network_query_done"), N_("consumption_restriction"),
         N_("dishonest_listing_decided"), N_("debtor_search"), N_("debtor_located"),
         N_("applicant_interview"), N_("panel_review"), N_("audit_started"),
         N_("valuation_started"), N_("auction_started"))
DEADLINES = (N_("asset_search"), N_("period"))
DEADLINE_STATUS = (N_("done"), N_("done_late"), N_("overdue"), N_("due_soon"))
MISSING = (N_("three_months_since_filing"), N_("applicant_interview_or_panel_review"))
ASSETS = (N_("deposit"), N_("real_estate"), N_("vehicle"), N_("equity"), N_("securities"),
          N_("other"), N_("none"), N_("frozen"), N_("sealed"), N_("seized"), N_("released"),
          N_("disposed"), N_("network_query"), N_("tip"), N_("manual"), N_("recovered"),
          N_("disbursed"), N_("applicant"), N_("debtor"), N_("person"), N_("organisation"))
GROUNDS = (N_("applicant_withdrew"), N_("title_revoked"), N_("debtor_died_no_estate"),
           N_("maintenance_creditor_died"), N_("debtor_destitute"), N_("applicant_agreed"),
           N_("third_party_objection"), N_("party_died_awaiting_heir"),
           N_("organisation_dissolved_awaiting_successor"), N_("retrial"), N_("bankruptcy"),
           N_("settlement"), N_("audit"), N_("valuation"), N_("auction"))
EVENTS = (N_("registered"), N_("transition"), N_("fact"), N_("note"), N_("document"),
          N_("asset"), N_("control"), N_("money"), N_("extension"), N_("pause"),
          N_("pause_end"), N_("assigned"), N_("resumed"), N_("requery_due"),
          N_("control_expiring"))
CONTROLS = (N_("freeze"), N_("seal"), N_("seize"), N_("renew"), N_("release"))
RESPONSIBLE = (N_("legal_representative"), N_("principal"), N_("directly_responsible"),
               N_("actual_controller"))
