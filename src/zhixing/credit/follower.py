"""The screening indexes of this process, loaded from the list and kept current from the feed.

Screening answers from memory (:class:`~zhixing.credit.screening_index.ExactIndex` for
identity numbers, :class:`~zhixing.credit.names.NameIndex` for names): no database query per
person. Each process loads both once, in bulk, from the active entries, then *follows the feed*:
it applies every change with ``seq`` above the last one it applied, in order. The feed has no gaps
and is numbered in commit order, so following it is exact, and a new listing or a deletion
reaches every process's index within one poll.

Two ways keep the index current, and correctness needs neither alone:

* a background thread (:meth:`ScreeningIndexes.start`) polls every ``poll_seconds`` (0.5 s) and
  compacts the delta layers when they grow, keeping that work off the request path;
* every screening request calls :meth:`ScreeningIndexes.ensure_current`, which loads the index
  on first use and, when no thread runs (tests, a process started without it), catches up with
  :meth:`follow_once` at most every ``poll_seconds``.

The load reads the head *before* the entries: a change committed meanwhile is both in the loaded
rows and replayed from the feed, which is harmless (an add of what is there changes nothing, a
replayed older state is overwritten by the newer feed items that follow it).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.core.db import session_factory
from zhixing.core.settings import get_settings
from zhixing.credit.feed import head_seq
from zhixing.credit.models import Entry, FeedItem
from zhixing.credit.names import NameIndex
from zhixing.credit.screening_index import ExactIndex, normalise_number

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
FOLLOW_BATCH = 5_000
COMPACT_AT = 20_000  # delta rows and tombstones; a compaction copies the base arrays once
LOAD_CHUNK = 50_000


def index_secret(secret_key: str | None = None) -> bytes:
    """The exact index's key material, derived from ZHIXING_SECRET_KEY: the index holds no ID
    number in the clear, and every process computes the same keys."""
    secret = (secret_key or get_settings().secret_key).encode()
    return hashlib.sha256(b"zhixing-screening-index\0" + secret).digest()


class ScreeningIndexes:
    """The exact and name indexes of this process, and how far into the feed they are."""

    def __init__(self, secret: bytes | None = None, *, poll_seconds: float = POLL_SECONDS,
                 compact_at: int = COMPACT_AT) -> None:
        self.exact = ExactIndex(secret or index_secret())
        self.names = NameIndex()
        self.poll_seconds = poll_seconds
        self.compact_at = compact_at
        self.applied_seq = 0
        self.loaded = False
        self._apply = threading.Lock()
        self._last_follow = 0.0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # loading

    def load(self, session: Session | None = None, *, unless_loaded: bool = False) -> int:
        """Replace both indexes with the active entries; returns how many were loaded.
        ``unless_loaded``: a request that finds the follower thread loading waits for it
        instead of loading a second time."""
        with self._apply:
            if unless_loaded and self.loaded:
                return 0
            with _session(session) as s:
                head = head_seq(s)
                rows = s.execute(select(Entry.id, Entry.id_number, Entry.mask, Entry.name,
                                        Entry.birth_date, Entry.region)
                                 .where(Entry.active.is_(True)).order_by(Entry.id)
                                 .execution_options(yield_per=LOAD_CHUNK))
                numbers: list[str] = []
                ids: list[int] = []
                masks: list[int] = []
                names: list[tuple[int, str, date | None, str | None]] = []
                for entry_id, number, mask, name, birth, region in rows:
                    if number and normalise_number(number):
                        numbers.append(number)
                        ids.append(entry_id)
                        masks.append(mask)
                    names.append((entry_id, name, birth, region))
            self.load_arrays(numbers, ids, masks, names, head)
            return len(names)

    def load_arrays(self, numbers: Iterable[str], ids: Iterable[int] | NDArray[np.integer],
                    masks: Iterable[int] | NDArray[np.integer],
                    names: Iterable[tuple[int, str, date | None, str | None]],
                    head: int) -> None:
        """Bulk load from prepared rows consistent with feed position ``head`` (the benchmark
        loads millions of generated rows this way without a database)."""
        self.exact.bulk_load(numbers, ids, masks)
        self.names.bulk_load(_valid_names(names))
        self.applied_seq = head
        self.loaded = True

    # following

    def follow_once(self, session: Session | None = None) -> int:
        """Apply every feed item after :attr:`applied_seq`; returns how many were applied.
        A feed that is behind the index (a restored or emptied database) reloads it."""
        applied = 0
        with self._apply, _session(session) as s:
            if not self.loaded:
                return 0
            while True:
                rows = s.execute(select(FeedItem.seq, FeedItem.entry_id, FeedItem.mask,
                                        FeedItem.payload)
                                 .where(FeedItem.seq > self.applied_seq)
                                 .order_by(FeedItem.seq).limit(FOLLOW_BATCH)).all()
                for seq, entry_id, mask, payload in rows:
                    self._apply_item(entry_id, mask, payload)
                    self.applied_seq = seq
                applied += len(rows)
                if len(rows) < FOLLOW_BATCH:
                    break
            reset = not applied and head_seq(s) < self.applied_seq
        self._last_follow = time.monotonic()
        if reset:
            log.warning("the feed is behind the screening index: reloading")
            self.load(session)
        return applied

    def _apply_item(self, entry_id: int, mask: int, payload: dict[str, Any]) -> None:
        if not mask or not payload.get("active", True):
            self.exact.remove(entry_id)
            self.names.remove(entry_id)
            return
        number = payload.get("id_number")
        try:
            if number and normalise_number(number):
                self.exact.add(number, entry_id, mask)
            self.names.remove(entry_id)  # a change may also correct the name
            birth = payload.get("birth_date")
            self.names.add(entry_id, payload["name"],
                           date.fromisoformat(birth) if birth else None, payload.get("region"))
        except ValueError:
            # A malformed row must not stop the index from following the rest of the feed.
            log.exception("feed item of entry %s could not be indexed", entry_id)

    def ensure_current(self, session: Session) -> None:
        """On the request path: load on first use; without a running follower thread, catch up
        at most every ``poll_seconds``."""
        if not self.loaded:
            self.load(session, unless_loaded=True)
            self._last_follow = time.monotonic()
            return
        if self.running:
            return
        if time.monotonic() - self._last_follow >= self.poll_seconds:
            self.follow_once(session)

    def compact_if_needed(self) -> bool:
        done = False
        if self.exact.delta_size >= self.compact_at:
            self.exact.compact()
            done = True
        if self.names.delta_size >= self.compact_at:
            self.names.compact()
            done = True
        return done

    # the background thread

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Load (if needed) and follow the feed on a daemon thread until :meth:`stop`."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="screening-follower",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.loaded:
                    self.load()
                self.follow_once()
                self.compact_if_needed()
            except Exception:  # a database hiccup must not end the thread; the next poll retries
                log.exception("screening index follower")
            self._stop.wait(self.poll_seconds)


@contextmanager
def _session(session: Session | None) -> Iterator[Session]:
    """The caller's session, or a short read-only one of our own (the follower thread)."""
    if session is not None:
        yield session
        return
    own = session_factory()()
    try:
        yield own
    finally:
        own.rollback()
        own.close()


def _valid_names(rows: Iterable[tuple[int, str, date | None, str | None]]
                 ) -> Iterator[tuple[int, str, date | None, str | None]]:
    for entry_id, name, birth, region in rows:
        if name and name.strip():
            yield entry_id, name, birth, region if region and len(region) == 6 else None


# --- the process-wide instance -------------------------------------------------------------------

_indexes: ScreeningIndexes | None = None
_guard = threading.Lock()


def get_indexes() -> ScreeningIndexes:
    global _indexes
    with _guard:
        if _indexes is None:
            _indexes = ScreeningIndexes()
        return _indexes


def set_indexes(indexes: ScreeningIndexes | None) -> ScreeningIndexes | None:
    """Install (or with None drop) the process's indexes; returns the previous ones, stopped.
    Tests start each case from a fresh index; the benchmark installs a preloaded one."""
    global _indexes
    with _guard:
        previous, _indexes = _indexes, indexes
    if previous is not None:
        previous.stop()
    return previous


def start_follower() -> ScreeningIndexes:
    """Load and follow in the background (for the process's start-up)."""
    indexes = get_indexes()
    indexes.start()
    return indexes
