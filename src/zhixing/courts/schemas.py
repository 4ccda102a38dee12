"""API shapes of the courts domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TokenCreate(StrictModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    name: str = Field(default="api", max_length=64)


class TokenRead(BaseModel):
    token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth token type, not a secret)
    expires_at: datetime


class CourtRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    division_code: str
    name_zh: str
    name_en: str
    short_name_zh: str
    level: str
    parent_code: str | None
    lon: float | None
    lat: float | None
    command_center: str


class CourtList(BaseModel):
    items: list[CourtRead]


class MeRead(BaseModel):
    id: int
    username: str
    display_name: str
    court_code: str
    court_name: str
    roles: list[str]


class UserCreate(StrictModel):
    username: str = Field(min_length=3, max_length=64)
    display_name: str = Field(min_length=1, max_length=64)
    court_code: str = Field(min_length=1, max_length=16)
    password: str = Field(min_length=1, max_length=256)
    roles: list[str] = Field(min_length=1, max_length=10)


class UserUpdate(StrictModel):
    display_name: str | None = Field(default=None, max_length=64)
    roles: list[str] | None = Field(default=None, max_length=10)
    is_active: bool | None = None
    password: str | None = Field(default=None, max_length=256)


class UserRead(BaseModel):
    id: int
    username: str
    display_name: str
    court_code: str
    roles: list[str]
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None


class UserList(BaseModel):
    items: list[UserRead]
    next_cursor: str | None


class AuditRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    occurred_at: datetime
    actor_kind: str
    actor_name: str | None
    actor_roles: str | None
    court_id: int | None
    action: str
    object_type: str | None
    object_id: str | None
    case_id: int | None
    purpose: str | None
    client_ip: str | None
    details: dict[str, Any]
    hash: str


class AuditList(BaseModel):
    items: list[AuditRead]
    next_cursor: str | None
