"""Public dishonest-debtor list: name search latency over a large list, through the HTTP API.

    .venv/bin/python -m bench.public_search --backend postgresql --listings 1000000
    .venv/bin/python -m bench.public_search --backend postgresql --listings 10000000

A fresh scratch database is migrated and loaded (COPY on PostgreSQL, executemany on SQLite)
with N listings on N cases of the Guangxi courts, against about 0.9 N parties (some debtors are
listed in several cases): 90% persons named from a skewed surname and given-name distribution
(so common names such as 王伟 hit hundreds to thousands of rows, as they do in reality), 10%
organisations. Listings are in every state: 75% published, 5% in their grace period, 12%
deleted, 3% revoked, 3% proposed, 2% refused. After VACUUM ANALYZE, ``GET
/api/v1/public/dishonest`` is timed inside the ASGI app (server time, including the rate-limit
write) over a name mix: names drawn by listing (so common names come up as often as people
search for them), the 50 commonest names (also on pages 2-5), organisations, names not on the
list, and searches narrowed by ID number or province. The plan of the commonest name is shown.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.stats import percentile  # noqa: E402

os.environ.setdefault("ZHIXING_LOG_JSON", "false")

from sqlalchemy import Engine, text  # noqa: E402

CHUNK = 100_000
TABLES = ("parties", "cases", "case_parties", "credit_listings")

# The commonest surnames, roughly in order (weighted by rank in Generator).
SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶"
            "程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺"
            "顾毛郝龚邵万钱覃武戴孔汤庞樊兰殷施陶洪翟安颜倪严牛温芦季俞章鲁葛伍申尤毕聂焦向柳邢骆岳"
            "齐梅莫庄辛管祝左涂谷祁时舒耿牟卜路詹关苗凌费纪靳盛童欧甄项曲成游阳裴席卫查屈鲍位覃霍翁"
            "隋植甘景薄单包司柏宁柯阮桂闵欧阳解强丛华车冉房边")
GIVEN = ("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国建华玉兰红梅志强海燕秀珍"
         "春梅志明丽娟国华金凤文华德胜小红海涛晓东建军晓明永刚建平国强丽华秀云桂兰玉梅红霞"
         "建新卫东宏伟俊杰子豪浩然宇轩雨涵欣怡梓涵")
CITIES = ("南宁", "柳州", "桂林", "梧州", "北海", "防城港", "钦州", "贵港", "玉林", "百色", "贺州",
          "河池", "来宾", "崇左")
TRADES = ("建设", "建材", "商贸", "物流", "房地产开发", "农业科技", "机械", "食品", "矿业", "化工",
          "电子", "餐饮管理", "文化传媒", "汽车销售", "医药", "糖业", "木业", "投资")


CONDUCT = {1: "有履行能力而拒不履行生效法律文书确定义务", 2: "以暴力方法抗拒执行",
           3: "转移名下房产规避执行", 4: "拒不报告财产", 5: "违反限制消费令乘坐飞机",
           6: "拒不履行执行和解协议"}


def _given_names() -> list[str]:
    # Single characters and two-character names: the text above read in pieces of 1 and 2.
    singles = list(dict.fromkeys(GIVEN))
    pairs = [GIVEN[i:i + 2] for i in range(0, len(GIVEN) - 1, 2)]
    rng = random.Random(7)
    extra = [rng.choice(singles) + rng.choice(singles) for _ in range(3000)]
    return list(dict.fromkeys(singles + pairs + extra))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--listings", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=2000, help="timed searches")
    parser.add_argument("--seed", type=int, default=2017)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--reuse", metavar="URL", help="measure a database kept by --keep")
    args = parser.parse_args()
    os.environ["ZHIXING_TEST_BACKEND"] = args.backend

    if args.reuse:
        os.environ["ZHIXING_DATABASE_URL"] = args.reuse
        run(args.reuse, args)
        return
    from tests.support.database import create_test_database

    db = create_test_database(Path(tempfile.mkdtemp()), "bench_")
    os.environ["ZHIXING_DATABASE_URL"] = db.url
    try:
        run(db.url, args)
    finally:
        from zhixing.core.db import reset_engine

        reset_engine()
        if args.keep:
            print(f"\nscratch database kept: {db.url}")
        else:
            db.destroy()


# ---------------------------------------------------------------------------------------------
# Load


class Generator:
    def __init__(self, n: int, seed: int, courts: list[tuple[int, str, str]], today: date
                 ) -> None:
        from zhixing.demo_data.identities import guangxi_county_codes

        self.n = n
        self.rng = random.Random(seed)
        self.today = today
        self.courts = courts
        self.regions = list(guangxi_county_codes())
        self.given = _given_names()
        # Zipf-like weights, tuned so that 王 is ~7% of persons (as in China) and the commonest
        # given name ~0.8% (about twice reality: 王伟 then has ~0.06% of all listings).
        self.s_weights = [1 / (r + 3) for r in range(len(SURNAMES))]
        self.g_weights = [1 / (r + 20) ** 0.9 for r in range(len(self.given))]
        self.next_party = 1
        self.persons: list[int] = []  # party ids, to list some debtors again
        self.now = datetime.now(UTC)
        self.status_counts: Counter[str] = Counter()

    def _resident_id(self, i: int) -> tuple[str, date, str]:
        from stdnum.cn import ric

        # Unique by construction: (region, birth day, sequence) walks through i.
        region = self.regions[i % len(self.regions)]
        k = i // len(self.regions)
        born = date(1950, 1, 1) + timedelta(days=k % 18_000)
        seq = (k // 18_000) * 2 + self.rng.randrange(2)
        body = f"{region}{born:%Y%m%d}{seq:03d}"
        return body + ric.calc_check_digit(body + "0"), born, "M" if seq % 2 else "F"

    def _credit_code(self, i: int) -> str:
        from stdnum.cn import uscc

        alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
        digits = []
        for _ in range(9):
            i, r = divmod(i, 31)
            digits.append(alphabet[r])
        body = f"91{self.rng.choice(self.regions)}{''.join(digits)}"
        return body + uscc.calc_check_digit(body)

    def chunks(self) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
        for start in range(0, self.n, CHUNK):
            yield self._chunk(start, min(self.n, start + CHUNK))

    def _chunk(self, lo: int, hi: int) -> dict[str, list[tuple[Any, ...]]]:
        rng = self.rng
        size = hi - lo
        surnames = rng.choices(SURNAMES, weights=self.s_weights, k=size)
        given = rng.choices(self.given, weights=self.g_weights, k=size)
        courts = rng.choices(self.courts, k=size)
        out: dict[str, list[tuple[Any, ...]]] = {t: [] for t in TABLES}
        for j, i in enumerate(range(lo, hi)):
            case_id = i + 1
            court_id, code, court_name = courts[j]
            roll = rng.random()
            if self.persons and roll < 0.1:
                party_id = rng.choice(self.persons)  # a debtor listed in another case too
            else:
                party_id = self.next_party
                self.next_party += 1
                if roll < 0.19:
                    name = f"{rng.choice(CITIES)}{surnames[j]}{given[j]}{rng.choice(TRADES)}" \
                           f"有限公司"
                    out["parties"].append((party_id, "organisation", name, "uscc",
                                           self._credit_code(party_id), None, None, False,
                                           "某路1号", "13800000000", f"{surnames[j]}某",
                                           self.now))
                else:
                    number, born, sex = self._resident_id(party_id)
                    out["parties"].append((party_id, "person", surnames[j] + given[j], "ric",
                                           number, sex, born, False, "某路1号", "13800000000",
                                           None, self.now))
                    if len(self.persons) < 200_000:
                        self.persons.append(party_id)
            filed = self.today - timedelta(days=30 + rng.randrange(6 * 365))
            principal = rng.randrange(1_000_00, 5_000_000_00)
            out["cases"].append(self._case(case_id, court_id, code, court_name, filed,
                                           principal))
            out["case_parties"].append((case_id, party_id, "debtor"))
            out["credit_listings"].append(self._listing(case_id, court_id, party_id, filed))
        return out

    def _case(self, case_id: int, court_id: int, code: str, court_name: str, filed: date,
              principal: int) -> tuple[Any, ...]:
        rng = self.rng
        recovered = 0 if rng.random() < 0.7 else rng.randrange(principal)
        return (case_id, court_id, f"（{filed.year}）{code}执{case_id}号", filed.year, "执",
                case_id, court_name, f"（{filed.year - 1}）{code}民初{case_id}号",
                filed - timedelta(days=60), filed - timedelta(days=30), principal, 0, 0,
                recovered, 0, filed, None, None, "investigating", None, self.now, None, None,
                None, None, None, 0, None, None, None, self.now)

    def _listing(self, case_id: int, court_id: int, party_id: int, filed: date
                 ) -> tuple[Any, ...]:
        rng = self.rng
        roll = rng.random()
        effective = filed + timedelta(days=rng.randrange(20, 200))
        effective = min(effective, self.today - timedelta(days=1))
        publish: date | None = effective
        status = "active"
        if roll < 0.05:
            publish = self.today + timedelta(days=rng.randrange(1, 90))  # grace period
        elif roll < 0.17:
            status = "deleted"
        elif roll < 0.20:
            status = "revoked"
        elif roll < 0.23:
            status, publish = "proposed", None
        elif roll < 0.25:
            status, publish = "refused", None
        self.status_counts[status] += 1
        ground = rng.choices(range(1, 7), weights=[70, 3, 5, 15, 5, 2])[0]
        return (case_id, case_id, court_id, party_id, ground, CONDUCT[ground], status,
                "officer", self.now, 0, 0, 1, effective, publish)


COLUMNS = {
    "parties": ("id", "kind", "name", "id_kind", "id_number", "sex", "birth_date",
                "id_region_unverified", "address", "phone", "legal_representative",
                "created_at"),
    "cases": ("id", "court_id", "case_number", "year", "case_type", "serial", "title_issuer",
              "title_document_number", "title_date", "title_effective_date", "principal_fen",
              "interest_fen", "costs_fen", "recovered_fen", "disbursed_fen", "filed_on",
              "officer_id", "approver_id", "state", "state_before_suspension",
              "state_changed_at", "conclusion", "conclusion_ground", "concluded_on",
              "deadline_at_conclusion", "period_deadline", "extension_months", "next_due_on",
              "next_due_kind", "resumed_from_id", "created_at"),
    "case_parties": ("case_id", "party_id", "role"),
    "credit_listings": ("id", "case_id", "court_id", "party_id", "ground", "conduct", "status",
                        "origin", "proposed_at", "extension_years", "grace_months", "version",
                        "effective_on", "publish_on"),
}


def _pg_value(v: Any) -> str:
    if v is None:
        return "\\N"
    if v is True:
        return "t"
    if v is False:
        return "f"
    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    return str(v)


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, date):
        return v.isoformat()
    return v


def bulk_load(engine: Engine, gen: Generator, backend: str) -> dict[str, float]:
    """Drop the secondary indexes, load in chunks, rebuild the indexes (as bench.cases)."""
    from zhixing.core.db import Base

    indexes = [idx for t in TABLES for idx in Base.metadata.tables[t].indexes]
    if backend == "postgresql":
        # The search index lives in the migration (credit_listings' model is another module's);
        # rebuild it with the others.
        with engine.connect() as conn:
            extra = [r[0] for r in conn.execute(text(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_credit_listings_public'"))]
    with engine.begin() as conn:
        for idx in indexes:
            idx.drop(conn)
        conn.execute(text("DROP INDEX IF EXISTS ix_credit_listings_public"))
    counts: Counter[str] = Counter()
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if backend == "postgresql":
            cur.execute("SET session_replication_role = replica")
        else:
            cur.execute("PRAGMA foreign_keys=OFF")
            cur.execute("PRAGMA synchronous=OFF")
            cur.execute("BEGIN")
        for chunk in gen.chunks():
            for table in TABLES:
                rows = chunk[table]
                counts[table] += len(rows)
                cols = ", ".join(f'"{c}"' for c in COLUMNS[table])
                if backend == "postgresql":
                    buf = io.StringIO()
                    for r in rows:
                        buf.write("\t".join(map(_pg_value, r)))
                        buf.write("\n")
                    with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                        copy.write(buf.getvalue())
                else:
                    marks = ", ".join("?" for _ in COLUMNS[table])
                    cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})",  # noqa: S608
                                    [tuple(map(_sqlite_value, r)) for r in rows])
            if counts["credit_listings"] % 1_000_000 == 0:
                print(f"  … {counts['credit_listings']:,} listings", flush=True)
        if backend == "postgresql":
            for table in ("parties", "cases", "credit_listings"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                            f"(SELECT coalesce(max(id), 1) FROM {table}))")
            cur.execute("SET session_replication_role = DEFAULT")
        else:
            cur.execute("COMMIT")
            cur.execute("PRAGMA foreign_keys=ON")
        raw.commit()
    finally:
        raw.close()
    started = time.perf_counter()
    with engine.begin() as conn:
        if backend == "postgresql":
            conn.execute(text("SET maintenance_work_mem = '1GB'"))
            for ddl in extra:
                conn.execute(text(ddl))
        else:
            conn.execute(text("CREATE INDEX ix_credit_listings_public ON credit_listings "
                              "(party_id, status, publish_on, id)"))
        for idx in indexes:
            idx.create(conn, checkfirst=True)  # the search index may be in the model too
    result: dict[str, float] = dict(counts)
    result["index_seconds"] = round(time.perf_counter() - started)
    return result


def analyze(engine: Engine, backend: str) -> None:
    if backend == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE)"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))


# ---------------------------------------------------------------------------------------------
# Measure


class ServerTimer:
    """ASGI wrapper: the time the app spends on each request (what the server measures)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last_ms = 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.last_ms = (time.perf_counter() - started) * 1000


Params = dict[str, Any]


def name_mix(engine: Engine, rng: random.Random, today: date
             ) -> list[tuple[str, Callable[[random.Random], Params]]]:
    """Kinds of searches, each a function that picks one search's parameters."""
    with engine.connect() as conn:
        top = [(r[0], r[1]) for r in conn.execute(text(
            "SELECT p.name, count(*) FROM credit_listings l JOIN parties p ON p.id = l.party_id "
            "WHERE l.status = 'active' AND l.publish_on <= :t "
            "GROUP BY p.name ORDER BY count(*) DESC LIMIT 50"), {"t": today})]
        sample = [tuple(r) for r in conn.execute(text(
            "SELECT p.name, p.kind, p.id_number, c.division_code FROM credit_listings l "
            "JOIN parties p ON p.id = l.party_id JOIN courts c ON c.id = l.court_id "
            "WHERE l.id % 97 = 3 LIMIT 20000"))]
    persons = [s for s in sample if s[1] == "person"]
    orgs = [s for s in sample if s[1] == "organisation"]
    print("commonest published names: " + ", ".join(f"{n} {c:,}" for n, c in top[:8]))

    def by_listing(r: random.Random) -> Params:
        return {"name": r.choice(sample)[0]}

    def common(r: random.Random) -> Params:
        return {"name": r.choice(top)[0]}

    def common_paged(r: random.Random) -> Params:
        return {"name": r.choice(top)[0], "page": r.randint(2, 5)}

    def organisation(r: random.Random) -> Params:
        return {"name": r.choice(orgs)[0]}

    def absent(r: random.Random) -> Params:
        return {"name": r.choice(SURNAMES) + "某某" + r.choice("甲乙丙丁戊")}

    def by_id(r: random.Random) -> Params:
        name, _, number, _ = r.choice(persons)
        return {"name": name, "id_number": number}

    def common_in_province(r: random.Random) -> Params:
        return {"name": r.choice(top)[0], "province": r.choice(("45", "44"))}

    return [("names drawn by listing (frequency-weighted)", by_listing),
            ("the 50 commonest names, page 1", common),
            ("the 50 commonest names, pages 2-5", common_paged),
            ("organisations", organisation),
            ("names not on the list", absent),
            ("name + full ID number", by_id),
            ("commonest names + province", common_in_province)]


def measure(engine: Engine, backend: str, args: argparse.Namespace, today: date) -> None:
    from fastapi.testclient import TestClient

    from zhixing.app import create_app
    from zhixing.credit import public

    # One client address for the whole run: lift its allowance, keep the counting write.
    public.SEARCH_LIMIT = 10**9
    rng = random.Random(args.seed)
    kinds = name_mix(engine, rng, today)
    timer = ServerTimer(create_app(start_worker=False))
    samples: dict[str, list[float]] = {k: [] for k, _ in kinds}
    totals: dict[str, list[int]] = {k: [] for k, _ in kinds}
    every: list[float] = []
    weights = [30, 20, 10, 10, 10, 10, 10]
    with TestClient(timer) as client:
        for _ in range(50):  # warm the code paths and the caches a server has warm
            client.get("/api/v1/public/dishonest", params=rng.choice(kinds)[1](rng))
        for _ in range(args.runs):
            kind, pick = rng.choices(kinds, weights=weights)[0]
            params = pick(rng)
            resp = client.get("/api/v1/public/dishonest", params=params)
            assert resp.status_code == 200, resp.text
            samples[kind].append(timer.last_ms)
            totals[kind].append(resp.json()["total"])
            every.append(timer.last_ms)
    print(f"\n{backend}, {args.listings:,} listings, {args.runs} searches "
          f"(server time, GET /api/v1/public/dishonest)\n")
    print("| searches | share | rows found (median / max) | p50 | p95 |\n|---|---|---|---|---|")
    for (kind, _), w in zip(kinds, weights, strict=True):
        s = samples[kind]
        if not s:
            continue
        print(f"| {kind} | {w}% | {statistics.median(totals[kind]):,.0f} / "
              f"{max(totals[kind]):,} | {statistics.median(s):.1f} ms | "
              f"{percentile(s, 95):.1f} ms |")
    print(f"| **all** | 100% | | **{statistics.median(every):.1f} ms** | "
          f"**{percentile(every, 95):.1f} ms** |")


def show_plan(engine: Engine, backend: str, today: date) -> None:
    if backend != "postgresql":
        return
    from sqlalchemy.dialects import postgresql

    from zhixing.credit import public

    with engine.connect() as conn:
        name = conn.execute(text(
            "SELECT p.name FROM credit_listings l JOIN parties p ON p.id = l.party_id "
            "GROUP BY p.name ORDER BY count(*) DESC LIMIT 1")).scalar_one()
        captured: list[str] = []
        from sqlalchemy import select

        from zhixing.cases.models import Party
        from zhixing.credit.models import Listing

        stmt = (select(Listing.id).join(Party, Party.id == Listing.party_id)
                .where(Party.name == name, public.published(today))
                .order_by(Listing.publish_on.desc(), Listing.id.desc())
                .limit(public.COUNT_CAP + 1))
        sql = str(stmt.compile(dialect=postgresql.dialect(),  # type: ignore[no-untyped-call]
                               compile_kwargs={"literal_binds": True}))
        for row in conn.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql)):
            captured.append(row[0])
    print(f"\nplan of the key query for the commonest name ({name}):\n")
    print("\n".join("    " + line for line in captured))


def run(url: str, args: argparse.Namespace) -> None:
    from zhixing.cases.service import today
    from zhixing.core.db import make_engine, session_factory, set_engine
    from zhixing.core.migrate import upgrade
    from zhixing.courts.models import Court
    from zhixing.courts.service import sync_courts
    from zhixing.demo import seed_users

    backend = args.backend
    engine = make_engine(url)
    set_engine(engine)
    on = today()
    if not args.reuse:
        upgrade(engine)
        with session_factory()() as s:
            sync_courts(s)
            seed_users(s)
            s.commit()
            from sqlalchemy import select

            courts = [(c.id, c.code, c.name_zh) for c in s.scalars(
                select(Court).where(Court.level == "basic"))]
        print(f"{backend}: loading {args.listings:,} listings …", flush=True)
        t0 = time.perf_counter()
        gen = Generator(args.listings, args.seed, courts, on)
        counts = bulk_load(engine, gen, backend)
        load_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        analyze(engine, backend)
        print(f"loaded in {load_s:,.0f} s (indexes {counts.pop('index_seconds'):.0f} s), "
              f"VACUUM ANALYZE {time.perf_counter() - t1:,.0f} s")
        print("rows: " + ", ".join(f"{k} {int(v):,}" for k, v in counts.items()))
        print("listings: " + ", ".join(f"{k} {v:,}" for k, v in
                                       sorted(gen.status_counts.items())))
    measure(engine, backend, args, on)
    show_plan(engine, backend, on)


if __name__ == "__main__":
    main()
