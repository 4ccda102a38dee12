"""The platform's side of linkage protocol v1: the four calls a unit makes.

Bodies are read raw, because the signature covers the exact bytes; the request is
authenticated (ZX1-HMAC-SHA256, ±5 minutes, nonce once) before anything is parsed, and every
answer to an authenticated request is signed with the unit's platform key, bound to the
request's nonce (docs/linkage-protocol.md, section 2).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response
from sqlalchemy import Table, bindparam, text
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.core.db import transaction
from zhixing.core.errors import DomainError
from zhixing.linkage import delivery, intake, keys, signing, wire
from zhixing.linkage.models import SeenNonce
from zhixing.linkage.waiting import WATCH

log = logging.getLogger(__name__)
PREFIX = "/api/v1/linkage"


def _wire_doc(model: type[Any], description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {
                "$ref": f"#/components/schemas/{model.__name__}"}}}}


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _wire_doc(wire.ErrorBody, "Signature refused (section 2.7); unsigned"),
    403: _wire_doc(wire.ErrorBody, "The unit is switched off"),
    404: _wire_doc(wire.ErrorBody, "No such endpoint"),
    413: _wire_doc(wire.ErrorBody, "Body over 4 MiB"),
    422: _wire_doc(wire.ErrorBody, "Invalid envelope"),
}
_SIGNED_HEADERS = ("X-Zhixing-Key, X-Zhixing-Timestamp, X-Zhixing-Nonce, "
                   "X-Zhixing-Content-SHA256 and X-Zhixing-Signature (ZX1-HMAC-SHA256)")

router = APIRouter(prefix=PREFIX, tags=["linkage"], responses=_ERRORS)


async def raw_body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > wire.MAX_BODY_BYTES:
        raise wire.WireError("payload_too_large", "a body has at most 4 MiB", status_code=413)
    return body


RawBody = Annotated[bytes, Depends(raw_body)]


@dataclass(frozen=True)
class Caller:
    """An authenticated unit, and how to sign the answer to its request."""

    unit_id: int
    unit_code: str
    enabled: bool
    method: str
    target: str
    key_id: str
    nonce: str
    nonce_kept_until: datetime
    platform_key_id: str
    platform_secret: bytes

    @property
    def actor(self) -> Actor:
        return Actor(kind="machine", id=f"unit:{self.unit_id}", name=self.unit_code,
                     scopes=frozenset({"linkage"}))

    def answer(self, status: int, body: bytes) -> Response:
        headers = signing.sign_response(status, body, self.platform_key_id,
                                        self.platform_secret, request_method=self.method,
                                        request_path=self.target, request_nonce=self.nonce,
                                        now=utcnow())
        return Response(body, status_code=status, headers=headers,
                        media_type="application/json")

    def error(self, status: int, code: str, message: str) -> Response:
        body = wire.ErrorBody(error=wire.ErrorDetail(code=code, message=message[:2000]))
        return self.answer(status, body.model_dump_json(exclude_none=True).encode())


_NONCES = cast(Table, SeenNonce.__table__)
# Plain SQL that both databases speak: SQLAlchemy cannot cache the compiled form of its
# PostgreSQL INSERT ... ON CONFLICT, and compiling it on every call was a third of an
# acknowledgement's CPU. RETURNING, not rowcount: psycopg reports -1 rows for ON CONFLICT.
_SPEND_NONCE = text(
    "INSERT INTO linkage_nonces (key_id, nonce, keep_until) "
    "VALUES (:key_id, :nonce, :keep_until) ON CONFLICT DO NOTHING RETURNING nonce",
).bindparams(bindparam("keep_until", type_=_NONCES.c.keep_until.type))


def _nonce_store(session: Session) -> Callable[[str, str, datetime], bool]:
    def seen(key_id: str, nonce: str, keep_until: datetime) -> bool:
        inserted = session.execute(_SPEND_NONCE, {"key_id": key_id, "nonce": nonce,
                                                  "keep_until": keep_until})
        return inserted.first() is None

    return seen


def _target(request: Request) -> str:
    raw = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string") or b""
    target = raw.decode("latin-1")
    return target + ("?" + query.decode("latin-1") if query else "")


class Unauthenticated(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def verify(session: Session, request: Request, body: bytes) -> Caller:
    """Check the signature and spend the nonce in ``session`` (the unit's keys come from the
    process's one-second cache, see :func:`keys.caller_keys`)."""
    target = _target(request)
    found: dict[str, keys.CallerKeys] = {}
    now = utcnow()

    def lookup(key_id: str) -> tuple[bytes, ...] | None:
        creds = keys.caller_keys(session, key_id)
        if creds is None:
            return None
        found[key_id] = creds
        return creds.secrets(now)

    spent: list[datetime] = []
    store = _nonce_store(session)

    def seen(key_id: str, nonce: str, keep_until: datetime) -> bool:
        spent.append(keep_until)
        return store(key_id, nonce, keep_until)

    try:
        key_id = signing.verify(request.method, target, request.headers, body, lookup, seen,
                                now=now)
    except signing.SignatureError as exc:
        raise Unauthenticated(exc.code, exc.message) from None
    creds = found[key_id]
    return Caller(creds.unit_id, creds.unit_code, creds.enabled, request.method, target,
                  key_id, signing.get_header(request.headers, signing.HEADER_NONCE) or "",
                  spent[-1], creds.platform_key_id, creds.platform_secret)


def authenticate_and_fetch(request: Request, body: bytes, limit: int
                           ) -> tuple[Caller, bytes, int]:
    """:func:`verify`, then the first look for tasks, in one short transaction: the
    long-polling fetch must not hold one while it waits, so later looks have their own."""
    with transaction() as session:
        try:
            caller = verify(session, request, body)
        except Unauthenticated:
            session.rollback()
            raise
        if not caller.enabled:
            return caller, b"", 0
        out, count = delivery.fetch(session, caller.unit_id, limit)
        return caller, out, count


def _unsigned_401(exc: Unauthenticated) -> Response:
    body = wire.ErrorBody(error=wire.ErrorDetail(code=exc.code, message=exc.message))
    return Response(body.model_dump_json(exclude_none=True).encode(), status_code=401,
                    media_type="application/json")


def _serve(request: Request, body: bytes,
           work: Callable[[Session, Caller], bytes]) -> Response:
    """Authenticate and do the work in one transaction (the nonce is spent in it)."""
    refused: wire.WireError | DomainError | None = None
    with transaction() as session:
        try:
            caller = verify(session, request, body)
        except Unauthenticated as exc:
            session.rollback()
            log.info("linkage request refused: %s", exc.code)
            return _unsigned_401(exc)
        if not caller.enabled:
            return caller.error(403, "forbidden",
                                "this unit is switched off; contact the platform")
        try:
            out = work(session, caller)
        except (wire.WireError, DomainError) as exc:
            session.rollback()
            refused = exc
    if refused is not None:
        _spend_after_refusal(caller)
        return caller.error(refused.status_code, refused.code, refused.message)
    return caller.answer(200, out)


def _spend_after_refusal(caller: Caller) -> None:
    """A refused request's rollback took its nonce back: spend it again, on its own.

    Cheaper than a savepoint around every call's work (two more round trips each time), and
    as safe: a replay of the request that slipped in between is the same signed request, and
    the refused original did nothing, so the request still takes effect at most once."""
    with transaction() as session:
        _nonce_store(session)(caller.key_id, caller.nonce, caller.nonce_kept_until)


def _outcomes(items: list[wire.ItemOutcome]) -> bytes:
    return wire.BatchOutcome(schema_version="1", outcomes=items).model_dump_json().encode()


def _in_order(ids: list[str], *groups: list[wire.ItemOutcome]) -> list[wire.ItemOutcome]:
    """Outcomes in the order of the batch's items (a rejected item keeps its place)."""
    by_position: list[wire.ItemOutcome] = []
    pool: dict[str, list[wire.ItemOutcome]] = {}
    for group in groups:
        for item in group:
            pool.setdefault(item.id, []).append(item)
    for item_id in ids:
        queue = pool.get(item_id)
        if queue:
            by_position.append(queue.pop(0))
    return by_position


def _ids_of(body: bytes, key: str, field: str) -> list[str]:
    ids = []
    for index, item in enumerate(json.loads(body)[key]):
        value = item.get(field) if isinstance(item, dict) else None
        ids.append(value if isinstance(value, str) and 0 < len(value) <= 64 else f"#{index}")
    return ids


@router.get("/tasks", summary="Fetch pending tasks (pull mode)",
            responses={200: _wire_doc(wire.TaskBatch, "Oldest pending tasks; signed")},
            description=f"Signed request: {_SIGNED_HEADERS}. Marks the tasks delivered; "
            "unacknowledged ones are offered again after a minute. With `wait`, a fetch that "
            "finds nothing waits up to that many seconds for a task to arrive (long poll).")
async def fetch_tasks(
        request: Request, body: RawBody,
        limit: Annotated[int, Query(ge=1, le=wire.MAX_TASKS_PER_FETCH)] = 50,
        wait: Annotated[int, Query(ge=0, le=wire.MAX_FETCH_WAIT_SECONDS)] = 0) -> Response:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    try:
        caller, out, count = await run_in_threadpool(authenticate_and_fetch, request, body,
                                                     limit)
    except Unauthenticated as exc:
        log.info("linkage request refused: %s", exc.code)
        return _unsigned_401(exc)
    if not caller.enabled:
        return caller.error(403, "forbidden", "this unit is switched off; contact the platform")
    while True:
        remaining = deadline - loop.time()
        if count or remaining <= 0:
            return caller.answer(200, out)
        await WATCH.wait(caller.unit_id, remaining)
        if await request.is_disconnected():
            # Nobody to hand tasks to: leave them pending rather than mark them delivered.
            return caller.answer(200, out)
        out, count = await run_in_threadpool(_fetch_once, caller.unit_id, limit)


def _fetch_once(unit_id: int, limit: int) -> tuple[bytes, int]:
    with transaction() as session:
        return delivery.fetch(session, unit_id, limit)


def _ack(session: Session, caller: Caller, body: bytes) -> bytes:
    try:
        request = wire.AckRequest.model_validate_json(body)
    except ValueError as exc:
        raise wire.WireError("validation_failed", _describe(exc)) from None
    return _outcomes(intake.acknowledge(session, caller.unit_id, request.task_ids))


def _describe(exc: ValueError) -> str:
    from pydantic import ValidationError

    return wire.describe(exc) if isinstance(exc, ValidationError) else str(exc)


@router.post("/tasks/ack", summary="Acknowledge tasks stored durably",
             openapi_extra={"requestBody": _wire_doc(wire.AckRequest, "Task ids")},
             responses={200: _wire_doc(wire.BatchOutcome, "One outcome per id; signed")})
def ack_tasks(request: Request, body: RawBody) -> Response:
    return _serve(request, body, lambda s, c: _ack(s, c, body))


def _results(session: Session, caller: Caller, body: bytes) -> bytes:
    results, rejected = wire.split_result_batch(body)
    accepted = intake.accept_results(session, caller.actor, caller.unit_id, results)
    return _outcomes(_in_order(_ids_of(body, "results", "task_id"), accepted, rejected))


@router.post("/results", summary="Post results (both modes)",
             openapi_extra={"requestBody": _wire_doc(wire.ResultBatch, "Up to 100 results")},
             responses={200: _wire_doc(wire.BatchOutcome, "One outcome per result; signed")})
def post_results(request: Request, body: RawBody) -> Response:
    return _serve(request, body, lambda s, c: _results(s, c, body))


def _events(session: Session, caller: Caller, body: bytes) -> bytes:
    events, rejected = wire.split_event_batch(body)
    accepted = intake.accept_events(session, caller.actor, caller.unit_id, events)
    return _outcomes(_in_order(_ids_of(body, "events", "event_id"), accepted, rejected))


@router.post("/events", summary="Report unsolicited events (money arrived under a freeze)",
             openapi_extra={"requestBody": _wire_doc(wire.EventBatch, "Up to 100 events")},
             responses={200: _wire_doc(wire.BatchOutcome, "One outcome per event; signed")})
def post_events(request: Request, body: RawBody) -> Response:
    return _serve(request, body, lambda s, c: _events(s, c, body))


def install_openapi(app: FastAPI) -> None:
    """Publish the protocol's message schemas in the OpenAPI components, so a unit's team can
    generate a client from ``/api/v1/openapi.json`` as well as read the protocol document."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (wire.TaskBatch, wire.AckRequest, wire.ResultBatch, wire.EventBatch,
                      wire.BatchOutcome, wire.ErrorBody, wire.TaskPush):
            generated = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in generated.pop("$defs", {}).items():
                components.setdefault(name, definition)
            components.setdefault(model.__name__, generated)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
