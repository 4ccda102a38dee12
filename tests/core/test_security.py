"""Password hashing: RFC 9106's profile outside the test suite, and hashes follow the profile."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import extract_parameters, profiles

from zhixing.core import security
from zhixing.core.settings import get_settings


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    yield monkeypatch
    get_settings.cache_clear()


def hash_under(env: pytest.MonkeyPatch, name: str, password: str) -> str:
    env.setenv("ZHIXING_ENV", name)
    get_settings.cache_clear()
    return security.hash_password(password)


def test_production_and_development_hash_with_rfc_9106_low_memory(env: pytest.MonkeyPatch
                                                                  ) -> None:
    for name in ("development", "production"):
        env.setenv("ZHIXING_SECRET_KEY", "k" * 40)
        params = extract_parameters(hash_under(env, name, "correct horse 1"))
        assert params == profiles.RFC_9106_LOW_MEMORY


def test_a_hash_from_the_other_profile_verifies_and_is_marked_for_rehash(
        env: pytest.MonkeyPatch) -> None:
    cheap = hash_under(env, "test", "correct horse 1")
    assert extract_parameters(cheap) == profiles.CHEAPEST
    strong = hash_under(env, "development", "correct horse 1")
    assert security.verify_password(cheap, "correct horse 1")
    assert not security.verify_password(cheap, "correct horse 2")
    assert security.password_needs_rehash(cheap)
    assert not security.password_needs_rehash(strong)


def test_an_unknown_user_is_refused(env: pytest.MonkeyPatch) -> None:
    hash_under(env, "test", "x" * 10)
    assert not security.verify_password(None, "zhixing-no-such-user")
    assert not security.verify_password("not a hash", "x" * 10)
