"""Session hooks every committing process needs: the audit chain, indicator markers, and the
signals that wake live pages in every API process (which tables feed which channel)."""

from __future__ import annotations


def install() -> None:
    from zhixing.analytics import aggregates
    from zhixing.core import audit, signals

    aggregates.install_hooks()
    # Low-rate changes only (core/signals.py says why): new board events, call signals and
    # unit tasks; dispatches, incidents and tips; units and their keys. Not the answers to
    # tasks, not case events (every bank answer writes one), not positions or the resources
    # they update.
    insert = frozenset({"insert"})
    signals.watch("board", "duty_board_events", ops=insert)
    signals.watch("calls", "video_call_signals", ops=insert)
    signals.watch("linkage", "linkage_tasks", ops=insert)
    signals.watch("field", "field_dispatches", "field_incidents", "field_tips")
    # Machine credentials: every process's cache of them forgets at once.
    signals.watch("keys", "linkage_units", "linkage_keys")
    signals.watch("partner_keys", "api_keys", "credit_partners")
    signals.install_hooks()  # after the hooks above: it sees what they add at commit
    # Last of all: the audit records see everything the hooks above added.
    audit.install_hooks()
