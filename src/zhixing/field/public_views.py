"""The public tip form and the tipster's follow-up page: no login.

A public form that changes something needs CSRF protection without a session: a double-submit
token, as on the login form (a cookie scoped to /tips, SameSite=Strict, and the same value in a
hidden field). Every submission and every look-up counts against the client's budget before the
input is read; a wrong case number and a wrong query code get one answer, as do an unknown and
a malformed follow-up code.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy import select

from zhixing.core.actor import anonymous
from zhixing.core.errors import DomainError, RateLimited
from zhixing.core.security import constant_time_equal, new_token
from zhixing.core.settings import get_settings
from zhixing.courts.models import Court, CourtLevel
from zhixing.field import api
from zhixing.field import tips as tipsvc
from zhixing.field.models import TipsterRelation
from zhixing.web.deps import DbSession, client_ip
from zhixing.web.templating import render
from zhixing.web.terms import N_

router = APIRouter(include_in_schema=False)

CSRF_COOKIE = "zx_tip_csrf"
ERROR_TEXT = {
    "no_match": N_("No case matches this number and query code."),
    "no_match_code": N_("No tip matches this code."),
    "content_required": N_("Describe what you know."),
    "rate_limited": N_("Too many requests. Please wait a few minutes and try again."),
    "csrf_failed": N_("Your form expired. Please try again."),
}


def _page(request: Request, db: DbSession, template: str, context: dict[str, Any],
          status: int = 200) -> Response:
    token = request.cookies.get(CSRF_COOKIE) or new_token(24)
    cities = db.scalars(select(Court).where(Court.level.in_(
        (CourtLevel.HIGH, CourtLevel.INTERMEDIATE))).order_by(Court.code))
    response = render(request, template, {"csrf_token": token, "cities": list(cities),
                                          "rewards": api.public_reward_items(db),
                                          "error_text": ERROR_TEXT, **context},
                      status_code=status)
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=get_settings().cookies_secure, path="/tips")
    return response


def _csrf_ok(request: Request, sent: str) -> bool:
    expected = request.cookies.get(CSRF_COOKIE, "")
    return bool(expected) and constant_time_equal(expected, sent)


def _error(exc: DomainError) -> dict[str, str]:
    return {"code": exc.code, "message": exc.message}


@router.get("/tips/new")
def tip_form(request: Request, db: DbSession) -> Response:
    return _page(request, db, "field/tip_new.html", {"form": {}})


@router.post("/tips/new")
def tip_submit(request: Request, db: DbSession,
               content: Annotated[str, Form(max_length=4000)] = "",
               place: Annotated[str, Form(max_length=255)] = "",
               court_code: Annotated[str, Form(max_length=16)] = "",
               case_number: Annotated[str, Form(max_length=48)] = "",
               query_code: Annotated[str, Form(max_length=32)] = "",
               tipster_name: Annotated[str, Form(max_length=64)] = "",
               tipster_phone: Annotated[str, Form(max_length=32)] = "",
               relation: Annotated[str, Form(max_length=16)] = "unknown",
               csrf_token: Annotated[str, Form(max_length=64)] = "") -> Response:
    form = {"content": content, "place": place, "court_code": court_code,
            "case_number": case_number, "tipster_name": tipster_name,
            "tipster_phone": tipster_phone, "relation": relation}
    template = "field/tip_new.html"
    if not _csrf_ok(request, csrf_token):
        return _page(request, db, template, {"form": form, "error": {"code": "csrf_failed"}},
                     403)
    try:
        api.count_public(db, request)
    except RateLimited as exc:
        response = _page(request, db, template, {"form": form, "error": _error(exc)}, 429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    try:
        rel = TipsterRelation(relation) if relation in TipsterRelation.__members__.values() \
            else TipsterRelation.UNKNOWN
        tip, code = tipsvc.submit_public(db, anonymous(client_ip(request)), tipsvc.TipIn(
            content=content, place=place or None, court_code=court_code or None,
            case_number=case_number or None, query_code=query_code or None,
            tipster_name=tipster_name or None, tipster_phone=tipster_phone or None,
            relation=rel))
    except DomainError as exc:
        db.rollback()
        return _page(request, db, template, {"form": form, "error": _error(exc)},
                     exc.status_code)
    return _page(request, db, "field/tip_done.html", {
        "code": tipsvc.format_code(code), "due_at": tip.due_at}, 201)


@router.get("/tips/follow")
def follow_form(request: Request, db: DbSession) -> Response:
    return _page(request, db, "field/tip_follow.html", {})


@router.post("/tips/follow")
def follow(request: Request, db: DbSession,
           code: Annotated[str, Form(max_length=32)] = "",
           text: Annotated[str, Form(max_length=4000)] = "",
           csrf_token: Annotated[str, Form(max_length=64)] = "") -> Response:
    """The status of a tip and the court's answer; with ``text``, more information first."""
    template = "field/tip_follow.html"
    if not _csrf_ok(request, csrf_token):
        return _page(request, db, template, {"error": {"code": "csrf_failed"}}, 403)
    try:
        api.count_public(db, request)
    except RateLimited as exc:
        response = _page(request, db, template, {"error": _error(exc)}, 429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    try:
        tip = tipsvc.by_code(db, code)
        if text.strip():
            tipsvc.add_information(db, anonymous(client_ip(request)), tip, text)
        status = api.public_status(db, tip)
    except DomainError as exc:
        db.rollback()
        err = _error(exc)
        if exc.code == "no_match":
            err["code"] = "no_match_code"
        return _page(request, db, template, {"error": err, "code": code}, exc.status_code)
    return _page(request, db, template, {"status": status, "code": code,
                                         "added": bool(text.strip())})
