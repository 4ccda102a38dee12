"""Every error answered in one shape, and documented in the OpenAPI."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from zhixing.core.errors import DomainError, RateLimited, ValidationFailed

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    details: dict[str, Any] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


def form_error(exc: Exception) -> DomainError:
    """What a console form shows for a refusal: the domain's own error, or the first problem of
    a pydantic validation, named by its field."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ()))
        return ValidationFailed(f"{field}: {first.get('msg')}", field=field)
    assert isinstance(exc, DomainError)
    return exc


def _doc(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _doc("Malformed request"),
    401: _doc("Not authenticated, or wrong credentials"),
    403: _doc("Authenticated, but the role may not do this"),
    404: _doc("No such record within your reach"),
    409: _doc("Conflicts with the current state"),
    413: _doc("Request body too large"),
    422: _doc("Invalid input; `field` names the first bad field"),
    429: _doc("Too many requests; see Retry-After"),
}

_STATUS_CODES = {
    400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "body_too_large",
    415: "unsupported_media_type", 422: "validation_failed", 429: "rate_limited",
}


def error_response(status: int, code: str, message: str, *, field: str | None = None,
                   details: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _loc_to_field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts)


def wants_html(request: Request) -> bool:
    """Console pages get an error page; the API and scripts get the JSON shape."""
    return (not request.url.path.startswith("/api/")
            and "text/html" in request.headers.get("accept", ""))


def _html_error(request: Request, status: int, code: str, message: str) -> Response:
    from zhixing.web.templating import render

    actor = getattr(request.state, "actor", None)
    return render(request, "error.html", {"status": status, "code": code, "message": message,
                                          "actor": actor}, status_code=status)


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        if wants_html(request):
            return _html_error(request, exc.status_code, exc.code, exc.message)
        return error_response(exc.status_code, exc.code, exc.message, field=exc.field,
                              details=exc.details or None, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
        field = _loc_to_field(tuple(first.get("loc", ())))
        kind = str(first.get("type", ""))
        if kind == "json_invalid":
            return error_response(400, "malformed_json", "request body is not valid JSON")
        if kind == "extra_forbidden":
            code, msg = "unknown_field", f"unknown field: {field}"
        elif kind == "missing":
            code, msg = "required", f"{field} is required"
        else:
            code, msg = "validation_failed", f"{field}: {first.get('msg', 'invalid')}"
        if wants_html(request):  # a console address typed or edited by hand: a page
            return _html_error(request, 422, code, msg)
        simplified = [{"field": _loc_to_field(tuple(e.get("loc", ()))), "type": e.get("type"),
                       "message": e.get("msg")} for e in errors[:20]]
        return error_response(422, code, msg, field=field or None,
                              details={"errors": simplified})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if wants_html(request):
            return _html_error(request, exc.status_code, code, message)
        return error_response(exc.status_code, code, message,
                              headers=getattr(exc, "headers", None))

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(PoolTimeoutError)
    async def database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
        # The database restarting, a dropped connection, a lock not granted in time, every
        # pooled connection busy past the pool's timeout: the request changed nothing (its
        # transaction is gone) and may simply be sent again.
        log.warning("database unavailable: %s", exc)
        return error_response(503, "database_unavailable",
                              "the database is not reachable just now; try again shortly",
                              headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "internal_error", "internal error; it has been logged")
