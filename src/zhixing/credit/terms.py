"""Credit-discipline vocabulary shown in the console, marked for translation (web/terms.py)."""

from __future__ import annotations

from zhixing.web.terms import N_

GROUNDS = (
    N_("Able to perform but refuses"),
    N_("Obstructs with forged evidence, violence or threats"),
    N_("Evades by false litigation or arbitration, or hides or transfers property"),
    N_("Violates the property-report duty"),
    N_("Violates a consumption restriction"),
    N_("Refuses without good reason to honour a settlement agreement"),
)
LISTING_STATUS = (N_("listing_proposed"), N_("listing_refused"), N_("listing_active"),
                  N_("listing_deleted"), N_("listing_revoked"))
ORIGINS = (N_("origin_officer"), N_("origin_applicant"))
DELETION = (N_("full_performance"), N_("settlement_performed"), N_("applicant_request"),
            N_("nothing_found_after_closure"), N_("suspended_retrial"),
            N_("suspended_bankruptcy"), N_("not_enforced"), N_("terminated"),
            N_("period_ended"), N_("active_performance"))
LIFT = (N_("security"), N_("applicant_consent"), N_("full_performance"), N_("listing_ended"),
        N_("wrong"))
RESTRICTION = (N_("restriction_consumption"), N_("restriction_exit"), N_("active"),
               N_("lifted"))
ROLES = (N_("debtor"), N_("legal_representative"), N_("principal"),
         N_("directly_responsible"), N_("actual_controller"))
CATEGORIES = (N_("luxury_transport"), N_("luxury_venues"), N_("property"),
              N_("premium_rental"), N_("vehicles"), N_("travel"), N_("schooling"),
              N_("insurance"), N_("trains"))
