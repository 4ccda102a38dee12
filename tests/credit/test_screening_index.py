from __future__ import annotations

import random
import threading
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import ric, uscc

from zhixing.credit import screening_index
from zhixing.credit.screening_index import (
    INVALID_CHECKSUM,
    INVALID_FORMAT,
    USCC_ALPHABET,
    ExactIndex,
    Splice,
    cheap_check,
    normalise_number,
    ric15_to_18,
    siphash24,
    siphash24_many,
)
from zhixing.demo_data.identities import credit_code, resident_id

SECRET = b"test secret of at least 16 bytes"
FLIGHT, TRAIN, HOTEL = 1, 2, 4

# SipHash-2-4 reference vectors (Aumasson and Bernstein): key 00..0f, message 00..n-1.
VECTORS = (
    0x726FDB47DD0E0E31, 0x74F839C593DC67FD, 0x0D6C8009D9A94F5A, 0x85676696D7FB7E2D,
    0xCF2794E0277187B7, 0x18765564CD99A68D, 0xCBC9466E58FEE3CE, 0xAB0200F58B01D137,
    0x93F5F5799A932462, 0x9E0082DF0BA9E4B0, 0x7A5DBBC594DDB9F3, 0xF4B32F46226BADA7,
    0x751E8FBC860EE5FB, 0x14EA5627C0843D90, 0xF723CA908E7AF2EE, 0xA129CA6149BE45E5,
    0x3F2ACC7F57C29BDB, 0x699AE9F52CBE4794, 0x4BC1B3F0968DD39C, 0xBB6DC91DA77961BD,
)
K0, K1 = 0x0706050403020100, 0x0F0E0D0C0B0A0908

RICS = [resident_id(random.Random(seed)) for seed in range(12)]
USCCS = [credit_code(random.Random(seed)) for seed in range(4)]
POOL = RICS + USCCS


@pytest.fixture
def index() -> ExactIndex:
    idx = ExactIndex(SECRET)
    # entry 3 and 4: one person, two cases; entry 5: an organisation
    numbers = [RICS[0], RICS[1], RICS[2], RICS[2], USCCS[0]]
    idx.bulk_load(numbers, [1, 2, 4, 3, 5], [FLIGHT, TRAIN, FLIGHT | TRAIN, HOTEL, FLIGHT])
    return idx


class TestSipHash:
    def test_reference_vectors(self) -> None:
        for n, want in enumerate(VECTORS):
            assert siphash24(K0, K1, bytes(range(n))) == want

    def test_vectorised_reference_vectors(self) -> None:
        for n, want in enumerate(VECTORS):
            message = "".join(map(chr, range(n)))
            assert siphash24_many(K0, K1, [message] * 20).tolist() == [want] * 20

    @settings(max_examples=40, deadline=None)
    @given(st.lists(st.text(max_size=40), min_size=0, max_size=60))
    def test_vectorised_equals_scalar(self, texts: list[str]) -> None:
        got = siphash24_many(K0, K1, texts).tolist()
        assert got == [siphash24(K0, K1, t.encode()) for t in texts]

    def test_secret_too_short(self) -> None:
        with pytest.raises(ValueError, match="16 bytes"):
            ExactIndex(b"short")

    def test_keys_depend_on_the_secret(self) -> None:
        a, b = ExactIndex(SECRET), ExactIndex(SECRET + b"!")
        assert a.key_of(RICS[0]) != b.key_of(RICS[0])
        assert a.key_of(RICS[0]) == ExactIndex(SECRET).key_of(RICS[0])


class TestLookup:
    def test_hits_and_misses(self, index: ExactIndex) -> None:
        assert index.lookup(RICS[0]) == [(1, FLIGHT)]
        assert index.lookup(USCCS[0]) == [(5, FLIGHT)]
        assert index.lookup(RICS[5]) == []
        assert len(index) == 5

    def test_a_number_with_several_entries_returns_all(self, index: ExactIndex) -> None:
        assert index.lookup(RICS[2]) == [(3, HOTEL), (4, FLIGHT | TRAIN)]
        assert index.lookup_many([RICS[5], RICS[2], RICS[0]]) == [
            [], [(3, HOTEL), (4, FLIGHT | TRAIN)], [(1, FLIGHT)]]

    def test_lookup_many_large_batch_equals_lookup(self, index: ExactIndex) -> None:
        batch = [random.Random(i).choice(POOL) for i in range(300)]
        assert index.lookup_many(batch) == [index.lookup(n) for n in batch]

    def test_normalised_forms_find_the_entry(self, index: ExactIndex) -> None:
        number = next(n for n in (resident_id(random.Random(s)) for s in range(200))
                      if n.endswith("X"))
        index.add(number, 9, HOTEL)
        spaced = f" {number[:6]} {number[6:14]} {number[14:].lower()} "
        wide = number.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789X"})
        for form in (number.lower(), spaced, wide):
            assert index.lookup(form) == [(9, HOTEL)], form
        assert index.lookup_many([number.lower(), spaced, wide]) == [[(9, HOTEL)]] * 3

    def test_old_15_digit_number_and_its_18_digit_form_are_one(self, index: ExactIndex) -> None:
        old = "450103800101123"
        index.add(old, 10, TRAIN)
        new = ric15_to_18(old)
        assert new.startswith("45010319800101123") and ric.calc_check_digit(new) == new[-1]
        assert index.lookup(new) == [(10, TRAIN)] == index.lookup(old)
        index.add(RICS[3], 11, TRAIN)
        assert normalise_number(RICS[3]) == RICS[3]


class TestUpdates:
    def test_add_visible_at_once_and_after_compact(self, index: ExactIndex) -> None:
        assert index.add(RICS[6], 20, TRAIN)
        assert index.lookup(RICS[6]) == [(20, TRAIN)]
        assert index.lookup_many([RICS[6]]) == [[(20, TRAIN)]]
        assert len(index) == 6 and index.delta_size == 1
        index.compact()
        assert index.delta_size == 0
        assert index.lookup(RICS[6]) == [(20, TRAIN)]
        assert index.lookup(RICS[2]) == [(3, HOTEL), (4, FLIGHT | TRAIN)]
        assert len(index) == 6

    def test_add_to_a_listed_number_adds_an_entry(self, index: ExactIndex) -> None:
        index.add(RICS[0], 30, HOTEL)
        assert sorted(index.lookup(RICS[0])) == [(1, FLIGHT), (30, HOTEL)]
        index.compact()
        assert index.lookup(RICS[0]) == [(1, FLIGHT), (30, HOTEL)]

    def test_add_again_changes_the_mask(self, index: ExactIndex) -> None:
        assert not index.add(RICS[0], 1, FLIGHT)  # already so
        assert index.add(RICS[0], 1, FLIGHT | HOTEL)  # restriction added to a base row
        assert index.lookup(RICS[0]) == [(1, FLIGHT | HOTEL)]
        assert index.add(RICS[0], 1, HOTEL)  # and changed again in the delta
        assert index.lookup(RICS[0]) == [(1, HOTEL)]
        assert len(index) == 5
        index.compact()
        assert index.lookup(RICS[0]) == [(1, HOTEL)] and len(index) == 5

    def test_remove_tombstones_base_rows(self, index: ExactIndex) -> None:
        assert index.remove(4) == 1
        assert index.lookup(RICS[2]) == [(3, HOTEL)]
        assert index.lookup_many([RICS[2], RICS[0]]) == [[(3, HOTEL)], [(1, FLIGHT)]]
        assert len(index) == 4
        assert index.remove(4) == 0  # already gone
        index.compact()
        assert index.lookup(RICS[2]) == [(3, HOTEL)] and len(index) == 4
        assert index.remove(99) == 0

    def test_remove_a_delta_row_and_re_add(self, index: ExactIndex) -> None:
        index.add(RICS[7], 40, TRAIN)
        index.add(USCCS[1], 40, TRAIN)  # an entry may carry several numbers
        assert index.remove(40) == 2
        assert index.lookup(RICS[7]) == [] == index.lookup(USCCS[1])
        index.add(RICS[8], 1, FLIGHT)  # a corrected number for entry 1
        index.remove(1)
        assert index.lookup(RICS[0]) == [] == index.lookup(RICS[8])
        index.add(RICS[8], 1, FLIGHT)
        assert index.lookup(RICS[8]) == [(1, FLIGHT)] and index.lookup(RICS[0]) == []
        index.compact()
        assert index.lookup(RICS[8]) == [(1, FLIGHT)] and index.lookup(RICS[0]) == []
        assert len(index) == 5

    def test_writes_during_a_compaction_are_kept(self, index: ExactIndex,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
        index.add(RICS[6], 20, TRAIN)
        index.remove(2)
        real_merge = screening_index._merge

        def merge_with_writes(*args: Any) -> Any:
            # another thread writes while the new base is built
            assert index.lookup(RICS[6]) == [(20, TRAIN)] and index.lookup(RICS[1]) == []
            index.add(RICS[9], 21, HOTEL)
            index.remove(20)  # a row of the frozen layer
            index.remove(3)  # a row of the base
            index.add(RICS[1], 2, TRAIN)  # re-listed after the tombstone being folded in
            return real_merge(*args)

        monkeypatch.setattr(screening_index, "_merge", merge_with_writes)
        index.compact()
        expected = {RICS[6]: [], RICS[9]: [(21, HOTEL)], RICS[2]: [(4, FLIGHT | TRAIN)],
                    RICS[1]: [(2, TRAIN)], RICS[0]: [(1, FLIGHT)]}
        for number, rows in expected.items():
            assert index.lookup(number) == rows, number
        assert len(index) == 5
        monkeypatch.undo()
        index.compact()
        for number, rows in expected.items():
            assert index.lookup(number) == rows, number
        assert index.delta_size == 0 and len(index) == 5

    def test_empty_numbers_are_refused(self, index: ExactIndex) -> None:
        with pytest.raises(ValueError, match="empty"):
            index.add(" - ", 50, FLIGHT)
        with pytest.raises(ValueError, match="empty"):
            index.bulk_load([RICS[0], ""], [1, 2], [1, 1])
        assert index.lookup("") == [] and len(index) == 5

    def test_readers_run_while_a_writer_adds_removes_and_compacts(self,
                                                                  index: ExactIndex) -> None:
        stop = threading.Event()
        errors: list[BaseException] = []

        def read() -> None:
            try:
                while not stop.is_set():
                    assert index.lookup(RICS[0]) == [(1, FLIGHT)]  # never touched
                    assert index.lookup_many([RICS[0], RICS[5]])[0] == [(1, FLIGHT)]
            except BaseException as exc:  # reported below
                errors.append(exc)

        readers = [threading.Thread(target=read) for _ in range(2)]
        for r in readers:
            r.start()
        for round_ in range(30):
            for i, number in enumerate(POOL[1:]):
                index.add(number, 100 + i, round_)
            if round_ % 3 == 0:
                index.compact()
            for i in range(len(POOL) - 1):
                index.remove(100 + i)
        stop.set()
        for r in readers:
            r.join()
        assert not errors
        index.compact()
        assert index.lookup(RICS[1]) == [(2, TRAIN)] and len(index) == 5

    def test_memory_is_about_34_bytes_an_entry(self) -> None:
        idx = ExactIndex(SECRET)
        n = 50_000
        keys = [f"{i:017d}X" for i in range(n)]
        idx.bulk_load(keys, np.arange(n), np.ones(n, dtype=np.uint32))
        assert 32 * n <= idx.memory_bytes() <= 40 * n
        assert idx.lookup_many(keys[:3]) == [[(0, 1)], [(1, 1)], [(2, 1)]]


class TestCheapCheck:
    def test_batch_reports_bad_items_and_answers_the_rest(self, index: ExactIndex) -> None:
        batch = [RICS[0], RICS[0][:17] + ("0" if RICS[0][17] != "0" else "1"), "12345",
                 RICS[0][:17], "45010319800101123Z", USCCS[0], "护照E1234567", ""]
        checked = [cheap_check(n) for n in batch]
        assert [c.error for c in checked] == [
            None, INVALID_CHECKSUM, None, INVALID_FORMAT, INVALID_FORMAT, None, INVALID_FORMAT,
            INVALID_FORMAT]
        assert [c.kind for c in checked][:3] == ["ric", None, "other"]
        good = [c.number for c in checked if c.error is None]
        assert index.lookup_many(good, normalised=True) == [[(1, FLIGHT)], [], [(5, FLIGHT)]]

    def test_shapes(self) -> None:
        old = "450103800101123"
        assert cheap_check(old) == (ric15_to_18(old), "ric15", None)
        assert cheap_check("4501038001011234").error == INVALID_FORMAT  # 16 digits
        assert cheap_check("4501031980010112345").error == INVALID_FORMAT  # 19 digits
        assert cheap_check("E12345678") == ("E12345678", "other", None)
        assert cheap_check("A123456(7)") == ("A1234567", "other", None)
        assert cheap_check(RICS[1].lower()).number == RICS[1].upper()

    @settings(max_examples=60, deadline=None)
    @given(st.integers(0, 10_000), st.booleans())
    def test_valid_numbers_pass_like_stdnum(self, seed: int, person: bool) -> None:
        number = resident_id(random.Random(seed)) if person else credit_code(random.Random(seed))
        checked = cheap_check(number)
        assert checked.error is None and checked.number == number
        assert checked.kind == ("ric" if person else "uscc")
        assert (ric if person else uscc).is_valid(number)

    @settings(max_examples=150, deadline=None)
    @given(st.integers(0, 10_000), st.booleans(), st.integers(0, 17), st.integers(1, 30),
           st.booleans())
    def test_mutated_numbers_fail_like_stdnum(self, seed: int, person: bool, at: int,
                                              shift: int, transpose: bool) -> None:
        number = resident_id(random.Random(seed)) if person else credit_code(random.Random(seed))
        chars = list(number)
        if transpose:
            if at == 17 or chars[at] == chars[at + 1]:
                return
            chars[at], chars[at + 1] = chars[at + 1], chars[at]
        else:
            alphabet = ("0123456789X" if at == 17 else "0123456789") if person else (
                "0123456789" if at < 8 else USCC_ALPHABET)
            chars[at] = alphabet[(alphabet.index(chars[at]) + shift) % len(alphabet)]
        mutated = "".join(chars)
        if mutated == number:
            return
        checked = cheap_check(mutated)
        full = ric.is_valid(mutated) or uscc.is_valid(mutated)
        assert (checked.error is None) == full, (number, mutated, checked)
        if checked.error is not None:
            assert checked.error in (INVALID_CHECKSUM, INVALID_FORMAT)


# --- bulk load and add() agree ---------------------------------------------------------------

rows_strategy = st.lists(
    st.tuples(st.integers(0, len(POOL) - 1), st.integers(1, 12), st.integers(0, 0xFFFFFFFF)),
    max_size=40)


@settings(max_examples=40, deadline=None)
@given(rows_strategy, st.lists(st.integers(1, 12), max_size=4), st.booleans())
def test_bulk_load_and_add_answer_alike(rows: list[tuple[int, int, int]], removed: list[int],
                                        compact_midway: bool) -> None:
    bulk, built = ExactIndex(SECRET), ExactIndex(SECRET)
    last: dict[tuple[int, int], int] = {}
    for number, entry, mask in rows:
        last[number, entry] = mask
    bulk.bulk_load([POOL[n] for n, _, _ in rows], [e for _, e, _ in rows],
                   [m for _, _, m in rows])
    for i, (number, entry, mask) in enumerate(rows):
        built.add(POOL[number], entry, mask)
        if compact_midway and i == len(rows) // 2:
            built.compact()
    for entry in removed:
        assert bulk.remove(entry) == built.remove(entry)
        last = {k: v for k, v in last.items() if k[1] != entry}
    probes = [*POOL, RICS[0][:17]]
    for idx in (bulk, built):
        answers = [sorted(a) for a in idx.lookup_many(probes)]
        assert answers == [sorted(idx.lookup(p)) for p in probes]
        expected = [sorted((e, m) for (n, e), m in last.items() if POOL[n] == p) for p in probes]
        assert answers == expected
        assert len(idx) == len(last)
        idx.compact()
        assert [sorted(a) for a in idx.lookup_many(probes)] == expected


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 40).flatmap(lambda n: st.tuples(
    st.just(n), st.sets(st.integers(0, max(n - 1, 0)), max_size=n),
    st.lists(st.integers(-5, 500), max_size=8))))
def test_splice_equals_delete_then_insert(case: tuple[int, set[int], list[int]]) -> None:
    n, deleted, new = case
    deleted = {d for d in deleted if d < n}
    old = np.arange(n, dtype=np.int64) * 10
    dele = np.array(sorted(deleted), dtype=np.intp)
    kept = np.delete(old, dele)
    values = np.array(sorted(new), dtype=np.int64)
    insert_at = np.searchsorted(kept, values, side="right").astype(np.intp)
    want = np.insert(kept, insert_at, values)
    splice = Splice(n, dele, insert_at)
    assert splice.apply(old, values).tolist() == want.tolist()
    wide = splice.apply(np.stack([old, -old], axis=1), np.stack([values, -values], axis=1))
    assert wide[:, 0].tolist() == want.tolist() == (-wide[:, 1]).tolist()
    alive, moved = splice.survivors(np.arange(n))
    assert want[moved].tolist() == old[alive].tolist()
    assert alive.tolist() == [i not in deleted for i in range(n)]
    assert want[splice.inserted_positions()].tolist() == values.tolist()


@given(st.lists(st.one_of(
    st.text(alphabet="0123456789X", min_size=18, max_size=18),
    st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXYx -", min_size=0, max_size=20),
    st.sampled_from(["110101199003074477", "11010119900307447X", "91350100M000100Y43",
                     "110101900307447", "４５０１０３１９８５０５０１６６２４"])), max_size=40))
def test_cheap_check_many_agrees_with_cheap_check(numbers: list[str]) -> None:
    from zhixing.credit.screening_index import cheap_check, cheap_check_many

    checked = [cheap_check(n) for n in numbers]
    assert cheap_check_many(numbers) == ([c.number for c in checked],
                                         [c.error for c in checked])
