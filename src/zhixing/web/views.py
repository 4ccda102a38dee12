"""Console shell: login, logout, language switch, the home page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select

from zhixing.core.errors import RateLimited, Unauthenticated
from zhixing.core.security import constant_time_equal, new_token
from zhixing.core.settings import get_settings
from zhixing.courts import identity
from zhixing.courts.models import Court, User
from zhixing.courts.service import chain_of_command
from zhixing.web import i18n
from zhixing.web.deps import SESSION_COOKIE, ConsoleUser, DbSession, client_ip
from zhixing.web.templating import render

router = APIRouter(include_in_schema=False)

LOGIN_CSRF_COOKIE = "zx_login_csrf"


def _safe_next(target: str | None) -> str:
    # Only same-site paths: never an open redirect.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _login_page(request: Request, error: str | None = None, status: int = 200,
                next_url: str = "/") -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_token(24)
    response = render(request, "login.html", {"csrf_token": token, "error": error,
                                              "next": next_url}, status_code=status)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=get_settings().cookies_secure, path="/login")
    return response


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return _login_page(request, next_url=_safe_next(next))


@router.post("/login")
def login(
    request: Request,
    db: DbSession,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    csrf_token: Annotated[str, Form(max_length=64)] = "",
    next: Annotated[str, Form(max_length=512)] = "/",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not constant_time_equal(expected, csrf_token):
        return _login_page(request, i18n.gettext("Your form expired. Please try again."), 403)
    try:
        user = identity.authenticate(db, username, password, client_ip(request))
    except Unauthenticated:
        db.commit()  # keep the failure count
        return _login_page(request, i18n.gettext("Wrong username or password."), 401,
                           _safe_next(next))
    except RateLimited:
        return _login_page(request, i18n.gettext(
            "Too many failed logins. Please wait and try again."), 429, _safe_next(next))
    token, _ws = identity.start_web_session(db, user, client_ip(request))
    response = RedirectResponse(_safe_next(next), status_code=303)
    settings = get_settings()
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax",
                        secure=settings.cookies_secure,
                        max_age=settings.session_absolute_hours * 3600)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, actor: ConsoleUser, db: DbSession) -> Response:
    ws = getattr(request.state, "web_session", None)
    if ws is not None:
        identity.end_web_session(db, ws, actor)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/favicon.ico")
def favicon() -> Response:
    return RedirectResponse("/static/favicon.svg", status_code=301)


@router.get("/lang/{code}")
def switch_language(code: str, request: Request) -> Response:
    locale = i18n.normalize(code) or i18n.DEFAULT_LOCALE
    response = RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    response.set_cookie(i18n.LANG_COOKIE, locale, samesite="lax", max_age=365 * 86400,
                        secure=get_settings().cookies_secure)
    return response


@router.get("/")
def home(request: Request, actor: ConsoleUser, db: DbSession) -> Response:
    user = db.get(User, actor.user_id)
    assert user is not None
    chain = chain_of_command(db, user.court)
    subordinates = db.scalar(
        select(func.count()).select_from(Court).where(Court.path.startswith(user.court.path))
    ) or 1
    users_in_reach = db.scalar(
        select(func.count()).select_from(User).where(User.court_id.in_(actor.visible_court_ids))
    )
    return render(request, "home.html", {
        "user": user, "actor": actor, "chain": chain, "court_count": subordinates - 1,
        "users_in_reach": users_in_reach,
    })
