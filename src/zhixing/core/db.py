"""Engine, sessions and the declarative base shared by every domain.

SQLite is the embedded default (WAL, foreign keys on); PostgreSQL is production. On SQLite every
ORM transaction starts with ``BEGIN IMMEDIATE``: a deferred transaction that reads and then writes
can fail with SQLITE_BUSY_SNAPSHOT when another writer committed in between, and the audit chain
reads its head before appending. Waiting for the write lock (busy_timeout) is the safe choice.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    any_,
    create_engine,
    event,
    insert,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import DeclarativeBase, QueryableAttribute, Session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from zhixing.core.settings import get_settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, always hands back an aware datetime (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class EnumText(TypeDecorator[enum.StrEnum]):
    """A StrEnum stored as its text value (no native enum: values grow without migrations),
    handed back as the enum member, so ``Mapped[CaseState]`` is true at run time."""

    impl = String
    cache_ok = True

    def __init__(self, enum_class: type[enum.StrEnum], length: int = 32) -> None:
        super().__init__(length)
        self.enum_class = enum_class

    def process_bind_param(self, value: object, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return self.enum_class(str(value)).value  # refuses values outside the enum

    def process_result_value(self, value: str | None, dialect: Dialect) -> enum.StrEnum | None:
        return None if value is None else self.enum_class(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Python's sqlite3 would otherwise BEGIN on its own; we emit BEGIN IMMEDIATE below.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        # The busy timeout first: the journal-mode pragma can meet a lock too (another
        # connection checkpointing), and without a timeout it fails at once.
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str | None = None, *, pool_size: int | None = None) -> Engine:
    settings = get_settings()
    url = url or settings.database_url
    if url.startswith("sqlite"):
        # NullPool: connections are cheap, and a pooled connection must not outlive a fork.
        engine = create_engine(url, poolclass=NullPool)
        _configure_sqlite(engine)
        return engine
    return create_engine(
        url, pool_size=pool_size or settings.db_pool_size, max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_recycle=settings.db_pool_recycle_seconds, pool_pre_ping=True, future=True,
    )


_engine: Engine | None = None
_session_factory: sessionmaker[Session] | None = None


def get_engine() -> Engine:
    global _engine, _session_factory
    if _engine is None:
        _engine = make_engine()
        _session_factory = sessionmaker(_engine, expire_on_commit=False)
    return _engine


def set_engine(engine: Engine) -> None:
    """Point the process at another database (tests, the demo command)."""
    global _engine, _session_factory
    _engine = engine
    _session_factory = sessionmaker(engine, expire_on_commit=False)


def among(column: ColumnElement[Any] | QueryableAttribute[Any],
          values: Sequence[Any]) -> ColumnElement[bool]:
    """``column IN (values)``; on PostgreSQL as ``= ANY(:array)``, one parameter whatever the
    number of values: the statement's text is then the same for every batch, so neither
    SQLAlchemy (expanding the IN per execution) nor psycopg (converting and preparing each new
    text) redoes its work per call. For the protocol's hot paths, where batches vary in size."""
    if isinstance(column, QueryableAttribute):
        column = column.expression
    if get_engine().dialect.name == "postgresql":
        return column == any_(literal(list(values), ARRAY(column.type)))
    return column.in_(values)


def copy_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows of ``table`` (every row with the same keys) in the session's
    transaction. On PostgreSQL one ``COPY ... FROM STDIN`` stream: a pipelined executemany
    hands the connection back and forth between Python and the socket for every row, and in a
    busy process each of those waits its turn for the interpreter (an inquiry's 450 tasks took
    0.1-0.3 s to insert under the linkage benchmark's load). Elsewhere an executemany. The
    session's hooks do not see the rows: a caller whose table is watched for signals says so
    (:func:`zhixing.core.signals.changed`)."""
    if not rows:
        return
    given = list(rows[0])
    # COPY knows nothing of the model's Python-side defaults: the constant ones are supplied,
    # a computed one must be given (on every database, so that code tried on SQLite holds).
    defaults: dict[str, Any] = {}
    for column in table.c:
        if column.name in rows[0] or column.default is None:
            continue
        if not column.default.is_scalar:
            raise ValueError(f"copy_rows: give {table.name}.{column.name} (computed default)")
        defaults[column.name] = column.default.arg  # type: ignore[attr-defined]
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(table), rows)
        return
    from psycopg import sql

    connection = session.connection()
    dialect = connection.dialect
    columns = given + list(defaults)
    processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
                  for name in columns]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns)))
    raw: Any = connection.connection.dbapi_connection
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            values = [*(row[name] for name in given), *defaults.values()]
            copy.write_row([value if process is None else process(value)
                            for process, value in zip(processors, values, strict=True)])


def reset_engine() -> None:
    global _engine, _session_factory
    if _engine is not None:
        _engine.dispose()
    _engine = None
    _session_factory = None


def session_factory() -> sessionmaker[Session]:
    from zhixing import hooks  # the audit chain and other commit-time writers

    hooks.install()
    get_engine()
    assert _session_factory is not None
    return _session_factory


@contextmanager
def transaction() -> Iterator[Session]:
    """A unit of work owned by the caller: committed on success, rolled back on error."""
    session = session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def utcnow_column_default() -> datetime:
    from zhixing.core.clock import utcnow

    return utcnow()


def lock_for_update(session: Session, model: type[Any], row_id: int) -> None:
    """Lock one row until the transaction ends (PostgreSQL ``FOR UPDATE``). On SQLite every
    write transaction already holds the database's write lock (``BEGIN IMMEDIATE``)."""
    session.execute(select(model.id).where(model.id == row_id).with_for_update())


def wait_for_database(session: Session, seconds: float,
                      sleep: Callable[[float], None] = time.sleep,
                      clock: Callable[[], float] = time.monotonic) -> None:
    """Check out the session's connection, waiting up to ``seconds`` for an unreachable
    database (PostgreSQL restarting, a fail-over) before giving up with its error.

    Safe to retry because nothing has run yet: the request's first statement comes after.
    Not for SQLite, where checking out begins the write transaction (``BEGIN IMMEDIATE``) and
    there is no server to wait for."""
    deadline = clock() + seconds
    delay = 0.1
    while True:
        try:
            session.connection()
            return
        except (OperationalError, InterfaceError):
            session.rollback()
            if clock() + delay > deadline:
                raise
            sleep(delay)
            delay = min(delay * 2, 1.0)
