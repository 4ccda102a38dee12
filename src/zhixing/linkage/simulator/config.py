"""The simulator's configuration file: the platform's address and every linked unit's keys.

The platform (its demo set-up or CLI) writes this JSON; the simulator only reads it. Fields the
simulator does not know are ignored, so the platform may add its own notes without breaking it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from zhixing.linkage import signing
from zhixing.linkage.wire import ControlKind, QueryKind

UnitCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
"""A unit's code; it also names the unit's ledger file, hence the file-name-safe alphabet."""
KeyId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")]


class UnitConfig(BaseModel):
    """One linked unit as the platform registered it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    code: UnitCode
    name: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    unit_type: Literal["bank", "department"]
    query_kinds: list[QueryKind] = Field(default_factory=list)
    control_kinds: list[ControlKind] = Field(default_factory=list)
    delivery_mode: Literal["pull", "push"]
    push_url: str | None = None
    key_id: KeyId
    secret: str
    platform_key_id: KeyId
    platform_secret: str
    online_deduct: bool = False

    @model_validator(mode="after")
    def _check(self) -> Self:
        # Decode once here so a bad secret fails at start-up, not at the first request.
        signing.decode_secret(self.secret)
        signing.decode_secret(self.platform_secret)
        if self.delivery_mode == "push":
            if not self.push_url:
                raise ValueError(f"unit {self.code}: push mode needs push_url")
            parts = urlsplit(self.push_url)
            if parts.scheme != "http" or not parts.hostname or parts.port is None:
                # The simulator serves plain HTTP on the port it binds; TLS is the job of a
                # proxy in front of a real unit, not of a test double.
                raise ValueError(f"unit {self.code}: push_url is http://host:port/path")
        return self

    @property
    def secret_bytes(self) -> bytes:
        return signing.decode_secret(self.secret)

    @property
    def platform_secret_bytes(self) -> bytes:
        return signing.decode_secret(self.platform_secret)

    @property
    def push_bind(self) -> tuple[str, int, str]:
        """(host, port, path) the push server listens on, taken from ``push_url``."""
        if not self.push_url:
            raise ValueError(f"unit {self.code} is not in push mode")
        parts = urlsplit(self.push_url)
        assert parts.hostname is not None and parts.port is not None  # checked above
        return parts.hostname, parts.port, parts.path or "/"


class SimulatorConfig(BaseModel):
    """``{"base_url": ..., "units": [...]}``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    base_url: Annotated[str, StringConstraints(pattern=r"^https?://")]
    units: list[UnitConfig]

    @model_validator(mode="after")
    def _unique(self) -> Self:
        codes = [u.code for u in self.units]
        if len(set(codes)) != len(codes):
            raise ValueError("unit codes are unique")
        return self

    def select(self, only: list[str] | tuple[str, ...] | None = None) -> list[UnitConfig]:
        """The units to run: all, or those named in ``only`` (unknown codes are an error)."""
        if not only:
            return list(self.units)
        known = {u.code for u in self.units}
        unknown = sorted(set(only) - known)
        if unknown:
            raise ValueError(f"no such unit in the configuration: {', '.join(unknown)}")
        return [u for u in self.units if u.code in set(only)]


def load_config(path: Path | str) -> SimulatorConfig:
    """Read and validate the configuration file."""
    return SimulatorConfig.model_validate_json(Path(path).read_bytes())
