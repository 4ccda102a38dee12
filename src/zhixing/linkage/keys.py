"""Unit keys: issue, rotate, revoke, and look up secrets for signing and checking.

HMAC needs the secret itself on the platform's side, so secrets cannot be hashed like
passwords. They are sealed at rest with AES-256-GCM under a key derived (HKDF) from
``ZHIXING_SECRET_KEY``, the key id bound as associated data, so a database dump alone does not
let anyone sign as a bank, and a sealed secret moved to another key row does not open.
"""

from __future__ import annotations

import base64
import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from zhixing.core import audit
from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.core.errors import Conflict, NotFound
from zhixing.core.settings import get_settings
from zhixing.core.signals import SIGNALS, still_fresh
from zhixing.linkage import signing
from zhixing.linkage.models import KeyRole, LinkageUnit, UnitKey

ROTATION_OVERLAP = timedelta(days=7)
_SEAL_VERSION = "v1"


@lru_cache(maxsize=4)
def _sealing_key(secret_key: str) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"zhixing-linkage-keys",
                   info=b"unit-secret-sealing-v1").derive(secret_key.encode())
    return AESGCM(derived)


def seal(key_id: str, secret: bytes) -> str:
    nonce = os.urandom(12)
    box = _sealing_key(get_settings().secret_key).encrypt(nonce, secret, key_id.encode())
    return f"{_SEAL_VERSION}.{base64.urlsafe_b64encode(nonce + box).decode().rstrip('=')}"


def unseal(key_id: str, sealed: str) -> bytes:
    version, _, text = sealed.partition(".")
    if version != _SEAL_VERSION:
        raise ValueError("unknown sealing version")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    try:
        return _sealing_key(get_settings().secret_key).decrypt(raw[:12], raw[12:],
                                                                key_id.encode())
    except InvalidTag:
        raise ValueError(f"the secret of key {key_id} does not open: was ZHIXING_SECRET_KEY "
                         "changed?") from None


@dataclass(frozen=True)
class IssuedKeys:
    """What is handed to the unit at onboarding, over a separate channel, once."""

    unit_code: str
    key_id: str
    secret: str
    platform_key_id: str
    platform_secret: str


def _active(session: Session, unit_id: int, role: KeyRole) -> UnitKey | None:
    return session.scalar(select(UnitKey).where(UnitKey.unit_id == unit_id, UnitKey.role == role,
                                                UnitKey.revoked_at.is_(None))
                          .order_by(UnitKey.id.desc()).limit(1))


def issue(session: Session, actor: Actor, unit: LinkageUnit) -> IssuedKeys:
    """New unit and platform keys for a unit, revoking any it had (a fresh onboarding)."""
    now = utcnow()
    for key in session.scalars(select(UnitKey).where(UnitKey.unit_id == unit.id,
                                                     UnitKey.revoked_at.is_(None))):
        key.revoked_at = now
    count = session.query(UnitKey).filter(UnitKey.unit_id == unit.id).count()
    suffix = f"k{count // 2 + 1}"
    unit_key_id, platform_key_id = f"{unit.code}-{suffix}", f"zhixing-{unit.code}-{suffix}"
    secret, platform_secret = signing.generate_secret(), signing.generate_secret()
    session.add_all([
        UnitKey(unit_id=unit.id, key_id=unit_key_id, role=KeyRole.UNIT, created_at=now,
                sealed_secret=seal(unit_key_id, signing.decode_secret(secret))),
        UnitKey(unit_id=unit.id, key_id=platform_key_id, role=KeyRole.PLATFORM, created_at=now,
                sealed_secret=seal(platform_key_id, signing.decode_secret(platform_secret))),
    ])
    session.flush()
    forget_callers_after_commit(session)
    audit.record(session, actor, "linkage.keys_issued", object_type="linkage_unit",
                 object_id=unit.id, details={"key_id": unit_key_id,
                                             "platform_key_id": platform_key_id})
    return IssuedKeys(unit.code, unit_key_id, secret, platform_key_id, platform_secret)


def rotate(session: Session, actor: Actor, unit: LinkageUnit) -> tuple[str, str]:
    """A new secret for the unit key (same key id); the old one is accepted for a week."""
    key = _active(session, unit.id, KeyRole.UNIT)
    if key is None:
        raise NotFound("the unit has no active key; issue keys first", code="no_active_key")
    now = utcnow()
    if key.previous_valid_until is not None and key.previous_valid_until > now:
        raise Conflict("a rotation is already in progress", code="rotation_in_progress")
    secret = signing.generate_secret()
    key.sealed_previous = key.sealed_secret
    key.previous_valid_until = now + ROTATION_OVERLAP
    key.sealed_secret = seal(key.key_id, signing.decode_secret(secret))
    key.rotated_at = now
    forget_callers_after_commit(session)
    audit.record(session, actor, "linkage.key_rotated", object_type="linkage_unit",
                 object_id=unit.id, details={"key_id": key.key_id})
    return key.key_id, secret


def revoke(session: Session, actor: Actor, unit: LinkageUnit) -> int:
    """Every key of the unit stops working at once (the next request is refused)."""
    now = utcnow()
    keys = list(session.scalars(select(UnitKey).where(UnitKey.unit_id == unit.id,
                                                      UnitKey.revoked_at.is_(None))))
    for key in keys:
        key.revoked_at = now
    forget_callers_after_commit(session)
    audit.record(session, actor, "linkage.keys_revoked", object_type="linkage_unit",
                 object_id=unit.id, details={"count": len(keys)})
    return len(keys)


@dataclass(frozen=True)
class UnitCredentials:
    """A unit as its signed request identified it."""

    unit_id: int
    key_id: str
    secrets: tuple[bytes, ...]


def unit_secrets(session: Session, key_id: str) -> UnitCredentials | None:
    """The secrets a unit key accepts now (two during a rotation), or None."""
    key = session.scalar(select(UnitKey).where(UnitKey.key_id == key_id,
                                               UnitKey.role == KeyRole.UNIT,
                                               UnitKey.revoked_at.is_(None)))
    if key is None:
        return None
    found = [unseal(key.key_id, key.sealed_secret)]
    if key.sealed_previous and key.previous_valid_until and key.previous_valid_until > utcnow():
        found.append(unseal(key.key_id, key.sealed_previous))
    return UnitCredentials(key.unit_id, key.key_id, tuple(found))


def platform_key(session: Session, unit_id: int) -> tuple[str, bytes]:
    """The key the platform signs with towards this unit."""
    key = _active(session, unit_id, KeyRole.PLATFORM)
    if key is None:
        raise NotFound("the unit has no platform key", code="no_active_key")
    return key.key_id, unseal(key.key_id, key.sealed_secret)


def unit_key(session: Session, unit_id: int) -> tuple[str, list[bytes]]:
    """The unit's key id and accepted secrets, to check its signed answers to pushes."""
    key = _active(session, unit_id, KeyRole.UNIT)
    if key is None:
        raise NotFound("the unit has no key", code="no_active_key")
    creds = unit_secrets(session, key.key_id)
    assert creds is not None
    return key.key_id, list(creds.secrets)


def expire_rotations(session: Session, now: datetime | None = None) -> None:
    """Forget previous secrets once their overlap has passed."""
    moment = now or utcnow()
    for key in session.scalars(select(UnitKey).where(UnitKey.previous_valid_until <= moment)):
        key.sealed_previous = None
        key.previous_valid_until = None


# --- the signed-request path's cache --------------------------------------------------------

CACHE_SECONDS = 1.0  # while signals are not heard (SQLite, the listener reconnecting)
KEYS_CHANNEL = "keys"  # any process's change to units or their keys (zhixing.hooks)


@dataclass(frozen=True)
class CallerKeys:
    """Everything authenticating a unit's request needs, unsealed: looked up once a second per
    key instead of three queries and two AES-GCM openings per request."""

    unit_id: int
    unit_code: str
    enabled: bool
    key_id: str
    current: bytes
    previous: bytes | None
    previous_valid_until: datetime | None
    platform_key_id: str
    platform_secret: bytes
    loaded_at: float
    generation: int  # of the keys channel when loaded

    def fresh(self) -> bool:
        return still_fresh(KEYS_CHANNEL, self.generation, time.monotonic() - self.loaded_at,
                           unheard=CACHE_SECONDS)

    def secrets(self, now: datetime) -> tuple[bytes, ...]:
        """The secrets accepted at ``now`` (the rotation overlap is checked on every use)."""
        if self.previous is not None and self.previous_valid_until is not None \
                and self.previous_valid_until > now:
            return (self.current, self.previous)
        return (self.current,)


_callers: dict[str, CallerKeys] = {}


def caller_keys(session: Session, key_id: str) -> CallerKeys | None:
    """The unit key ``key_id`` with its unit and platform key; None if unknown or revoked.

    Served from this process's cache. A change made here (issue, rotate, revoke, a unit
    switched off) empties the cache when it commits. Another process's change reaches this
    one by its commit signal (PostgreSQL ``NOTIFY`` on the keys channel) within milliseconds;
    without signals (SQLite, the listener reconnecting) an entry lives :data:`CACHE_SECONDS`.
    Looked up again every second, the three queries were most of a fetch's cost."""
    hit = _callers.get(key_id)
    if hit is not None and hit.fresh():
        return hit
    generation = SIGNALS.mark(KEYS_CHANNEL)  # before reading: a change meanwhile invalidates
    key = session.scalar(select(UnitKey).where(UnitKey.key_id == key_id,
                                               UnitKey.role == KeyRole.UNIT,
                                               UnitKey.revoked_at.is_(None)))
    if key is None:
        _callers.pop(key_id, None)
        return None
    unit = session.get(LinkageUnit, key.unit_id)
    assert unit is not None
    platform_key_id, platform_secret = platform_key(session, unit.id)
    loaded = CallerKeys(
        unit.id, unit.code, unit.enabled, key.key_id, unseal(key.key_id, key.sealed_secret),
        unseal(key.key_id, key.sealed_previous) if key.sealed_previous else None,
        key.previous_valid_until, platform_key_id, platform_secret, time.monotonic(),
        generation)
    _callers[key_id] = loaded
    return loaded


def forget_callers() -> None:
    _callers.clear()


def forget_callers_after_commit(session: Session) -> None:
    event.listen(session, "after_commit", lambda _s: forget_callers(), once=True)
