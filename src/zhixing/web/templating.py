"""Jinja2 for console pages: autoescaped, translated through the request's locale."""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape

from zhixing.core.clock import to_local
from zhixing.web import i18n, nav

DOMAINS_WITH_TEMPLATES = ("web", "courts", "cases", "analytics", "linkage", "credit", "command",
                          "field")


def _template_dirs() -> list[str]:
    root = resources.files("zhixing")
    return [str(root / d / "templates") for d in DOMAINS_WITH_TEMPLATES]


def _local_time(value: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A moment in China time; also an RFC 3339 text as stored in a JSON message."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        return to_local(moment).strftime(fmt)
    return "" if value is None else to_local(value).strftime(fmt)


def _yuan(fen: int | None) -> str:
    """Money is kept in fen; shown in yuan with two decimals and thousands separators."""
    if fen is None:
        return ""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}{yuan:,}.{cents:02d}"


def _make_env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_template_dirs()),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        i18n.gettext, i18n.ngettext, newstyle=True
    )
    env.filters["localtime"] = _local_time
    env.filters["yuan"] = _yuan
    env.tests["startswith"] = lambda value, prefix: str(value).startswith(prefix)
    return env


templates = Jinja2Templates(env=_make_env())


def render(request: Request, name: str, context: dict[str, Any] | None = None,
           status_code: int = 200) -> HTMLResponse:
    ctx: dict[str, Any] = {"locale": i18n.current_locale.get(), "locales": i18n.LOCALES}
    ctx.update(context or {})
    actor = ctx.get("actor")
    if actor is not None:
        ctx.setdefault("nav", nav.for_actor(actor))
        ctx.setdefault("csrf_token", getattr(request.state, "csrf_token", ""))
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)
