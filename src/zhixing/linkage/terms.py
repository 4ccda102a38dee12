"""Network query and control words the console shows for values that come from data (statuses,
kinds, modes), as English labels marked for translation (see web/terms.py).

The data values themselves (``answered``, ``deposits``…) are not used as message ids: some of
them already mean something else elsewhere in the console (a survey is "answered" too).
"""

from __future__ import annotations

from zhixing.web.terms import N_

TASK_STATUS = {
    "queued": N_("Queued"), "delivered": N_("Delivered"), "acknowledged": N_("Acknowledged"),
    "answered": N_("Answered"), "refused": N_("Refused"), "failed": N_("Failed"),
    "expired": N_("Expired"), "cancelled": N_("Cancelled"),
}
ORDER_STATUS = {
    "awaiting_approval": N_("Awaiting approval"), "declined": N_("Declined"),
    "waiting": N_("Waiting for the order before it"), "sent": N_("Sent to the unit"),
    "applied": N_("Applied"), "partial": N_("Partly applied"), "refused": N_("Refused"),
    "failed": N_("Failed"), "expired": N_("Expired"), "cancelled": N_("Cancelled"),
}
QUERY_KIND = {
    "deposits": N_("Deposits"), "real_estate": N_("Real estate"), "vehicles": N_("Vehicles"),
    "business_registration": N_("Business registration"), "securities": N_("Securities"),
    "household_registration": N_("Household registration"),
    "marriage_registration": N_("Marriage registration"), "lodging": N_("Hotel stays"),
}
ORDER_KIND = {
    "freeze": N_("Freeze"), "seal": N_("Seal"), "renew_freeze": N_("Renew"),
    "release": N_("Release"), "deduct": N_("Deduct"),
}
ORIGIN = {
    "officer": N_("Officer's request"), "requery": N_("Scheduled re-query"),
    "watch": N_("Account watch"),
}
UNIT_TYPE = {"bank": N_("Bank"), "department": N_("Department")}
DELIVERY_MODE = {"pull": N_("Pull (the unit fetches)"), "push": N_("Push (to the unit)")}
ACCOUNT_TYPE = {
    "demand": N_("demand deposit"), "time": N_("time deposit"),
    "wealth_product": N_("wealth product"), "other": N_("other account"),
}
BUSINESS_ROLE = {
    "shareholder": N_("Shareholder"), "legal_representative": N_("Legal representative"),
    "director": N_("Director"), "supervisor": N_("Supervisor"), "manager": N_("Manager"),
    "other": N_("Other role"),
}
MARRIAGE_STATUS = {
    "unmarried": N_("Unmarried"), "married": N_("Married"), "divorced": N_("Divorced"),
    "widowed": N_("Widowed"),
}
# Kinds of case-timeline events the network writes (the timeline translates e.kind).
EVENTS = (N_("inquiry"), N_("inquiry_result"), N_("order"), N_("order_decision"),
          N_("order_applied"), N_("order_refused"), N_("funds_arrived"), N_("over_recovery"))
