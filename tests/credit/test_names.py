from __future__ import annotations

import threading
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zhixing.credit import names as names_module
from zhixing.credit.names import (
    DEFAULT_THRESHOLD,
    NameHit,
    NameIndex,
    fold_syllable,
    parse_name,
    segment,
    tables,
)

BORN = date(1970, 5, 1)
ROWS: list[tuple[int, str, date | None, str | None]] = [
    (1, "刘建国", BORN, "450103"),
    (2, "王伟", date(1980, 1, 2), "450102"),
    (3, "汪伟", date(1980, 1, 2), None),
    (4, "欧阳娜娜", None, None),
    (5, "张偉", None, None),  # listed with a traditional character
    (6, "买买提·艾力", date(1985, 3, 3), "650102"),  # longer than the inline width
    (7, "JOHN SMITH", None, None),
    (8, "吕小明", None, None),
    (9, "刘建军", BORN, "450103"),
    (10, "单雄信", None, None),
    (11, "刘建国", date(1990, 7, 7), "450203"),  # a namesake
    (12, "章伟", None, None),
]


@pytest.fixture
def index() -> NameIndex:
    idx = NameIndex()
    idx.bulk_load(ROWS)
    return idx


def top(hits: list[NameHit]) -> tuple[int, bool, str]:
    return hits[0].entry_id, hits[0].match, hits[0].explanation["name"]


def by_id(hits: list[NameHit]) -> dict[int, NameHit]:
    return {h.entry_id: h for h in hits}


class TestParsing:
    def test_segment_and_fold(self) -> None:
        assert segment("jianguo") == [("jian", "guo")]
        assert segment("xian") == [("xian",)]
        assert segment("qwerty") == []
        assert segment("xuanyu") == [("xuan", "yu")]  # not xua-nyu
        assert segment("lyu") == [("lv",)]
        assert fold_syllable("zhang") == "zan" == fold_syllable("zang")
        assert fold_syllable("niu") == "liu" and fold_syllable("lv") == "lu"
        assert fold_syllable("zhong") == "zong" and fold_syllable("ying") == "yin"

    def test_forms_of_one_name(self) -> None:
        t = tables()
        liu = tuple(t.syllable_id[s] for s in ("liu", "jian", "guo"))
        assert parse_name("劉建國").text == "刘建国"
        assert parse_name("劉建國").variants == (liu,)
        for roman in ("Liu Jianguo", "LIU JIAN GUO", "liujianguo", "Jianguo Liu", "Liú Jiànguó"):
            assert liu in parse_name(roman, query=True).variants, roman

    def test_surname_readings(self) -> None:
        t = tables()
        assert parse_name("单雄信").variants[0][0] == t.syllable_id["shan"]
        assert parse_name("曾国藩").variants[0][0] == t.syllable_id["zeng"]
        assert parse_name("尉迟恭").variants[0][:2] == (t.syllable_id["yu"], t.syllable_id["chi"])


class TestSearch:
    def test_exact(self, index: NameIndex) -> None:
        hits = by_id(index.search("刘建国"))
        assert hits[1].score == 1.0 and hits[1].match
        assert hits[1].explanation == {"name": "exact", "surname": "equal",
                                       "birth_date": "unknown", "region": "unknown"}
        assert hits[11].match  # a namesake matches on the name alone
        assert not hits[9].match and hits[9].explanation["name"] == "fuzzy"  # 刘建军

    def test_traditional_and_simplified(self, index: NameIndex) -> None:
        hits = by_id(index.search("劉建國"))
        assert hits[1].match and hits[1].explanation["name"] == "traditional_variant"
        assert hits[1].name == "刘建国"
        hit = index.search("张伟")[0]
        assert (hit.entry_id, hit.match, hit.name) == (5, True, "张偉")
        assert hit.explanation["name"] == "traditional_variant"
        assert top(index.search("张偉")) == (5, True, "exact")
        assert top(index.search("張偉")) == (5, True, "traditional_variant")

    @pytest.mark.parametrize("query", ["Liu Jianguo", "LIU JIAN GUO", "Jianguo Liu",
                                       "liu jian-guo", "LIU,JIANGUO"])
    def test_romanised(self, index: NameIndex, query: str) -> None:
        hits = by_id(index.search(query, birth_date=BORN))
        assert hits[1].match and hits[1].explanation["name"] == "pinyin"
        assert hits[1].explanation["birth_date"] == "equal"
        assert 11 not in hits  # born 1990: filtered out by the birth year

    def test_romanised_special_spellings(self, index: NameIndex) -> None:
        assert top(index.search("Lyu Xiaoming")) == (8, True, "pinyin")
        assert top(index.search("Lü Xiaoming")) == (8, True, "pinyin")
        assert top(index.search("XIAOMING LYU")) == (8, True, "pinyin")
        assert top(index.search("Shan Xiongxin")) == (10, True, "pinyin")
        assert top(index.search("Ouyang Nana")) == (4, True, "pinyin")
        assert top(index.search("John  Smith")) == (7, True, "exact")

    def test_near_spellings(self, index: NameIndex) -> None:
        hit = by_id(index.search("Liu Jiangguo"))[1]  # -ang for -an
        assert hit.match and hit.explanation["name"] == "fuzzy"
        hit = by_id(index.search("刘健国"))[1]  # a homophone
        assert hit.match and hit.explanation["name"] == "pinyin"
        hit = by_id(index.search("Niu Jianguo", birth_date=BORN))[1]  # found (n/l), but
        assert not hit.match and hit.explanation["surname"] == "differs"  # another surname

    def test_one_other_given_character_is_another_name(self) -> None:
        idx = NameIndex()
        idx.bulk_load([(1, "东方伟怡", None, None), (2, "东方萍宇", BORN, None)])
        assert not any(h.match for h in idx.search("东方伟彧"))
        assert not any(h.match for h in idx.search("东方静彧", birth_date=BORN))
        assert not any(h.match for h in idx.search("Dongfang Weiyu"))

    def test_long_and_dotted_names(self, index: NameIndex) -> None:
        assert top(index.search("买买提艾力")) == (6, True, "exact")
        assert index.search("买买提·艾力")[0].name == "买买提艾力"

    def test_birth_date(self, index: NameIndex) -> None:
        hits = by_id(index.search("王伟", birth_date=date(1980, 1, 2)))
        assert hits[2].score == 1.0 and hits[2].explanation["birth_date"] == "equal"
        hits = by_id(index.search("王伟", birth_date=date(1980, 6, 1)))
        assert hits[2].explanation["birth_date"] == "year_equal" and hits[2].score == 0.9
        assert index.search("王伟", birth_date=date(1981, 1, 2)) == []
        hits = by_id(index.search("王伟", birth_year=1980))
        assert hits[2].explanation["birth_date"] == "year_equal" and hits[2].match
        hits = by_id(index.search("王伟", birth_date=date(1982, 1, 2),
                                  birth_year_tolerance=None))
        assert hits[2].explanation["birth_date"] == "differs" and not hits[2].match
        assert 2 in by_id(index.search("王伟", birth_year=1981, birth_year_tolerance=1))
        assert by_id(index.search("欧阳娜娜", birth_year=1950))[4].explanation[
            "birth_date"] == "unknown"  # unknown birth dates are not filtered out

    def test_region(self, index: NameIndex) -> None:
        hits = by_id(index.search("刘建国", region="450103"))
        assert hits[1].explanation["region"] == "equal"
        assert hits[11].explanation["region"] == "same_province"
        assert by_id(index.search("刘建国", region="4501"))[1].explanation["region"] == "same_city"
        assert by_id(index.search("刘建国", region="11"))[1].explanation["region"] == "differs"
        assert set(by_id(index.search("刘建国", region="4502", region_filter=True))) == {11}
        with pytest.raises(ValueError, match="division code"):
            index.search("刘建国", region="45x")

    def test_exclusions(self, index: NameIndex) -> None:
        assert set(by_id(index.search("刘建国", exclude={1, 9}))) == {11}

    def test_no_false_match_for_different_surnames(self, index: NameIndex) -> None:
        hits = by_id(index.search("王伟"))
        assert hits[2].match and not hits[3].match  # 汪伟 sounds the same
        assert hits[3].explanation["surname"] == "differs"
        assert not by_id(index.search("张伟")).get(12, hits[3]).match  # 章伟: zhang wei too
        assert not by_id(index.search("汪伟", birth_date=date(1980, 1, 2)))[2].match
        assert all(not h.match for h in index.search("Zang Wei"))  # folds with zhang
        assert index.search("李建国") == []

    def test_no_name(self, index: NameIndex) -> None:
        assert index.search(" · ") == []
        assert len(index) == len(ROWS)


SURNAMES = "王汪李黎张章刘柳陈程杨阳黄王周邹"


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(SURNAMES), st.sampled_from(SURNAMES), st.text("建国伟明华丽军强", min_size=1,
                                                                     max_size=2),
       st.booleans())
def test_other_surname_never_matches(first: str, second: str, given_name: str,
                                     romanised: bool) -> None:
    if first == second:
        return
    idx = NameIndex()
    idx.bulk_load([(1, first + given_name, None, None)])
    query = second + given_name
    if romanised:
        t = tables()
        syl = parse_name(query).variants[0]
        if syl[0] == parse_name(first + given_name).variants[0][0]:
            return  # the same syllable: romanised input cannot tell 王 from 汪
        query = " ".join(t.syllables[s] for s in syl)
    assert not any(h.match for h in idx.search(query)), query


class TestUpdates:
    def test_add_and_remove_visible_at_once(self, index: NameIndex) -> None:
        assert index.add(20, "刘建國", BORN, "450103")
        assert not index.add(20, "刘建國", BORN, "450103")
        hits = by_id(index.search("刘建国", birth_date=BORN))
        assert hits[20].match and hits[20].explanation["name"] == "traditional_variant"
        assert index.remove(1) == 1
        assert 1 not in by_id(index.search("刘建国"))
        assert index.remove(20) == 1 and index.remove(20) == 0
        assert 20 not in by_id(index.search("刘建国"))
        assert len(index) == len(ROWS) - 1

    def test_aliases(self, index: NameIndex) -> None:
        index.add(2, "王小伟")  # a former name of entry 2
        assert top(index.search("王小伟")) == (2, True, "exact")
        assert index.remove(2) == 2
        assert index.search("王小伟") == [] and 2 not in by_id(index.search("王伟"))

    def test_compact_keeps_side_tables(self, index: NameIndex) -> None:
        index.remove(4)  # rows before and after the long ones move
        index.remove(5)
        index.add(30, "阿卜杜拉·买买提", None, "650102")
        index.add(31, "Maria Garcia")
        index.add(32, "張三豐")
        index.compact()
        assert index.delta_size == 0 and len(index) == len(ROWS) + 1
        assert top(index.search("买买提艾力")) == (6, True, "exact")
        assert top(index.search("JOHN SMITH")) == (7, True, "exact")
        assert top(index.search("阿卜杜拉买买提")) == (30, True, "exact")
        assert top(index.search("maria garcia")) == (31, True, "exact")
        assert top(index.search("张三丰")) == (32, True, "traditional_variant")
        assert index.search("张三丰")[0].name == "張三豐"
        assert 5 not in by_id(index.search("张偉")) and index.search("欧阳娜娜") == []
        assert top(index.search("劉建國")) == (1, True, "traditional_variant")

    def test_writes_during_a_compaction_are_kept(self, index: NameIndex,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
        index.add(20, "赵云")
        index.remove(2)
        real_merge = NameIndex._merge

        def merge_with_writes(self: NameIndex, *args: Any) -> Any:
            assert top(index.search("赵云")) == (20, True, "exact")
            index.add(21, "马超")
            index.remove(20)  # in the frozen layer
            index.remove(3)  # in the base
            index.add(2, "王伟", date(1980, 1, 2))  # re-listed
            return real_merge(self, *args)

        monkeypatch.setattr(NameIndex, "_merge", merge_with_writes)
        index.compact()
        monkeypatch.undo()
        for idx_state in ("after", "again"):
            assert index.search("赵云") == [], idx_state
            assert top(index.search("马超")) == (21, True, "exact")
            assert 3 not in by_id(index.search("汪伟"))
            assert top(index.search("王伟")) == (2, True, "exact")
            assert len(index) == len(ROWS)
            index.compact()

    def test_readers_run_while_a_writer_adds_removes_and_compacts(self,
                                                                  index: NameIndex) -> None:
        stop = threading.Event()
        errors: list[BaseException] = []

        def read() -> None:
            try:
                while not stop.is_set():
                    assert top(index.search("欧阳娜娜")) == (4, True, "exact")  # never touched
                    index.search("刘建国", birth_date=BORN)
            except BaseException as exc:  # reported below
                errors.append(exc)

        reader = threading.Thread(target=read)
        reader.start()
        for round_ in range(20):
            for i in range(5):
                index.add(100 + i, "刘建国", BORN)
            if round_ % 4 == 0:
                index.compact()
            for i in range(5):
                index.remove(100 + i)
        stop.set()
        reader.join()
        assert not errors
        index.compact()
        assert set(by_id(index.search("刘建国", birth_date=BORN))) == {1, 9} and len(index) == 12

    def test_memory_and_threshold_settings(self) -> None:
        idx = NameIndex(threshold=0.95)
        idx.bulk_load(ROWS)
        assert not by_id(idx.search("Liu Jianguo"))[1].match  # 0.92 < 0.95
        assert 40 * len(ROWS) <= idx.memory_bytes() <= 400 * len(ROWS)
        assert DEFAULT_THRESHOLD == 0.85


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 6), st.sampled_from(
    ["刘建国", "劉建國", "王伟", "汪伟", "欧阳娜娜", "买买提·艾力", "John Smith", "刘健国"]),
    st.sampled_from([None, BORN])), max_size=12), st.lists(st.integers(1, 6), max_size=3))
def test_bulk_load_and_add_answer_alike(rows: list[tuple[int, str, date | None]],
                                        removed: list[int]) -> None:
    bulk, built = NameIndex(), NameIndex()
    unique = list(dict.fromkeys((e, n, b, None) for e, n, b in rows))
    bulk.bulk_load(unique)
    for entry, name, born, region in unique:
        built.add(entry, name, born, region)
    for entry in removed:
        assert bulk.remove(entry) == built.remove(entry)
    for q in ("刘建国", "Liu Jianguo", "王伟", "欧阳娜娜", "买买提艾力", "john smith"):
        for idx in (bulk, built):
            idx.compact()
        assert _answers(bulk.search(q)) == _answers(built.search(q)), q
        assert _answers(bulk.search(q, birth_date=BORN)) == _answers(
            built.search(q, birth_date=BORN))


def _answers(hits: list[NameHit]) -> list[tuple[int, float, str]]:
    return sorted((h.entry_id, h.score, h.name) for h in hits)


def test_candidate_cap_keeps_the_best(monkeypatch: pytest.MonkeyPatch) -> None:
    """A block larger than ``candidates`` is ranked by the vectorised pre-score first."""
    idx = NameIndex(candidates=8)
    rows: list[tuple[int, str, date | None, str | None]] = [
        (i, "王" + "伟" + c, None, None) for i, c in enumerate("一二三四五六七八九十百千万亿", 100)]
    rows += [(1, "王伟", None, None), (2, "王玮", None, None)]
    idx.bulk_load(rows)
    assert top(idx.search("王伟")) == (1, True, "exact")
    assert top(idx.search("王伟九")) == (108, True, "exact")
    same_sound = NameIndex(candidates=4)
    same_sound.bulk_load([(i, "王伟汪维"[i % 4] + "伟", date(1960 + i, 1, 1), None)
                          for i in range(40)])
    hit = same_sound.search("Wang Wei", birth_date=date(1990, 1, 1), birth_year_tolerance=None)[0]
    assert (hit.entry_id, hit.match, hit.explanation["birth_date"]) == (30, True, "equal")
    assert names_module.WIDTH == 4
