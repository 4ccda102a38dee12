"""A minimal platform for the simulator's tests: the four endpoints of linkage protocol v1 and
pushes, over real HTTP on a loopback port, signed and verified with the SDK's signing.

It is a test double of the server, not the server: it keeps tasks, acknowledgements, results
and events in memory, checks every request's signature, answers with the platform key of the
unit that asked, and applies the protocol's rules for results and events (duplicates,
conflicts, ``not_a_freeze``) so the simulator is held to them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from zhixing.linkage import signing, wire
from zhixing.linkage.simulator.config import UnitConfig


@dataclass
class UnitState:
    config: UnitConfig
    tasks: dict[str, wire.Task] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    results: dict[str, wire.Result] = field(default_factory=dict)
    events: dict[str, wire.Event] = field(default_factory=dict)
    result_posts: list[tuple[str, str, str | None]] = field(default_factory=list)
    event_posts: list[tuple[str, str, str | None]] = field(default_factory=list)
    fetches: int = 0
    offers: dict[str, int] = field(default_factory=dict)

    def outcomes(self, task_id: str) -> list[str]:
        return [o for t, o, _ in self.result_posts if t == task_id]


class FakePlatform:
    def __init__(self, units: list[UnitConfig]) -> None:
        self.units = {u.key_id: UnitState(u) for u in units}
        self.by_code = {s.config.code: s for s in self.units.values()}
        self.nonces = signing.InMemoryNonceStore()
        self.lock = threading.Lock()
        self.unavailable = 0  # answer this many next requests with 503
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakePlatform:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- test side --

    def add(self, code: str, *tasks: wire.Task) -> None:
        with self.lock:
            for task in tasks:
                self.by_code[code].tasks[task.task_id] = task

    def state(self, code: str) -> UnitState:
        return self.by_code[code]

    def push(self, code: str, *tasks: wire.Task, target: str | None = None,
             replay: tuple[dict[str, str], bytes] | None = None,
             timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
        """Push tasks to a unit; (status, headers, body). A 202 must carry the unit's valid
        signature, bound to this push, or the push does not count (AssertionError)."""
        state = self.by_code[code]
        unit = state.config
        assert unit.push_url is not None
        self.add(code, *tasks)
        parts = urlsplit(unit.push_url)
        target = target or parts.path
        if replay is not None:
            headers, body = replay
        else:
            body = wire.TaskPush(schema_version="1", tasks=list(tasks)).model_dump_json().encode()
            headers = signing.sign("POST", target, body, unit.platform_key_id,
                                   unit.platform_secret_bytes)
        response = httpx.post(f"{parts.scheme}://{parts.netloc}{target}", content=body,
                              headers={**headers, "Content-Type": "application/json"},
                              timeout=timeout)
        if response.status_code == 202:
            signing.verify_response(202, response.headers, response.content,
                                    {unit.key_id: unit.secret_bytes}.get,
                                    request_method="POST", request_path=target,
                                    request_nonce=headers[signing.HEADER_NONCE],
                                    now=datetime.now(UTC))
            with self.lock:
                state.acked.update(t.task_id for t in tasks)
        return response.status_code, dict(response.headers), response.content

    def wait_for(self, condition: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for the simulated unit")
            time.sleep(0.02)

    # -- server side --

    def handle(self, method: str, target: str, headers: dict[str, str],
               body: bytes) -> tuple[int, bytes, dict[str, str]]:
        with self.lock:
            if self.unavailable:
                self.unavailable -= 1
                return 503, b'{"error":{"code":"unavailable","message":"down"}}', {}
        secrets = {k: s.config.secret_bytes for k, s in self.units.items()}
        try:
            key_id = signing.verify(method, target, headers, body, secrets.get, self.nonces,
                                    now=datetime.now(UTC))
        except signing.SignatureError as exc:
            return 401, json.dumps({"error": {"code": exc.code, "message": exc.message}}
                                   ).encode(), {}
        state = self.units[key_id]
        path = urlsplit(target).path
        with self.lock:
            status, payload = self.route(state, method, path, target, body)
        content = json.dumps(payload, ensure_ascii=False).encode()
        signed = signing.sign_response(
            status, content, state.config.platform_key_id, state.config.platform_secret_bytes,
            request_method=method, request_path=target,
            request_nonce=headers.get(signing.HEADER_NONCE) or "")
        return status, content, signed

    def route(self, state: UnitState, method: str, path: str, target: str,
              body: bytes) -> tuple[int, dict[str, Any]]:
        if (method, path) == ("GET", "/api/v1/linkage/tasks"):
            limit = int(parse_qs(urlsplit(target).query).get("limit", ["100"])[0])
            state.fetches += 1
            pending = [t for t in state.tasks.values()
                       if t.task_id not in state.acked and t.task_id not in state.results]
            for t in pending[:limit]:
                state.offers[t.task_id] = state.offers.get(t.task_id, 0) + 1
            return 200, {"schema_version": "1",
                         "tasks": [t.model_dump(mode="json") for t in pending[:limit]],
                         "more": len(pending) > limit}
        if (method, path) == ("POST", "/api/v1/linkage/tasks/ack"):
            ack = wire.AckRequest.model_validate_json(body)
            outcomes = []
            for tid in ack.task_ids:
                if tid not in state.tasks:
                    outcomes.append(_rejected(tid, "unknown_task"))
                elif tid in state.acked:
                    outcomes.append(_item(tid, "duplicate"))
                else:
                    state.acked.add(tid)
                    outcomes.append(_item(tid, "accepted"))
            return 200, {"schema_version": "1", "outcomes": outcomes}
        if (method, path) == ("POST", "/api/v1/linkage/results"):
            return self._results(state, body)
        if (method, path) == ("POST", "/api/v1/linkage/events"):
            return self._events(state, body)
        return 404, {"error": {"code": "not_found", "message": path}}

    def _results(self, state: UnitState, body: bytes) -> tuple[int, dict[str, Any]]:
        valid, bad = wire.split_result_batch(body)
        by_id: dict[str, dict[str, Any]] = {o.id: o.model_dump(mode="json") for o in bad}
        for result in valid:
            by_id[result.task_id] = self._store_result(state, result)
        order = [item.get("task_id", f"#{i}") for i, item in
                 enumerate(json.loads(body)["results"])]
        outcomes = [by_id[i] for i in order]
        for o in outcomes:
            state.result_posts.append((o["id"], o["outcome"],
                                       o["error"]["code"] if o["error"] else None))
        return 200, {"schema_version": "1", "outcomes": outcomes}

    def _store_result(self, state: UnitState, result: wire.Result) -> dict[str, Any]:
        task = state.tasks.get(result.task_id)
        if task is None:
            return _rejected(result.task_id, "unknown_task")
        try:
            wire.check_result(task, result)
        except wire.WireError as exc:
            return _rejected(result.task_id, exc.code)
        first = state.results.get(result.task_id)
        if first is None:
            state.results[result.task_id] = result
            state.acked.add(result.task_id)  # posting a result acknowledges the task
            return _item(result.task_id, "accepted")
        if wire.same_content(first, result):
            return _item(result.task_id, "duplicate")
        return _rejected(result.task_id, "result_conflict")

    def _events(self, state: UnitState, body: bytes) -> tuple[int, dict[str, Any]]:
        events, bad = wire.split_event_batch(body)
        outcomes = [o.model_dump(mode="json") for o in bad]
        for event in events:
            related = state.results.get(event.related_task_id)
            task = state.tasks.get(event.related_task_id)
            standing = (related is not None and task is not None and task.control is not None
                        and task.kind in ("freeze", "renew_freeze")
                        and task.control.asset.reference == event.account_number)
            if not standing:
                outcomes.append(_rejected(event.event_id, "not_a_freeze"))
            elif event.event_id not in state.events:
                state.events[event.event_id] = event
                outcomes.append(_item(event.event_id, "accepted"))
            elif wire.same_content(state.events[event.event_id], event, frozenset()):
                outcomes.append(_item(event.event_id, "duplicate"))
            else:
                outcomes.append(_rejected(event.event_id, "event_conflict"))
        for o in outcomes:
            state.event_posts.append((o["id"], o["outcome"],
                                      o["error"]["code"] if o["error"] else None))
        return 200, {"schema_version": "1", "outcomes": outcomes}


def _item(item_id: str, outcome: str) -> dict[str, Any]:
    return {"id": item_id, "outcome": outcome, "error": None}


def _rejected(item_id: str, code: str) -> dict[str, Any]:
    return {"id": item_id, "outcome": "rejected", "error": {"code": code, "message": code}}


def _handler(platform: FakePlatform) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, content, headers = platform.handle(self.command, self.path,
                                                       dict(self.headers.items()), body)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = _any
        do_POST = _any

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler
