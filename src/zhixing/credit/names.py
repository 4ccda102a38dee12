"""Name screening against the dishonest-debtor list, for partners who know no ID number (RULES.md,
Dishonest-debtor list): a name, with an optional birth date and region.

A Chinese name is compared in three forms: the characters in simplified form (traditional and
variant forms mapped with OpenCC's character tables, so 劉建國 finds 刘建国), toneless pinyin
(pypinyin's reading of each character, with the surname readings of polyphonic surnames: 单 is
Shan, 曾 is Zeng), and rapidfuzz similarity for near spellings. Romanised input ("Liu Jianguo",
"LIU JIAN GUO", "Jianguo Liu", "Lyu Xiaoming") is split into pinyin syllables and compared on
them.

**Candidates** come from blocks: entries are sorted by a 32-bit key made of the *folded* pinyin of
their first two syllables (surname and first given syllable, or the compound surname). Folding
merges the spellings that are confused most (zh/z, ch/c, sh/s, n/l, -ng/-n after a, e, i, ü/u), so
"Liu Jiangguo" and "Zhang Wei"/"Zang Wei" land in the block of 刘建国 and 张伟. A query reads its
block(s) with ``searchsorted``, filters them with numpy (birth year, region, exclusions,
tombstones), ranks them by a vectorised pre-score (equal syllables, characters, birth date) and
scores the best ``candidates`` (64) in Python, with rapidfuzz's Levenshtein for names of another
length and for foreign names. The largest blocks hold a few tens of thousands of entries at 10
million, so a query stays in single-digit milliseconds. Limits: a typo in the surname or the first
given syllable outside the folded spellings, or a romanisation other than Hanyu Pinyin (Wade-Giles
"Chang", Cantonese "Lui") does not reach the block; a polyphonic given-name character is read
with pypinyin's default reading only.

**Score** (0..1) = name + birth date + region, clamped:

====================  =====  ==========================================================
name                  score  when
====================  =====  ==========================================================
exact                 1.00   the same characters as listed
traditional_variant   1.00   the same after traditional → simplified
pinyin                0.92   romanised input with the same syllables (cannot tell 王 from 汪)
pinyin                0.90   other characters with the same sound (刘健国 for 刘建国)
fuzzy                 ≤0.91  romanised: 0.92 × the mean per syllable (1 equal, 0.8 a folded
                             spelling such as jiang/jian, 0 else): "Liu Jiangguo" 0.86
fuzzy                 ≤0.89  characters: 0.95 × the mean per character (1 equal, 0.9 same
                             sound, 0.7 folded sound, 0 else): 东方伟怡 for 东方伟彧 0.71
fuzzy                        another length: 0.9 × Levenshtein similarity of the syllables
(surname differs)     ×0.80  the surname characters (or syllables) differ: 汪伟 is not 王伟
====================  =====  ==========================================================

Birth date: ``equal`` +0.05, ``year_equal`` (only a year given) +0.02, ``year_equal`` (the day
differs) −0.10, ``differs`` −0.30 (only when the year filter is off or wider), ``unknown`` 0.
Region: ``equal`` +0.02, ``same_city`` +0.01, ``same_province`` 0, ``differs`` −0.05, ``unknown``
0. ``match`` is ``score >= threshold`` (0.85 unless configured): an exact name alone matches, as
name screening must (a common name matches many entries: the birth date tells them apart); a
wrong day (−0.10) or year (−0.30) pulls a name below the threshold.

Updates and threads work as in :mod:`zhixing.credit.screening_index`: an immutable sorted base,
a delta layer of recent adds and tombstones (by entry id) visible at once, and
:meth:`NameIndex.compact`. Memory: 57 bytes an entry in numpy arrays (block key, entry id, four
characters, four syllables, birth date, region, entry-id order) plus side tables for names longer
than four characters, romanised names and names listed in traditional form.
"""

from __future__ import annotations

import hashlib
import threading
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from itertools import islice, product
from typing import Literal, NamedTuple, TypeVar

import numpy as np
from numpy.typing import NDArray
from opencc import OpenCC
from pypinyin.contrib.tone_convert import to_normal
from pypinyin.pinyin_dict import pinyin_dict
from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from zhixing.credit.screening_index import Splice

WIDTH = 4  # characters (and syllables) kept inline per entry; longer names go to a side table
FOREIGN_BASE = 1024  # syllable ids from here on are hashed non-pinyin tokens
DEFAULT_THRESHOLD = 0.85
_CHUNK = 1 << 17
_SEPARATORS = " \t\r\n\u3000·•‧・･.．-‐‑–—_'’,，"
_DROP = {ord(c): None for c in _SEPARATORS}

# Surname readings of polyphonic characters (pypinyin's first reading is the common word's).
SURNAME_READINGS = {
    "单": "shan", "曾": "zeng", "解": "xie", "区": "ou", "仇": "qiu", "朴": "piao", "查": "zha",
    "盖": "ge", "种": "chong", "繁": "po", "乐": "yue", "缪": "miao", "翟": "zhai", "覃": "qin",
    "员": "yun", "秘": "bi", "隗": "wei", "召": "shao", "折": "she", "句": "gou", "阚": "kan",
    "藏": "zang", "都": "du", "重": "chong", "薄": "bo", "便": "pian", "卜": "bu", "乜": "nie",
    "能": "nai", "蕃": "pi", "粘": "nian", "长": "chang", "祭": "zhai", "褚": "chu", "洗": "xian",
    "尉": "wei", "占": "zhan", "省": "xing", "黑": "he",
}
# Other spellings of ü in romanised names (passports write 吕 LYU since 2012).
SPELLINGS = {"lyu": "lv", "nyu": "nv", "lue": "lve", "nue": "nve", "lyue": "lve", "nyue": "nve"}
COMPOUND_SURNAMES = frozenset((
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒",
    "夏侯", "轩辕", "令狐", "钟离", "闻人", "申屠", "端木", "南宫", "独孤", "万俟", "澹台", "公冶",
    "太叔", "呼延", "百里", "东郭", "西门", "第五", "拓跋", "赫连", "单于", "濮阳", "淳于", "仲孙",
    "左丘", "亓官", "司空", "司寇", "公羊", "谷梁", "宰父", "巫马", "乐正", "梁丘", "子车",
))
COMPOUND_READINGS = {
    "尉迟": ("yu", "chi"), "万俟": ("mo", "qi"), "单于": ("chan", "yu"), "长孙": ("zhang", "sun"),
    "澹台": ("tan", "tai"), "乐正": ("yue", "zheng"), "子车": ("zi", "ju"),
}


# --- reference tables -----------------------------------------------------------------------


@dataclass(frozen=True)
class Tables:
    syllables: tuple[str, ...]  # id → toneless syllable ("" for 0)
    syllable_id: dict[str, int]
    char_syl: NDArray[np.uint16]  # code point → default reading
    surname_syl: NDArray[np.uint16]  # code point → reading as a surname
    fold: NDArray[np.uint16]  # syllable id → folded syllable id (identity for foreign ids)
    to_simplified: dict[int, str | None]  # str.translate table; also drops separators
    longest: int


def fold_syllable(syllable: str) -> str:
    """The spelling that confusable syllables share: zh/z, ch/c, sh/s, n/l, -ang/-an, -eng/-en,
    -ing/-in, ü (v)/u."""
    for hard, soft in (("zh", "z"), ("ch", "c"), ("sh", "s")):
        if syllable.startswith(hard):
            syllable = soft + syllable[2:]
            break
    else:
        if syllable.startswith("n") and len(syllable) > 1 and syllable != "ng":
            syllable = "l" + syllable[1:]
    syllable = syllable.replace("v", "u")
    if len(syllable) > 2 and syllable.endswith("ng") and syllable[-3] in "aei":
        syllable = syllable[:-1]
    return syllable


@cache
def tables() -> Tables:
    """Built once per process (~0.5 s): pinyin readings, folding, traditional → simplified."""
    readings: dict[int, list[str]] = {}
    for cp, text in pinyin_dict.items():
        readings[cp] = [to_normal(r).replace("ê", "e") for r in text.split(",")]
    names = {r for rs in readings.values() for r in rs}
    names |= set(SURNAME_READINGS.values()) | {s for pair in COMPOUND_READINGS.values()
                                                for s in pair}
    syllables = ("", *sorted(names))
    if len(syllables) >= FOREIGN_BASE:
        raise RuntimeError("more pinyin syllables than expected")
    syllable_id = {s: i for i, s in enumerate(syllables)}
    char_syl = np.zeros(max(readings) + 2, dtype=np.uint16)  # the last one stays 0
    for cp, rs in readings.items():
        char_syl[cp] = syllable_id[rs[0]]
    surname_syl = char_syl.copy()
    for ch, syl in SURNAME_READINGS.items():
        surname_syl[ord(ch)] = syllable_id[syl]
    folded: dict[str, int] = {}
    fold = np.arange(1 << 16, dtype=np.uint16)
    for i, s in enumerate(syllables[1:], start=1):
        fold[i] = folded.setdefault(fold_syllable(s), len(folded) + 1)
    converter = OpenCC("t2s")
    chars = [chr(cp) for cp in readings if cp > 0x2FFF]
    converted = str(converter.convert("\n".join(chars))).split("\n")
    to_simplified: dict[int, str | None] = dict(_DROP)
    if len(converted) == len(chars):
        for trad, simp in zip(chars, converted, strict=True):
            if trad != simp and len(simp) == 1:
                to_simplified[ord(trad)] = simp
    return Tables(syllables, syllable_id, char_syl, surname_syl, fold, to_simplified,
                  max(map(len, syllables)))


def _is_cjk(cp: int) -> bool:
    return 0x3400 <= cp <= 0x9FFF or 0xF900 <= cp <= 0xFAFF or 0x20000 <= cp <= 0x323AF


def _foreign_id(token: str) -> int:
    digest = hashlib.blake2b(token.encode(), digest_size=4).digest()
    return FOREIGN_BASE + int.from_bytes(digest, "little") % ((1 << 16) - FOREIGN_BASE)


def segment(token: str, t: Tables | None = None) -> list[tuple[str, ...]]:
    """The ways to split a romanised token into the fewest pinyin syllables (at most 4):
    "jianguo" → [("jian", "guo")]; [] if it cannot be split."""
    t = t or tables()
    best: list[list[tuple[str, ...]]] = [[] for _ in range(len(token) + 1)]
    best[0] = [()]
    for end in range(1, len(token) + 1):
        found: list[tuple[str, ...]] = []
        for start in range(max(0, end - t.longest), end):
            piece = token[start:end]
            piece = SPELLINGS.get(piece, piece)
            if best[start] and piece in t.syllable_id:
                found.extend((*seq, piece) for seq in best[start])
        if found:
            fewest = min(map(len, found))
            best[end] = [f for f in found if len(f) == fewest][:4]
    return best[len(token)]


# --- parsing names --------------------------------------------------------------------------


class ParsedName(NamedTuple):
    """A name as compared: ``text`` simplified characters without separators (or lower-case
    tokens joined by spaces for a romanised name), ``original`` before traditional →
    simplified, ``variants`` the syllable-id sequences it may stand for (several for romanised
    input: ambiguous splits, surname first or last)."""

    hanzi: bool
    text: str
    original: str
    variants: tuple[tuple[int, ...], ...]


def hanzi_syllables(text: str, t: Tables | None = None) -> tuple[int, ...]:
    t = t or tables()
    top = len(t.char_syl) - 1
    out = [int(t.char_syl[min(ord(c), top)]) for c in text]
    if out:
        out[0] = int(t.surname_syl[min(ord(text[0]), top)])
    pair = COMPOUND_READINGS.get(text[:2])
    if pair:
        out[0], out[1] = t.syllable_id[pair[0]], t.syllable_id[pair[1]]
    return tuple(out)


def _roman_tokens(name: str) -> list[str]:
    text = name.replace("ü", "v").replace("Ü", "v").replace("u:", "v").replace("U:", "v")
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = "".join(c if c.isalnum() else " " for c in text.lower())
    return text.split()


def parse_name(name: str, *, query: bool = False) -> ParsedName:
    """Normalise a listed name (``query=False``: one syllable sequence) or a query (all the
    sequences a romanised name may stand for)."""
    t = tables()
    original = unicodedata.normalize("NFKC", name)
    if any(_is_cjk(ord(c)) for c in original):
        original = original.translate(_DROP)
        text = original.translate(t.to_simplified)
        return ParsedName(True, text, original, (hanzi_syllables(text, t),))
    tokens = _roman_tokens(original)
    options: list[list[tuple[int, ...]]] = []
    for tok in tokens:
        splits = segment(tok, t)
        if splits:
            options.append([tuple(t.syllable_id[s] for s in split) for split in splits])
        else:
            options.append([(_foreign_id(tok),)])
    seqs: list[tuple[int, ...]] = []
    for combo in islice(product(*options), 4):
        seqs.append(tuple(s for part in combo for s in part))
        if query and len(combo) > 1:  # "Jianguo Liu": the surname written last
            seqs.append(tuple(s for part in (combo[-1], *combo[:-1]) for s in part))
        if not query:
            break
    text = " ".join(tokens)
    shown = " ".join(original.split())
    return ParsedName(False, text, shown, tuple(dict.fromkeys(seqs)) or ((),))


def block_key(syllables: Sequence[int], t: Tables | None = None) -> int:
    t = t or tables()
    first = int(t.fold[syllables[0]]) if syllables else 0
    second = int(t.fold[syllables[1]]) if len(syllables) > 1 else 0
    return (first << 16) | second


def _yyyymmdd(value: date | None) -> int:
    return value.year * 10000 + value.month * 100 + value.day if value else 0


def _region(value: str | None) -> int:
    if not value:
        return 0
    if not (len(value) == 6 and value.isdigit()):
        raise ValueError("a region code has 6 digits")
    return int(value)


# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NameHit:
    entry_id: int
    score: float
    match: bool
    name: str  # as listed
    explanation: dict[str, str]


class _Row(NamedTuple):
    entry_id: int
    key: int
    parsed: ParsedName
    birth: int  # yyyymmdd, 0 unknown
    region: int  # 0 unknown


# --- storage --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Base:
    keys: NDArray[np.uint32]  # block keys, sorted
    ids: NDArray[np.int64]
    chars: NDArray[np.uint32]  # (n, WIDTH) code points of the simplified name, 0-padded
    nlen: NDArray[np.uint8]  # characters (WIDTH + 1 when the text is in ``texts``)
    syl: NDArray[np.uint16]  # (n, WIDTH) syllable ids
    birth: NDArray[np.uint32]
    region: NDArray[np.uint32]
    ids_sorted: NDArray[np.int64]
    id_pos: NDArray[np.uint32]
    texts: dict[int, ParsedName]  # row → name, for names not inline (long or romanised)
    originals: dict[int, str]  # row → the name as listed when it was not in simplified form

    @classmethod
    def empty(cls) -> _Base:
        return cls(np.empty(0, np.uint32), np.empty(0, np.int64),
                   np.empty((0, WIDTH), np.uint32), np.empty(0, np.uint8),
                   np.empty((0, WIDTH), np.uint16), np.empty(0, np.uint32),
                   np.empty(0, np.uint32), np.empty(0, np.int64), np.empty(0, np.uint32), {}, {})

    def rows_of(self, entry_id: int) -> list[int]:
        lo, hi = np.searchsorted(self.ids_sorted, [entry_id, entry_id + 1])
        return [int(p) for p in self.id_pos[lo:hi]]

    def row(self, pos: int) -> _Row:
        parsed = self.texts.get(pos)
        if parsed is None:
            n = int(self.nlen[pos])
            text = "".join(map(chr, self.chars[pos, :n].tolist()))
            syl = tuple(self.syl[pos, :n].tolist())
            parsed = ParsedName(True, text, self.originals.get(pos, text), (syl,))
        return _Row(int(self.ids[pos]), int(self.keys[pos]), parsed, int(self.birth[pos]),
                    int(self.region[pos]))

    def arrays(self) -> tuple[NDArray[np.generic], ...]:
        return (self.keys, self.ids, self.chars, self.nlen, self.syl, self.birth, self.region)

    def nbytes(self) -> int:
        side = 200 * len(self.texts) + 120 * len(self.originals)
        return sum(a.nbytes for a in self.arrays()) + self.ids_sorted.nbytes + \
            self.id_pos.nbytes + side


@dataclass
class _Layer:
    """Recent adds by block and by entry id, and entry ids hidden in the layers below."""

    blocks: dict[int, tuple[_Row, ...]] = field(default_factory=dict)
    by_id: dict[int, tuple[_Row, ...]] = field(default_factory=dict)
    tombs: set[int] = field(default_factory=set)

    def size(self) -> int:
        return sum(len(v) for v in self.by_id.values()) + len(self.tombs)


@dataclass(frozen=True)
class _State:
    base: _Base
    frozen: _Layer | None
    active: _Layer


@dataclass
class _Query:
    parsed: ParsedName
    birth: int
    year_only: bool
    region: str
    tolerance: int | None
    region_filter: bool
    exclude: frozenset[int]


class NameIndex:
    """(entry id, name, birth date, region code) rows, searched by name. See the module doc."""

    def __init__(self, *, threshold: float = DEFAULT_THRESHOLD, birth_year_tolerance: int | None
                 = 0, candidates: int = 64, min_score: float = 0.5) -> None:
        self.threshold = threshold
        self.birth_year_tolerance = birth_year_tolerance
        self.candidates = candidates
        self.min_score = min_score
        self._tables = tables()
        self._state = _State(_Base.empty(), None, _Layer())
        self._count = 0
        self._write = threading.Lock()
        self._compacting = threading.Lock()

    # loading

    def _row(self, entry_id: int, name: str, birth: date | None, region: str | None) -> _Row:
        parsed = parse_name(name)
        if not parsed.text:
            raise ValueError("an empty name")
        return _Row(int(entry_id), block_key(parsed.variants[0], self._tables), parsed,
                    _yyyymmdd(birth), _region(region))

    def bulk_load(self, rows: Iterable[tuple[int, str, date | None, str | None]]) -> None:
        """Replace the whole content (cold start), vectorised per chunk of rows."""
        parts: list[_Base] = []
        it = iter(rows)
        while chunk := list(islice(it, _CHUNK)):
            parts.append(self._chunk(chunk))
        base = _concat_sorted(parts)
        with self._compacting, self._write:
            self._state = _State(base, None, _Layer())
            self._count = len(base.keys)

    def _chunk(self, chunk: list[tuple[int, str, date | None, str | None]]) -> _Base:
        t = self._tables
        n = len(chunk)
        ids = np.fromiter((r[0] for r in chunk), dtype=np.int64, count=n)
        birth = np.fromiter((_yyyymmdd(r[2]) for r in chunk), dtype=np.uint32, count=n)
        region = np.fromiter((_region(r[3]) for r in chunk), dtype=np.uint32, count=n)
        texts: list[str] = []
        odd: dict[int, ParsedName] = {}
        originals: dict[int, str] = {}
        sep = t.to_simplified
        for i, r in enumerate(chunk):
            name = r[1]
            if (not name.isascii() and len(name) <= WIDTH
                    and unicodedata.is_normalized("NFKC", name)):
                text = name.translate(sep)
                if text and all(_is_cjk(ord(c)) for c in text):
                    texts.append(text)
                    if text != name:
                        original = name.translate(_DROP)
                        if original != text:
                            originals[i] = original
                    continue
            parsed = parse_name(name)
            if not parsed.text:
                raise ValueError(f"an empty name (entry {r[0]})")
            if parsed.hanzi and len(parsed.text) <= WIDTH:
                texts.append(parsed.text)
                if parsed.original != parsed.text:
                    originals[i] = parsed.original
            else:
                texts.append("")
                odd[i] = parsed
        chars = np.array(texts, dtype=f"<U{WIDTH}").view(np.uint32).reshape(n, WIDTH)
        nlen = np.fromiter(map(len, texts), dtype=np.uint8, count=n)
        top = len(t.char_syl) - 1
        codes = np.minimum(chars, top)
        syl = t.char_syl[codes]
        syl[:, 0] = t.surname_syl[codes[:, 0]]
        for pair, (a, b) in COMPOUND_READINGS.items():
            hit = (chars[:, 0] == ord(pair[0])) & (chars[:, 1] == ord(pair[1]))
            if hit.any():
                syl[hit, 0], syl[hit, 1] = t.syllable_id[a], t.syllable_id[b]
        for i, parsed in odd.items():
            seq = parsed.variants[0]
            syl[i] = 0
            syl[i, :min(WIDTH, len(seq))] = seq[:WIDTH]
            nlen[i] = WIDTH + 1
            chars[i] = 0
            if parsed.hanzi:
                chars[i] = [ord(c) for c in parsed.text[:WIDTH]]
        keys = (t.fold[syl[:, 0]].astype(np.uint32) << np.uint32(16)) | t.fold[syl[:, 1]]
        return _Base(keys, ids, chars, nlen, syl, birth, region, np.empty(0, np.int64),
                     np.empty(0, np.uint32), odd, originals)

    def add(self, entry_id: int, name: str, birth_date: date | None = None,
            region_code: str | None = None) -> bool:
        """Add a name of a list entry (an entry may have several: former names, aliases).
        Visible to the next search. False if that exact row is there already."""
        row = self._row(entry_id, name, birth_date, region_code)
        with self._write:
            state = self._state
            if any(r[1:] == row[1:] for r in _visible_rows_of(state, row.entry_id)):
                return False
            active = state.active
            active.blocks[row.key] = (*active.blocks.get(row.key, ()), row)
            active.by_id[row.entry_id] = (*active.by_id.get(row.entry_id, ()), row)
            self._count += 1
            return True

    def remove(self, entry_id: int) -> int:
        """Remove every name of a list entry. Returns how many rows."""
        entry_id = int(entry_id)
        with self._write:
            state = self._state
            active = state.active
            mine = active.by_id.pop(entry_id, ())
            for key in {row.key for row in mine}:
                rest = tuple(r for r in active.blocks[key] if r.entry_id != entry_id)
                if rest:
                    active.blocks[key] = rest
                else:
                    del active.blocks[key]
            lower = 0
            if entry_id not in active.tombs:
                frozen = state.frozen
                if frozen is not None:
                    lower += len(frozen.by_id.get(entry_id, ()))
                if frozen is None or entry_id not in frozen.tombs:
                    lower += len(state.base.rows_of(entry_id))
                if lower:
                    active.tombs.add(entry_id)
            self._count -= len(mine) + lower
            return len(mine) + lower

    # search

    def search(self, name: str, *, birth_date: date | None = None, birth_year: int | None = None,
               region: str | None = None, exclude: Collection[int] = (), limit: int = 10,
               birth_year_tolerance: int | Literal["default"] | None = "default",
               region_filter: bool = False) -> list[NameHit]:
        """The best-scoring entries for a name, best first (at most ``limit``, none below
        ``min_score``). ``birth_year`` may stand in for an unknown full date; entries whose known
        birth year is further than ``birth_year_tolerance`` years away are left out (None: no
        year filter). ``region`` is a 2-, 4- or 6-digit division code
        prefix; with ``region_filter`` entries of a known other region are left out. ``exclude``:
        entries the partner has already cleared."""
        parsed = parse_name(name, query=True)
        if not parsed.text:
            return []
        tolerance = (self.birth_year_tolerance if birth_year_tolerance == "default"
                     else birth_year_tolerance)
        q = _Query(parsed, _yyyymmdd(birth_date) or (birth_year or 0) * 10000,
                   birth_date is None and birth_year is not None, region or "",
                   tolerance, region_filter,
                   frozenset(int(e) for e in exclude))
        if q.region and not (q.region.isdigit() and len(q.region) in (2, 4, 6)):
            raise ValueError("a region is a 2-, 4- or 6-digit division code")
        state = self._state
        rows: dict[tuple[int, str, int, int], _Row] = {}
        by_key: dict[int, list[tuple[int, ...]]] = {}
        for variant in parsed.variants:
            by_key.setdefault(block_key(variant, self._tables), []).append(variant)
        hidden = state.active.tombs | (state.frozen.tombs if state.frozen else set())
        for key, variants in by_key.items():
            for pos in self._base_candidates(state.base, key, variants, q, hidden):
                row = state.base.row(pos)
                rows[row.entry_id, row.parsed.text, row.birth, row.region] = row
            for layer, hide in ((state.frozen, state.active.tombs), (state.active, set[int]())):
                if layer is None:
                    continue
                for row in layer.blocks.get(key, ()):
                    if row.entry_id not in hide and _passes(row, q):
                        rows[row.entry_id, row.parsed.text, row.birth, row.region] = row
        hits = [self._score(q, row) for row in rows.values()]
        hits = [h for h in hits if h.score >= self.min_score]
        hits.sort(key=lambda h: (-h.score, h.entry_id))
        return hits[:limit]

    def _base_candidates(self, base: _Base, key: int, variants: list[tuple[int, ...]],
                         q: _Query, hidden: set[int]) -> list[int]:
        bounds = np.array([key, key + 1], dtype=np.uint32)  # same dtype: no copy of the keys
        lo, hi = (int(x) for x in np.searchsorted(base.keys, bounds))
        if hi <= lo:
            return []
        valid = np.ones(hi - lo, dtype=np.bool_)
        if q.birth and q.tolerance is not None:
            year = base.birth[lo:hi] // np.uint32(10000)
            gap = np.abs(year.astype(np.int32) - q.birth // 10000)
            valid &= (year == 0) | (gap <= q.tolerance)
        if q.region and q.region_filter:
            reg = base.region[lo:hi]
            prefix = reg // np.uint32(10 ** (6 - len(q.region)))
            valid &= (reg == 0) | (prefix == int(q.region))
        if q.exclude or hidden:
            valid &= ~np.isin(base.ids[lo:hi], np.fromiter(q.exclude | hidden, dtype=np.int64))
        idx = np.flatnonzero(valid)
        if len(idx) <= self.candidates:
            return (idx + lo).tolist()
        rows = idx + lo
        rank = np.full(len(idx), -(1 << 14), dtype=np.int16)
        bonus = np.zeros(len(idx), dtype=np.int16)  # a common name: the birth date decides
        if q.birth and not q.year_only:
            bonus += 4 * (base.birth[rows] == q.birth)
        if q.region:
            bonus += base.region[rows] // np.uint32(10 ** (6 - len(q.region))) == int(q.region)
        syl = base.syl[rows]
        nlen = base.nlen[rows].astype(np.int16)
        fold = self._tables.fold
        chars = base.chars[rows] if q.parsed.hanzi else None
        qchars = [ord(c) for c in q.parsed.text[:WIDTH]] + [0] * WIDTH
        for variant in variants:
            qs = list(variant[:WIDTH]) + [0] * WIDTH
            score = bonus.copy()
            score += 3 * (syl[:, 0] == qs[0]) + 2 * (syl[:, 1] == qs[1])
            for i in range(2, WIDTH):
                score += 2 * (syl[:, i] == qs[i]) + (fold[syl[:, i]] == fold[qs[i]])
            if chars is not None:
                for i in range(WIDTH):
                    score += 2 * (chars[:, i] == qchars[i])
            qlen = len(q.parsed.text) if q.parsed.hanzi else len(variant)
            score -= 2 * np.abs(np.minimum(nlen, WIDTH) - min(qlen, WIDTH))
            np.maximum(rank, score, out=rank)
        top = np.argpartition(-rank, self.candidates)[: self.candidates]
        return (rows[top]).tolist()  # type: ignore[no-any-return]

    def _score(self, q: _Query, row: _Row) -> NameHit:
        name, name_label, surname = _name_score(q.parsed, row.parsed, self._tables)
        birth, birth_label = _birth_feature(q, row.birth)
        place, place_label = _region_feature(q.region, row.region)
        score = round(min(1.0, max(0.0, name + birth + place)), 4)
        return NameHit(row.entry_id, score, score >= self.threshold, row.parsed.original, {
            "name": name_label, "surname": surname, "birth_date": birth_label,
            "region": place_label})

    # maintenance

    def __len__(self) -> int:
        return self._count

    @property
    def delta_size(self) -> int:
        """Rows and tombstones waiting for :meth:`compact`."""
        with self._write:
            state = self._state
            return state.active.size() + (state.frozen.size() if state.frozen else 0)

    def memory_bytes(self) -> int:
        """Arrays and side tables of the base, plus ~600 bytes a pending change (estimates for
        the Python objects)."""
        return self._state.base.nbytes() + 600 * self.delta_size

    def compact(self) -> None:
        """Fold the delta into the base (see ExactIndex.compact)."""
        with self._compacting:
            with self._write:
                state = self._state
                if not state.active.by_id and not state.active.tombs:
                    return
                frozen = state.active
                self._state = _State(state.base, frozen, _Layer())
            base = self._merge(state.base, frozen)
            with self._write:
                self._state = _State(base, None, self._state.active)

    def _merge(self, base: _Base, layer: _Layer) -> _Base:
        deleted = sorted(p for e in layer.tombs for p in base.rows_of(e))
        dele = np.asarray(deleted, dtype=np.intp)
        new_rows = sorted((r for rows in layer.by_id.values() for r in rows),
                          key=lambda r: (r.key, r.entry_id))
        added = self._chunk([(r.entry_id, r.parsed.original, None, None) for r in new_rows])
        added = _Base(added.keys, added.ids, added.chars, added.nlen, added.syl,
                      np.array([r.birth for r in new_rows], dtype=np.uint32),
                      np.array([r.region for r in new_rows], dtype=np.uint32),
                      added.ids_sorted, added.id_pos, added.texts, added.originals)
        kept_keys = np.delete(base.keys, dele) if len(dele) else base.keys
        splice = Splice(len(base.keys), dele,
                        np.searchsorted(kept_keys, added.keys, side="right").astype(np.intp))
        new_at = splice.inserted_positions()
        ids = splice.apply(base.ids, added.ids)
        alive, moved = splice.survivors(base.id_pos)
        ids_sorted, id_pos = base.ids_sorted[alive], moved
        if len(new_rows):
            by_id = np.argsort(added.ids, kind="stable")
            at = np.searchsorted(ids_sorted, added.ids[by_id], side="right")
            ids_sorted = np.insert(ids_sorted, at, added.ids[by_id])
            id_pos = np.insert(id_pos, at, new_at[by_id])
        return _Base(
            splice.apply(base.keys, added.keys), ids, splice.apply(base.chars, added.chars),
            splice.apply(base.nlen, added.nlen), splice.apply(base.syl, added.syl),
            splice.apply(base.birth, added.birth), splice.apply(base.region, added.region),
            ids_sorted, id_pos.astype(np.uint32),
            _move(base.texts, splice, added.texts, new_at),
            _move(base.originals, splice, added.originals, new_at))


_V = TypeVar("_V")
_T = TypeVar("_T", bound=np.generic)


def _move(side: dict[int, _V], splice: Splice, extra: dict[int, _V],
          new_at: NDArray[np.intp]) -> dict[int, _V]:
    """A row-keyed side table after a splice: survivors moved, new rows' entries added."""
    out: dict[int, _V] = {}
    if side:
        alive, moved = splice.survivors(np.fromiter(side, dtype=np.intp, count=len(side)))
        kept = [v for v, keep in zip(side.values(), alive.tolist(), strict=True) if keep]
        out.update(zip(moved.tolist(), kept, strict=True))
    for i, value in extra.items():
        out[int(new_at[i])] = value
    return out


def _cat(arrays: list[NDArray[_T]], order: NDArray[np.intp]) -> NDArray[_T]:
    out: NDArray[_T] = np.concatenate(arrays)[order]
    return out


def _concat_sorted(parts: list[_Base]) -> _Base:
    """Chunks → one base sorted by block key (stable, so entry order is kept within a block),
    with the entry id order."""
    if not parts:
        return _Base.empty()
    keys = np.concatenate([p.keys for p in parts])
    order = np.argsort(keys, kind="stable")
    if len(keys) >= 1 << 32:
        raise ValueError("the name index holds fewer than 2**32 rows")
    inverse = np.empty(len(order), dtype=np.intp)
    inverse[order] = np.arange(len(order))
    texts: dict[int, ParsedName] = {}
    originals: dict[int, str] = {}
    offset = 0
    for p in parts:
        texts.update((int(inverse[offset + i]), v) for i, v in p.texts.items())
        originals.update((int(inverse[offset + i]), v) for i, v in p.originals.items())
        offset += len(p.keys)

    ids = _cat([p.ids for p in parts], order)
    by_id = np.argsort(ids, kind="stable")
    return _Base(keys[order], ids, _cat([p.chars for p in parts], order),
                 _cat([p.nlen for p in parts], order), _cat([p.syl for p in parts], order),
                 _cat([p.birth for p in parts], order), _cat([p.region for p in parts], order),
                 ids[by_id], by_id.astype(np.uint32), texts, originals)


def _visible_rows_of(state: _State, entry_id: int) -> list[_Row]:
    rows = list(state.active.by_id.get(entry_id, ()))
    if entry_id in state.active.tombs:
        return rows
    frozen = state.frozen
    if frozen is not None:
        rows.extend(frozen.by_id.get(entry_id, ()))
        if entry_id in frozen.tombs:
            return rows
    rows.extend(state.base.row(p) for p in state.base.rows_of(entry_id))
    return rows


def _passes(row: _Row, q: _Query) -> bool:
    if row.entry_id in q.exclude:
        return False
    if (q.birth and q.tolerance is not None and row.birth
            and abs(row.birth // 10000 - q.birth // 10000) > q.tolerance):
        return False
    if q.region and q.region_filter and row.region:
        return f"{row.region:06d}".startswith(q.region)
    return True


def _surname_length(parsed: ParsedName) -> int:
    return 2 if parsed.hanzi and parsed.text[:2] in COMPOUND_SURNAMES else 1


def _syllable_similarity(mine: Sequence[int], listed: Sequence[int], t: Tables,
                         chars: tuple[str, str] | None, near: float) -> float:
    """Position by position: the same character 1, the same syllable (a homophone) 0.9 between
    characters or 1 for romanised input, a folded spelling (jiang/jian, zh/z) ``near``, else 0.
    Names of different lengths: 0.9 × the Levenshtein similarity of the folded syllables."""
    if len(mine) != len(listed) or not mine:
        folded = ([int(t.fold[s]) for s in mine], [int(t.fold[s]) for s in listed])
        return 0.9 * Levenshtein.normalized_similarity(*folded)
    total = 0.0
    for i, (a, b) in enumerate(zip(mine, listed, strict=True)):
        if chars is not None and chars[0][i] == chars[1][i]:
            total += 1.0
        elif a == b and a:
            total += 0.9 if chars is not None else 1.0
        elif a and t.fold[a] == t.fold[b]:
            total += near
    return total / len(mine)


def _name_score(q: ParsedName, c: ParsedName, t: Tables) -> tuple[float, str, str]:
    """(score, label, surname equal|differs) of a query name against a listed one (the table in
    the module doc)."""
    k = _surname_length(c)
    listed = c.variants[0]
    if q.hanzi and c.hanzi:
        if q.text == c.text:
            return 1.0, "exact" if q.original == c.original else "traditional_variant", "equal"
        mine = q.variants[0]
        same = q.text[:k] == c.text[:k]
        if mine == listed and all(mine):
            score, label = 0.90, "pinyin"
        else:
            sim = _syllable_similarity(mine, listed, t, (q.text, c.text), 0.7)
            score, label = min(0.89, 0.95 * sim), "fuzzy"
        return score * (1.0 if same else 0.8), label, "equal" if same else "differs"
    if not q.hanzi and not c.hanzi and q.text == c.text:
        return 1.0, "exact", "equal"
    best = (-1.0, "fuzzy", False)
    for mine in q.variants:
        same = mine[:k] == listed[:k]
        if mine == listed:
            score, label = 0.92, "pinyin"
        else:
            score = min(0.91, 0.92 * _syllable_similarity(mine, listed, t, None, 0.8))
            if not q.hanzi and not c.hanzi:  # foreign names: plain fuzzy matching
                score = max(score, 0.95 * fuzz.token_sort_ratio(q.text, c.text) / 100)
            label = "fuzzy"
        score *= 1.0 if same else 0.8
        if score > best[0]:
            best = (score, label, same)
    return best[0], best[1], "equal" if best[2] else "differs"


def _birth_feature(q: _Query, birth: int) -> tuple[float, str]:
    if not q.birth or not birth:
        return 0.0, "unknown"
    same_year = q.birth // 10000 == birth // 10000
    if q.year_only:
        return (0.02, "year_equal") if same_year else (-0.30, "differs")
    if q.birth == birth:
        return 0.05, "equal"
    return (-0.10, "year_equal") if same_year else (-0.30, "differs")


def _region_feature(query: str, region: int) -> tuple[float, str]:
    if not query or not region:
        return 0.0, "unknown"
    listed = f"{region:06d}"
    if len(query) == 6 and listed == query:
        return 0.02, "equal"
    if len(query) >= 4 and listed[:4] == query[:4]:
        return 0.01, "same_city"
    if listed[:2] == query[:2]:
        return 0.0, "same_province"
    return -0.05, "differs"
