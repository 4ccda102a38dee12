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
NAV = (N_("Field app"), N_("Command map"))
RELATIONS = (N_("Not stated"), N_("The applicant"), N_("The applicant's agent"),
             N_("Someone else"))
