"""Field vocabulary shown in the console, marked for translation (see web/terms.py)."""

from __future__ import annotations

from zhixing.web.terms import N_

DISPATCH_STATES = (N_("dispatched"), N_("en_route"), N_("on_scene"), N_("done"),
                   N_("cancelled"))
MOVES = (N_("move_en_route"), N_("move_on_scene"), N_("move_done"))
TIP_STATES = (N_("tip_received"), N_("tip_triaged"), N_("tip_checked"), N_("tip_merged"))
INCIDENT_STATES = (N_("incident_open"), N_("incident_acknowledged"), N_("incident_resolved"))
LAYERS = (N_("Command centers"), N_("Resources"), N_("Dispatches"), N_("Tips"),
          N_("Incidents"))
NAV = (N_("Field app"), N_("Command map"), N_("Tip desk"), N_("Dispatch desk"))
RELATIONS = (N_("Not stated"), N_("The applicant"), N_("The applicant's agent"),
             N_("Someone else"))

# The desks (views.py): labels by stored value.
TIP_STATUS = {"received": N_("tip_received"), "triaged": N_("tip_triaged"),
              "checked": N_("tip_checked"), "merged": N_("tip_merged"), "open": N_("tip_open")}
DISPATCH_STATUS = {"dispatched": N_("dispatched"), "en_route": N_("en_route"),
                   "on_scene": N_("on_scene"), "done": N_("done"), "cancelled": N_("cancelled"),
                   "active": N_("dispatch_active")}
MOVE = {"en_route": N_("move_en_route"), "on_scene": N_("move_on_scene"),
        "done": N_("move_done"), "cancelled": N_("Cancel the dispatch")}
CHANNEL = {"web": N_("channel_web"), "phone": N_("channel_phone"), "field": N_("channel_field")}
OUTCOME = {"confirmed": N_("outcome_confirmed"), "partly": N_("outcome_partly"),
           "unfounded": N_("outcome_unfounded")}
RELATION = {"unknown": N_("Not stated"), "applicant": N_("The applicant"),
            "applicant_agent": N_("The applicant's agent"), "other": N_("Someone else")}
URGENCY = {"urgent": N_("urgency_urgent"), "normal": N_("urgency_normal")}
BY = {"desk": N_("by the duty desk"), "team": N_("by the team")}
HISTORY = {
    "tip.submitted": N_("Received from the public form"),
    "tip.taken": N_("Taken by the desk"),
    "tip.triaged": N_("Triaged"),
    "tip.merged": N_("Merged as a duplicate"),
    "tip.checked": N_("Checked, outcome recorded"),
    "tip.answered": N_("Answered the tipster"),
    "tip.information_added": N_("The tipster added information"),
    "dispatch.created": N_("Dispatched"),
    "dispatch.moved": N_("Status changed"),
}
