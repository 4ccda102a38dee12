"""Partner API keys resolved without a database round trip on the screening hot path.

An airline screens every passenger: most requests are a single clean check that the in-memory
index answers in microseconds, and the key look-up (a query, a transaction) would be most of
the work. So a resolved key is kept: its secret's digest, whether it is revoked, and a snapshot
of the partner (id, activities, switched on). Changes made through this process (revoking a key,
switching a partner off, changing its activities) drop the cache at once; another API process
drops it when the change's commit signal arrives (PostgreSQL ``NOTIFY``, milliseconds), or
within :data:`TTL_SECONDS` while it does not hear signals (SQLite, its listener reconnecting).
docs/partner-api.md states the bound.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.core.errors import Forbidden, Unauthenticated
from zhixing.core.security import constant_time_equal, token_digest
from zhixing.core.signals import SIGNALS, still_fresh
from zhixing.courts.models import ApiKey, ClientKind
from zhixing.credit.models import Partner

TTL_SECONDS = 1.0  # while signals are not heard (SQLite, the listener reconnecting)
KEYS_CHANNEL = "partner_keys"  # any process's change to API keys or partners (zhixing.hooks)


@dataclass(frozen=True)
class PartnerView:
    """What the hot path needs of a partner, detached from any session."""

    id: int
    code: str
    activities: list[str]
    enabled: bool
    hashed_ids: bool


@dataclass(frozen=True)
class _Resolved:
    secret_hash: str
    revoked: bool
    client_kind: str
    partner: PartnerView | None
    at: float
    generation: int  # of the keys channel when read


_cache: dict[str, _Resolved] = {}
_lock = threading.Lock()


def bearer_key(authorization: str) -> tuple[str, str] | None:
    """(key id, secret) of a ``Bearer zxk_….secret`` header, else None."""
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value.startswith("zxk_"):
        return None
    key_id, _, secret = value.partition(".")
    return key_id, secret


def cached(key_id: str) -> _Resolved | None:
    hit = _cache.get(key_id)
    if hit is None or not still_fresh(KEYS_CHANNEL, hit.generation, time.monotonic() - hit.at,
                                      unheard=TTL_SECONDS):
        return None
    return hit


def load(session: Session, key_id: str) -> _Resolved | None:
    generation = SIGNALS.mark(KEYS_CHANNEL)  # before reading: a change meanwhile invalidates
    row = session.execute(
        select(ApiKey.secret_hash, ApiKey.revoked_at, ApiKey.client_kind, Partner)
        .outerjoin(Partner, (Partner.code == ApiKey.client_ref)
                   & (ApiKey.client_kind == ClientKind.PARTNER))
        .where(ApiKey.key_id == key_id)).first()
    if row is None:
        return None
    p: Partner | None = row.Partner
    view = PartnerView(p.id, p.code, list(p.activities), p.enabled, p.hashed_ids) if p else None
    resolved = _Resolved(row.secret_hash, row.revoked_at is not None, str(row.client_kind),
                         view, time.monotonic(), generation)
    with _lock:
        _cache[key_id] = resolved
    return resolved


def check(resolved: _Resolved | None, secret: str) -> PartnerView:
    """The partner of a resolved key, or the 401/403 the caller gets."""
    if (resolved is None or resolved.revoked or not secret
            or not constant_time_equal(token_digest(secret), resolved.secret_hash)):
        raise Unauthenticated("unknown or revoked API key", code="invalid_token")
    if resolved.client_kind != ClientKind.PARTNER or resolved.partner is None:
        raise Forbidden("this route is for partner agencies", code="partner_only")
    if not resolved.partner.enabled:
        raise Forbidden("this partner is switched off", code="partner_disabled")
    return resolved.partner


def forget(key_id: str | None = None) -> None:
    """Drop one key (or all) after a change made here: the next request reads the database."""
    with _lock:
        if key_id is None:
            _cache.clear()
        else:
            _cache.pop(key_id, None)
