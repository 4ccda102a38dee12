"""Courts, their command centers, and the people and machines that act in them."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from zhixing.core.db import Base, EnumText, utcnow_column_default


class CourtLevel(enum.StrEnum):
    HIGH = "high"
    INTERMEDIATE = "intermediate"
    BASIC = "basic"


class Role(enum.StrEnum):
    OFFICER = "officer"  # 执行员 / 执行法官
    APPROVER = "approver"  # 审批人 (执行局长)
    DUTY_OFFICER = "duty_officer"  # 值班员
    DUTY_LEADER = "duty_leader"  # 值班领导
    BAILIFF = "bailiff"  # 法警
    ADMIN = "admin"  # 系统管理员
    AUDITOR = "auditor"  # 审计员


class Court(Base):
    __tablename__ = "courts"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)  # 桂, 桂01, 桂0103
    division_code: Mapped[str] = mapped_column(String(6))  # GB/T 2260
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(128))
    short_name_zh: Mapped[str] = mapped_column(String(32))
    level: Mapped[CourtLevel] = mapped_column(EnumText(CourtLevel, 16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("courts.id"), index=True)
    # "/桂/桂01/桂0103/": a court's subordinates are the rows whose path starts with its path.
    path: Mapped[str] = mapped_column(String(64), index=True)
    lon: Mapped[float | None]
    lat: Mapped[float | None]

    parent: Mapped[Court | None] = relationship(remote_side=[id])
    command_center: Mapped[CommandCenter] = relationship(back_populates="court", uselist=False)


class CommandCenter(Base):
    """执行指挥中心: one per court, three levels following the courts."""

    __tablename__ = "command_centers"

    id: Mapped[int] = mapped_column(primary_key=True)
    court_id: Mapped[int] = mapped_column(ForeignKey("courts.id"), unique=True)
    name_zh: Mapped[str] = mapped_column(String(96))
    name_en: Mapped[str] = mapped_column(String(160))
    duty_phone: Mapped[str | None] = mapped_column(String(32))

    court: Mapped[Court] = relationship(back_populates="command_center")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    court_id: Mapped[int] = mapped_column(ForeignKey("courts.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    locale: Mapped[str | None] = mapped_column(String(8))
    # 执行公务证号: named on every network query and control order the officer makes.
    certificate_number: Mapped[str | None] = mapped_column(String(32))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)
    last_login_at: Mapped[datetime | None]

    court: Mapped[Court] = relationship()
    role_rows: Mapped[list[UserRole]] = relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(Role(r.role) for r in self.role_rows)


class UserRole(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(32), primary_key=True)


class WebSession(Base):
    """A console login. The cookie holds a random token; only its SHA-256 is stored."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)
    expires_at: Mapped[datetime]
    client_ip: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class ApiToken(Base):
    """Bearer token for a person using the JSON API."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)
    expires_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class ClientKind(enum.StrEnum):
    LINKAGE_UNIT = "linkage_unit"  # 联动单位: banks and registries
    PARTNER = "partner"  # 惩戒合作单位: credit bureau, airlines, railways, border control


class ApiKey(Base):
    """Credential of a machine client. Only the secret's SHA-256 is kept for bearer use."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_client", "client_kind", "client_ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    client_kind: Mapped[ClientKind] = mapped_column(EnumText(ClientKind, 16))
    client_ref: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


__all__ = [
    "ApiKey",
    "ApiToken",
    "ClientKind",
    "CommandCenter",
    "Court",
    "CourtLevel",
    "Role",
    "User",
    "UserRole",
    "WebSession",
]
