"""The unit-side SDK of linkage protocol v1.

Pull mode::

    client = LinkageClient("https://zhixing.example", "bank-gx-001", secret,
                           platform_keys={"zhixing-2026": platform_secret})
    batch = client.fetch_tasks(50)
    client.ack([t.task_id for t in batch.tasks])      # after storing them durably
    ...
    outcomes = client.post_results(results)           # accepted / duplicate / rejected

Push mode: :class:`PushReceiver` checks a pushed request and parses its tasks.

Every request is signed (:mod:`zhixing.linkage.signing`) with a fresh nonce on every attempt,
and every answer the SDK acts on must carry the platform's valid signature, bound to that
request. Every call is safe to repeat, so the SDK retries timeouts, connection failures, 429
and 502/503/504/500 with exponential backoff and jitter:

- fetching only reads: a task that was fetched but not acknowledged is offered again;
- acknowledging a task id twice is answered ``duplicate``;
- a result is keyed by its task id and an event by its event id: the platform stores the first
  and answers every later copy ``duplicate``.

Other 4xx answers are not retried: they raise :class:`ApiError` with the platform's code.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from zhixing.linkage import signing, wire

TASKS_PATH = "/api/v1/linkage/tasks"
ACK_PATH = "/api/v1/linkage/tasks/ack"
RESULTS_PATH = "/api/v1/linkage/results"
EVENTS_PATH = "/api/v1/linkage/events"

USER_AGENT = "zhixing-linkage-sdk/1"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_EXCEPTIONS: tuple[type[Exception], ...] = (
    httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError)
MAX_RETRY_AFTER = 60.0

_M = TypeVar("_M", bound=BaseModel)


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --- errors ------------------------------------------------------------------------------------


class LinkageError(Exception):
    """Base of every error the SDK raises."""


class ApiError(LinkageError):
    """The platform refused the request (4xx); ``code`` is its machine-readable reason.

    ``authenticated`` tells whether the answer carried a valid platform signature. A 401 cannot
    always be signed (the platform may not know the key), so it may be unauthenticated; any
    other 4xx must be signed, or :class:`ResponseSignatureError` is raised instead.
    """

    def __init__(self, status_code: int, code: str, message: str, *,
                 authenticated: bool = True) -> None:
        super().__init__(f"HTTP {status_code} {code}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message
        self.authenticated = authenticated


class AuthenticationError(ApiError):
    """401: the platform did not accept the request's signature (``stale_timestamp``: check
    the clock; ``unknown_key``/``bad_signature``: check the key id and secret)."""


class PermissionDeniedError(ApiError):
    """403: the key is known but may not do this."""


class ServerError(LinkageError):
    """The platform stayed unavailable (5xx, 429, timeouts) through every attempt."""

    def __init__(self, message: str, *, attempts: int, status_code: int | None) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.status_code = status_code


class ResponseSignatureError(LinkageError):
    """An answer did not carry a valid platform signature: it is not trusted or used."""

    def __init__(self, code: str, status_code: int, message: str) -> None:
        super().__init__(f"response of HTTP {status_code} not authentic: {code}: {message}")
        self.code = code
        self.status_code = status_code


class ProtocolError(LinkageError):
    """An authentic answer that does not follow the protocol (shape, status, outcomes)."""


# --- the client --------------------------------------------------------------------------------


class LinkageClient:
    """Pull-mode client of one unit. Thread-safe as far as the ``httpx.Client`` is."""

    def __init__(
        self,
        base_url: str,
        key_id: str,
        secret: bytes,
        *,
        platform_keys: Mapping[str, bytes],
        http: httpx.Client | None = None,
        timeout: float = 10.0,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        window: timedelta = signing.DEFAULT_WINDOW,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not base_url.startswith(("https://", "http://")):
            raise ValueError("base_url is an http(s) URL")
        if not signing.KEY_ID_RE.fullmatch(key_id):
            raise ValueError("a key id is 1-64 of A-Z a-z 0-9 . _ -")
        if len(secret) < signing.MIN_SECRET_BYTES:
            raise ValueError(f"a secret has at least {signing.MIN_SECRET_BYTES} bytes")
        if not platform_keys:
            raise ValueError("platform_keys: the platform key(s) that sign the answers")
        if max_attempts < 1:
            raise ValueError("max_attempts is at least 1")
        self._base_url = base_url.rstrip("/")
        self._key_id = key_id
        self._secret = bytes(secret)
        self._platform_keys = {k: bytes(v) for k, v in platform_keys.items()}
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(follow_redirects=False)
        self._timeout = httpx.Timeout(timeout)
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._window = window
        self._clock = clock
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()  # jitter only: not for secrets

    # -- the calls --

    def fetch_tasks(self, limit: int = wire.MAX_TASKS_PER_FETCH,
                    wait: int = 0) -> wire.TaskBatch:
        """The oldest pending tasks of this unit, at most ``limit``. Store them, then ack.

        ``wait`` (0-30 s) is a long poll: when nothing is pending the platform answers as soon
        as a task arrives, or with an empty batch after ``wait`` seconds."""
        if not 1 <= limit <= wire.MAX_TASKS_PER_FETCH:
            raise ValueError(f"limit is 1 to {wire.MAX_TASKS_PER_FETCH}")
        if not 0 <= wait <= wire.MAX_FETCH_WAIT_SECONDS:
            raise ValueError(f"wait is 0 to {wire.MAX_FETCH_WAIT_SECONDS} seconds")
        params = {"limit": str(limit)} | ({"wait": str(wait)} if wait else {})
        content = self._call("GET", TASKS_PATH, params=params, extra_timeout=wait)
        return self._parse(wire.TaskBatch, content)

    def ack(self, task_ids: Sequence[str]) -> list[wire.ItemOutcome]:
        """Acknowledge tasks stored durably: they are not offered again."""
        ids = list(task_ids)
        _check_unique(ids, "task id")
        outcomes: list[wire.ItemOutcome] = []
        for start in range(0, len(ids), wire.MAX_ACK_IDS):
            chunk = ids[start:start + wire.MAX_ACK_IDS]
            body = wire.AckRequest(schema_version="1", task_ids=chunk)
            outcomes += self._batch(ACK_PATH, body.model_dump_json().encode(), chunk)
        return outcomes

    def post_results(self, results: Sequence[wire.Result]) -> list[wire.ItemOutcome]:
        """Post final results, in as many batches as the caps need; one outcome each."""
        ids = [r.task_id for r in results]
        _check_unique(ids, "task id")
        outcomes: list[wire.ItemOutcome] = []
        for chunk_ids, body in _batches("results", [(r.task_id, r) for r in results],
                                        wire.MAX_RESULTS_PER_BATCH):
            outcomes += self._batch(RESULTS_PATH, body, chunk_ids)
        return outcomes

    def post_event(self, event: wire.Event) -> wire.ItemOutcome:
        """Report one event (money arrived under a standing freeze)."""
        return self.post_events([event])[0]

    def post_events(self, events: Sequence[wire.Event]) -> list[wire.ItemOutcome]:
        ids = [e.event_id for e in events]
        _check_unique(ids, "event id")
        outcomes: list[wire.ItemOutcome] = []
        for chunk_ids, body in _batches("events", [(e.event_id, e) for e in events],
                                        wire.MAX_EVENTS_PER_BATCH):
            outcomes += self._batch(EVENTS_PATH, body, chunk_ids)
        return outcomes

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> LinkageClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- machinery --

    def _batch(self, path: str, body: bytes, ids: list[str]) -> list[wire.ItemOutcome]:
        answer = self._parse(wire.BatchOutcome, self._call("POST", path, body=body))
        if [o.id for o in answer.outcomes] != ids:
            raise ProtocolError("the outcomes do not match the items sent, one by one")
        return answer.outcomes

    def _parse(self, model: type[_M], content: bytes) -> _M:
        try:
            return model.model_validate_json(content)
        except ValidationError as exc:
            raise ProtocolError(f"the answer is not a valid {model.__name__}: "
                                f"{wire.describe(exc)}") from None

    def _call(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
              body: bytes = b"", extra_timeout: float = 0) -> bytes:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if body:
            headers["Content-Type"] = "application/json"
        last_status: int | None = None
        last_problem = ""
        for attempt in range(1, self._max_attempts + 1):
            request = self._http.build_request(
                method, self._base_url + path, params=params, content=body or None,
                headers=headers, timeout=self._timeout if not extra_timeout else httpx.Timeout(
                    self._timeout.connect, read=(self._timeout.read or 0) + extra_timeout,
                    write=self._timeout.write, pool=self._timeout.pool))
            target = request.url.raw_path.decode("ascii")
            auth = signing.sign(method, target, body, self._key_id, self._secret,
                                now=self._clock())  # a fresh nonce on every attempt
            request.headers.update(auth)
            retry_after: str | None = None
            try:
                status, answer_headers, content = self._exchange(request)
            except RETRY_EXCEPTIONS as exc:
                last_status, last_problem = None, f"{type(exc).__name__}: {exc}"
            else:
                if status >= 500 and status not in RETRY_STATUSES:  # 501, 505...: not transient
                    raise ServerError(f"{method} {path}: HTTP {status}", attempts=attempt,
                                      status_code=status)
                if status not in RETRY_STATUSES:
                    return self._accept(status, answer_headers, content, method, target,
                                        auth[signing.HEADER_NONCE])
                last_status, last_problem = status, f"HTTP {status}"
                retry_after = answer_headers.get("Retry-After")
            if attempt < self._max_attempts:
                self._sleep(self._delay(attempt, retry_after))
        raise ServerError(f"{method} {path} failed {self._max_attempts} times; last: "
                          f"{last_problem}", attempts=self._max_attempts,
                          status_code=last_status)

    def _exchange(self, request: httpx.Request) -> tuple[int, httpx.Headers, bytes]:
        response = self._http.send(request, stream=True, follow_redirects=False)
        try:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > wire.MAX_BODY_BYTES:
                    raise ProtocolError(f"an answer has at most {wire.MAX_BODY_BYTES} bytes")
                chunks.append(chunk)
            return response.status_code, response.headers, b"".join(chunks)
        finally:
            response.close()

    def _accept(self, status: int, headers: httpx.Headers, content: bytes, method: str,
                target: str, nonce: str) -> bytes:
        try:
            signing.verify_response(
                status, headers, content, self._platform_keys.get, request_method=method,
                request_path=target, request_nonce=nonce, now=self._clock(),
                window=self._window)
        except signing.SignatureError as exc:
            if status == 401:  # the platform cannot always sign it: report, flagged
                raise _api_error(status, content, authenticated=False) from None
            raise ResponseSignatureError(exc.code, status, exc.message) from None
        if 200 <= status < 300:
            return content
        if 400 <= status < 500:
            raise _api_error(status, content, authenticated=True)
        raise ProtocolError(f"unexpected HTTP status {status}")

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        ceiling = min(self._backoff_cap, self._backoff_base * 2.0 ** (attempt - 1))
        delay = ceiling / 2 + self._rng.random() * ceiling / 2
        if retry_after is not None and retry_after.strip().isdigit():
            delay = max(delay, min(float(retry_after.strip()), MAX_RETRY_AFTER))
        return delay


def _api_error(status: int, content: bytes, *, authenticated: bool) -> ApiError:
    code, message = f"http_{status}", ""
    try:
        error = json.loads(content)["error"]
        if isinstance(error.get("code"), str):
            code = error["code"]
        if isinstance(error.get("message"), str):
            message = error["message"]
    except (ValueError, KeyError, TypeError, AttributeError):
        message = content[:200].decode("utf-8", "replace")
    kind = {401: AuthenticationError, 403: PermissionDeniedError}.get(status, ApiError)
    return kind(status, code, message, authenticated=authenticated)


def _check_unique(ids: list[str], what: str) -> None:
    if len(set(ids)) != len(ids):
        raise ValueError(f"each {what} appears once")


def _batches(key: str, items: list[tuple[str, BaseModel]],
             cap: int) -> Iterator[tuple[list[str], bytes]]:
    """Bodies ``{"schema_version":"1","<key>":[...]}`` within the count and byte caps."""
    head = f'{{"schema_version":"1","{key}":['.encode()
    tail = b"]}"
    ids: list[str] = []
    parts: list[bytes] = []
    size = len(head) + len(tail)
    for item_id, model in items:
        part = model.model_dump_json().encode()
        if len(head) + len(part) + len(tail) > wire.MAX_BODY_BYTES:
            raise ValueError(f"{item_id}: one item is larger than a body may be")
        if parts and (len(parts) == cap or size + 1 + len(part) > wire.MAX_BODY_BYTES):
            yield ids, head + b",".join(parts) + tail
            ids, parts, size = [], [], len(head) + len(tail)
        size += len(part) + (1 if parts else 0)
        ids.append(item_id)
        parts.append(part)
    if parts:
        yield ids, head + b",".join(parts) + tail


# --- push mode ---------------------------------------------------------------------------------


class PushRejected(LinkageError):
    """A push the unit must refuse: answer ``status_code`` with ``headers`` and ``body``.

    ``headers`` are the unit's response signature when the push itself was authentic (empty
    otherwise: an unauthenticated request gets an unsigned answer).
    """

    def __init__(self, status_code: int, code: str, message: str,
                 headers: dict[str, str] | None = None, body: bytes | None = None) -> None:
        super().__init__(f"HTTP {status_code} {code}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message
        self.body = body if body is not None else _error_body(code, message)
        self.headers = headers or {}


def _error_body(code: str, message: str) -> bytes:
    detail = wire.ErrorDetail(code=code, message=message[:2000])
    return wire.ErrorBody(error=detail).model_dump_json(exclude_none=True).encode()


@dataclass(frozen=True)
class PushDelivery:
    """An authentic push: store ``tasks`` durably (ignoring task ids already stored), then
    answer ``status_code`` (202) with ``headers`` and an empty body."""

    tasks: list[wire.Task]
    platform_key_id: str
    headers: dict[str, str] = field(default_factory=dict)
    status_code: int = 202


class PushReceiver:
    """Checks pushes from the platform to a unit's URL (push mode).

    ``path`` given to :meth:`receive` is the request target as the platform addressed it (raw
    path and query), e.g. ``/zhixing/push``: if a proxy rewrites paths, give the original.
    """

    def __init__(self, key_id: str, secret: bytes, *, platform_keys: Mapping[str, bytes],
                 nonce_seen: signing.NonceSeen, clock: Callable[[], datetime] = _utcnow,
                 window: timedelta = signing.DEFAULT_WINDOW) -> None:
        if not signing.KEY_ID_RE.fullmatch(key_id):
            raise ValueError("a key id is 1-64 of A-Z a-z 0-9 . _ -")
        if len(secret) < signing.MIN_SECRET_BYTES:
            raise ValueError(f"a secret has at least {signing.MIN_SECRET_BYTES} bytes")
        self._key_id = key_id
        self._secret = bytes(secret)
        self._platform_keys = {k: bytes(v) for k, v in platform_keys.items()}
        self._nonce_seen = nonce_seen
        self._clock = clock
        self._window = window

    def receive(self, method: str, path: str, headers: Mapping[str, str],
                body: bytes) -> PushDelivery:
        """The tasks of an authentic push, or :class:`PushRejected` saying how to answer."""
        if method != "POST":
            raise PushRejected(405, "method_not_allowed", "tasks are pushed with POST")
        if len(body) > wire.MAX_BODY_BYTES:
            raise PushRejected(413, "payload_too_large",
                               f"a body has at most {wire.MAX_BODY_BYTES} bytes")
        try:
            platform_key = signing.verify(method, path, headers, body, self._platform_keys.get,
                                          self._nonce_seen, now=self._clock(),
                                          window=self._window)
        except signing.SignatureError as exc:
            raise PushRejected(401, exc.code, exc.message) from None
        nonce = signing.get_header(headers, signing.HEADER_NONCE) or ""
        try:
            push = wire.TaskPush.model_validate_json(body)
        except ValidationError as exc:
            error = _error_body("validation_failed", wire.describe(exc))
            raise PushRejected(422, "validation_failed", wire.describe(exc),
                               self._sign(422, error, method, path, nonce), error) from None
        return PushDelivery(push.tasks, platform_key, self._sign(202, b"", method, path, nonce))

    def _sign(self, status: int, body: bytes, method: str, path: str,
              nonce: str) -> dict[str, str]:
        return signing.sign_response(status, body, self._key_id, self._secret,
                                     request_method=method, request_path=path,
                                     request_nonce=nonce, now=self._clock())
