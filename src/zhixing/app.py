"""The ASGI application: API, console, static assets, and the embedded worker."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from zhixing import __version__, hooks
from zhixing.analytics import api as analytics_api
from zhixing.analytics import views as analytics_views
from zhixing.cases import api as cases_api
from zhixing.cases import views as cases_views
from zhixing.command import api as command_api
from zhixing.command import call_api as command_call_api
from zhixing.command import call_views as command_call_views
from zhixing.command import views as command_views
from zhixing.core import logging as zlogging
from zhixing.core.db import get_engine
from zhixing.core.jobs import Worker
from zhixing.core.settings import get_settings
from zhixing.core.signals import SIGNALS
from zhixing.courts import api as courts_api
from zhixing.courts import views as courts_views
from zhixing.credit import api as credit_api
from zhixing.credit import follower as credit_follower
from zhixing.credit import partner_api as credit_partner_api
from zhixing.credit import public_api as credit_public_api
from zhixing.credit import public_views as credit_public_views
from zhixing.credit import views as credit_views
from zhixing.field import api as field_api
from zhixing.field import public_views as field_public_views
from zhixing.field import views as field_views
from zhixing.linkage import api as linkage_api
from zhixing.linkage import server as linkage_server
from zhixing.linkage import views as linkage_views
from zhixing.web import errors, ops, views
from zhixing.web.deps import LoginRequired
from zhixing.web.middleware import (
    BodyLimitMiddleware,
    LocaleMiddleware,
    RequestContextMiddleware,
)
from zhixing.worker import start_embedded

log = logging.getLogger(__name__)

# POST routes whose bodies are files; they get ZHIXING_MAX_UPLOAD_BYTES instead of the JSON limit.
UPLOAD_SUFFIXES = ("/documents",)


def _operation_id(route: APIRoute) -> str:
    # Stable ids ("users-list_users"): partners generate clients from our OpenAPI.
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}-{route.name}"


def create_app(*, start_worker: bool | None = None) -> FastAPI:
    settings = get_settings()
    run_worker = settings.embedded_worker if start_worker is None else start_worker

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        worker: Worker | None = start_embedded() if run_worker else None
        # Commits in any process wake this process's live pages and long polls (PostgreSQL).
        hooks.install()  # the channels to listen on are declared there
        SIGNALS.start(get_engine().url.render_as_string(hide_password=False))
        # The screening indexes load and follow the list's feed in the background; tests drive
        # them request by request instead (each request catches up on its own).
        follow = settings.env != "test"
        if follow:
            credit_follower.start_follower()
        yield
        if follow:
            credit_follower.get_indexes().stop()
        await SIGNALS.stop()
        if worker is not None:
            worker.stop()

    app = FastAPI(
        title="Zhixing (执行) API",
        version=__version__,
        description="Judgment-enforcement command platform. Errors always have the shape "
        '`{"error": {"code": "...", "message": "..."}}`.',
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        generate_unique_id_function=_operation_id,
        lifespan=lifespan,
    )
    errors.install(app)

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, _exc: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    app.add_middleware(LocaleMiddleware, default=settings.locale)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes,
                       upload_bytes=settings.max_upload_bytes, upload_paths=UPLOAD_SUFFIXES)
    app.add_middleware(RequestContextMiddleware)

    static_dir = resources.files("zhixing") / "web" / "static"
    app.mount("/static", StaticFiles(directory=str(static_dir)), name="static")
    # The machine clients' routes are the hottest (screening, the linkage protocol): routes
    # are matched in order, and each route tried costs some microseconds.
    app.include_router(credit_partner_api.router)
    app.include_router(linkage_server.router)
    app.include_router(ops.router)
    app.include_router(courts_api.router)
    app.include_router(cases_api.router)
    app.include_router(cases_api.public_router)
    app.include_router(credit_api.router)
    app.include_router(credit_public_api.public_router)
    app.include_router(analytics_api.router)
    app.include_router(linkage_api.router)
    linkage_server.install_openapi(app)
    app.include_router(credit_partner_api.admin_router)
    app.include_router(views.router)
    app.include_router(courts_views.router)
    app.include_router(cases_views.router)
    app.include_router(credit_public_views.router)
    app.include_router(credit_views.router)
    app.include_router(analytics_views.router)
    app.include_router(linkage_views.router)
    app.include_router(command_api.router)
    app.include_router(command_call_api.router)
    app.include_router(command_views.router)
    app.include_router(command_call_views.router)
    app.include_router(field_api.router)
    app.include_router(field_api.public_router)
    app.include_router(field_views.router)
    app.include_router(field_public_views.router)
    return app


def build() -> FastAPI:
    """Uvicorn factory entry point (``zhixing.app:build``)."""
    zlogging.configure(get_settings().log_json)
    return create_app()
