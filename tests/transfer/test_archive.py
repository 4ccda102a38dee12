"""Export and import: a SQLite trial database with data from every package moves into a fresh
database of the backend under test (so on PostgreSQL this is the SQLite → PostgreSQL move) and
comes out the same, row for row, with the same audit chain.

Like tests/demo_data, the module makes its own databases and points the process at them only
while it seeds or imports, then puts the shared engine back.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

import zhixing.core.db as core_db
from tests.cases.factories import case_payload
from tests.support.database import ScratchDatabase, create_test_database
from zhixing.cases import service as case_service
from zhixing.cases.models import Case, CaseDocument
from zhixing.cases.schemas import CaseCreate
from zhixing.cli import app as cli_app
from zhixing.command.demo import seed_command
from zhixing.core import audit
from zhixing.core.actor import SYSTEM
from zhixing.core.clock import utcnow
from zhixing.core.db import make_engine, set_engine, transaction
from zhixing.core.migrate import alembic_config, current_revision, head_revision, upgrade
from zhixing.core.models import AuditRecord
from zhixing.core.settings import get_settings
from zhixing.courts import identity
from zhixing.courts.models import Court, CourtLevel, User
from zhixing.courts.service import sync_courts
from zhixing.credit.onboarding import demo_partners
from zhixing.demo import seed_users
from zhixing.demo_data.cases import seed_cases
from zhixing.field.models import FieldResource
from zhixing.field.resources import seed_field
from zhixing.linkage.onboarding import simulated_units
from zhixing.transfer.archive import (
    MANIFEST_NAME,
    MIGRATE_SEEDED,
    TransferRefused,
    TransferResult,
    export_database,
    import_database,
    tables,
)

CASES = 12
PDF = b"%PDF-1.4\n% an execution notice\n"


@contextmanager
def pointed_at(engine: Engine) -> Iterator[None]:
    """The services use the process's engine: point it at ``engine`` for a while."""
    saved = (core_db._engine, core_db._session_factory)
    set_engine(engine)
    try:
        yield
    finally:
        core_db._engine, core_db._session_factory = saved


def secret() -> str:
    return get_settings().secret_key


def migrated(engine: Engine, revision: str = "head") -> Engine:
    """What `zhixing migrate` leaves: the schema and the court reference data."""
    if revision == "head":
        upgrade(engine)
    else:
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    with Session(engine) as session:
        sync_courts(session)
        session.commit()
    return engine


def rows_of(engine: Engine, table: sa.Table) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(table).order_by(*table.primary_key.columns))]


def counts_of(engine: Engine) -> dict[str, int]:
    """Rows per table (of the tables the database has: one at an older revision lacks some)."""
    present = set(sa.inspect(engine).get_table_names())
    with engine.connect() as conn:
        return {t.name: conn.scalar(select(func.count()).select_from(t)) or 0 for t in tables()
                if t.name in present}


@dataclass
class Source:
    engine: Engine
    documents: Path
    document_sha: str


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    """A SQLite trial database seeded the way `zhixing demo` seeds one, on a small scale."""
    tmp = tmp_path_factory.mktemp("transfer_source")
    engine = make_engine(f"sqlite:///{tmp / 'trial.db'}")
    upgrade(engine)
    documents = tmp / "documents"
    sha = hashlib.sha256(PDF).hexdigest()
    (documents / sha[:2]).mkdir(parents=True)
    (documents / sha[:2] / sha).write_bytes(PDF)
    try:
        with pointed_at(engine):
            with core_db.session_factory()() as session:
                sync_courts(session)
                seed_users(session)
                session.commit()
                seed_cases(session, count=CASES, seed=2014)
                session.commit()
            with transaction() as session:
                seed_command(session)
                seed_field(session)
            with transaction() as session:
                demo_partners(session)
                simulated_units(session, "http://127.0.0.1:8000")
            with transaction() as session:
                case_id = session.scalar(select(func.min(Case.id)))
                assert case_id is not None
                session.add(CaseDocument(case_id=case_id, filename="执行通知书.pdf",
                                         content_type="application/pdf", size_bytes=len(PDF),
                                         sha256=sha, uploaded_at=utcnow()))
                # A row naming a later row of its own table (as a tip merged into a newer
                # one does): the import must not trip over the order.
                first, last = session.execute(
                    select(func.min(FieldResource.id), func.max(FieldResource.id))).one()
                session.execute(update(FieldResource).where(FieldResource.id == first)
                                .values(carrier_id=last))
        yield Source(engine, documents, sha)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def exported(source: Source, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path,
                                                                                TransferResult]:
    directory = tmp_path_factory.mktemp("transfer_export") / "export"
    seen: list[tuple[str, int, int]] = []
    result = export_database(source.engine, directory, secret_key=secret(),
                             documents_root=source.documents,
                             progress=lambda *a: seen.append(a))
    assert ("cases", CASES, CASES) in seen  # every table reports when it is done
    return directory, result


@contextmanager
def scratch_target(tmp: Path, revision: str = "head") -> Iterator[Engine]:
    scratch: ScratchDatabase = create_test_database(tmp, "transfer_")
    engine = make_engine(scratch.url)
    try:
        yield migrated(engine, revision)
    finally:
        engine.dispose()
        scratch.destroy()


@dataclass
class Moved:
    engine: Engine
    result: TransferResult
    documents: Path


@pytest.fixture(scope="module")
def moved(exported: tuple[Path, TransferResult],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moved]:
    tmp = tmp_path_factory.mktemp("transfer_target")
    with scratch_target(tmp) as engine:
        result = import_database(engine, exported[0], secret_key=secret(),
                                 documents_root=tmp / "documents")
        yield Moved(engine, result, tmp / "documents")


@pytest.fixture(scope="module")
def empty_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A freshly migrated database the refusal tests try to import into: it must stay as is."""
    with scratch_target(tmp_path_factory.mktemp("transfer_empty")) as engine:
        yield engine


@pytest.fixture
def copy(exported: tuple[Path, TransferResult], tmp_path: Path) -> Path:
    """A copy of the export a test may damage."""
    return Path(shutil.copytree(exported[0], tmp_path / "export"))


def rewrite(directory: Path, table: str, change: Any) -> None:
    """Change the rows of one file and put its new hash in the manifest, as a forger would."""
    path = directory / f"{table}.jsonl"
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    change(rows)
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    path.write_bytes(data)
    manifest_path = directory / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text("utf-8"))
    for entry in manifest["tables"]:
        if entry["name"] == table:
            entry["sha256"] = hashlib.sha256(data).hexdigest()
    manifest_path.write_text(json.dumps(manifest), "utf-8")


def only_migrated_data(engine: Engine) -> None:
    counts = counts_of(engine)
    assert counts["courts"] == counts["command_centers"] > 100
    assert not {n: c for n, c in counts.items() if c and n not in MIGRATE_SEEDED}


class TestExport:
    def test_manifest_describes_every_file(self, exported: tuple[Path, TransferResult],
                                           source: Source) -> None:
        directory, result = exported
        manifest = json.loads((directory / MANIFEST_NAME).read_text("utf-8"))
        assert manifest["format"] == "zhixing-transfer" and manifest["format_version"] == 1
        assert manifest["alembic_revision"] == head_revision()
        assert [e["name"] for e in manifest["tables"]] == [t.name for t in tables()]
        counts = counts_of(source.engine)
        for entry in manifest["tables"]:
            data = (directory / entry["file"]).read_bytes()
            assert entry["rows"] == counts[entry["name"]] == data.count(b"\n")
            assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        with Session(source.engine) as session:
            chain = audit.verify_chain(session)
        assert chain.ok and chain.checked > 100
        assert manifest["audit_chain"] == {"records": chain.checked,
                                           "head_hash": chain.head_hash}
        assert result.audit_head == chain.head_hash
        assert manifest["documents"] == {"files": 1, "missing": []}

    def test_values_are_plain_json(self, exported: tuple[Path, TransferResult]) -> None:
        directory, _ = exported
        case = json.loads((directory / "cases.jsonl").read_text("utf-8").splitlines()[0])
        assert case["filed_on"].count("-") == 2 and "T" not in case["filed_on"]  # a date
        assert case["created_at"].endswith("+00:00")  # a datetime with its offset
        first = json.loads((directory / "audit_records.jsonl").read_text("utf-8")
                           .splitlines()[0])
        assert isinstance(first["details"], dict)  # JSON columns stay JSON

    def test_refuses_a_directory_in_use(self, source: Source, tmp_path: Path) -> None:
        (tmp_path / "old.txt").write_text("x")
        with pytest.raises(TransferRefused) as exc:
            export_database(source.engine, tmp_path, secret_key=secret())
        assert exc.value.code == "directory_not_empty"

    def test_refuses_a_broken_audit_chain(self, tmp_path: Path) -> None:
        engine = make_engine(f"sqlite:///{tmp_path / 'broken.db'}")
        try:
            upgrade(engine)
            with pointed_at(engine), transaction() as session:
                for i in range(3):
                    audit.record(session, SYSTEM, "test.write", details={"i": i})
            with engine.begin() as conn:
                conn.execute(update(AuditRecord).where(AuditRecord.seq == 2)
                             .values(actor_name="forger"))
            with pytest.raises(TransferRefused) as exc:
                export_database(engine, tmp_path / "out", secret_key=secret())
            assert exc.value.code == "audit_chain_broken" and "record 2" in exc.value.message
        finally:
            engine.dispose()


class TestRoundTrip:
    """Runs before TestNewRows, which adds rows to the moved database."""

    def test_every_row_of_every_table_arrives_unchanged(self, source: Source,
                                                        moved: Moved) -> None:
        counts = counts_of(source.engine)
        assert counts_of(moved.engine) == counts
        assert {t.name: t.rows for t in moved.result.tables} == counts
        assert counts["cases"] == CASES and counts["credit_listings"] > 0
        assert counts["duty_shifts"] > 0 and counts["field_resources"] > 0
        assert counts["linkage_keys"] > 0 and counts["credit_partners"] > 0
        for table in tables():
            assert rows_of(moved.engine, table) == rows_of(source.engine, table), table.name

    def test_audit_chain_verifies_with_the_same_head(self, source: Source,
                                                     moved: Moved) -> None:
        with Session(source.engine) as s1, Session(moved.engine) as s2:
            before, after = audit.verify_chain(s1), audit.verify_chain(s2)
        assert after.ok
        assert (after.checked, after.head_hash) == (before.checked, before.head_hash)
        assert moved.result.audit_head == before.head_hash

    def test_forward_reference_inside_a_table_is_kept(self, source: Source,
                                                      moved: Moved) -> None:
        with Session(moved.engine) as session:
            first = session.scalar(select(FieldResource).order_by(FieldResource.id).limit(1))
            last = session.scalar(select(func.max(FieldResource.id)))
        assert first is not None and first.carrier_id == last

    def test_documents_come_along(self, source: Source, moved: Moved) -> None:
        sha = source.document_sha
        assert (moved.documents / sha[:2] / sha).read_bytes() == PDF
        assert moved.result.documents == 1

    def test_exporting_the_moved_database_gives_the_same_files(
            self, exported: tuple[Path, TransferResult], moved: Moved, tmp_path: Path) -> None:
        again = export_database(moved.engine, tmp_path / "again", secret_key=secret())
        first = json.loads((exported[0] / MANIFEST_NAME).read_text("utf-8"))
        second = json.loads((tmp_path / "again" / MANIFEST_NAME).read_text("utf-8"))
        assert [(e["name"], e["sha256"]) for e in second["tables"]] == \
            [(e["name"], e["sha256"]) for e in first["tables"]]
        assert again.audit_head == exported[1].audit_head


class TestNewRows:
    def test_new_cases_and_users_get_fresh_ids(self, source: Source, moved: Moved) -> None:
        with Session(source.engine) as session:
            last_case = session.scalar(select(func.max(Case.id))) or 0
            last_user = session.scalar(select(func.max(User.id))) or 0
            last_court = session.scalar(select(func.max(Court.id))) or 0
        with pointed_at(moved.engine), transaction() as session:
            officer = session.scalar(select(User).where(User.username == "qingxiu.officer"))
            assert officer is not None
            actor = identity.actor_for(session, officer, None)
            case = case_service.register(session, actor, CaseCreate(**case_payload()))
            user = identity.create_user(session, SYSTEM, username="new.officer",
                                        display_name="新执行员", court_code="桂0103",
                                        password="a-long-password", roles=["officer"])
            court = Court(code="桂9999", division_code="459999", name_zh="测试法院",
                          name_en="Test Court", short_name_zh="测试", level=CourtLevel.BASIC,
                          parent_id=None, path="/桂9999/")
            session.add(court)
            session.flush()
            assert (case.id, user.id, court.id) == (last_case + 1, last_user + 1,
                                                    last_court + 1)
        with Session(moved.engine) as session:
            assert audit.verify_chain(session).ok  # the new records chain onto the old


class TestImportRefusals:
    def test_refuses_a_database_with_data(self, exported: tuple[Path, TransferResult],
                                          tmp_path: Path) -> None:
        with scratch_target(tmp_path) as engine:
            with pointed_at(engine), transaction() as session:
                seed_users(session)
            before = counts_of(engine)
            with pytest.raises(TransferRefused) as exc:
                import_database(engine, exported[0], secret_key=secret())
            assert exc.value.code == "target_not_empty" and "users" in exc.value.message
            assert counts_of(engine) == before

    def test_refuses_a_database_at_another_revision(
            self, exported: tuple[Path, TransferResult], tmp_path: Path) -> None:
        newest = head_revision()
        assert newest is not None
        head = ScriptDirectory.from_config(alembic_config()).get_revision(newest)
        assert head is not None and isinstance(head.down_revision, str)
        with scratch_target(tmp_path, head.down_revision) as engine:
            with pytest.raises(TransferRefused) as exc:
                import_database(engine, exported[0], secret_key=secret())
            assert exc.value.code == "revision_mismatch" and "zhixing migrate" in \
                exc.value.message
            assert current_revision(engine) == head.down_revision
            only_migrated_data(engine)

    def test_refuses_a_changed_file(self, copy: Path, empty_target: Engine) -> None:
        path = copy / "cases.jsonl"
        path.write_bytes(path.read_bytes().replace(b'"state":"concluded"',
                                                   b'"state":"filed"', 1))
        with pytest.raises(TransferRefused) as exc:
            import_database(empty_target, copy, secret_key=secret())
        assert exc.value.code == "file_tampered" and "cases.jsonl" in exc.value.message
        only_migrated_data(empty_target)

    def test_refuses_a_count_that_differs(self, copy: Path, empty_target: Engine) -> None:
        manifest = json.loads((copy / MANIFEST_NAME).read_text("utf-8"))
        manifest["tables"][0]["rows"] += 1
        (copy / MANIFEST_NAME).write_text(json.dumps(manifest), "utf-8")
        with pytest.raises(TransferRefused) as exc:
            import_database(empty_target, copy, secret_key=secret())
        assert exc.value.code == "count_mismatch"

    def test_refuses_a_changed_document(self, copy: Path, empty_target: Engine) -> None:
        [doc] = [p for p in (copy / "documents").rglob("*") if p.is_file()]
        doc.write_bytes(PDF + b"forged")
        with pytest.raises(TransferRefused) as exc:
            import_database(empty_target, copy, secret_key=secret())
        assert exc.value.code == "file_tampered"

    def test_refuses_without_a_manifest(self, copy: Path, empty_target: Engine) -> None:
        (copy / MANIFEST_NAME).unlink()
        with pytest.raises(TransferRefused) as exc:
            import_database(empty_target, copy, secret_key=secret())
        assert exc.value.code == "manifest_missing"

    def test_refuses_another_secret_key(self, exported: tuple[Path, TransferResult],
                                        empty_target: Engine) -> None:
        with pytest.raises(TransferRefused) as exc:
            import_database(empty_target, exported[0], secret_key="another-key-" * 4)
        assert exc.value.code == "secret_key_mismatch"
        only_migrated_data(empty_target)

    def test_bad_value_is_named_and_nothing_stays(self, copy: Path,
                                                  empty_target: Engine) -> None:
        def too_long(rows: list[dict[str, Any]]) -> None:
            rows[-1]["case_number"] = "（2025）桂0103执" + "1" * 80 + "号"

        rewrite(copy, "cases", too_long)
        with pytest.raises(TransferRefused) as exc:
            import_database(empty_target, copy, secret_key=secret())
        assert exc.value.code == "bad_row"
        assert f"cases.jsonl line {CASES}, column case_number" in exc.value.message
        only_migrated_data(empty_target)  # courts, users, parties went in and back out

    def test_missing_column_is_named(self, copy: Path, empty_target: Engine) -> None:
        def drop_column(rows: list[dict[str, Any]]) -> None:
            del rows[1]["case_number"]

        rewrite(copy, "cases", drop_column)
        with pytest.raises(TransferRefused) as exc:
            import_database(empty_target, copy, secret_key=secret())
        assert exc.value.code == "bad_row"
        assert "cases.jsonl line 2: missing columns ['case_number']" in exc.value.message
        only_migrated_data(empty_target)

    def test_database_refusal_is_reported_and_rolled_back(self, copy: Path,
                                                          empty_target: Engine) -> None:
        def unknown_court(rows: list[dict[str, Any]]) -> None:
            rows[0]["court_id"] = 999_999

        rewrite(copy, "cases", unknown_court)
        with pytest.raises(TransferRefused) as exc:
            import_database(empty_target, copy, secret_key=secret())
        assert exc.value.code == "import_failed" and "cases.jsonl lines 1-" in exc.value.message
        only_migrated_data(empty_target)


class TestCommandLine:
    def test_export_shows_progress_and_import_refusal_exits_2(
            self, source: Source, empty_target: Engine, tmp_path: Path) -> None:
        runner = CliRunner()
        with pointed_at(source.engine):
            done = runner.invoke(cli_app, ["export", str(tmp_path / "out"), "--no-documents"])
        assert done.exit_code == 0, done.output
        assert "exported" in done.stdout and "audit chain:" in done.stdout
        assert f"cases: {CASES}/{CASES} rows" in done.stderr
        cases = tmp_path / "out" / "cases.jsonl"
        cases.write_bytes(cases.read_bytes() + b"{}\n")
        with pointed_at(empty_target):
            refused = runner.invoke(cli_app, ["import", str(tmp_path / "out"),
                                              "--no-documents"])
        assert refused.exit_code == 2
        assert "error [file_tampered]" in refused.stderr
        only_migrated_data(empty_target)
