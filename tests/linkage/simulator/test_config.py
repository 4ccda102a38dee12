from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.linkage.simulator import secret_text, unit_config
from zhixing.linkage.simulator.config import SimulatorConfig, load_config


def config_data(**unit_changes: Any) -> dict[str, Any]:
    unit = json.loads(unit_config().model_dump_json())
    unit.update(unit_changes)
    return {"base_url": "http://127.0.0.1:8000", "units": [unit]}


def test_the_file_the_platform_writes_is_read(tmp_path: Path) -> None:
    data = config_data(push_url=None, comment="the platform may add notes")
    data["generated_at"] = "2026-11-26T10:00:00+08:00"
    path = tmp_path / "units.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    config = load_config(path)
    [unit] = config.units
    assert unit.code == "bank-icbc" and unit.delivery_mode == "pull"
    assert unit.secret_bytes == (b"bank-icbc" * 32)[:32]
    assert unit.platform_secret_bytes == (b"platform-bank-icbc" * 32)[:32]


def test_push_mode_needs_an_http_url_with_a_port() -> None:
    with pytest.raises(ValidationError, match="push_url"):
        SimulatorConfig.model_validate(config_data(delivery_mode="push"))
    with pytest.raises(ValidationError, match="push_url"):
        SimulatorConfig.model_validate(config_data(delivery_mode="push",
                                                   push_url="https://bank.example/push"))
    config = SimulatorConfig.model_validate(config_data(
        delivery_mode="push", push_url="http://0.0.0.0:9101/zhixing/push"))
    assert config.units[0].push_bind == ("0.0.0.0", 9101, "/zhixing/push")  # noqa: S104


@pytest.mark.parametrize("changes", [
    {"secret": "too-short"},
    {"platform_secret": "not base64 !!"},
    {"code": "../escape"},
    {"unit_type": "court"},
    {"query_kinds": ["gossip"]},
])
def test_bad_units_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SimulatorConfig.model_validate(config_data(**changes))


def test_unit_codes_are_unique_and_selectable() -> None:
    data = config_data()
    second = {**data["units"][0], "code": "bank-ccb", "secret": secret_text("ccb")}
    config = SimulatorConfig.model_validate({**data, "units": [*data["units"], second]})
    assert [u.code for u in config.select(None)] == ["bank-icbc", "bank-ccb"]
    assert [u.code for u in config.select(["bank-ccb"])] == ["bank-ccb"]
    with pytest.raises(ValueError, match="bank-nope"):
        config.select(["bank-nope"])
    with pytest.raises(ValidationError, match="unique"):
        SimulatorConfig.model_validate({**data, "units": data["units"] * 2})
