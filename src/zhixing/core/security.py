"""Password hashing and random secrets."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

from zhixing.core.settings import get_settings

MIN_PASSWORD_LENGTH = 10


@lru_cache(maxsize=2)
def _hasher_for(env: str) -> tuple[PasswordHasher, str]:
    """The hasher and a dummy hash for an environment. RFC 9106's low-memory profile (64 MiB,
    3 passes) everywhere but the test suite, which logs in thousands of times and would spend
    minutes of CPU in it; there argon2's own cheapest profile, meant for tests. A hash made
    under one profile is rehashed under the other at the next login (``needs_rehash``)."""
    params = profiles.CHEAPEST if env == "test" else profiles.RFC_9106_LOW_MEMORY
    hasher = PasswordHasher.from_parameters(params)
    # Verified against when the user does not exist, so an unknown name costs as much as a
    # wrong password and the two cannot be told apart by timing.
    return hasher, hasher.hash("zhixing-no-such-user")


def _hasher() -> tuple[PasswordHasher, str]:
    return _hasher_for(get_settings().env)


def hash_password(password: str) -> str:
    return _hasher()[0].hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    hasher, dummy = _hasher()
    try:
        return hasher.verify(password_hash or dummy, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher()[0].check_needs_rehash(password_hash)


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def token_digest(token: str) -> str:
    """Tokens are high-entropy random strings: a plain SHA-256 is the right store for them."""
    return hashlib.sha256(token.encode()).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
