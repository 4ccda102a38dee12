"""Command-center vocabulary shown in the console, marked for translation (web/terms.py)."""

from __future__ import annotations

from zhixing.web.terms import N_

KINDS = {"freeze": N_("kind_freeze"), "seal": N_("kind_seal"),
         "seize_vehicle": N_("kind_seize_vehicle"), "find_person": N_("kind_find_person"),
         "serve_document": N_("kind_serve_document"), "verify_lead": N_("kind_verify_lead"),
         "other": N_("kind_other")}
URGENCY = {"urgent": N_("urgency_urgent"), "normal": N_("urgency_normal")}
STATUS = {"open": N_("request_open"), "done": N_("request_done"),
          "failed": N_("request_failed"), "withdrawn": N_("request_withdrawn")}
ANSWER = {"pending": N_("answer_pending"), "nothing": N_("answer_nothing"),
          "items": N_("answer_items")}
DUTY_ROLES = {"leader": N_("duty_role_leader"), "officer": N_("duty_role_officer"),
              "standby": N_("duty_role_standby")}
ESCALATION = {"not_acknowledged": N_("escalation_not_acknowledged"),
              "not_done": N_("escalation_not_done")}
CLOCK = {"acknowledge": N_("clock_acknowledge"), "act": N_("clock_act")}
NAV = N_("Command center")
CALL_STATES = {"ringing": N_("Ringing"), "connected": N_("Connected"),
               "ended": N_("Call ended"), "declined": N_("Call declined"),
               "missed": N_("Call missed"), "failed": N_("Call failed")}
CALL_RELATIONS = {"parent": N_("parent center"), "child": N_("center below"),
                  "peer": N_("peer center")}
CALL_SIDES = {"caller": N_("the caller"), "callee": N_("the called desk"),
              "platform": N_("the platform (nobody answered)")}
