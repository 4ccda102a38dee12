"""Keyset pagination: fetch ``limit + 1`` rows past an opaque cursor; no COUNT over big tables."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from zhixing.core.errors import ValidationFailed

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> list[Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed("cursor is not valid", code="invalid_cursor",
                               field="cursor") from None
    if not isinstance(values, list):
        raise ValidationFailed("cursor is not valid", code="invalid_cursor", field="cursor")
    return values


def cursor_int(cursor: str | None) -> int | None:
    """A cursor holding one integer key (an id or sequence number)."""
    values = decode_cursor(cursor)
    if values is None:
        return None
    if len(values) != 1 or not isinstance(values[0], int) or isinstance(values[0], bool):
        raise ValidationFailed("cursor is not valid", code="invalid_cursor", field="cursor")
    return values[0]


def clamp_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if limit < 1 or limit > MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}",
                               code="invalid_limit", field="limit")
    return limit


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def page_from(rows: Sequence[T], limit: int, key: Any) -> Page[T]:
    """``rows`` came from a query with ``LIMIT limit + 1``; ``key(row)`` gives the cursor."""
    items = list(rows[:limit])
    nxt = encode_cursor(key(items[-1])) if len(rows) > limit and items else None
    return Page(items, nxt)
