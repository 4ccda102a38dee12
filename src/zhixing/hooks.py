"""Session hooks every committing process needs: the audit chain, indicator markers."""

from __future__ import annotations


def install() -> None:
    from zhixing.analytics import aggregates
    from zhixing.core import audit

    audit.install_hooks()
    aggregates.install_hooks()
