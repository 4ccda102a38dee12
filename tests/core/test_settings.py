from __future__ import annotations

import pytest
from pydantic import ValidationError

from zhixing.core.settings import DEVELOPMENT_SECRET, Settings


class TestProductionSecret:
    def test_refuses_default_secret_in_production(self) -> None:
        with pytest.raises(ValidationError, match="ZHIXING_SECRET_KEY"):
            Settings(env="production", secret_key=DEVELOPMENT_SECRET)

    def test_refuses_short_secret_in_production(self) -> None:
        with pytest.raises(ValidationError, match="at least 32"):
            Settings(env="production", secret_key="short")

    def test_accepts_real_secret_in_production(self) -> None:
        s = Settings(env="production", secret_key="x" * 40)
        assert s.cookies_secure is True

    def test_development_allows_default(self) -> None:
        s = Settings(env="development")
        assert s.cookies_secure is False

    def test_reads_prefixed_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ZHIXING_PORT", "9123")
        monkeypatch.setenv("ZHIXING_LOCALE", "en")
        s = Settings()
        assert (s.port, s.locale) == (9123, "en")
