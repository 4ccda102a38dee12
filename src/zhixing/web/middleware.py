"""ASGI middleware: request ids, access logs and metrics, body limits, security headers."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zhixing.core import metrics
from zhixing.core.logging import request_id_var
from zhixing.web import i18n

log = logging.getLogger("zhixing.access")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(self), microphone=(self), geolocation=(self)"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class RequestContextMiddleware:
    """Request id (echoed back), one JSON access-log line and Prometheus metrics per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                headers.extend(SECURITY_HEADERS)
                if scope["path"].startswith(("/api/", "/login", "/logout")):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            route_path = getattr(route, "path", "unmatched")
            metrics.HTTP_REQUESTS.labels(scope["method"], route_path, str(status)).inc()
            metrics.HTTP_LATENCY.labels(scope["method"], route_path).observe(elapsed)
            if route_path not in ("/healthz", "/metrics") and not route_path.startswith(
                "/static"
            ):
                log.info("request", extra={
                    "method": scope["method"], "path": scope["path"], "route": route_path,
                    "status": status, "ms": round(elapsed * 1000, 2),
                })
            request_id_var.reset(token)


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse request bodies over the limit with 413, declared length or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int, upload_bytes: int,
                 upload_paths: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Upload routes (documents, evidence) end with one of these suffixes.
        self.upload_bytes = upload_bytes
        self.upload_paths = upload_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_upload = scope["method"] == "POST" and scope["path"].endswith(self.upload_paths)
        limit = self.upload_bytes if self.upload_paths and is_upload else self.max_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                await _send_error(send, 400, "bad_request", "invalid Content-Length")
                return
            if too_big:
                await _send_error(send, 413, "body_too_large",
                                  f"request body over {limit} bytes")
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _send_error(send, 413, "body_too_large", f"request body over {limit} bytes")


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers: list[Any] = [(b"content-type", b"application/json"),
                          (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class LocaleMiddleware:
    """The console's language for this request: the ``zx_lang`` cookie, else the default.

    Plain ASGI rather than ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware wraps
    every request in an extra task and stream (about half a millisecond each), which showed on
    the partners' single-check screening path."""

    def __init__(self, app: ASGIApp, default: str) -> None:
        self.app = app
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chosen = None
        for name, value in scope["headers"]:
            if name == b"cookie":
                chosen = i18n.normalize(_cookie(value.decode("latin-1"), i18n.LANG_COOKIE))
                break
        token = i18n.current_locale.set(chosen or self.default)
        try:
            await self.app(scope, receive, send)
        finally:
            i18n.current_locale.reset(token)


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value.strip('"')
    return None
