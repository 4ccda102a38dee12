"""Session hooks every committing process needs: the audit chain, indicator markers, and the
signals that wake live pages in every API process (which tables feed which channel)."""

from __future__ import annotations


def install() -> None:
    from zhixing.analytics import aggregates
    from zhixing.core import audit, signals

    audit.install_hooks()
    aggregates.install_hooks()
    signals.watch("board", "duty_board_events")
    signals.watch("calls", "video_call_signals")
    signals.watch("linkage", "linkage_tasks")
    signals.watch("cases", "case_events")
    # Not field_positions_latest / field_position_track: see core.signals on busy tables.
    signals.watch("field", "field_dispatches", "field_incidents", "field_tips",
                  "field_resources")
    signals.install_hooks()  # last: it sees what the hooks above add at commit
