"""The unit-side SDK against a minimal platform played by an ``httpx.MockTransport``.

The transport is a test double of the *server*: it authenticates every request with
``signing.verify`` (its own nonce store, so a re-sent nonce is refused as the real one will),
keeps tasks, acknowledgements, results and events, and signs its answers with the platform key.
Faults (503s, timeouts, bad signatures) are scripted per test.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.linkage import (
    FREEZE_TASK,
    NOW,
    PLATFORM_KEY,
    PLATFORM_SECRET,
    QUERY_TASK,
    UNIT_KEY,
    UNIT_SECRET,
    event,
    result,
    task,
)
from zhixing.linkage import signing, wire
from zhixing.linkage.client import (
    ApiError,
    AuthenticationError,
    LinkageClient,
    PermissionDeniedError,
    ProtocolError,
    PushReceiver,
    PushRejected,
    ResponseSignatureError,
    ServerError,
)

Fault = Callable[[httpx.Request], httpx.Response | None]


@dataclass
class FakePlatform:
    """The platform, as far as one unit's pull-mode calls go."""

    tasks: list[dict[str, Any]] = field(default_factory=lambda: [QUERY_TASK, FREEZE_TASK])
    acked: set[str] = field(default_factory=set)
    results: dict[str, wire.Result] = field(default_factory=dict)
    events: dict[str, wire.Event] = field(default_factory=dict)
    unit_secrets: dict[str, bytes] = field(default_factory=lambda: {UNIT_KEY: UNIT_SECRET})
    platform_key: str = PLATFORM_KEY
    platform_secret: bytes = PLATFORM_SECRET
    now: datetime = NOW
    answer_time: datetime | None = None
    before_auth: list[Fault] = field(default_factory=list)
    after_auth: list[Fault] = field(default_factory=list)
    answer_filter: Callable[[httpx.Response], httpx.Response] | None = None
    seen: list[httpx.Request] = field(default_factory=list)
    handled: int = 0

    def __post_init__(self) -> None:
        self.nonces = signing.InMemoryNonceStore(clock=lambda: self.now)

    # -- transport --

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if self.before_auth:
            faulty = self.before_auth.pop(0)(request)
            if faulty is not None:
                return faulty
        target = request.url.raw_path.decode("ascii")
        body = request.read()
        try:
            signing.verify(request.method, target, request.headers, body,
                           self.unit_secrets.get, self.nonces, now=self.now)
        except signing.SignatureError as exc:  # cannot sign for a key it does not trust
            return self.error(401, exc.code, exc.message)
        if self.after_auth:
            faulty = self.after_auth.pop(0)(request)
            if faulty is not None:
                return faulty
        status, payload = self.route(request.method, request.url.path, request, body)
        content = json.dumps(payload, ensure_ascii=False).encode()
        headers = signing.sign_response(
            status, content, self.platform_key, self.platform_secret,
            request_method=request.method, request_path=target,
            request_nonce=request.headers[signing.HEADER_NONCE],
            now=self.answer_time or self.now)
        answer = httpx.Response(status, content=content,
                                headers={**headers, "Content-Type": "application/json"})
        self.handled += 1
        return self.answer_filter(answer) if self.answer_filter else answer

    @staticmethod
    def error(status: int, code: str, message: str) -> httpx.Response:
        return httpx.Response(status, json={"error": {"code": code, "message": message}})

    # -- routes --

    def route(self, method: str, path: str, request: httpx.Request,
              body: bytes) -> tuple[int, dict[str, Any]]:
        if (method, path) == ("GET", "/api/v1/linkage/tasks"):
            limit = int(request.url.params.get("limit", "100"))
            pending = [t for t in self.tasks if t["task_id"] not in self.acked]
            return 200, {"schema_version": "1", "tasks": pending[:limit],
                         "more": len(pending) > limit}
        if (method, path) == ("POST", "/api/v1/linkage/tasks/ack"):
            ack = wire.AckRequest.model_validate_json(body)
            known = {t["task_id"] for t in self.tasks}
            outcomes = []
            for task_id in ack.task_ids:
                if task_id not in known:
                    outcomes.append(rejected(task_id, "unknown_task"))
                elif task_id in self.acked:
                    outcomes.append({"id": task_id, "outcome": "duplicate", "error": None})
                else:
                    self.acked.add(task_id)
                    outcomes.append({"id": task_id, "outcome": "accepted", "error": None})
            return 200, batch(outcomes)
        if (method, path) == ("POST", "/api/v1/linkage/results"):
            try:
                valid, bad = wire.split_result_batch(body)
            except wire.WireError as exc:
                return exc.status_code, {"error": {"code": exc.code, "message": exc.message}}
            by_id = {o.id: o.model_dump(mode="json") for o in bad}
            for item in valid:
                by_id[item.task_id] = self.store_result(item)
            order = [item.get("task_id", f"#{i}") if isinstance(item, dict) else f"#{i}"
                     for i, item in enumerate(json.loads(body)["results"])]
            return 200, batch([by_id[i] for i in order])
        if (method, path) == ("POST", "/api/v1/linkage/events"):
            events, bad = wire.split_event_batch(body)
            outcomes = [o.model_dump(mode="json") for o in bad]
            for arrived in events:
                if arrived.event_id in self.events:
                    outcomes.append({"id": arrived.event_id, "outcome": "duplicate",
                                     "error": None})
                else:
                    self.events[arrived.event_id] = arrived
                    outcomes.append({"id": arrived.event_id, "outcome": "accepted",
                                     "error": None})
            return 200, batch(outcomes)
        return 404, {"error": {"code": "not_found", "message": f"no route {method} {path}"}}

    def store_result(self, item: wire.Result) -> dict[str, Any]:
        known = {t["task_id"] for t in self.tasks}
        if item.task_id not in known:
            return rejected(item.task_id, "unknown_task")
        first = self.results.get(item.task_id)
        if first is None:
            self.results[item.task_id] = item
            return {"id": item.task_id, "outcome": "accepted", "error": None}
        if wire.same_content(first, item):
            return {"id": item.task_id, "outcome": "duplicate", "error": None}
        return rejected(item.task_id, "result_conflict")


def rejected(item_id: str, code: str) -> dict[str, Any]:
    return {"id": item_id, "outcome": "rejected", "error": {"code": code, "message": code}}


def batch(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schema_version": "1", "outcomes": outcomes}


def status(code: int, **headers: str) -> Fault:
    return lambda _request: httpx.Response(code, headers=headers, text="unavailable")


def timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("the platform did not answer", request=request)


@dataclass
class Harness:
    platform: FakePlatform
    client: LinkageClient
    sleeps: list[float]


@pytest.fixture
def harness() -> Harness:
    return make_harness()


def make_harness(platform: FakePlatform | None = None, base_url: str = "https://zhixing.test",
                 **options: Any) -> Harness:
    platform = platform or FakePlatform()
    sleeps: list[float] = []
    http = httpx.Client(transport=httpx.MockTransport(platform))
    client = LinkageClient(base_url, UNIT_KEY, UNIT_SECRET,
                           platform_keys={PLATFORM_KEY: PLATFORM_SECRET}, http=http,
                           clock=lambda: platform.now, sleep=sleeps.append,
                           rng=random.Random(7), **options)
    return Harness(platform, client, sleeps)


def results_for(*task_ids: str) -> list[wire.Result]:
    return [wire.Result.model_validate(result(task_id)) for task_id in task_ids]


# --- the calls ---------------------------------------------------------------------------------


def test_fetch_tasks_returns_typed_tasks(harness: Harness) -> None:
    fetched = harness.client.fetch_tasks(1)
    assert [t.task_id for t in fetched.tasks] == [QUERY_TASK["task_id"]]
    assert fetched.more is True
    assert isinstance(fetched.tasks[0], wire.Task)
    request = harness.platform.seen[0]
    assert request.method == "GET"
    assert request.url.params["limit"] == "1"
    assert request.headers[signing.HEADER_KEY] == UNIT_KEY
    assert request.headers["User-Agent"].startswith("zhixing-linkage-sdk/")


def test_fetch_tasks_checks_the_limit(harness: Harness) -> None:
    for limit in (0, wire.MAX_TASKS_PER_FETCH + 1):
        with pytest.raises(ValueError, match="limit"):
            harness.client.fetch_tasks(limit)


def test_ack_then_the_tasks_are_no_longer_offered(harness: Harness) -> None:
    ids = [QUERY_TASK["task_id"], FREEZE_TASK["task_id"]]
    outcomes = harness.client.ack(ids)
    assert [(o.id, o.outcome) for o in outcomes] == [(i, "accepted") for i in ids]
    assert harness.client.fetch_tasks().tasks == []
    again = harness.client.ack([*ids, "zt_not_a_task_of_yours"])
    assert [o.outcome for o in again] == ["duplicate", "duplicate", "rejected"]
    assert again[2].error is not None
    assert again[2].error.code == "unknown_task"


def test_a_result_is_accepted_once_and_its_copies_are_duplicates(harness: Harness) -> None:
    first = harness.client.post_results(results_for(QUERY_TASK["task_id"]))
    assert [o.outcome for o in first] == ["accepted"]
    copy = wire.Result.model_validate(result(reported_at="2026-11-26T10:00:00+08:00"))
    assert [o.outcome for o in harness.client.post_results([copy])] == ["duplicate"]
    changed = result()
    changed["payload"]["accounts"][0]["balance_fen"] = 1
    conflict = harness.client.post_results([wire.Result.model_validate(changed)])
    assert conflict[0].error is not None
    assert conflict[0].error.code == "result_conflict"
    assert harness.platform.results[QUERY_TASK["task_id"]].payload == first_payload()


def first_payload() -> Any:
    return wire.Result.model_validate(result()).payload


def test_many_results_go_in_several_batches() -> None:
    platform = FakePlatform(tasks=[task(task_id=f"zt_bulk_{i:06d}") for i in range(250)])
    harness = make_harness(platform)
    outcomes = harness.client.post_results(
        results_for(*(f"zt_bulk_{i:06d}" for i in range(250))))
    assert len(outcomes) == 250
    assert {o.outcome for o in outcomes} == {"accepted"}
    assert len(platform.seen) == 3  # 100 + 100 + 50


def test_post_results_refuses_two_results_for_one_task(harness: Harness) -> None:
    with pytest.raises(ValueError, match="once"):
        harness.client.post_results(results_for(QUERY_TASK["task_id"], QUERY_TASK["task_id"]))
    assert harness.client.post_results([]) == []
    assert harness.platform.seen == []


def test_an_event_is_accepted_once(harness: Harness) -> None:
    arrived = wire.Event.model_validate(event())
    assert harness.client.post_event(arrived).outcome == "accepted"
    assert harness.client.post_event(arrived).outcome == "duplicate"
    assert list(harness.platform.events) == [arrived.event_id]


def test_a_base_url_with_a_path_prefix_is_signed_in_full() -> None:
    harness = make_harness(base_url="https://gateway.test/zhixing/")
    harness.platform.route = lambda method, path, request, body: (  # type: ignore[method-assign]
        200, {"schema_version": "1", "tasks": [], "more": False})
    assert harness.client.fetch_tasks().tasks == []
    assert harness.platform.seen[0].url.raw_path == b"/zhixing/api/v1/linkage/tasks?limit=100"


# --- retries -----------------------------------------------------------------------------------


def test_a_503_is_retried_with_backoff(harness: Harness) -> None:
    harness.platform.before_auth += [status(503), status(503)]
    assert len(harness.client.fetch_tasks().tasks) == 2
    assert len(harness.platform.seen) == 3
    assert len(harness.sleeps) == 2
    assert 0.25 <= harness.sleeps[0] <= 0.5
    assert 0.5 <= harness.sleeps[1] <= 1.0


def test_a_retry_after_the_platform_acted_is_signed_anew_and_is_a_duplicate(
        harness: Harness) -> None:
    """The answer was lost after the result was stored: the retry carries a fresh nonce (the
    old one would be refused as replayed) and is answered as the first was."""
    platform = harness.platform
    original = platform.route

    def store_then_fail(method: str, path: str, request: httpx.Request,
                        body: bytes) -> tuple[int, dict[str, Any]]:
        original(method, path, request, body)
        platform.route = original  # type: ignore[method-assign]
        return 503, {"error": {"code": "unavailable", "message": "lost answer"}}

    platform.route = store_then_fail  # type: ignore[method-assign]
    outcomes = harness.client.post_results(results_for(QUERY_TASK["task_id"]))
    assert [o.outcome for o in outcomes] == ["duplicate"]
    assert len(platform.results) == 1
    nonces = [r.headers[signing.HEADER_NONCE] for r in platform.seen]
    assert len(set(nonces)) == 2


def test_timeouts_and_connection_failures_are_retried(harness: Harness) -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    harness.platform.before_auth += [timeout, refused]
    assert harness.client.ack([QUERY_TASK["task_id"]])[0].outcome == "accepted"
    assert len(harness.sleeps) == 2


@pytest.mark.parametrize("code", [429, 500, 502, 504])
def test_other_transient_statuses_are_retried(harness: Harness, code: int) -> None:
    harness.platform.before_auth.append(status(code))
    harness.client.fetch_tasks()
    assert len(harness.platform.seen) == 2


def test_retry_after_is_honoured_up_to_a_minute(harness: Harness) -> None:
    harness.platform.before_auth += [status(503, **{"Retry-After": "7"}),
                                     status(429, **{"Retry-After": "3600"})]
    harness.client.fetch_tasks()
    assert harness.sleeps[0] == 7
    assert harness.sleeps[1] == 60


def test_a_status_that_is_not_transient_is_not_retried(harness: Harness) -> None:
    harness.platform.before_auth.append(status(501))
    with pytest.raises(ServerError) as caught:
        harness.client.fetch_tasks()
    assert (caught.value.status_code, caught.value.attempts) == (501, 1)
    assert harness.sleeps == []


def test_when_retries_run_out_a_server_error_is_raised() -> None:
    harness = make_harness(max_attempts=4)
    harness.platform.before_auth += [status(503)] * 4
    with pytest.raises(ServerError) as caught:
        harness.client.fetch_tasks()
    assert caught.value.attempts == 4
    assert caught.value.status_code == 503
    assert len(harness.platform.seen) == 4
    assert len(harness.sleeps) == 3
    assert harness.sleeps == sorted(harness.sleeps)


def test_backoff_is_capped() -> None:
    harness = make_harness(max_attempts=10, backoff_cap=2.0)
    harness.platform.before_auth += [timeout] * 10
    with pytest.raises(ServerError, match="ReadTimeout"):
        harness.client.fetch_tasks()
    assert max(harness.sleeps) <= 2.0
    assert min(harness.sleeps[3:]) >= 1.0


# --- no retry on 4xx ---------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "error_code", "kind"), [
    (400, "bad_request", ApiError),
    (403, "unit_suspended", PermissionDeniedError),
    (409, "conflict", ApiError),
    (422, "validation_failed", ApiError),
])
def test_a_4xx_is_a_typed_error_and_is_not_retried(
        harness: Harness, code: int, error_code: str, kind: type[ApiError]) -> None:
    harness.platform.route = lambda *_args: (  # type: ignore[method-assign]
        code, {"error": {"code": error_code, "message": "refused by the platform"}})
    with pytest.raises(kind) as caught:
        harness.client.fetch_tasks()
    assert type(caught.value) is kind
    assert (caught.value.status_code, caught.value.code) == (code, error_code)
    assert caught.value.message == "refused by the platform"
    assert caught.value.authenticated
    assert len(harness.platform.seen) == 1
    assert harness.sleeps == []


def test_a_wrong_secret_is_an_authentication_error() -> None:
    platform = FakePlatform(unit_secrets={UNIT_KEY: b"the-platform-knows-another-secret!!"})
    harness = make_harness(platform)
    with pytest.raises(AuthenticationError) as caught:
        harness.client.fetch_tasks()
    assert caught.value.code == "bad_signature"
    assert caught.value.authenticated is False  # a 401 cannot be signed for an unproven key
    assert len(platform.seen) == 1


def test_a_skewed_clock_is_reported_as_stale_timestamp() -> None:
    platform = FakePlatform()
    harness = make_harness(platform)
    harness.client._clock = lambda: NOW - timedelta(minutes=6)
    with pytest.raises(AuthenticationError) as caught:
        harness.client.fetch_tasks()
    assert caught.value.code == "stale_timestamp"


def test_an_unknown_route_is_a_404_api_error(harness: Harness) -> None:
    with pytest.raises(ApiError) as caught:
        harness.client._call("GET", "/api/v1/linkage/nothing")
    assert (caught.value.status_code, caught.value.code) == (404, "not_found")


def test_a_bad_batch_envelope_is_refused_whole(harness: Harness) -> None:
    with pytest.raises(ApiError) as caught:
        harness.client._call("POST", "/api/v1/linkage/results", body=b'{"results": 1}')
    assert caught.value.code == "validation_failed"


# --- the platform's signature on answers -------------------------------------------------------


def tamper_body(answer: httpx.Response) -> httpx.Response:
    return httpx.Response(answer.status_code, headers=answer.headers,
                          content=answer.content.replace(b'"more": false', b'"more": true'))


def strip_signature(answer: httpx.Response) -> httpx.Response:
    headers = {k: v for k, v in answer.headers.items() if not k.lower().startswith("x-zhixing")}
    return httpx.Response(answer.status_code, headers=headers, content=answer.content)


@pytest.mark.parametrize(("changes", "code"), [
    ({"platform_secret": b"an-impostor-who-knows-no-secret!!!"}, "bad_signature"),
    ({"platform_key": "zhixing-impostor"}, "unknown_key"),
    ({"answer_filter": tamper_body}, "body_digest_mismatch"),
    ({"answer_filter": strip_signature}, "missing_signature"),
])
def test_an_answer_without_a_valid_platform_signature_raises(changes: dict[str, Any],
                                                             code: str) -> None:
    harness = make_harness(FakePlatform(**changes))
    with pytest.raises(ResponseSignatureError) as caught:
        harness.client.fetch_tasks()
    assert caught.value.code == code
    assert len(harness.platform.seen) == 1  # not retried: it is not a transient failure


def test_an_answer_to_another_request_is_refused(harness: Harness) -> None:
    """A recorded genuine answer replayed to a later request does not verify."""
    recorded: list[httpx.Response] = []

    def record_or_replay(answer: httpx.Response) -> httpx.Response:
        if not recorded:
            recorded.append(answer)
            return answer
        return recorded[0]

    harness.platform.answer_filter = record_or_replay
    harness.client.fetch_tasks()
    with pytest.raises(ResponseSignatureError) as caught:
        harness.client.fetch_tasks()
    assert caught.value.code == "bad_signature"


def test_a_stale_answer_is_refused() -> None:
    harness = make_harness(FakePlatform(answer_time=NOW - timedelta(minutes=5, seconds=1)))
    with pytest.raises(ResponseSignatureError) as caught:
        harness.client.fetch_tasks()
    assert caught.value.code == "stale_timestamp"
    harness = make_harness(FakePlatform(answer_time=NOW - timedelta(minutes=5)))
    harness.client.fetch_tasks()


def test_a_4xx_with_a_bad_signature_is_not_trusted(harness: Harness) -> None:
    harness.platform.route = lambda *_args: (  # type: ignore[method-assign]
        409, {"error": {"code": "conflict", "message": "x"}})
    harness.platform.answer_filter = lambda answer: httpx.Response(
        answer.status_code, headers=answer.headers, content=b'{"error":{"code":"other"}}')
    with pytest.raises(ResponseSignatureError):
        harness.client.fetch_tasks()


def test_an_authentic_answer_of_the_wrong_shape_is_a_protocol_error(harness: Harness) -> None:
    harness.platform.route = lambda *_args: (  # type: ignore[method-assign]
        200, {"schema_version": "1", "tasks": [{"task_id": "x"}], "more": False})
    with pytest.raises(ProtocolError, match="TaskBatch"):
        harness.client.fetch_tasks()


def test_outcomes_that_do_not_match_the_items_are_a_protocol_error(harness: Harness) -> None:
    harness.platform.route = lambda *_args: (200, batch([]))  # type: ignore[method-assign]
    with pytest.raises(ProtocolError, match="outcomes"):
        harness.client.ack([QUERY_TASK["task_id"]])


def test_an_oversized_answer_is_a_protocol_error(harness: Harness) -> None:
    harness.platform.answer_filter = lambda answer: httpx.Response(
        200, headers=answer.headers, content=b" " * (wire.MAX_BODY_BYTES + 1))
    with pytest.raises(ProtocolError, match="at most"):
        harness.client.fetch_tasks()


def test_a_redirect_is_not_followed(harness: Harness) -> None:
    harness.platform.route = lambda *_args: (302, {})  # type: ignore[method-assign]
    with pytest.raises(ProtocolError, match="302"):
        harness.client.fetch_tasks()


# --- construction ------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "match"), [
    (("ftp://x", UNIT_KEY, UNIT_SECRET), "http"),
    (("https://x", "bad key", UNIT_SECRET), "key id"),
    (("https://x", UNIT_KEY, b"short"), "32 bytes"),
])
def test_the_client_checks_its_configuration(args: tuple[str, str, bytes], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LinkageClient(*args, platform_keys={PLATFORM_KEY: PLATFORM_SECRET})
    with pytest.raises(ValueError, match="platform_keys"):
        LinkageClient("https://x", UNIT_KEY, UNIT_SECRET, platform_keys={})


def test_the_client_closes_only_its_own_http_client() -> None:
    with LinkageClient("https://x", UNIT_KEY, UNIT_SECRET,
                       platform_keys={PLATFORM_KEY: PLATFORM_SECRET}) as client:
        own = client._http
    assert own.is_closed
    shared = httpx.Client()
    with LinkageClient("https://x", UNIT_KEY, UNIT_SECRET, http=shared,
                       platform_keys={PLATFORM_KEY: PLATFORM_SECRET}):
        pass
    assert not shared.is_closed
    shared.close()


# --- push mode ---------------------------------------------------------------------------------

PUSH_PATH = "/zhixing/push"


def receiver() -> PushReceiver:
    return PushReceiver(UNIT_KEY, UNIT_SECRET, platform_keys={PLATFORM_KEY: PLATFORM_SECRET},
                        nonce_seen=signing.InMemoryNonceStore(clock=lambda: NOW),
                        clock=lambda: NOW)


def push(body: bytes | None = None, *, secret: bytes = PLATFORM_SECRET,
         path: str = PUSH_PATH) -> tuple[dict[str, str], bytes]:
    if body is None:
        body = json.dumps({"schema_version": "1", "tasks": [QUERY_TASK, FREEZE_TASK]},
                          ensure_ascii=False).encode()
    return signing.sign("POST", path, body, PLATFORM_KEY, secret, now=NOW), body


def test_a_push_is_verified_and_parsed_and_its_202_is_signed() -> None:
    headers, body = push()
    delivery = receiver().receive("POST", PUSH_PATH, headers, body)
    assert [t.task_id for t in delivery.tasks] == [QUERY_TASK["task_id"], FREEZE_TASK["task_id"]]
    assert delivery.platform_key_id == PLATFORM_KEY
    assert delivery.status_code == 202
    # the platform checks the unit's 202 with the unit key
    key = signing.verify_response(
        202, delivery.headers, b"", {UNIT_KEY: UNIT_SECRET}.get, request_method="POST",
        request_path=PUSH_PATH, request_nonce=headers[signing.HEADER_NONCE], now=NOW)
    assert key == UNIT_KEY


def test_a_replayed_push_is_refused() -> None:
    unit = receiver()
    headers, body = push()
    unit.receive("POST", PUSH_PATH, headers, body)
    with pytest.raises(PushRejected) as caught:
        unit.receive("POST", PUSH_PATH, headers, body)
    assert (caught.value.status_code, caught.value.code) == (401, "replayed_nonce")
    assert caught.value.headers == {}
    assert json.loads(caught.value.body)["error"]["code"] == "replayed_nonce"


@pytest.mark.parametrize(("secret", "path", "tamper", "code"), [
    (b"not-the-platform-secret-at-all-!!!", PUSH_PATH, False, "bad_signature"),
    (PLATFORM_SECRET, "/elsewhere", False, "bad_signature"),
    (PLATFORM_SECRET, PUSH_PATH, True, "body_digest_mismatch"),
])
def test_a_push_that_is_not_authentic_is_refused(secret: bytes, path: str, tamper: bool,
                                                 code: str) -> None:
    headers, body = push(secret=secret, path=path)
    if tamper:
        body = body.replace(b"deposits", b"vehicles")
    with pytest.raises(PushRejected) as caught:
        receiver().receive("POST", PUSH_PATH, headers, body)
    assert (caught.value.status_code, caught.value.code) == (401, code)


def test_an_authentic_push_of_invalid_tasks_is_refused_with_a_signed_422() -> None:
    headers, body = push(json.dumps({"schema_version": "1", "tasks": [
        task(purpose="")]}).encode())
    with pytest.raises(PushRejected) as caught:
        receiver().receive("POST", PUSH_PATH, headers, body)
    rejected = caught.value
    assert (rejected.status_code, rejected.code) == (422, "validation_failed")
    assert "purpose" in rejected.message
    signing.verify_response(
        422, rejected.headers, rejected.body, {UNIT_KEY: UNIT_SECRET}.get,
        request_method="POST", request_path=PUSH_PATH,
        request_nonce=headers[signing.HEADER_NONCE], now=NOW)


def test_a_push_must_be_a_small_enough_post() -> None:
    headers, body = push()
    with pytest.raises(PushRejected) as caught:
        receiver().receive("GET", PUSH_PATH, headers, body)
    assert caught.value.status_code == 405
    with pytest.raises(PushRejected) as caught:
        receiver().receive("POST", PUSH_PATH, headers, b" " * (wire.MAX_BODY_BYTES + 1))
    assert (caught.value.status_code, caught.value.code) == (413, "payload_too_large")
