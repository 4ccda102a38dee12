"""ZX1-HMAC-SHA256: round trips, every rejection code, rotation, and tamper properties."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.linkage import NOW, PLATFORM_KEY, PLATFORM_SECRET, UNIT_KEY, UNIT_SECRET
from zhixing.linkage import signing
from zhixing.linkage.signing import (
    HEADER_CONTENT_SHA256,
    HEADER_KEY,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    InMemoryNonceStore,
    SignatureError,
)

PATH = "/api/v1/linkage/tasks/ack"
BODY = b'{"schema_version":"1","task_ids":["zt_01JDZ8Q3N5V2W9X4Y6A7B8C9D0"]}'
ROOT = Path(__file__).resolve().parents[2]


def lookup(key_id: str) -> bytes | None:
    return {UNIT_KEY: UNIT_SECRET}.get(key_id)


def store() -> InMemoryNonceStore:
    return InMemoryNonceStore(clock=lambda: NOW)


def signed(method: str = "POST", path: str = PATH, body: bytes = BODY, *,
           now: datetime = NOW, key_id: str = UNIT_KEY, secret: bytes = UNIT_SECRET,
           nonce: str | None = None) -> dict[str, str]:
    return signing.sign(method, path, body, key_id, secret, now=now, nonce=nonce)


def check(headers: dict[str, str], method: str = "POST", path: str = PATH, body: bytes = BODY,
          *, secrets: Callable[[str], bytes | list[bytes] | None] = lookup,
          nonces: signing.NonceSeen | None = None, now: datetime = NOW) -> str:
    return signing.verify(method, path, headers, body, secrets,
                          nonces if nonces is not None else store(), now=now)


def code_of(headers: dict[str, str], **kwargs: object) -> str:
    with pytest.raises(SignatureError) as caught:
        check(headers, **kwargs)  # type: ignore[arg-type]
    return caught.value.code


# --- round trip and shape ----------------------------------------------------------------------


def test_round_trip_returns_the_key_id() -> None:
    assert check(signed()) == UNIT_KEY


def test_headers_have_the_documented_shape() -> None:
    headers = signed()
    assert set(headers) == {HEADER_KEY, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_CONTENT_SHA256,
                            HEADER_SIGNATURE}
    assert headers[HEADER_TIMESTAMP] == str(int(NOW.timestamp()))
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", headers[HEADER_NONCE])  # 24 bytes, 192 bits
    assert headers[HEADER_CONTENT_SHA256] == signing.body_digest(BODY)
    assert re.fullmatch(r"[0-9a-f]{64}", headers[HEADER_SIGNATURE])


def test_every_signature_has_a_fresh_nonce() -> None:
    assert len({signed()[HEADER_NONCE] for _ in range(50)}) == 50


def test_empty_body_is_signed_with_the_digest_of_nothing() -> None:
    headers = signed("GET", "/api/v1/linkage/tasks?limit=50", b"")
    assert headers[HEADER_CONTENT_SHA256] == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert check(headers, "GET", "/api/v1/linkage/tasks?limit=50", b"") == UNIT_KEY


def test_header_names_are_case_insensitive() -> None:
    headers = {name.lower(): value for name, value in signed().items()}
    assert check(headers) == UNIT_KEY


# --- each rejection code -----------------------------------------------------------------------


@pytest.mark.parametrize("header", [HEADER_KEY, HEADER_TIMESTAMP, HEADER_NONCE,
                                    HEADER_CONTENT_SHA256, HEADER_SIGNATURE])
def test_a_missing_header_is_missing_signature(header: str) -> None:
    headers = signed()
    del headers[header]
    assert code_of(headers) == "missing_signature"


def test_no_headers_at_all_is_missing_signature() -> None:
    assert code_of({}) == "missing_signature"


@pytest.mark.parametrize(("header", "value"), [
    (HEADER_KEY, "bank key"),
    (HEADER_TIMESTAMP, "2026-11-26T01:30:00Z"),
    (HEADER_TIMESTAMP, "-1764120600"),
    (HEADER_NONCE, "too-short"),
    (HEADER_NONCE, "not base64url but 32 characters!"),
    (HEADER_CONTENT_SHA256, "abc"),
    (HEADER_SIGNATURE, "z" * 64),
])
def test_a_malformed_header_is_malformed_signature(header: str, value: str) -> None:
    headers = signed()
    headers[header] = value
    assert code_of(headers) == "malformed_signature"


def test_a_tampered_body_is_body_digest_mismatch() -> None:
    assert code_of(signed(), body=BODY.replace(b"D0", b"D1")) == "body_digest_mismatch"


def test_a_tampered_body_with_a_matching_digest_header_is_bad_signature() -> None:
    body = BODY.replace(b"D0", b"D1")
    headers = signed()
    headers[HEADER_CONTENT_SHA256] = signing.body_digest(body)
    assert code_of(headers, body=body) == "bad_signature"


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/api/v1/linkage/results"),
    ("POST", PATH + "?x=1"),
    ("PUT", PATH),
    ("post", PATH),
])
def test_another_method_or_path_is_bad_signature(method: str, path: str) -> None:
    assert code_of(signed(), method=method, path=path) == "bad_signature"


def test_another_query_value_is_bad_signature() -> None:
    headers = signed("GET", "/api/v1/linkage/tasks?limit=50", b"")
    assert code_of(headers, method="GET", path="/api/v1/linkage/tasks?limit=51",
                   body=b"") == "bad_signature"


def test_a_wrong_secret_is_bad_signature() -> None:
    assert code_of(signed(secret=b"another-secret-of-thirty-two-bytes!!")) == "bad_signature"


def test_a_forged_signature_header_is_bad_signature() -> None:
    headers = signed()
    headers[HEADER_SIGNATURE] = "0" * 64
    assert code_of(headers) == "bad_signature"


@pytest.mark.parametrize(("offset", "accepted"), [
    (timedelta(minutes=-5), True),
    (timedelta(minutes=5), True),
    (timedelta(minutes=-5, seconds=-1), False),
    (timedelta(minutes=5, seconds=1), False),
    (timedelta(days=-365), False),
])
def test_the_clock_window_is_five_minutes_either_way(offset: timedelta, accepted: bool) -> None:
    headers = signed(now=NOW + offset)
    if accepted:
        assert check(headers) == UNIT_KEY
    else:
        assert code_of(headers) == "stale_timestamp"


def test_a_replayed_nonce_is_refused() -> None:
    nonces = store()
    headers = signed()
    assert check(headers, nonces=nonces) == UNIT_KEY
    assert code_of(headers, nonces=nonces) == "replayed_nonce"


def test_a_nonce_is_scoped_to_its_key() -> None:
    nonces = store()
    nonce = signing.new_nonce()
    both = {UNIT_KEY: UNIT_SECRET, "bank-other": UNIT_SECRET}
    assert check(signed(nonce=nonce), secrets=both.get, nonces=nonces) == UNIT_KEY
    other = signed(nonce=nonce, key_id="bank-other")
    assert check(other, secrets=both.get, nonces=nonces) == "bank-other"


def test_a_nonce_is_recorded_only_for_a_valid_signature() -> None:
    """A forgery racing a real request with its nonce must not burn that nonce."""
    nonces = store()
    real = signed()
    forged = dict(real)
    forged[HEADER_SIGNATURE] = "f" * 64
    assert code_of(forged, nonces=nonces) == "bad_signature"
    assert check(real, nonces=nonces) == UNIT_KEY


@pytest.mark.parametrize("answer", [None, [], ()])
def test_an_unknown_key_is_unknown_key(answer: list[bytes] | None) -> None:
    assert code_of(signed(), secrets=lambda _key: answer) == "unknown_key"


def test_during_a_rotation_both_secrets_are_valid() -> None:
    old, new = UNIT_SECRET, b"the-new-unit-secret-after-rotation!!"

    def rotating(key: str) -> list[bytes] | None:
        return [old, new] if key == UNIT_KEY else None

    assert check(signed(secret=old), secrets=rotating) == UNIT_KEY
    assert check(signed(secret=new), secrets=rotating) == UNIT_KEY
    retired = b"a-retired-secret-no-longer-active!!!"
    assert code_of(signed(secret=retired), secrets=rotating) == "bad_signature"


def test_the_signature_error_says_401() -> None:
    with pytest.raises(SignatureError) as caught:
        check({})
    assert caught.value.status_code == 401
    assert caught.value.message


# --- arguments ---------------------------------------------------------------------------------


def test_sign_refuses_weak_or_malformed_inputs() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        signing.sign("POST", PATH, BODY, UNIT_KEY, b"short")
    with pytest.raises(ValueError, match="key id"):
        signing.sign("POST", PATH, BODY, "bad key", UNIT_SECRET)
    with pytest.raises(ValueError, match="nonce"):
        signing.sign("POST", PATH, BODY, UNIT_KEY, UNIT_SECRET, nonce="short")
    with pytest.raises(ValueError, match="timezone-aware"):
        signing.sign("POST", PATH, BODY, UNIT_KEY, UNIT_SECRET, now=datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="request target"):
        signing.sign("POST", "api/v1", BODY, UNIT_KEY, UNIT_SECRET)
    with pytest.raises(ValueError, match="HTTP method"):
        signing.sign("PO ST", PATH, BODY, UNIT_KEY, UNIT_SECRET)


def test_verify_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check(signed(), now=datetime(2026, 11, 26, 1, 30))  # noqa: DTZ001


def test_secrets_are_exchanged_as_base64url_text() -> None:
    text = signing.generate_secret()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", text)
    assert len(signing.decode_secret(text)) == 32
    with pytest.raises(ValueError, match="at least 32 bytes"):
        signing.decode_secret("c2hvcnQ")
    with pytest.raises(ValueError, match="base64url"):
        signing.decode_secret("not*base64")


# --- canonical form ----------------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b"), [
    ("/t?b=2&a=1", "/t?a=1&b=2"),
    ("/t?a=%7e", "/t?a=~"),
    ("/t?a=%7E&b", "/t?b=&a=~"),
    ("/t?q=a+b", "/t?q=a%20b"),
    ("/t?a=1&&b=2&", "/t?a=1&b=2"),
    ("/p%61th", "/path"),
    ("/t?name=%E5%BC%A0", "/t?name=张"),
    ("/t?x=%2f", "/t?x=%2F"),
])
def test_targets_that_mean_the_same_sign_the_same(a: str, b: str) -> None:
    assert signing.canonical_target(a) == signing.canonical_target(b)
    assert check(signed("GET", a, b""), "GET", b, b"") == UNIT_KEY


@pytest.mark.parametrize(("a", "b"), [
    ("/a%2Fb", "/a/b"),
    ("/t?q=a%2Bb", "/t?q=a+b"),
    ("/t?a=1&a=2", "/t?a=1"),
    ("/t/", "/t"),
    ("/t?a=1", "/t?a=1=")
])
def test_targets_that_mean_something_else_sign_differently(a: str, b: str) -> None:
    assert signing.canonical_target(a) != signing.canonical_target(b)


def test_the_canonical_request_is_the_documented_lines() -> None:
    canonical = signing.canonical_request(
        "GET", "/api/v1/linkage/tasks?limit=50&after=x%20y", "1764120600",
        "n" * 22, UNIT_KEY, "0" * 64)
    assert canonical.split("\n") == [
        "ZX1-HMAC-SHA256", "GET", "/api/v1/linkage/tasks", "after=x%20y&limit=50",
        "1764120600", "n" * 22, UNIT_KEY, "0" * 64]


# --- responses ---------------------------------------------------------------------------------

RESPONSE_BODY = b'{"schema_version":"1","outcomes":[]}'


def platform_keys(key_id: str) -> bytes | None:
    return {PLATFORM_KEY: PLATFORM_SECRET}.get(key_id)


def response_headers(status: int = 200, body: bytes = RESPONSE_BODY, nonce: str = "n" * 22,
                     *, now: datetime = NOW) -> dict[str, str]:
    return signing.sign_response(status, body, PLATFORM_KEY, PLATFORM_SECRET,
                                 request_method="POST", request_path=PATH,
                                 request_nonce=nonce, now=now)


def check_response(headers: dict[str, str], status: int = 200, body: bytes = RESPONSE_BODY,
                   nonce: str = "n" * 22, method: str = "POST", path: str = PATH) -> str:
    return signing.verify_response(status, headers, body, platform_keys, request_method=method,
                                   request_path=path, request_nonce=nonce, now=NOW)


def response_code(headers: dict[str, str], **kwargs: object) -> str:
    with pytest.raises(SignatureError) as caught:
        check_response(headers, **kwargs)  # type: ignore[arg-type]
    return caught.value.code


def test_response_round_trip() -> None:
    headers = response_headers()
    assert HEADER_NONCE not in headers
    assert check_response(headers) == PLATFORM_KEY


def test_a_response_is_bound_to_its_request() -> None:
    headers = response_headers()
    assert response_code(headers, nonce="m" * 22) == "bad_signature"
    assert response_code(headers, method="PUT") == "bad_signature"
    assert response_code(headers, path="/api/v1/linkage/results") == "bad_signature"


def test_a_response_cannot_change_its_status() -> None:
    assert response_code(response_headers(409), status=200) == "bad_signature"


def test_a_tampered_response_body_is_body_digest_mismatch() -> None:
    assert response_code(response_headers(), body=b"{}") == "body_digest_mismatch"


def test_response_rejections() -> None:
    assert response_code({}) == "missing_signature"
    assert response_code(response_headers(now=NOW - timedelta(minutes=6))) == "stale_timestamp"
    unit_signed = signing.sign_response(200, RESPONSE_BODY, UNIT_KEY, UNIT_SECRET,
                                        request_method="POST", request_path=PATH,
                                        request_nonce="n" * 22, now=NOW)
    assert response_code(unit_signed) == "unknown_key"


def test_a_request_signature_does_not_pass_as_a_response() -> None:
    """Different labels: a signed request replayed as an answer is refused."""
    request = signing.sign("POST", PATH, RESPONSE_BODY, PLATFORM_KEY, PLATFORM_SECRET, now=NOW)
    assert response_code(request, nonce=request[HEADER_NONCE]) == "bad_signature"


# --- the nonce store ---------------------------------------------------------------------------


def test_the_store_forgets_a_nonce_after_its_keep_until() -> None:
    moment = [NOW]
    nonces = InMemoryNonceStore(clock=lambda: moment[0])
    keep_until = NOW + timedelta(minutes=5)
    assert nonces(UNIT_KEY, "a" * 22, keep_until) is False
    assert nonces(UNIT_KEY, "a" * 22, keep_until) is True
    moment[0] = keep_until
    assert nonces(UNIT_KEY, "b" * 22, keep_until + timedelta(minutes=5)) is False
    assert len(nonces) == 2
    moment[0] = keep_until + timedelta(seconds=1)
    assert nonces(UNIT_KEY, "c" * 22, moment[0] + timedelta(minutes=5)) is False
    assert len(nonces) == 2  # "a" forgotten
    assert nonces(UNIT_KEY, "a" * 22, moment[0] + timedelta(minutes=5)) is False


def test_a_replay_after_the_store_forgot_is_still_refused_as_stale() -> None:
    moment = [NOW]
    nonces = InMemoryNonceStore(clock=lambda: moment[0])
    headers = signed()
    assert check(headers, nonces=nonces) == UNIT_KEY
    moment[0] = NOW + timedelta(minutes=10)
    assert code_of(headers, nonces=nonces, now=moment[0]) == "stale_timestamp"


# --- properties --------------------------------------------------------------------------------

SEGMENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~",
                  min_size=1, max_size=8)


@st.composite
def plain_targets(draw: st.DrawFn) -> str:
    """Targets of unreserved characters: every single-byte change alters their meaning."""
    path = "/" + "/".join(draw(st.lists(SEGMENT, min_size=1, max_size=4)))
    params = draw(st.lists(st.tuples(SEGMENT, SEGMENT), max_size=4))
    if params:
        path += "?" + "&".join(f"{n}={v}" for n, v in params)
    return path


def mutate(text: str, index: int, replacement: str) -> str:
    return text[:index] + replacement + text[index + 1:]


@settings(max_examples=150, deadline=None)
@given(body=st.binary(min_size=1, max_size=300), data=st.data())
def test_any_single_byte_change_of_the_body_breaks_verification(body: bytes,
                                                                data: st.DataObject) -> None:
    headers = signed(body=body)
    index = data.draw(st.integers(0, len(body) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != body[index]))
    tampered = body[:index] + bytes([new]) + body[index + 1:]
    with pytest.raises(SignatureError):
        check(headers, body=tampered)


@settings(max_examples=150, deadline=None)
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]), data=st.data())
def test_any_single_byte_change_of_the_method_breaks_verification(
        method: str, data: st.DataObject) -> None:
    headers = signed(method)
    index = data.draw(st.integers(0, len(method) - 1))
    new = data.draw(st.characters(min_codepoint=0, max_codepoint=255).filter(
        lambda c: c != method[index]))
    with pytest.raises(SignatureError):
        check(headers, mutate(method, index, new))


@settings(max_examples=300, deadline=None)
@given(target=plain_targets(), data=st.data())
def test_any_single_byte_change_of_a_plain_path_breaks_verification(
        target: str, data: st.DataObject) -> None:
    headers = signed("GET", target, b"")
    index = data.draw(st.integers(0, len(target) - 1))
    new = data.draw(st.characters(min_codepoint=0x21, max_codepoint=0x7E).filter(
        lambda c: c != target[index]))
    with pytest.raises(SignatureError):
        check(headers, "GET", mutate(target, index, new), b"")


@settings(max_examples=300, deadline=None)
@given(target=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E,
                                             exclude_characters="#"), max_size=40),
       data=st.data())
def test_any_single_byte_change_of_any_path_breaks_verification_unless_it_means_the_same(
        target: str, data: st.DataObject) -> None:
    """With percent-encoding and '+', some changes keep the meaning (``%2f`` and ``%2F``);
    those, and only those, still verify."""
    target = "/" + target
    headers = signed("GET", target, b"")
    index = data.draw(st.integers(0, len(target) - 1))
    new = data.draw(st.characters(min_codepoint=0x21, max_codepoint=0x7E).filter(
        lambda c: c != target[index]))
    changed = mutate(target, index, new)
    try:
        same = signing.canonical_target(changed) == signing.canonical_target(target)
    except ValueError:
        same = False
    if same:
        assert check(headers, "GET", changed, b"") == UNIT_KEY
    else:
        with pytest.raises(SignatureError):
            check(headers, "GET", changed, b"")


@settings(max_examples=100, deadline=None)
@given(target=plain_targets(), body=st.binary(max_size=200),
       method=st.sampled_from(["GET", "POST"]),
       skew=st.integers(-300, 300))
def test_round_trip_property(target: str, body: bytes, method: str, skew: int) -> None:
    headers = signed(method, target, body, now=NOW + timedelta(seconds=skew))
    assert check(headers, method, target, body) == UNIT_KEY


def test_a_change_that_keeps_the_meaning_exists() -> None:
    """Guards the property above against being vacuous."""
    assert signing.canonical_target("/a%2fb") == signing.canonical_target("/a%2Fb")


# --- the worked example of docs/linkage-protocol.md -------------------------------------------

EXAMPLE_SECRET_TEXT = "emhpeGluZy1saW5rYWdlLWV4YW1wbGUtc2VjcmV0ISE"
EXAMPLE_PLATFORM_SECRET_TEXT = "emhpeGluZy1wbGF0Zm9ybS1leGFtcGxlLXNlY3JldCE"
EXAMPLE_KEY = "bank-gxnx-01"
EXAMPLE_TIME = datetime(2026, 11, 26, 1, 30, tzinfo=UTC)
EXAMPLE_NONCE = "q1L5Qn0x2fM8Vb7eK3sTzA9wYpR4uHc6"
EXAMPLE_TARGET = "/api/v1/linkage/tasks/ack"
EXAMPLE_BODY = b'{"schema_version":"1","task_ids":["zt_01JDZ8Q3N5V2W9X4Y6A7B8C9D0"]}'


def test_the_worked_example_in_the_docs_is_what_the_code_computes() -> None:
    secret = signing.decode_secret(EXAMPLE_SECRET_TEXT)
    assert secret == b"zhixing-linkage-example-secret!!"
    headers = signing.sign("POST", EXAMPLE_TARGET, EXAMPLE_BODY, EXAMPLE_KEY, secret,
                           now=EXAMPLE_TIME, nonce=EXAMPLE_NONCE)
    canonical = signing.canonical_request(
        "POST", EXAMPLE_TARGET, headers[HEADER_TIMESTAMP], EXAMPLE_NONCE, EXAMPLE_KEY,
        headers[HEADER_CONTENT_SHA256])
    doc = (ROOT / "docs" / "linkage-protocol.md").read_text(encoding="utf-8")
    assert EXAMPLE_SECRET_TEXT in doc
    assert EXAMPLE_PLATFORM_SECRET_TEXT in doc
    assert EXAMPLE_BODY.decode() in doc
    assert canonical in doc
    for name, value in headers.items():
        assert f"{name}: {value}" in doc
    response = signing.sign_response(
        200, b'{"schema_version":"1","outcomes":[{"id":"zt_01JDZ8Q3N5V2W9X4Y6A7B8C9D0",'
        b'"outcome":"accepted","error":null}]}', "zhixing-2026",
        signing.decode_secret(EXAMPLE_PLATFORM_SECRET_TEXT),
        request_method="POST", request_path=EXAMPLE_TARGET, request_nonce=EXAMPLE_NONCE,
        now=EXAMPLE_TIME + timedelta(seconds=1))
    for name, value in response.items():
        assert f"{name}: {value}" in doc
