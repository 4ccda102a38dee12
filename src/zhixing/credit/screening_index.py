"""Exact screening of identity numbers against the dishonest-debtor list (RULES.md,
Dishonest-debtor list; Identifiers).

Partners (airlines, railways, border control, banks) ask "is this resident ID number or credit
code on the list, and which restrictions apply?". :class:`ExactIndex` answers that for 10 million
list entries on one core, from memory, with no database round trip:

* **Keys.** The normalised number (:func:`normalise_number`) is hashed with SipHash-2-4, a keyed
  pseudo-random function (the one behind Python's own ``dict`` hashing), under a 128-bit key
  derived from the caller's secret. The index therefore holds no ID number in the clear, and the
  same secret gives the same keys in every process. SipHash is computed in pure Python for one
  number (~20 µs) and vectorised with numpy for a batch (~0.2 µs a number), so batches and bulk
  loads never call a hash function once per number from Python.
* **Collisions.** Two different numbers share a 64-bit key with probability 2^-64; among n listed
  numbers and a query, a false hit has probability about n / 2^64 (5.4e-13 at n = 10^7, i.e.
  one in about 1.8 trillion queries), and a collision inside the list itself about n^2 / 2^65
  (2.7e-6 at 10^7). The index cannot tell a collision from a hit, because it keeps no numbers:
  whoever shows a hit's details loads the entry and compares its number, which also catches an
  entry corrected after the lookup.
* **Layout.** The base is four numpy arrays sorted by key: ``keys`` (uint64), ``ids`` (int64,
  the list entry's row id) and ``masks`` (uint32, the restricted activities, bits defined by
  the caller), plus ``ids_sorted``/``id_pos`` (entry id → row) so a removal finds its rows
  without the number. 32 bytes an entry. Batches are answered with one ``np.searchsorted``.
  Several entries (several cases) may share a number: a lookup returns all of them.
* **Updates** go to a small delta layer (dicts) and are visible to the next lookup. A removal of
  a row in the base is a tombstone ``(key, entry id)``. :meth:`ExactIndex.compact` folds the delta
  into a new base by splicing (one copy of the arrays, no re-sort: ~1 s at 10 million) while
  lookups and writes go on; call it when :attr:`ExactIndex.delta_size` passes a few ten thousand
  or every few minutes. The rows of a number come back in no particular order.
* **Threads.** Readers take no lock: the state is one reference to an immutable base plus at most
  two delta layers, read once per lookup. Writers serialise on a lock and change only the newest
  layer, replacing (never mutating in place) the small containers that readers may be iterating.
  A compaction freezes the newest layer, builds the new base from the frozen one outside the
  lock, and swaps the state reference; readers holding the old state finish on it unharmed.
  This relies on single dict and set operations being atomic, as they are in CPython with its
  GIL (a free-threaded build would need a read lock around the delta look-ups).

:func:`cheap_check` is the hot-path validation (length, character set, check character only; the
full ``stdnum`` validation costs ~130 µs because of its region table), returning an error code
per item so that a batch reports its bad items and still answers the rest.
"""

from __future__ import annotations

import hashlib
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import islice
from typing import NamedTuple, TypeVar

import numpy as np
from numpy.typing import NDArray
from stdnum.cn import ric, uscc

U64 = NDArray[np.uint64]
I64 = NDArray[np.int64]
INTP = NDArray[np.intp]
_T = TypeVar("_T", bound=np.generic)

INVALID_FORMAT = "invalid_id_format"
INVALID_CHECKSUM = "invalid_id_checksum"

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100: no I, O, S, V, Z
_USCC_SET = frozenset(USCC_ALPHABET)
_DIGITS = frozenset("0123456789")
_STRIP = str.maketrans("", "", " \t\r\n\u3000-()")
_M64 = (1 << 64) - 1
_SIP_C = (0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573)
_SCALAR_BATCH = 12  # below this many numbers, the scalar hash is faster than numpy's overhead
_CHUNK = 1 << 16  # bulk hashing chunk (fits in cache)


# --- normalisation and the cheap check ------------------------------------------------------


def ric15_to_18(number: str) -> str:
    """A 15-digit resident ID (issued before 1999, born 19xx) as its 18-digit form (GB 11643)."""
    body = number[:6] + "19" + number[6:]
    return body + ric.calc_check_digit(body + "0")


def normalise_number(raw: str) -> str:
    """The form an identity number is keyed by: NFKC (full-width digits from Chinese input
    methods), without spaces, hyphens and brackets, upper case; a 15-digit resident ID becomes
    its 18-digit form, so either form finds an entry recorded with the other."""
    number = raw.upper()
    if not (number.isascii() and number.isalnum()):
        number = unicodedata.normalize("NFKC", number).translate(_STRIP).upper()
    if len(number) == 15 and number.isdigit():
        return ric15_to_18(number)
    return number


def normalise_numbers(raw: Sequence[str]) -> list[str]:
    """:func:`normalise_number` of each, with a whole-batch fast path for the usual batch of
    ASCII letters and digits with no 15-digit number (C loops only)."""
    upper = list(map(str.upper, raw))
    joined = "".join(upper)
    if joined.isascii() and joined.encode().isalnum() and 15 not in map(len, upper):
        return upper
    return [normalise_number(n) for n in raw]


class CheckedNumber(NamedTuple):
    """A number as the hot path sees it: ``number`` is the normalised form (what is looked up),
    ``kind`` is ``ric``/``ric15``/``uscc``/``other`` (as :class:`zhixing.cases.models.IdKind`),
    ``error`` an error code or None."""

    number: str
    kind: str | None
    error: str | None


def cheap_check(raw: str) -> CheckedNumber:
    """Length, character set and check character: what a screening request checks per item.

    * 18 characters: a resident ID (17 digits and 0-9/X, ISO 7064 MOD 11-2) or a unified social
      credit code (8 digits and 10 characters of its alphabet, mod-31 check), as ``stdnum``
      defines them. An all-digit number passing either check is accepted: all-digit credit codes
      exist (numeric organisation codes), so a mistyped resident ID has a 1 in 31 chance of
      passing as a credit code; it is then simply not found.
    * 15 digits: an old resident ID (no check character); looked up in its 18-digit form.
    * 16, 17 or 19 digits: refused (``invalid_id_format``): a mistyped resident ID must not
      come back as "not listed".
    * anything else of 4-32 letters and digits: another number (passport, permit, foreign).

    Birth date and region are not checked here (RULES.md: the full check costs ~130 µs).
    """
    number = raw.upper()
    if not (number.isascii() and number.isalnum()):
        number = unicodedata.normalize("NFKC", number).translate(_STRIP).upper()
        if not (number.isascii() and number.isalnum()):
            return CheckedNumber(number, None, INVALID_FORMAT)
    size = len(number)
    if size == 18:
        head = number[:17]
        if head.isdigit() and (number[17] in _DIGITS or number[17] == "X"):
            if ric.calc_check_digit(number) == number[17]:
                return CheckedNumber(number, "ric", None)
            if _uscc_ok(number):
                return CheckedNumber(number, "uscc", None)
            return CheckedNumber(number, None, INVALID_CHECKSUM)
        if number[:8].isdigit() and _USCC_SET.issuperset(number):
            if _uscc_ok(number):
                return CheckedNumber(number, "uscc", None)
            return CheckedNumber(number, None, INVALID_CHECKSUM)
        return CheckedNumber(number, None, INVALID_FORMAT)
    if number.isdigit():
        if size == 15:
            return CheckedNumber(ric15_to_18(number), "ric15", None)
        if 16 <= size <= 19:
            return CheckedNumber(number, None, INVALID_FORMAT)
    if 4 <= size <= 32:
        return CheckedNumber(number, "other", None)
    return CheckedNumber(number, None, INVALID_FORMAT)


_RIC_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_RIC_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)


def cheap_check_many(raw: Sequence[str]) -> tuple[list[str], list[str | None]]:
    """:func:`cheap_check` of each, as two lists (the numbers to look up, the error codes),
    with the resident-ID check vectorised: a passenger list is mostly 18-character resident
    IDs, whose check characters numpy computes for the whole batch at once (ISO 7064 MOD 11-2:
    the weighted digit sum mod 11 indexes "10X98765432"). Anything else (credit codes, old
    IDs, errors) takes :func:`cheap_check`."""
    numbers = [n.upper() for n in raw]
    errors: list[str | None] = [None] * len(numbers)
    idx = [i for i, n in enumerate(numbers) if len(n) == 18 and n.isascii()]
    good: list[bool] = []
    if idx:
        data = np.frombuffer("".join(numbers[i] for i in idx).encode(), dtype=np.uint8)
        rows = data.reshape(len(idx), 18)
        head = rows[:, :17]
        digits_ok = ((head >= 48) & (head <= 57)).all(axis=1)
        total = (head.astype(np.int64) - 48) @ _RIC_WEIGHTS
        good = (digits_ok & (_RIC_CHECK[total % 11] == rows[:, 17])).tolist()
    passed = {i for i, ok in zip(idx, good, strict=True) if ok}
    for i, number in enumerate(raw):
        if i not in passed:
            checked = cheap_check(number)
            numbers[i], errors[i] = checked.number, checked.error
    return numbers, errors


def _uscc_ok(number: str) -> bool:
    return _USCC_SET.issuperset(number) and uscc.calc_check_digit(number) == number[17]


# --- SipHash-2-4, scalar and vectorised -------------------------------------------------------


def derive_key(secret: bytes) -> tuple[int, int]:
    """The two 64-bit SipHash key words for a secret of at least 16 bytes."""
    if len(secret) < 16:
        raise ValueError("the index secret must be at least 16 bytes")
    digest = hashlib.blake2b(secret, digest_size=16, person=b"zhixing-exact").digest()
    return int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little")


def siphash24(k0: int, k1: int, data: bytes) -> int:
    """SipHash-2-4 of ``data`` (Aumasson and Bernstein, 2012), in pure Python."""
    v0, v1, v2, v3 = k0 ^ _SIP_C[0], k1 ^ _SIP_C[1], k0 ^ _SIP_C[2], k1 ^ _SIP_C[3]
    size = len(data)
    full = size - size % 8
    words = [int.from_bytes(data[i:i + 8], "little") for i in range(0, full, 8)]
    words.append(int.from_bytes(data[full:], "little") | ((size & 0xFF) << 56))
    rounds = [2] * len(words) + [4]
    for i, count in enumerate(rounds):
        if i < len(words):
            v3 ^= words[i]
        else:
            v2 ^= 0xFF
        for _ in range(count):
            v0 = (v0 + v1) & _M64
            v1 = ((v1 << 13) | (v1 >> 51)) & _M64
            v1 ^= v0
            v0 = ((v0 << 32) | (v0 >> 32)) & _M64
            v2 = (v2 + v3) & _M64
            v3 = ((v3 << 16) | (v3 >> 48)) & _M64
            v3 ^= v2
            v0 = (v0 + v3) & _M64
            v3 = ((v3 << 21) | (v3 >> 43)) & _M64
            v3 ^= v0
            v2 = (v2 + v1) & _M64
            v1 = ((v1 << 17) | (v1 >> 47)) & _M64
            v1 ^= v2
            v2 = ((v2 << 32) | (v2 >> 32)) & _M64
        if i < len(words):
            v0 ^= words[i]
    return v0 ^ v1 ^ v2 ^ v3


_SH1 = np.array([[13], [16]], dtype=np.uint64)  # rotations of (v1, v3), first half-round
_SH2 = np.array([[17], [21]], dtype=np.uint64)  # second half-round
_SH1R = np.uint64(64) - _SH1
_SH2R = np.uint64(64) - _SH2
_S32 = np.uint64(32)


def _sip_rounds(a: U64, b: U64, t: U64, t1: U64, count: int) -> None:
    """SipRounds on a batch: ``a`` holds rows (v0, v2), ``b`` rows (v1, v3), so each numpy call
    does the work of two of the reference's statements (16 calls a round instead of 26)."""
    for _ in range(count):
        a += b  # v0 += v1; v2 += v3
        np.left_shift(b, _SH1, out=t)
        np.right_shift(b, _SH1R, out=b)
        b |= t  # v1 = rotl(v1, 13); v3 = rotl(v3, 16)
        b ^= a  # v1 ^= v0; v3 ^= v2
        v0 = a[0]
        np.left_shift(v0, _S32, out=t1)
        np.right_shift(v0, _S32, out=v0)
        v0 |= t1  # v0 = rotl(v0, 32)
        a += b[::-1]  # v0 += v3; v2 += v1
        np.left_shift(b, _SH2, out=t)
        np.right_shift(b, _SH2R, out=b)
        b |= t  # v1 = rotl(v1, 17); v3 = rotl(v3, 21)
        b ^= a[::-1]  # v1 ^= v2; v3 ^= v0
        v2 = a[1]
        np.left_shift(v2, _S32, out=t1)
        np.right_shift(v2, _S32, out=v2)
        v2 |= t1  # v2 = rotl(v2, 32)


def _sip_words(k0: int, k1: int, words: U64) -> U64:
    """SipHash-2-4 of many messages of the same block count: ``words`` is (blocks, n), the last
    row already carrying the length byte."""
    n = words.shape[1]
    a = np.empty((2, n), dtype=np.uint64)
    b = np.empty((2, n), dtype=np.uint64)
    a[0], a[1] = k0 ^ _SIP_C[0], k0 ^ _SIP_C[2]
    b[0], b[1] = k1 ^ _SIP_C[1], k1 ^ _SIP_C[3]
    t = np.empty((2, n), dtype=np.uint64)
    t1 = np.empty(n, dtype=np.uint64)
    for word in words:
        b[1] ^= word
        _sip_rounds(a, b, t, t1, 2)
        a[0] ^= word
    a[1] ^= np.uint64(0xFF)
    _sip_rounds(a, b, t, t1, 4)
    out: U64 = a[0] ^ a[1] ^ b[0] ^ b[1]
    return out


def _sip_same_length(k0: int, k1: int, numbers: Sequence[str], size: int) -> U64 | None:
    """Hash ASCII strings that all have ``size`` characters; None if some are not ASCII."""
    raw = "".join(numbers).encode()
    if len(raw) != size * len(numbers):
        return None
    blocks = size // 8 + 1
    buf = np.zeros((len(numbers), blocks * 8), dtype=np.uint8)
    buf[:, :size] = np.frombuffer(raw, dtype=np.uint8).reshape(len(numbers), size)
    buf[:, -1] = size & 0xFF
    words = np.ascontiguousarray(buf.view("<u8").T).astype(np.uint64, copy=False)
    return _sip_words(k0, k1, words)


def siphash24_many(k0: int, k1: int, numbers: Sequence[str]) -> U64:
    """SipHash-2-4 of the UTF-8 of each string, vectorised per string length."""
    out = np.empty(len(numbers), dtype=np.uint64)
    if not numbers:
        return out
    if len(numbers) < _SCALAR_BATCH:
        out[:] = [siphash24(k0, k1, s.encode()) for s in numbers]
        return out
    lengths = list(map(len, numbers))
    first = lengths[0]
    if lengths.count(first) == len(lengths):
        hashed = _sip_same_length(k0, k1, numbers, first)
        if hashed is not None:
            return hashed
    groups: dict[int, list[int]] = {}
    for i, size in enumerate(lengths):
        groups.setdefault(size, []).append(i)
    for size, idx in groups.items():
        group = [numbers[i] for i in idx]
        hashed = _sip_same_length(k0, k1, group, size) if len(idx) >= _SCALAR_BATCH else None
        if hashed is None:
            hashed = np.array([siphash24(k0, k1, s.encode()) for s in group], dtype=np.uint64)
        out[np.asarray(idx, dtype=np.intp)] = hashed
    return out


# --- splicing sorted arrays (compaction) ------------------------------------------------------


@dataclass
class Splice:
    """Deleting rows ``deleted`` (sorted positions) from a sorted array of ``size`` rows and then
    inserting new rows before positions ``insert_at`` of the shortened array (sorted, as from
    ``searchsorted(..., side="right")``)."""

    size: int
    deleted: INTP
    insert_at: INTP

    def apply(self, array: NDArray[_T], values: NDArray[_T]) -> NDArray[_T]:
        """The spliced copy of ``array`` (rows along axis 0), ``values`` being the new rows:
        one slice copy per unchanged run, so the cost is a memcpy of the array plus O(changes)."""
        out: NDArray[_T] = np.empty((self.size - len(self.deleted) + len(self.insert_at),
                                     *array.shape[1:]), dtype=array.dtype)
        for old, new, length in self.runs:
            out[new:new + length] = array[old:old + length]
        if len(self.insert_at):
            out[self.inserted_positions()] = values
        return out

    @cached_property
    def runs(self) -> list[tuple[int, int, int]]:
        """(old start, new start, length) of the runs of rows that move together."""
        kept = self.size - len(self.deleted)
        # a deletion splits the kept rows where it was: kept index deleted[j] - j
        splits = self.deleted - np.arange(len(self.deleted), dtype=np.intp)
        cuts = np.unique(np.concatenate([splits, self.insert_at, [0, kept]]).astype(np.intp))
        starts, ends = cuts[:-1], cuts[1:]
        old = starts + np.searchsorted(splits, starts, side="right")
        new = starts + np.searchsorted(self.insert_at, starts, side="right")
        return list(zip(old.tolist(), new.tolist(), (ends - starts).tolist(), strict=True))

    @cached_property
    def position_map(self) -> INTP:
        """Old position → new position (-1 if deleted), in O(size) sequential passes."""
        keep = np.ones(self.size, dtype=np.bool_)
        keep[self.deleted] = False
        shifted = np.cumsum(keep, dtype=np.intp) - 1
        inserted = np.bincount(self.insert_at, minlength=self.size - len(self.deleted) + 1)
        before = np.cumsum(inserted, dtype=np.intp)  # insertions at or before each kept row
        out: INTP = shifted + before[np.maximum(shifted, 0)]
        out[~keep] = -1
        return out

    def survivors(self, old_positions: NDArray[np.integer]) -> tuple[NDArray[np.bool_], INTP]:
        """For old positions: which survive, and the new positions of the survivors."""
        moved = self.position_map[old_positions]
        alive = moved >= 0
        return alive, moved[alive]

    def inserted_positions(self) -> INTP:
        """Where the inserted rows end up, in their order."""
        out: INTP = self.insert_at + np.arange(len(self.insert_at), dtype=np.intp)
        return out


# --- the index ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Base:
    keys: U64  # sorted
    ids: I64
    masks: NDArray[np.uint32]
    ids_sorted: I64  # the entry ids, sorted
    id_pos: NDArray[np.uint32]  # the row of each id in ids_sorted's order
    directory: NDArray[np.uint32]  # first row of each bucket of the top ``bits`` key bits
    bits: int

    @classmethod
    def build(cls, keys: U64, ids: I64, masks: NDArray[np.uint32], ids_sorted: I64,
              id_pos: NDArray[np.uint32]) -> _Base:
        """With a bucket directory of ~2 rows a bucket (1.7 bytes an entry): a lookup reads the
        directory and one cache line of keys instead of ~24 binary-search probes, most of them
        cache misses once the keys outgrow the CPU cache (1.5 µs a lookup at 10M)."""
        if len(keys) >= 1 << 32:
            raise ValueError("the exact index holds fewer than 2**32 rows")
        bits = min(28, max(1, len(keys).bit_length() - 2))
        counts = np.bincount((keys >> np.uint64(64 - bits)).astype(np.intp), minlength=1 << bits)
        directory = np.zeros((1 << bits) + 1, dtype=np.uint32)
        np.cumsum(counts, out=directory[1:])
        return cls(keys, ids, masks, ids_sorted, id_pos, directory, bits)

    @classmethod
    def empty(cls) -> _Base:
        return cls.build(np.empty(0, np.uint64), np.empty(0, np.int64), np.empty(0, np.uint32),
                         np.empty(0, np.int64), np.empty(0, np.uint32))

    def rows_of(self, entry_id: int) -> list[int]:
        lo, hi = np.searchsorted(self.ids_sorted, [entry_id, entry_id + 1])
        return [int(p) for p in self.id_pos[lo:hi]]

    def find(self, key: int) -> tuple[int, int]:
        """The rows [lo, hi) holding ``key``."""
        bucket = key >> (64 - self.bits)
        lo, hi = int(self.directory[bucket]), int(self.directory[bucket + 1])
        found = self.keys[lo:hi].tolist()
        try:
            first = found.index(key)
        except ValueError:
            return lo, lo
        return lo + first, lo + first + found.count(key)

    def find_many(self, q: U64) -> INTP:
        """For each key, the first row whose key is not less (a vectorised lower bound within
        the key's bucket: ~log2(bucket size) steps)."""
        bucket = (q >> np.uint64(64 - self.bits)).astype(np.intp)
        first = self.directory[bucket].astype(np.intp)
        count = self.directory[bucket + 1].astype(np.intp) - first
        last = len(self.keys) - 1
        while True:
            active = count > 0
            if not active.any():
                return first
            step = count >> 1
            probe = first + step
            go = active & (self.keys[np.minimum(probe, last)] < q)
            first = np.where(go, probe + 1, first)
            count = np.where(go, count - step - 1, step)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.keys, self.ids, self.masks, self.ids_sorted,
                                      self.id_pos, self.directory))


@dataclass
class _Layer:
    """Recent changes. ``adds`` key → {entry id: mask}; ``by_id`` entry id → keys in ``adds``;
    ``tombs`` (key, entry id) rows hidden in the layers below. The inner dicts that readers
    iterate are replaced, not mutated (copy on write); readers only test ``tombs`` for
    membership and get from ``adds`` once per key, single operations that are atomic."""

    adds: dict[int, dict[int, int]] = field(default_factory=dict)
    by_id: dict[int, frozenset[int]] = field(default_factory=dict)
    tombs: set[tuple[int, int]] = field(default_factory=set)

    def size(self) -> int:
        return sum(len(v) for v in self.adds.values()) + len(self.tombs)


@dataclass(frozen=True)
class _State:
    base: _Base
    frozen: _Layer | None
    active: _Layer


class ExactIndex:
    """Identity number → list entries (entry id, restriction mask). See the module doc."""

    def __init__(self, secret: bytes) -> None:
        self._k0, self._k1 = derive_key(secret)
        self._state = _State(_Base.empty(), None, _Layer())
        self._count = 0
        self._write = threading.Lock()
        self._compacting = threading.Lock()

    # keys

    def key_of(self, number: str) -> int:
        """The 64-bit key of a number (normalised first)."""
        return siphash24(self._k0, self._k1, normalise_number(number).encode())

    def keys_of(self, numbers: Sequence[str], *, normalised: bool = False) -> U64:
        if not normalised:
            numbers = normalise_numbers(numbers)
        return siphash24_many(self._k0, self._k1, numbers)

    def _keys_to_store(self, numbers: Sequence[str]) -> U64:
        normalised = normalise_numbers(numbers)
        if "" in normalised:
            raise ValueError("an empty identity number")
        return siphash24_many(self._k0, self._k1, normalised)

    # loading

    def bulk_load(self, numbers: Iterable[str], entry_ids: Iterable[int] | NDArray[np.integer],
                  masks: Iterable[int] | NDArray[np.integer]) -> None:
        """Replace the whole content (cold start): hashing is vectorised in chunks, then one
        sort. A (number, entry id) pair given twice is kept once, with the last mask."""
        chunks: list[U64] = []
        it = iter(numbers)
        while chunk := list(islice(it, _CHUNK)):
            chunks.append(self._keys_to_store(chunk))
        keys = np.concatenate(chunks) if chunks else np.empty(0, np.uint64)
        ids = _as_array(entry_ids, np.int64)
        mask_arr = _as_array(masks, np.uint32)
        if not len(keys) == len(ids) == len(mask_arr):
            raise ValueError("numbers, entry_ids and masks differ in length")
        order = np.lexsort((np.arange(len(keys)), ids, keys))  # by key, id, then input order
        keys, ids, mask_arr = keys[order], ids[order], mask_arr[order]
        if len(keys) > 1:
            last = np.ones(len(keys), dtype=np.bool_)
            last[:-1] = (keys[1:] != keys[:-1]) | (ids[1:] != ids[:-1])
            if not last.all():
                keys, ids, mask_arr = keys[last], ids[last], mask_arr[last]
        base = _with_id_order(keys, ids, mask_arr)
        with self._compacting, self._write:
            self._state = _State(base, None, _Layer())
            self._count = len(keys)

    def add(self, number: str, entry_id: int, mask: int) -> bool:
        """Add a row, or change its mask. Visible to the next lookup. False if it was there
        already with that mask."""
        key = int(self._keys_to_store([number])[0])
        entry_id, mask = int(entry_id), int(mask) & 0xFFFFFFFF
        with self._write:
            state = self._state
            active = state.active
            current = _live_mask(state, key, entry_id)
            if current == mask:
                return False
            if current is not None and entry_id not in active.adds.get(key, {}):
                active.tombs.add((key, entry_id))  # replaces a row of a lower layer
            active.adds[key] = {**active.adds.get(key, {}), entry_id: mask}
            active.by_id[entry_id] = active.by_id.get(entry_id, frozenset()) | {key}
            if current is None:
                self._count += 1
            return True

    def remove(self, entry_id: int) -> int:
        """Remove every row of a list entry (deleted or revoked listing). Returns how many."""
        entry_id = int(entry_id)
        removed = 0
        with self._write:
            state = self._state
            active = state.active
            for key in active.by_id.pop(entry_id, frozenset()):
                rest = {e: m for e, m in active.adds[key].items() if e != entry_id}
                if rest:
                    active.adds[key] = rest
                else:
                    del active.adds[key]
                removed += 1
            lower: list[int] = []
            if state.frozen is not None:
                lower.extend(state.frozen.by_id.get(entry_id, ()))
            base = state.base
            base_keys = [int(base.keys[p]) for p in base.rows_of(entry_id)]
            frozen_tombs = state.frozen.tombs if state.frozen is not None else set()
            lower.extend(k for k in base_keys if (k, entry_id) not in frozen_tombs)
            for key in lower:
                if (key, entry_id) not in active.tombs:
                    active.tombs.add((key, entry_id))
                    removed += 1
            self._count -= removed
        return removed

    # lookups

    def lookup(self, number: str) -> list[tuple[int, int]]:
        """All (entry id, mask) for a number; [] if not listed."""
        key = self.key_of(number)
        state = self._state
        base = state.base
        found: list[tuple[int, int]] = []
        frozen = state.frozen
        active = state.active
        lo, hi = base.find(key)
        if hi > lo:
            ids, masks = base.ids[lo:hi].tolist(), base.masks[lo:hi].tolist()
            for entry_id, mask in zip(ids, masks, strict=True):
                if not _hidden(key, entry_id, frozen, active):
                    found.append((entry_id, mask))
        if frozen is not None:
            for entry_id, mask in frozen.adds.get(key, {}).items():
                if (key, entry_id) not in active.tombs:
                    found.append((entry_id, mask))
        found.extend(active.adds.get(key, {}).items())
        return found

    def lookup_many(self, numbers: Sequence[str], *,
                    normalised: bool = False) -> list[list[tuple[int, int]]]:
        """:meth:`lookup` for a batch, vectorised. ``normalised=True`` skips
        :func:`normalise_number` for numbers that :func:`cheap_check` already returned."""
        q = self.keys_of(numbers, normalised=normalised)
        state = self._state
        base = state.base
        out: list[list[tuple[int, int]]] = [[] for _ in range(len(q))]
        n = len(base.keys)
        frozen, active = state.frozen, state.active
        has_tombs = bool(active.tombs) or (frozen is not None and bool(frozen.tombs))
        qlist: list[int] | None = None
        if n and len(q):
            pos = base.find_many(q)
            hit = np.flatnonzero(base.keys[np.minimum(pos, n - 1)] == q)
            rows = pos[hit]
            while len(hit):
                ids = base.ids[rows].tolist()
                masks = base.masks[rows].tolist()
                if has_tombs:
                    qlist = q.tolist() if qlist is None else qlist
                    for i, e, m in zip(hit.tolist(), ids, masks, strict=True):
                        if not _hidden(qlist[i], e, frozen, active):
                            out[i].append((e, m))
                else:
                    for i, e, m in zip(hit.tolist(), ids, masks, strict=True):
                        out[i].append((e, m))
                rows = rows + 1  # duplicate keys (one number, several entries) are adjacent
                more = rows < n
                hit, rows = hit[more], rows[more]
                same = base.keys[rows] == q[hit]
                hit, rows = hit[same], rows[same]
        if active.adds or (frozen is not None and frozen.adds):
            qlist = q.tolist() if qlist is None else qlist
            older = frozen.adds if frozen is not None else {}
            for i, key in enumerate(qlist):
                added = older.get(key)  # one get: a writer may delete the key meanwhile
                if added:
                    out[i].extend((e, m) for e, m in added.items() if (key, e) not in active.tombs)
                added = active.adds.get(key)
                if added:
                    out[i].extend(added.items())
        return out

    # maintenance

    def __len__(self) -> int:
        return self._count

    @property
    def delta_size(self) -> int:
        """Rows and tombstones waiting for :meth:`compact`."""
        with self._write:  # the layers are counted while no writer changes them
            state = self._state
            return state.active.size() + (state.frozen.size() if state.frozen else 0)

    def memory_bytes(self) -> int:
        """The base arrays, plus an estimate for the delta (~250 bytes a change)."""
        state = self._state
        return state.base.nbytes() + 250 * self.delta_size

    def compact(self) -> None:
        """Fold the delta into a new base. Lookups and writes go on meanwhile; writes made
        during the compaction stay in the (new) delta."""
        with self._compacting:
            with self._write:
                state = self._state
                if not state.active.adds and not state.active.tombs:
                    return
                frozen = state.active
                self._state = _State(state.base, frozen, _Layer())
            base = _merge(state.base, frozen)
            with self._write:
                self._state = _State(base, None, self._state.active)


def _as_array(values: Iterable[int] | NDArray[np.integer], dtype: type[_T]) -> NDArray[_T]:
    if isinstance(values, np.ndarray):
        return values.astype(dtype, copy=False)
    return np.fromiter(values, dtype=dtype)


def _with_id_order(keys: U64, ids: I64, masks: NDArray[np.uint32]) -> _Base:
    order = np.argsort(ids, kind="stable")
    return _Base.build(keys, ids, masks, ids[order], order.astype(np.uint32))


def _hidden(key: int, entry_id: int, frozen: _Layer | None, active: _Layer) -> bool:
    return (key, entry_id) in active.tombs or (
        frozen is not None and (key, entry_id) in frozen.tombs)


def _live_mask(state: _State, key: int, entry_id: int) -> int | None:
    active, frozen, base = state.active, state.frozen, state.base
    if entry_id in active.adds.get(key, {}):
        return active.adds[key][entry_id]
    if (key, entry_id) in active.tombs:
        return None
    if frozen is not None:
        if entry_id in frozen.adds.get(key, {}):
            return frozen.adds[key][entry_id]
        if (key, entry_id) in frozen.tombs:
            return None
    for pos in base.rows_of(entry_id):
        if int(base.keys[pos]) == key:
            return int(base.masks[pos])
    return None


def _merge(base: _Base, layer: _Layer) -> _Base:
    """The base with a frozen layer folded in (tombstoned rows deleted, added rows spliced in
    at their sorted places), keeping ``ids_sorted``/``id_pos`` without re-sorting."""
    deleted: list[int] = []
    for key, entry_id in layer.tombs:
        deleted.extend(p for p in base.rows_of(entry_id) if int(base.keys[p]) == key)
    dele = np.unique(np.asarray(deleted, dtype=np.intp))
    rows = sorted((k, e, m) for k, adds in layer.adds.items() for e, m in adds.items())
    new_keys = np.array([r[0] for r in rows], dtype=np.uint64)
    new_ids = np.array([r[1] for r in rows], dtype=np.int64)
    new_masks = np.array([r[2] for r in rows], dtype=np.uint32)
    kept_keys = np.delete(base.keys, dele) if len(dele) else base.keys
    insert_at = np.searchsorted(kept_keys, new_keys, side="right").astype(np.intp)
    splice = Splice(len(base.keys), dele, insert_at)
    keys = splice.apply(base.keys, new_keys)
    ids = splice.apply(base.ids, new_ids)
    masks = splice.apply(base.masks, new_masks)
    # entry id order: survivors keep their order, with new positions; new rows are merged in
    alive, moved = splice.survivors(base.id_pos)
    ids_sorted = base.ids_sorted[alive]
    id_pos = moved
    if len(rows):
        by_id = np.argsort(new_ids, kind="stable")
        new_sorted = new_ids[by_id]
        new_pos = splice.inserted_positions()[by_id]
        at = np.searchsorted(ids_sorted, new_sorted, side="right")
        ids_sorted = np.insert(ids_sorted, at, new_sorted)
        id_pos = np.insert(id_pos, at, new_pos)
    return _Base.build(keys, ids, masks, ids_sorted, id_pos.astype(np.uint32))
