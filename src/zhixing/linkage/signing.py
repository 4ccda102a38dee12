"""ZX1-HMAC-SHA256: how requests and responses of the linkage protocol are authenticated.

Every request carries five headers::

    X-Zhixing-Key:            the key id (names the unit, or the platform's key for that unit)
    X-Zhixing-Timestamp:      unix seconds (UTC), decimal digits
    X-Zhixing-Nonce:          at least 128 random bits, base64url without padding
    X-Zhixing-Content-SHA256: lowercase hex SHA-256 of the body as sent (also for empty bodies)
    X-Zhixing-Signature:      lowercase hex HMAC-SHA256(secret, canonical string)

The canonical string is these lines joined by ``\\n`` (no newline at the end)::

    ZX1-HMAC-SHA256
    <method, as sent: case matters>
    <canonical path>
    <canonical query>
    <timestamp header>
    <nonce header>
    <key id header>
    <content sha256 header>

Canonical path: the path split on ``/``; each segment percent-decoded and re-encoded with only
the RFC 3986 unreserved characters (``A-Z a-z 0-9 - . _ ~``) left bare, hex in upper case.
Canonical query: the query split on ``&`` (empty pieces dropped), each piece split at its first
``=`` (a piece without ``=`` has an empty value), ``+`` read as a space, names and values
percent-decoded and re-encoded as above, the pairs sorted by name then value and joined as
``name=value`` with ``&``. So ``?b=2&a=%7e`` and ``?a=~&b=2`` sign the same, as they mean
the same to the server.

A response is signed with the same scheme, label ``ZX1-HMAC-SHA256-RESPONSE``, bound to the
request it answers (its method, path and nonce) so it cannot be replayed as the answer to another
request; it carries no nonce of its own.

Timestamps are unix seconds rather than RFC 3339 text: one spelling per instant, nothing to
canonicalise, and a clock check that is one subtraction in any language.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import hmac
import re
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import quote, unquote_to_bytes

SCHEME = "ZX1-HMAC-SHA256"
RESPONSE_SCHEME = "ZX1-HMAC-SHA256-RESPONSE"

HEADER_KEY = "X-Zhixing-Key"
HEADER_TIMESTAMP = "X-Zhixing-Timestamp"
HEADER_NONCE = "X-Zhixing-Nonce"
HEADER_CONTENT_SHA256 = "X-Zhixing-Content-SHA256"
HEADER_SIGNATURE = "X-Zhixing-Signature"

DEFAULT_WINDOW = timedelta(minutes=5)
NONCE_BYTES = 24  # 192 bits; at least 16 (128 bits) are required of others
MIN_SECRET_BYTES = 32

KEY_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
NONCE_RE = re.compile(r"[A-Za-z0-9_-]{22,128}")  # 22 base64url characters carry 132 bits
TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
HEX64_RE = re.compile(r"[0-9a-fA-F]{64}")
METHOD_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,16}")  # an RFC 9110 token

SignatureErrorCode = Literal[
    "missing_signature",
    "malformed_signature",
    "unknown_key",
    "bad_signature",
    "stale_timestamp",
    "replayed_nonce",
    "body_digest_mismatch",
]

SecretLookup = Callable[[str], bytes | Sequence[bytes] | None]
"""Key id -> its active secret, or its active secrets during a rotation; None if unknown."""

NonceSeen = Callable[[str, str, datetime], bool]
"""(key id, nonce, keep until) -> True if already seen; otherwise record it and return False.

Must be atomic (a unique constraint on (key id, nonce) in a database). The entry may be
forgotten after the third argument: a replay after that is refused as stale anyway."""


class SignatureError(Exception):
    """Authentication failed; ``code`` is the machine-readable reason (HTTP 401)."""

    status_code = 401

    def __init__(self, code: SignatureErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code: SignatureErrorCode = code
        self.message = message


# --- small helpers -----------------------------------------------------------------------------


def new_nonce() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(NONCE_BYTES)).rstrip(b"=").decode()


def generate_secret() -> str:
    """A new 32-byte secret as base64url text (how secrets are handed to units)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(MIN_SECRET_BYTES)).rstrip(b"=").decode()


def decode_secret(text: str) -> bytes:
    """The secret bytes of base64url text (padding optional)."""
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("a secret is base64url text") from None
    if len(raw) < MIN_SECRET_BYTES:
        raise ValueError(f"a secret has at least {MIN_SECRET_BYTES} bytes")
    return raw


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment


def _encode(raw: bytes) -> str:
    return quote(raw, safe="")  # leaves only A-Z a-z 0-9 - . _ ~ bare


def canonical_target(target: str) -> tuple[str, str]:
    """(canonical path, canonical query) of a request target such as ``/a/b?x=1&y=2``."""
    if not target.startswith("/"):
        raise ValueError("a request target starts with '/'")
    if any(c in target for c in "# ") or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        raise ValueError("a request target has no spaces, '#' or control characters")
    path, _, query = target.partition("?")
    raw_path = path.encode("utf-8")
    canonical_path = "/".join(_encode(unquote_to_bytes(seg)) for seg in raw_path.split(b"/"))
    pairs: list[tuple[str, str]] = []
    for piece in query.encode("utf-8").split(b"&"):
        if not piece:
            continue
        name, _, value = piece.partition(b"=")
        pairs.append((_encode(unquote_to_bytes(name.replace(b"+", b" "))),
                      _encode(unquote_to_bytes(value.replace(b"+", b" ")))))
    pairs.sort()
    return canonical_path, "&".join(f"{n}={v}" for n, v in pairs)


def canonical_request(method: str, target: str, timestamp: str, nonce: str, key_id: str,
                      content_sha256: str) -> str:
    """The string a request's signature covers (see the module doc)."""
    if not METHOD_RE.fullmatch(method):
        raise ValueError("not an HTTP method")
    path, query = canonical_target(target)
    return "\n".join((SCHEME, method, path, query, timestamp, nonce, key_id, content_sha256))


def canonical_response(status: int, request_method: str, request_target: str,
                       request_nonce: str, timestamp: str, key_id: str,
                       content_sha256: str) -> str:
    """The string a response's signature covers: bound to the request it answers."""
    if not METHOD_RE.fullmatch(request_method):
        raise ValueError("not an HTTP method")
    if not 100 <= status <= 599:
        raise ValueError("not an HTTP status")
    path, query = canonical_target(request_target)
    return "\n".join((RESPONSE_SCHEME, str(status), request_method, path, query, request_nonce,
                      timestamp, key_id, content_sha256))


def _mac(secret: bytes, canonical: str) -> str:
    return hmac.new(secret, canonical.encode("utf-8"), hashlib.sha256).hexdigest()


def _check_key(key_id: str, secret: bytes) -> None:
    if not KEY_ID_RE.fullmatch(key_id):
        raise ValueError("a key id is 1-64 of A-Z a-z 0-9 . _ -")
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"a secret has at least {MIN_SECRET_BYTES} bytes")


def _unix(moment: datetime | None) -> str:
    moment = datetime.now(UTC) if moment is None else _aware(moment, "now")
    return str(int(moment.timestamp()))


# --- signing -----------------------------------------------------------------------------------


def sign(method: str, path: str, body: bytes, key_id: str, secret: bytes, *,
         now: datetime | None = None, nonce: str | None = None) -> dict[str, str]:
    """The authentication headers of a request to ``path`` (path and query, as sent)."""
    _check_key(key_id, secret)
    nonce = new_nonce() if nonce is None else nonce
    if not NONCE_RE.fullmatch(nonce):
        raise ValueError("a nonce is 22-128 base64url characters (at least 128 bits)")
    timestamp = _unix(now)
    digest = body_digest(body)
    canonical = canonical_request(method, path, timestamp, nonce, key_id, digest)
    return {
        HEADER_KEY: key_id,
        HEADER_TIMESTAMP: timestamp,
        HEADER_NONCE: nonce,
        HEADER_CONTENT_SHA256: digest,
        HEADER_SIGNATURE: _mac(secret, canonical),
    }


def sign_response(status: int, body: bytes, key_id: str, secret: bytes, *,
                  request_method: str, request_path: str, request_nonce: str,
                  now: datetime | None = None) -> dict[str, str]:
    """The authentication headers of a response to the request (method, path, nonce)."""
    _check_key(key_id, secret)
    timestamp = _unix(now)
    digest = body_digest(body)
    canonical = canonical_response(status, request_method, request_path, request_nonce,
                                   timestamp, key_id, digest)
    return {
        HEADER_KEY: key_id,
        HEADER_TIMESTAMP: timestamp,
        HEADER_CONTENT_SHA256: digest,
        HEADER_SIGNATURE: _mac(secret, canonical),
    }


# --- verifying ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claimed:
    key_id: str
    timestamp: str
    moment: datetime
    nonce: str
    content_sha256: str
    signature: str


def get_header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        for key, candidate in headers.items():
            if key.lower() == wanted:
                return candidate
    return value


def _claimed(headers: Mapping[str, str], *, with_nonce: bool) -> _Claimed:
    names = [HEADER_KEY, HEADER_TIMESTAMP, HEADER_CONTENT_SHA256, HEADER_SIGNATURE]
    if with_nonce:
        names.append(HEADER_NONCE)
    values = {name: get_header(headers, name) for name in names}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise SignatureError("missing_signature", "missing header(s): " + ", ".join(missing))
    key_id = values[HEADER_KEY] or ""
    timestamp = values[HEADER_TIMESTAMP] or ""
    nonce = values.get(HEADER_NONCE) or ""
    digest = values[HEADER_CONTENT_SHA256] or ""
    signature = values[HEADER_SIGNATURE] or ""
    if not KEY_ID_RE.fullmatch(key_id):
        raise SignatureError("malformed_signature", f"{HEADER_KEY} is 1-64 of A-Z a-z 0-9 . _ -")
    if not TIMESTAMP_RE.fullmatch(timestamp):
        raise SignatureError("malformed_signature", f"{HEADER_TIMESTAMP} is unix seconds")
    if with_nonce and not NONCE_RE.fullmatch(nonce):
        raise SignatureError("malformed_signature",
                             f"{HEADER_NONCE} is 22-128 base64url characters")
    if not HEX64_RE.fullmatch(digest):
        raise SignatureError("malformed_signature", f"{HEADER_CONTENT_SHA256} is 64 hex digits")
    if not HEX64_RE.fullmatch(signature):
        raise SignatureError("malformed_signature", f"{HEADER_SIGNATURE} is 64 hex digits")
    try:
        moment = datetime.fromtimestamp(int(timestamp), UTC)
    except (OverflowError, OSError, ValueError):
        raise SignatureError("stale_timestamp", "the timestamp is out of range") from None
    return _Claimed(key_id, timestamp, moment, nonce, digest.lower(), signature.lower())


def _check_clock(claimed: _Claimed, now: datetime, window: timedelta) -> None:
    skew = claimed.moment - _aware(now, "now")
    if abs(skew) > window:
        raise SignatureError(
            "stale_timestamp",
            f"the timestamp is {int(skew.total_seconds())} s from the verifier's clock; "
            f"at most {int(window.total_seconds())} s is accepted")


def _secrets(lookup: SecretLookup, key_id: str) -> list[bytes]:
    found = lookup(key_id)
    if found is None:
        candidates: list[bytes] = []
    elif isinstance(found, bytes | bytearray):
        candidates = [bytes(found)]
    else:
        candidates = [bytes(s) for s in found]
    if not candidates:
        raise SignatureError("unknown_key", f"no active secret for key {key_id!r}")
    return candidates


def _check_mac(candidates: list[bytes], canonical: str, signature: str) -> None:
    matched = False
    for secret in candidates:  # every candidate is tried: the time does not tell which matched
        matched |= hmac.compare_digest(_mac(secret, canonical), signature)
    if not matched:
        raise SignatureError("bad_signature", "the signature does not match")


def _check_digest(claimed: _Claimed, body: bytes) -> None:
    if not hmac.compare_digest(body_digest(body), claimed.content_sha256):
        raise SignatureError("body_digest_mismatch",
                             f"the body does not match {HEADER_CONTENT_SHA256}")


def verify(method: str, path: str, headers: Mapping[str, str], body: bytes,
           lookup_secret: SecretLookup, nonce_seen: NonceSeen, *, now: datetime,
           window: timedelta = DEFAULT_WINDOW) -> str:
    """Authenticate a request; the key id that signed it, or :class:`SignatureError`.

    ``path`` is the raw request target (path and query, percent-encoding as received).
    Checks, in order: headers present and well formed; timestamp within ``window`` of ``now``
    (inclusive); key known; signature (any active secret); body digest; nonce unseen. The
    nonce is recorded only for a request whose signature verified, so nobody can burn a
    legitimate request's nonce by racing it with a forgery.
    """
    claimed = _claimed(headers, with_nonce=True)
    _check_clock(claimed, now, window)
    candidates = _secrets(lookup_secret, claimed.key_id)
    try:
        canonical = canonical_request(method, path, claimed.timestamp, claimed.nonce,
                                      claimed.key_id, claimed.content_sha256)
    except ValueError as exc:
        raise SignatureError("bad_signature", str(exc)) from None
    _check_mac(candidates, canonical, claimed.signature)
    _check_digest(claimed, body)
    if nonce_seen(claimed.key_id, claimed.nonce, claimed.moment + window):
        raise SignatureError("replayed_nonce", "this nonce was already used with this key")
    return claimed.key_id


def verify_response(status: int, headers: Mapping[str, str], body: bytes,
                    lookup_secret: SecretLookup, *, request_method: str, request_path: str,
                    request_nonce: str, now: datetime,
                    window: timedelta = DEFAULT_WINDOW) -> str:
    """Authenticate a response to the request (method, path, nonce); the key id that signed."""
    claimed = _claimed(headers, with_nonce=False)
    _check_clock(claimed, now, window)
    candidates = _secrets(lookup_secret, claimed.key_id)
    try:
        canonical = canonical_response(status, request_method, request_path, request_nonce,
                                       claimed.timestamp, claimed.key_id,
                                       claimed.content_sha256)
    except ValueError as exc:
        raise SignatureError("bad_signature", str(exc)) from None
    _check_mac(candidates, canonical, claimed.signature)
    _check_digest(claimed, body)
    return claimed.key_id


# --- an in-memory nonce store ------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


class InMemoryNonceStore:
    """A :data:`NonceSeen` for tests, simulators and single-process units.

    Entries are forgotten once their keep-until moment is before ``clock()``; give the same
    clock that supplies ``now`` to :func:`verify`. Thread-safe. Not shared between processes:
    a server with several processes needs a shared store (a table with a unique constraint).
    """

    def __init__(self, clock: Callable[[], datetime] = _utcnow) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], datetime] = {}
        self._expiry: list[tuple[datetime, str, str]] = []

    def __call__(self, key_id: str, nonce: str, keep_until: datetime) -> bool:
        with self._lock:
            self._purge(self._clock())
            entry = (key_id, nonce)
            if entry in self._seen:
                return True
            self._seen[entry] = keep_until
            heapq.heappush(self._expiry, (keep_until, key_id, nonce))
            return False

    def _purge(self, now: datetime) -> None:
        while self._expiry and self._expiry[0][0] < now:
            _, key_id, nonce = heapq.heappop(self._expiry)
            self._seen.pop((key_id, nonce), None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)
