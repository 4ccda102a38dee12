"""Export and import of the whole platform database: the way from a SQLite trial to PostgreSQL.

An export is a directory: one JSON Lines file per table (every table of the schema, in
dependency order), the uploaded documents the tables name, and ``manifest.json`` with the
schema revision, each file's row count and SHA-256, and the audit chain's head. An import puts
it into an empty database at the same revision in one transaction, or refuses and writes
nothing. docs/data-transfer.md describes the format and the steps of a move.

Rows are streamed both ways (a court's database does not fit in memory twice), read in primary
key order, inserted in batches with ``executemany``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

from zhixing.core.audit import ChainCheck, verify_chain
from zhixing.core.clock import utcnow
from zhixing.core.db import EnumText
from zhixing.core.errors import DomainError
from zhixing.core.migrate import current_revision, head_revision
from zhixing.core.models import AuditRecord
from zhixing.models_registry import Base

FORMAT = "zhixing-transfer"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
DOCUMENTS_DIR = "documents"
BATCH = 1000
# The tables `zhixing migrate` fills by itself (the court reference data, children first). A
# target that holds nothing else counts as empty: the import replaces these rows with the
# source's, whose ids every other table refers to.
MIGRATE_SEEDED = ("audit_head", "command_centers", "courts")
# Every column of this name holds the SHA-256 of an uploaded document kept in the data
# directory (cases.documents.store): the export carries those files along with the rows.
DOCUMENT_COLUMN = "sha256"
_SECRET_CHECK_CONTEXT = b"zhixing-transfer/secret-key-check/v1"

Progress = Callable[[str, int, int], None]


class TransferRefused(DomainError):
    """An export or import that cannot be done as asked; nothing was written."""

    status_code = 422
    code = "transfer_refused"


@dataclass(frozen=True)
class TableCount:
    name: str
    rows: int


@dataclass(frozen=True)
class TransferResult:
    tables: list[TableCount]
    audit_records: int
    audit_head: str | None
    documents: int
    missing_documents: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


def tables() -> list[sa.Table]:
    """Every table of the platform, parents before children."""
    return list(Base.metadata.sorted_tables)


def _check_tables_exist(engine: Engine) -> None:
    """The models and the migrations agree at a revision; a table the code knows but the
    database lacks means a development checkout whose migration is missing."""
    present = set(sa.inspect(engine).get_table_names())
    if missing := [t.name for t in tables() if t.name not in present]:
        raise TransferRefused(f"the database lacks tables this zhixing knows: "
                              f"{', '.join(missing)}", code="schema_mismatch")


def secret_key_check(secret_key: str) -> str:
    """A short fingerprint of ZHIXING_SECRET_KEY (an HMAC of a constant: it does not reveal
    the key). Sealed unit secrets and partners' hashing keys only work under the same key."""
    return hmac.new(secret_key.encode(), _SECRET_CHECK_CONTEXT, hashlib.sha256).hexdigest()[:16]


# --- values ----------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"no transfer encoding for {type(value).__name__}")


def encode_row(row: dict[str, Any]) -> bytes:
    """One JSON Lines line: column name → value, in the table's column order."""
    return (json.dumps(row, default=_json_default, ensure_ascii=False, separators=(",", ":"),
                       allow_nan=False) + "\n").encode("utf-8")


def _kind(column: sa.Column[Any]) -> str:
    t: Any = column.type
    if isinstance(t, TypeDecorator):
        t = t.impl_instance
    for cls, kind in ((sa.JSON, "json"), (sa.Boolean, "bool"), (sa.DateTime, "datetime"),
                      (sa.Date, "date"), (sa.Time, "time"), (sa.Float, "float"),
                      (sa.Numeric, "decimal"), (sa.Integer, "int"), (sa.LargeBinary, "bytes"),
                      (sa.String, "str")):
        if isinstance(t, cls):
            return kind
    raise TypeError(f"{column.table.name}.{column.name}: no transfer encoding for {t!r}")


@dataclass(frozen=True)
class _Codec:
    """How one column's JSON value becomes the value to insert, checked on the way, so a bad
    row is named by file, line and column instead of failing somewhere in the database."""

    name: str
    kind: str
    nullable: bool
    length: int | None
    enum_values: frozenset[str] | None

    @classmethod
    def of(cls, column: sa.Column[Any]) -> _Codec:
        length = getattr(column.type, "length", None)
        enum_values = (frozenset(e.value for e in column.type.enum_class)
                       if isinstance(column.type, EnumText) else None)
        return cls(column.name, _kind(column), bool(column.nullable),
                   length if isinstance(length, int) else None, enum_values)

    def decode(self, value: Any) -> Any:
        if value is None:
            if not self.nullable:
                raise ValueError("may not be null")
            return None
        kind = self.kind
        if kind == "json":
            return value
        if kind == "int":
            if type(value) is not int:
                raise ValueError(f"expected an integer, found {value!r}")
            return value
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"expected a number, found {value!r}")
            return float(value)
        if kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"expected true or false, found {value!r}")
            return value
        if not isinstance(value, str):
            raise ValueError(f"expected a string, found {value!r}")
        if kind == "str":
            if self.length is not None and len(value) > self.length:
                raise ValueError(f"longer than {self.length} characters")
            if "\x00" in value:  # PostgreSQL text cannot hold NUL; SQLite can
                raise ValueError("contains a NUL character")
            if self.enum_values is not None and value not in self.enum_values:
                raise ValueError(f"{value!r} is not one of {sorted(self.enum_values)}")
            return value
        if kind == "datetime":
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                raise ValueError(f"{value!r} has no UTC offset")
            return parsed.astimezone(UTC)
        if kind == "date":
            return date.fromisoformat(value)
        if kind == "time":
            return time.fromisoformat(value)
        if kind == "decimal":
            try:
                return Decimal(value)
            except InvalidOperation:
                raise ValueError(f"{value!r} is not a decimal number") from None
        return base64.b64decode(value, validate=True)  # bytes


# --- manifest --------------------------------------------------------------------------------


def _read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST_NAME
    if not path.is_file():
        raise TransferRefused(f"{path} not found: not an export directory, or the export did "
                              "not finish", code="manifest_missing")
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TransferRefused(f"{path} is not valid JSON: {exc}", code="manifest_invalid") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise TransferRefused(f"{path} is not a {FORMAT} manifest", code="manifest_invalid")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise TransferRefused(
            f"export format version {manifest.get('format_version')} is not supported "
            f"(this zhixing reads version {FORMAT_VERSION})", code="format_unsupported")
    try:
        fine = all(isinstance(e["rows"], int) and isinstance(e["columns"], list)
                   and isinstance(e["sha256"], str) and e["file"] == f"{e['name']}.jsonl"
                   for e in manifest["tables"])
        fine = fine and isinstance(manifest["audit_chain"]["records"], int) and isinstance(
            manifest["documents"]["files"], int)
    except (KeyError, TypeError) as exc:
        raise TransferRefused(f"{path} lacks a field: {exc}", code="manifest_invalid") from None
    if not fine:
        raise TransferRefused(f"{path} has a field of the wrong type", code="manifest_invalid")
    return manifest


def _file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 and line count of a file, read in chunks."""
    digest = hashlib.sha256()
    lines = 0
    last = b"\n"
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return digest.hexdigest(), lines + (last != b"\n")


def _document_path(root: Path, sha256: str) -> Path:
    # The layout of cases.documents.path_for: <root>/<first two hex digits>/<sha256>.
    return root / sha256[:2] / sha256


def _is_sha256(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


# --- export ----------------------------------------------------------------------------------


class _ChainCheck:
    """Verifies the audit chain while its rows stream past (:class:`audit.ChainCheck`)."""

    def __init__(self) -> None:
        self._check = ChainCheck()

    def feed(self, row: dict[str, Any]) -> None:
        broken = self._check.feed(AuditRecord(**row))
        if broken is not None:
            raise TransferRefused(f"the audit chain is broken: {broken[1]}; run `zhixing audit "
                                  "verify` and settle it before moving the data",
                                  code="audit_chain_broken")

    @property
    def count(self) -> int:
        return self._check.checked

    @property
    def head(self) -> str | None:
        return self._check.head


def _read_connection(engine: Engine) -> Connection:
    conn = engine.connect()
    if engine.dialect.name == "postgresql":
        # One snapshot for every table, so the files agree with each other.
        return conn.execution_options(isolation_level="REPEATABLE READ",
                                      postgresql_readonly=True)
    return conn  # SQLite: the transaction takes the write lock (BEGIN IMMEDIATE)


def export_database(engine: Engine, directory: Path, *, secret_key: str,
                    documents_root: Path | None = None,
                    progress: Progress | None = None) -> TransferResult:
    """Write every table of ``engine`` to ``directory`` (new or empty). With ``documents_root``
    (the data directory's ``documents``), the uploaded files the rows name are copied too."""
    revision, head = current_revision(engine), head_revision()
    if revision != head:
        raise TransferRefused(
            f"the database is at schema revision {revision}, this zhixing at {head}: run "
            "`zhixing migrate` against it first", code="revision_mismatch")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise TransferRefused(f"{directory} exists and is not an empty directory",
                              code="directory_not_empty")
    _check_tables_exist(engine)
    directory.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    counts: list[TableCount] = []
    chain = _ChainCheck()
    shas: set[str] = set()
    with _read_connection(engine) as conn, conn.begin():
        for table in tables():
            total = conn.scalar(select(func.count()).select_from(table)) or 0
            names = [c.name for c in table.columns]
            file_name = f"{table.name}.jsonl"
            digest = hashlib.sha256()
            rows = 0
            stmt = select(table).order_by(*table.primary_key.columns)
            result = conn.execute(stmt, execution_options={"stream_results": True,
                                                           "yield_per": BATCH})
            with (directory / file_name).open("wb") as out:
                for values in result:
                    row = dict(zip(names, values, strict=True))
                    if table.name == AuditRecord.__tablename__:
                        chain.feed(row)
                    line = encode_row(row)
                    out.write(line)
                    digest.update(line)
                    rows += 1
                    if progress and rows % BATCH == 0:
                        progress(table.name, rows, total)
            if progress:
                progress(table.name, rows, rows)
            if DOCUMENT_COLUMN in table.c:
                shas.update(s for s in conn.scalars(select(table.c[DOCUMENT_COLUMN]).distinct())
                            if s)
            entries.append({"name": table.name, "file": file_name, "rows": rows,
                            "sha256": digest.hexdigest(), "columns": names})
            counts.append(TableCount(table.name, rows))
    copied, missing = _export_documents(directory, documents_root, sorted(shas))
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "alembic_revision": revision,
        "exported_at": utcnow().isoformat(timespec="seconds"),
        "source_dialect": engine.dialect.name,
        "secret_key_check": secret_key_check(secret_key),
        "audit_chain": {"records": chain.count, "head_hash": chain.head},
        "documents": {"files": copied, "missing": missing},
        "tables": entries,
    }
    # Written last: a directory without a manifest is an export that did not finish.
    (directory / MANIFEST_NAME).write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return TransferResult(counts, chain.count, chain.head, copied, missing)


def _export_documents(directory: Path, root: Path | None,
                      shas: list[str]) -> tuple[int, list[str]]:
    if root is None:
        return 0, []
    copied, missing = 0, []
    for sha in shas:
        source = _document_path(root, sha)
        if not source.is_file():
            missing.append(sha)
            continue
        target = _document_path(directory / DOCUMENTS_DIR, sha)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        copied += 1
    return copied, missing


# --- import ----------------------------------------------------------------------------------


def _check_schema(manifest: dict[str, Any]) -> None:
    ours = {t.name: [c.name for c in t.columns] for t in tables()}
    theirs = {e["name"]: list(e["columns"]) for e in manifest["tables"]}
    if ours != theirs:
        differ = sorted(n for n in ours.keys() | theirs.keys() if ours.get(n) != theirs.get(n))
        raise TransferRefused(f"the export's tables differ from this schema: {', '.join(differ)}",
                              code="schema_mismatch")


def _check_files(directory: Path, manifest: dict[str, Any]) -> None:
    for entry in manifest["tables"]:
        path = directory / entry["file"]
        if not path.is_file():
            raise TransferRefused(f"{path} is missing", code="file_missing")
        sha, lines = _file_digest(path)
        if sha != entry["sha256"]:
            raise TransferRefused(f"{path} does not match the manifest (SHA-256 {sha}, manifest "
                                  f"{entry['sha256']}): the file was changed or damaged",
                                  code="file_tampered")
        if lines != entry["rows"]:
            raise TransferRefused(f"{path} holds {lines} rows, the manifest says "
                                  f"{entry['rows']}", code="count_mismatch")
    found = 0
    docs = directory / DOCUMENTS_DIR
    for path in sorted(docs.rglob("*")) if docs.is_dir() else []:
        if not path.is_file():
            continue
        if not _is_sha256(path.name) or _file_digest(path)[0] != path.name:
            raise TransferRefused(f"document {path} does not match its SHA-256 name",
                                  code="file_tampered")
        found += 1
    if found != manifest["documents"]["files"]:
        raise TransferRefused(f"{docs} holds {found} documents, the manifest says "
                              f"{manifest['documents']['files']}", code="count_mismatch")


def _occupied_tables(conn: Connection) -> list[str]:
    return [t.name for t in tables() if t.name not in MIGRATE_SEEDED
            and conn.scalar(select(sa.literal(1)).select_from(t).limit(1)) is not None]


def _rows(path: Path, codecs: list[_Codec]) -> Iterator[tuple[int, dict[str, Any]]]:
    wanted = {c.name for c in codecs}
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            where = f"{path.name} line {number}"
            try:
                data = json.loads(raw)
            except ValueError as exc:
                raise TransferRefused(f"{where}: not JSON ({exc})", code="bad_row") from None
            if not isinstance(data, dict):
                raise TransferRefused(f"{where}: not a JSON object", code="bad_row")
            if data.keys() != wanted:
                missing, unknown = sorted(wanted - data.keys()), sorted(data.keys() - wanted)
                raise TransferRefused(f"{where}: missing columns {missing}, unknown columns "
                                      f"{unknown}", code="bad_row")
            row = {}
            for codec in codecs:
                try:
                    row[codec.name] = codec.decode(data[codec.name])
                except ValueError as exc:
                    raise TransferRefused(f"{where}, column {codec.name}: {exc}",
                                          code="bad_row") from None
            yield number, row


def _self_references(table: sa.Table) -> list[str]:
    """Nullable columns pointing into their own table (a court's parent, a merged tip): a row
    may name one that comes after it, so they are filled in once the whole table is in."""
    if len(table.primary_key.columns) != 1:
        return []
    return [c.name for c in table.columns if c.nullable
            and any(fk.column.table is table for fk in c.foreign_keys)]


def _insert(conn: Connection, stmt: Any, params: list[dict[str, Any]], where: str) -> None:
    try:
        conn.execute(stmt, params)
    except (DBAPIError, StatementError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise TransferRefused(f"{where}: the database refused the rows: {reason}",
                              code="import_failed") from None


def _load_table(conn: Connection, directory: Path, table: sa.Table, total: int,
                progress: Progress | None) -> int:
    codecs = [_Codec.of(c) for c in table.columns]
    path = directory / f"{table.name}.jsonl"
    refs = _self_references(table)
    pk = table.primary_key.columns.values()[0].name
    later: dict[str, list[dict[str, Any]]] = {name: [] for name in refs}
    batch: list[dict[str, Any]] = []
    first = done = 0
    for number, row in _rows(path, codecs):
        for name in refs:
            if row[name] is not None:
                later[name].append({"_pk": row[pk], "_ref": row[name]})
                row[name] = None
        if not batch:
            first = number
        batch.append(row)
        if len(batch) == BATCH:
            _insert(conn, table.insert(), batch, f"{path.name} lines {first}-{number}")
            done += len(batch)
            batch = []
            if progress:
                progress(table.name, done, total)
    if batch:
        _insert(conn, table.insert(), batch, f"{path.name} lines {first}-{first + len(batch) - 1}")
        done += len(batch)
    for name, params in later.items():
        for start in range(0, len(params), BATCH):
            stmt = (table.update().where(table.c[pk] == sa.bindparam("_pk"))
                    .values({name: sa.bindparam("_ref")}))
            _insert(conn, stmt, params[start:start + BATCH], f"{path.name}, column {name}")
    if progress:
        progress(table.name, done, total)
    return done


def _reset_sequences(conn: Connection) -> None:
    """PostgreSQL: the id sequences continue after the imported ids (rows came with theirs)."""
    if conn.dialect.name != "postgresql":
        return  # SQLite gives a new row max(rowid) + 1 by itself
    quote = conn.dialect.identifier_preparer.quote
    for table in tables():
        col = table.autoincrement_column
        if col is None:
            continue
        next_id = func.coalesce(select(func.max(col)).scalar_subquery(), 0) + 1
        conn.execute(select(func.setval(func.pg_get_serial_sequence(quote(table.name), col.name),
                                        next_id, False)))


def _copy_documents(directory: Path, root: Path) -> None:
    source = directory / DOCUMENTS_DIR
    for path in sorted(source.rglob("*")) if source.is_dir() else []:
        if not path.is_file():
            continue
        target = _document_path(root, path.name)
        if target.is_file():
            continue  # content-addressed: the same name is the same content
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent)
        os.close(fd)
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)


def import_database(engine: Engine, directory: Path, *, secret_key: str,
                    documents_root: Path | None = None, allow_new_secret_key: bool = False,
                    progress: Progress | None = None) -> TransferResult:
    """Load an export into ``engine``'s database, which must be empty (but for the court
    reference data `zhixing migrate` loads) and at the export's schema revision. Everything
    is checked first; the rows go in in one transaction that commits only when the counts and
    the audit chain match the manifest."""
    manifest = _read_manifest(directory)
    revision = manifest.get("alembic_revision")
    target, head = current_revision(engine), head_revision()
    if revision != head:
        raise TransferRefused(
            f"the export is at schema revision {revision}, this zhixing at {head}: export with "
            "the same version of zhixing as the import", code="revision_mismatch")
    if target != revision:
        raise TransferRefused(
            f"the database is at schema revision {target}, the export at {revision}: run "
            "`zhixing migrate` against the database first", code="revision_mismatch")
    _check_schema(manifest)
    _check_tables_exist(engine)
    if manifest.get("secret_key_check") != secret_key_check(secret_key) and \
            not allow_new_secret_key:
        raise TransferRefused(
            "ZHIXING_SECRET_KEY differs from the source's: linked units' sealed secrets would not "
            "open, partners' hashing keys would change and the lookup codes on notices served "
            "would stop working. Use the source's key, or pass --new-secret-key and issue new "
            "keys to every unit and hashed-id partner",
            code="secret_key_mismatch")
    _check_files(directory, manifest)
    with engine.connect() as conn:
        occupied = _occupied_tables(conn)
    if occupied:
        raise TransferRefused(f"the database is not empty (rows in {', '.join(occupied)}): "
                              "import into a freshly migrated database", code="target_not_empty")
    documents = 0
    if documents_root is not None:
        # Before the rows, and harmless if they fail: unreferenced files are never served.
        _copy_documents(directory, documents_root)
        documents = int(manifest["documents"]["files"])
    expected = {e["name"]: int(e["rows"]) for e in manifest["tables"]}
    counts: list[TableCount] = []
    with engine.begin() as conn:
        if occupied := _occupied_tables(conn):  # someone wrote meanwhile
            raise TransferRefused(f"the database is not empty (rows in {', '.join(occupied)})",
                                  code="target_not_empty")
        seeded = {t.name: t for t in tables() if t.name in MIGRATE_SEEDED}
        for name in MIGRATE_SEEDED:
            conn.execute(seeded[name].delete())
        for table in tables():
            counts.append(TableCount(table.name, _load_table(
                conn, directory, table, expected[table.name], progress)))
        _reset_sequences(conn)
        for table in tables():
            found = conn.scalar(select(func.count()).select_from(table))
            if found != expected[table.name]:
                raise TransferRefused(f"{table.name}: {found} rows in the database after the "
                                      f"import, {expected[table.name]} in the export",
                                      code="count_mismatch")
        with Session(bind=conn) as session:
            chain = verify_chain(session)
        want = manifest["audit_chain"]
        if not chain.ok or chain.checked != want["records"] or chain.head_hash != \
                want["head_hash"]:
            raise TransferRefused(
                f"the imported audit chain does not verify ({chain.problem or 'head differs'}: "
                f"{chain.checked} records, head {chain.head_hash}; the export has "
                f"{want['records']}, head {want['head_hash']})", code="audit_chain_broken")
    return TransferResult(counts, chain.checked, chain.head_hash, documents,
                          list(manifest["documents"].get("missing", [])))
