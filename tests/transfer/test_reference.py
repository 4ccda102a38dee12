"""Loading a court's reference data from files: courts and command centers, users, linked units
and partners; idempotent, audited, refused whole with the line and field of each problem.

Courts are kept between the tests of the shared database, so this module loads into a scratch
database of its own (SQLite or PostgreSQL, as the suite runs).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

import zhixing.core.db as core_db
from tests.support.database import ScratchDatabase, create_test_database
from zhixing.cli import app as cli_app
from zhixing.core.actor import Actor
from zhixing.core.db import make_engine, set_engine, transaction
from zhixing.core.migrate import upgrade
from zhixing.core.models import AuditRecord
from zhixing.core.security import verify_password
from zhixing.courts.models import CommandCenter, Court, User
from zhixing.courts.service import sync_courts
from zhixing.credit.models import Partner
from zhixing.linkage.models import LinkageUnit
from zhixing.transfer.reference import LoadResult, ReferenceInvalid, load_reference

ACTOR = Actor(kind="system", id="load-reference", name="load-reference (test)")

COURT = {"code": "桂0199", "division_code": "450199", "name_zh": "南宁铁路运输法院",
         "name_en": "Nanning Railway Transport Court", "short_name_zh": "南宁铁路法院",
         "level": "basic", "parent": "桂01", "lon": 108.3, "lat": 22.8,
         "command_center": {"name_zh": "南宁铁路运输法院执行指挥中心",
                            "name_en": "Enforcement Command Center, Nanning Railway Court",
                            "duty_phone": "0771-1234567"}}
USERS = [
    {"username": "rail.officer", "display_name": "执行法官 甲", "court": "桂0199",
     "roles": ["officer"], "certificate_number": "桂执0199001"},
    {"username": "rail.head", "display_name": "执行局长 乙", "court": "桂0199",
     "roles": ["approver", "officer"]},
]
UNIT = {"code": "bank-rail", "name_zh": "铁路银行南宁分行", "name_en": "Railway Bank, Nanning",
        "unit_type": "bank", "query_kinds": ["deposits"],
        "control_kinds": ["freeze", "release"], "online_deduct": False,
        "expected_response_minutes": 60}
PARTNER = {"code": "rail-bureau", "name_zh": "南宁铁路局", "name_en": "Nanning Railway Bureau",
           "kind": "railway", "activities": ["high_speed_train"]}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    scratch: ScratchDatabase = create_test_database(
        Path(tmp_path_factory.mktemp("reference")), "reference_")
    eng = make_engine(scratch.url)
    try:
        upgrade(eng)
        with Session(eng) as session:
            sync_courts(session)
            session.commit()
        yield eng
    finally:
        eng.dispose()
        scratch.destroy()


@contextmanager
def pointed_at(engine: Engine) -> Iterator[None]:
    saved = (core_db._engine, core_db._session_factory)
    set_engine(engine)
    try:
        yield
    finally:
        core_db._engine, core_db._session_factory = saved


def write(directory: Path, name: str, data: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(data if isinstance(data, str) else json.dumps(data, ensure_ascii=False,
                                                                  indent=2), "utf-8")
    return path


def line_of(path: Path, needle: str, nth: int = 1) -> int:
    """The line of the ``nth`` line of a file containing ``needle``."""
    lines = [i for i, text in enumerate(path.read_text("utf-8").splitlines(), 1)
             if needle in text]
    return lines[nth - 1]


def load(engine: Engine, directory: Path) -> LoadResult:
    with pointed_at(engine), transaction() as session:
        return load_reference(session, ACTOR, directory)


def audit_count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(AuditRecord)) or 0


def refused(engine: Engine, directory: Path) -> list[str]:
    before = audit_count(engine)
    with pytest.raises(ReferenceInvalid) as exc:
        load(engine, directory)
    assert audit_count(engine) == before
    return exc.value.problems


@pytest.fixture
def full(tmp_path: Path) -> Path:
    directory = tmp_path / "ref"
    write(directory, "courts.json", {"source": "the court's own list", "courts": [COURT]})
    write(directory, "users.json", USERS)
    write(directory, "units.json", [UNIT])
    write(directory, "partners.json", [PARTNER])
    return directory


class TestLoad:
    """In order: the first load creates, the second changes nothing, an edit updates."""

    def test_creates_every_kind_and_audits_it(self, engine: Engine, full: Path) -> None:
        before = audit_count(engine)
        result = load(engine, full)
        assert (result.courts.created, result.users.created, result.units.created,
                result.partners.created) == (1, 2, 1, 1)
        assert result.centers.updated == 1  # the court's command center got its own names
        with Session(engine) as session:
            court = session.scalar(select(Court).where(Court.code == "桂0199"))
            assert court is not None and court.path == "/桂/桂01/桂0199/"
            center = session.scalar(select(CommandCenter).where(
                CommandCenter.court_id == court.id))
            assert center is not None and center.duty_phone == "0771-1234567"
            officer = session.scalar(select(User).where(User.username == "rail.officer"))
            assert officer is not None and officer.court_id == court.id
            assert officer.certificate_number == "桂执0199001"
            head = session.scalar(select(User).where(User.username == "rail.head"))
            assert head is not None and {r.value for r in head.roles} == {"approver", "officer"}
            # Passwords never come from a file: each new user has a one-time one, shown once.
            assert set(result.new_passwords) == {"rail.officer", "rail.head"}
            assert verify_password(officer.password_hash, result.new_passwords["rail.officer"])
            assert len(result.new_passwords["rail.officer"]) >= 16
            assert session.scalar(select(LinkageUnit.name_zh).where(
                LinkageUnit.code == "bank-rail")) == "铁路银行南宁分行"
            assert session.scalar(select(Partner.activities).where(
                Partner.code == "rail-bureau")) == ["high_speed_train"]
            actions = list(session.scalars(select(AuditRecord.action).where(
                AuditRecord.seq > before).order_by(AuditRecord.seq)))
        assert actions == ["court.created", "court.command_center_updated", "user.created",
                           "user.created", "linkage.unit_created", "credit.partner_created"]

    def test_second_run_changes_nothing(self, engine: Engine, full: Path) -> None:
        before = audit_count(engine)
        result = load(engine, full)
        assert not result.changed and not result.new_passwords
        assert audit_count(engine) == before

    def test_changed_rows_are_updated_and_audited(self, engine: Engine, full: Path) -> None:
        court = {**COURT, "name_en": "Nanning Railway Transport Court (renamed)"}
        users = [{**USERS[0], "roles": ["officer", "bailiff"], "active": False}, USERS[1]]
        write(full, "courts.json", [court])
        write(full, "users.json", users)
        write(full, "units.json", [{**UNIT, "expected_response_minutes": 30}])
        write(full, "partners.json", [{**PARTNER, "name_en": "China Railway Nanning Group"}])
        before = audit_count(engine)
        result = load(engine, full)
        assert (result.courts.updated, result.users.updated, result.units.updated,
                result.partners.updated) == (1, 1, 1, 1)
        assert (result.courts.created, result.users.created) == (0, 0)
        assert not result.new_passwords  # an existing user keeps their password
        with Session(engine) as session:
            officer = session.scalar(select(User).where(User.username == "rail.officer"))
            assert officer is not None and not officer.is_active
            assert {r.value for r in officer.roles} == {"officer", "bailiff"}
            records = {r.action: r.details for r in session.scalars(
                select(AuditRecord).where(AuditRecord.seq > before))}
        assert records["user.updated"]["changes"] == {
            "roles": {"from": ["officer"], "to": ["bailiff", "officer"]},
            "active": {"from": True, "to": False}}
        assert records["court.updated"]["changes"]["name_en"]["to"].endswith("(renamed)")
        assert records["linkage.unit_updated"]["changes"] == {
            "expected_response_minutes": {"from": 60, "to": 30}}
        assert "name_en" in records["credit.partner_updated"]["changes"]
        assert load(engine, full).changed is False  # and again: nothing

    def test_the_shipped_reference_files_load_as_they_are(self, engine: Engine,
                                                           tmp_path: Path) -> None:
        """The Guangxi files are examples of the formats; the courts are loaded already."""
        for package, name, target in (("zhixing.courts", "guangxi_courts.json", "courts.json"),
                                      ("zhixing.linkage", "guangxi_units.json", "units.json"),
                                      ("zhixing.credit", "partners.json", "partners.json")):
            text = resources.files(package).joinpath("data", name).read_text("utf-8")
            write(tmp_path, target, text)
        result = load(engine, tmp_path)
        assert (result.courts.created, result.courts.updated) == (0, 0)
        assert result.units.created == 45 and result.partners.created > 10


class TestRefusals:
    def test_names_line_and_field_and_writes_nothing(self, engine: Engine,
                                                     tmp_path: Path) -> None:
        write(tmp_path, "partners.json", [{**PARTNER, "code": "refused-partner"}])
        write(tmp_path, "users.json", (
            "[\n"
            '  {"username": "ok.user", "display_name": "甲", "court": "桂0103",\n'
            '   "roles": ["officer"]},\n'
            '  {"username": "bad.user", "display_name": "乙", "court": "桂0103",\n'
            '   "roles": ["officer",\n'
            '             "chief"]},\n'
            '  {"username": "Bad User", "display_name": "丙", "court": "桂0103",\n'
            '   "roles": ["officer"], "password": "secret-password"},\n'
            '  {"username": "far.user", "display_name": "丁",\n'
            '   "court": "桂9876", "roles": ["officer"]}\n'
            "]\n"))
        problems = refused(engine, tmp_path)
        assert any(p.startswith("users.json line 5, field roles[1]:") and "'chief'" in p
                   for p in problems), problems
        assert any(p.startswith("users.json line 7, field username:") and "'Bad User'" in p
                   for p in problems), problems
        assert any(p.startswith("users.json line 8, field password: passwords never")
                   for p in problems), problems
        assert "users.json line 10, field court: no court 桂9876" in problems
        assert len(problems) == 4
        with Session(engine) as session:
            assert session.scalar(select(User).where(User.username == "ok.user")) is None
            assert session.scalar(select(Partner).where(
                Partner.code == "refused-partner")) is None

    def test_court_parent_must_come_first(self, engine: Engine, tmp_path: Path) -> None:
        child = {**COURT, "code": "桂0198", "parent": "桂0197", "command_center": None}
        parent = {**COURT, "code": "桂0197", "command_center": None}
        path = write(tmp_path, "courts.json", [child, parent])
        problems = refused(engine, tmp_path)
        line = line_of(path, '"parent": "桂0197"')
        assert problems == [f"courts.json line {line}, field parent: court 桂0197 is neither in "
                            "the database nor earlier in the file"]

    def test_duplicates_are_named(self, engine: Engine, tmp_path: Path) -> None:
        path = write(tmp_path, "units.json", [UNIT, {**UNIT, "name_zh": "另一家银行"}])
        problems = refused(engine, tmp_path)
        first, second = line_of(path, '"code"'), line_of(path, '"code"', 2)
        assert first == 3 and second > first
        assert problems == [f"units.json line {second}, field code: bank-rail is already on "
                            f"line {first}"]

    def test_unit_rule_errors_come_from_the_unit_model(self, engine: Engine,
                                                       tmp_path: Path) -> None:
        path = write(tmp_path, "units.json", [{**UNIT, "query_kinds": ["deposits", "horses"]}])
        [problem] = refused(engine, tmp_path)
        line = line_of(path, '"query_kinds"')
        assert problem.startswith(f"units.json line {line}, field query_kinds:")
        assert "horses" in problem

    def test_broken_json_is_named_by_line(self, engine: Engine, tmp_path: Path) -> None:
        write(tmp_path, "partners.json", '[\n  {"code": "x",\n  "name_zh": }\n]\n')
        [problem] = refused(engine, tmp_path)
        assert problem.startswith("partners.json line 3: not valid JSON")

    def test_unknown_files_are_refused(self, engine: Engine, tmp_path: Path) -> None:
        write(tmp_path, "user.json", USERS)
        [problem] = refused(engine, tmp_path)
        assert problem.startswith("user.json: not a reference file")


class TestCommandLine:
    def test_prints_one_time_passwords_once_and_exits_2_when_invalid(
            self, engine: Engine, tmp_path: Path) -> None:
        write(tmp_path / "ok", "users.json", [
            {"username": "cli.user", "display_name": "丁", "court": "桂0103",
             "roles": ["auditor"]}])
        runner = CliRunner()
        with pointed_at(engine):
            first = runner.invoke(cli_app, ["load-reference", str(tmp_path / "ok")])
            second = runner.invoke(cli_app, ["load-reference", str(tmp_path / "ok")])
            write(tmp_path / "bad", "users.json", [{"username": "cli.user2"}])
            bad = runner.invoke(cli_app, ["load-reference", str(tmp_path / "bad")])
        assert first.exit_code == 0, first.output
        assert "users: 1 created, 0 updated" in first.stdout
        [line] = [x for x in first.stdout.splitlines() if x.strip().startswith("cli.user")]
        with Session(engine) as session:
            user = session.scalar(select(User).where(User.username == "cli.user"))
            assert user is not None and verify_password(user.password_hash, line.split()[-1])
        assert second.exit_code == 0 and "nothing to change" in second.stdout
        assert "cli.user " not in second.stdout
        assert bad.exit_code == 2
        assert "error: users.json line 2, field display_name: Field required" in bad.stderr
        assert "nothing was loaded" in bad.stderr

    def test_migrate_keeps_loaded_courts_unless_asked_to_sync(self, engine: Engine,
                                                             tmp_path: Path) -> None:
        from zhixing.courts.service import load_reference_data

        [qingxiu] = [dict(c) for c in load_reference_data() if c["code"] == "桂0103"]
        shipped = qingxiu.get("short_name_zh") or qingxiu["name_zh"]
        qingxiu["short_name_zh"] = "青秀法院"
        write(tmp_path / "courts", "courts.json", {"source": "test", "courts": [qingxiu]})

        def short_name() -> str:
            with Session(engine) as session:
                name = session.scalar(select(Court.short_name_zh).where(Court.code == "桂0103"))
                assert name is not None
                return name

        runner = CliRunner()
        with pointed_at(engine):
            assert runner.invoke(cli_app, ["load-reference", str(tmp_path / "courts")]
                                 ).exit_code == 0
            assert short_name() == "青秀法院"
            kept = runner.invoke(cli_app, ["migrate"])
            assert kept.exit_code == 0, kept.output
            assert short_name() == "青秀法院"  # an upgrade does not revert the court's data
            synced = runner.invoke(cli_app, ["migrate", "--sync-courts"])
        assert synced.exit_code == 0, synced.output
        assert "courts: 0 created, 1 updated" in synced.stdout
        assert short_name() == shipped
