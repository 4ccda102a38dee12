"""The unit simulator: every linked unit (bank, registry) of a configuration, simulated.

Each unit runs in its own process and speaks linkage protocol v1 to a running platform through
the unit-side SDK (:mod:`zhixing.linkage.client`), exactly as a real bank's integration would:
pull mode (fetch, store, acknowledge, answer) or push mode (an HTTP endpoint at the unit's
``push_url`` that verifies pushes and answers a signed 202). It exists so the platform's demo
and end-to-end tests have counterparts that behave like real units, faults included.

- :mod:`.config`: the JSON configuration the platform writes (:class:`SimulatorConfig`).
- :mod:`.holdings`: what a unit holds about a subject, derived deterministically from (unit
  code, identity number, kind), so repeated queries agree without any stored data.
- :mod:`.ledger` and :mod:`.bank`: each unit's SQLite ledger (tasks, answers, outbox, accounts,
  freezes, deductions, credits, events) and the rules that apply control orders in it, exactly
  once; read functions (:meth:`Ledger.applied_orders`, :meth:`Ledger.totals`, ...) let tests
  prove nothing was frozen or deducted twice.
- :mod:`.faults`: latency, timeouts, failures, malformed and duplicate posts.
- :mod:`.unit`: one unit's loop and push server; :mod:`.runner`: one process per unit,
  supervised, and :func:`credit` for money arriving under a standing freeze.

``zhixing simulate-units`` and ``zhixing simulate-credit`` are the commands; section 13 of
``docs/linkage-protocol.md`` describes the options and the ledger.
"""

from zhixing.linkage.simulator.config import SimulatorConfig, UnitConfig, load_config
from zhixing.linkage.simulator.faults import SimulatorOptions
from zhixing.linkage.simulator.ledger import CreditOutcome, Ledger, LedgerError, ledger_path
from zhixing.linkage.simulator.runner import credit, run_all
from zhixing.linkage.simulator.unit import UnitSimulator

__all__ = ["CreditOutcome", "Ledger", "LedgerError", "SimulatorConfig", "SimulatorOptions",
           "UnitConfig", "UnitSimulator", "credit", "ledger_path", "load_config", "run_all"]
