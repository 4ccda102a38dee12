"""Cases benchmark: case lists, the work queue and the case page over a large register.

    .venv/bin/python -m bench.cases --backend postgresql --cases 1000000
    .venv/bin/python -m bench.cases --backend sqlite            # default 200,000 cases

A fresh scratch database is migrated, loaded with the courts and the demo users, then bulk-loaded
with N cases and 2N parties (case links, responsible persons, procedural facts, pauses, assets,
ledger entries and officers spread over the courts; COPY on PostgreSQL, executemany on SQLite).
Every stored deadline is computed with ``statutory.compute`` from the facts and pauses loaded,
as ``service.refresh_clock`` would. After ANALYZE the server time of what the API routes run is
measured, with a real Actor (``identity.actor_for``), over many runs with varied parameters:
``queries.page`` + ``presenters.summaries`` for each single list filter (basic-court officer and
high-court user), ``queries.work_queue`` + summaries (+ ``ledger.expiring_controls``, as the
route does) for an officer with 100-500 cases, ``service.get_case`` + ``presenters.detail``.
Each figure's statements are then shown with EXPLAIN (ANALYZE, BUFFERS on PostgreSQL; QUERY
PLAN on SQLite). ``--try-index`` prototypes the index recommended in docs/benchmarks.md in the
scratch database and measures again.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.stats import percentile  # noqa: E402

os.environ.setdefault("ZHIXING_LOG_JSON", "false")

from sqlalchemy import Engine, event, func, insert, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from zhixing.cases import statutory  # noqa: E402
from zhixing.cases.lifecycle import TERMINATION_GROUNDS  # noqa: E402

CHUNK = 20_000
START = date(2021, 1, 1)  # about six years of filings




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--cases", type=int, default=None,
                        help="cases to load (default 1,000,000 on PostgreSQL, 200,000 on SQLite)")
    parser.add_argument("--runs", type=int, default=200, help="timed runs per figure")
    parser.add_argument("--seed", type=int, default=2014)
    parser.add_argument("--try-index", action="store_true",
                        help="then create the recommended index(es) and measure again")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--reuse", metavar="URL",
                        help="measure a database kept by an earlier --keep run (no load)")
    parser.add_argument("--slowest", type=int, default=0,
                        help="show the parameters of the N slowest runs of each figure")
    parser.add_argument("--plans", choices=["main", "all", "none"], default="main",
                        help="EXPLAIN the main query of each figure, or every statement")
    args = parser.parse_args()
    args.cases = args.cases or (1_000_000 if args.backend == "postgresql" else 200_000)
    os.environ["ZHIXING_TEST_BACKEND"] = args.backend

    if args.reuse:
        os.environ["ZHIXING_DATABASE_URL"] = args.reuse
        try:
            run(args.reuse, args)
        finally:
            from zhixing.core.db import reset_engine

            reset_engine()
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
# Data


@dataclass
class Officer:
    id: int
    username: str
    court_id: int
    court_code: str
    cases: int = 0


@dataclass
class World:
    courts: list[tuple[int, str, str, str, str]]  # id, code, level, name, division
    officers: dict[int, list[Officer]]  # court id -> officers
    today: date
    counts: Counter[str] = field(default_factory=Counter)


def _courts(session: Session) -> list[tuple[int, str, str, str, str]]:
    from zhixing.courts.models import Court

    return [(c.id, c.code, str(c.level), c.name_zh, c.division_code)
            for c in session.scalars(select(Court).order_by(Court.path))]


def _court_weight(level: str, code: str) -> float:
    if code in ("桂0103", "桂0204", "桂0202", "桂0305"):
        return 2.0
    return {"basic": 1.0, "intermediate": 0.4, "high": 0.05}[level]


def create_officers(engine: Engine, courts: list[tuple[int, str, str, str, str]], cases: int,
                    per_officer: int) -> dict[int, list[Officer]]:
    """Officers in every court, about ``per_officer`` cases each; the demo officers of
    Qingxiu and Liunan among them. One password hash for all (argon2 is slow by design)."""
    from zhixing.core.security import hash_password
    from zhixing.courts.models import User, UserRole
    from zhixing.demo import DEMO_PASSWORD

    total_weight = sum(_court_weight(level, code) for _, code, level, _, _ in courts)
    pw = hash_password(DEMO_PASSWORD)
    now = datetime.now(UTC)
    planned: list[tuple[str, int]] = []
    for cid, code, level, _, _ in courts:
        expected = cases * _court_weight(level, code) / total_weight
        digits = code.removeprefix("桂") or "gx"
        planned += [(f"officer.{digits}.{k:03d}", cid)
                    for k in range(max(1, round(expected / per_officer)))]
    with engine.begin() as conn:
        conn.execute(insert(User), [
            {"username": username, "display_name": f"执行法官 {username[8:]}", "court_id": cid,
             "password_hash": pw, "is_active": True, "created_at": now, "failed_logins": 0}
            for username, cid in planned])
        ids = dict(conn.execute(select(User.username, User.id).where(
            User.username.like("officer.%"))).tuples().all())
        conn.execute(insert(UserRole),
                     [{"user_id": uid, "role": "officer"} for uid in ids.values()])
        named = conn.execute(select(User.username, User.id, User.court_id).where(
            User.username.in_(("qingxiu.officer", "qingxiu.approver", "liunan.officer")))
        ).tuples().all()
    officers: dict[int, list[Officer]] = defaultdict(list)
    code_of = {cid: code for cid, code, *_ in courts}
    for username, cid in planned:
        officers[cid].append(Officer(ids[username], username, cid, code_of[cid]))
    # The named demo officers take a share of their court's cases too.
    for username, uid, court_id in named:
        officers[court_id].append(Officer(uid, username, court_id, code_of[court_id]))
    return officers


class Generator:
    """Rows for every table, in filing order, consistent with the rules: states reached in
    order, the facts each state establishes, the 终本 conditions before a 终本, pauses for
    suspended cases, money never above the debt, deadlines from ``statutory.compute``."""

    def __init__(self, world: World, n_cases: int, seed: int) -> None:
        from faker import Faker

        from zhixing.demo_data.cases import codes_valid_by_year

        self.w = world
        self.n = n_cases
        self.rng = rng = random.Random(seed)
        fake = Faker("zh_CN")
        fake.seed_instance(seed)
        self.surnames = [fake.last_name() for _ in range(400)]
        self.male = [fake.first_name_male() for _ in range(1500)]
        self.female = [fake.first_name_female() for _ in range(1500)]
        self.companies = [fake.company() for _ in range(4000)]
        self.streets = [fake.street_name() for _ in range(2000)]
        self.codes_by_year = codes_valid_by_year()
        self.used: set[str] = set()
        self.basic = [c for c in world.courts if c[2] == "basic"]
        weights = [_court_weight(level, code) for _, code, level, _, _ in world.courts]
        # Filing dates: growing a little year on year, sorted (ids follow the register).
        span = (world.today - START).days
        self.filed = sorted(START + timedelta(days=int(span * rng.random() ** 0.9))
                            for _ in range(n_cases))
        self.court_of = rng.choices(range(len(world.courts)), weights=weights, k=n_cases)
        self.serials: Counter[tuple[int, int, str]] = Counter()
        self.person_ids: list[int] = []
        self.person_names: list[str] = []
        self.debtor_ids: list[int] = []
        self.cases_of_court: dict[int, list[int]] = defaultdict(list)
        self.next_party = 1
        self.next_asset = 1
        self.next_ledger = 1
        self.next_pause = 1
        self.now = datetime.now(UTC)

    # -- parties -------------------------------------------------------------------------
    def _resident_id(self, division: str | None) -> tuple[str, date, str]:
        from stdnum.cn import ric

        rng = self.rng
        while True:
            born = date(1956, 1, 1) + timedelta(days=rng.randrange(365 * 47))
            codes = self.codes_by_year[born.year]
            code = division if division in codes else rng.choice(codes)
            sex = "M" if rng.random() < 0.7 else "F"
            seq = rng.randrange(0, 500) * 2 + (1 if sex == "M" else 0)
            body = f"{code}{born:%Y%m%d}{seq:03d}"
            number = body + ric.calc_check_digit(body + "0")
            if number not in self.used:
                self.used.add(number)
                return number, born, sex

    def _credit_code(self, division: str | None) -> str:
        from zhixing.demo_data.identities import credit_code

        while True:
            number = credit_code(self.rng, region=division)
            if number not in self.used:
                self.used.add(number)
                return number

    def _address(self, court: tuple[int, str, str, str, str]) -> str:
        return f"{court[3].removesuffix('人民法院')}辖区{self.rng.choice(self.streets)}" \
               f"{self.rng.randint(1, 399)}号"

    def party(self, court: tuple[int, str, str, str, str], org_share: float,
              out: dict[str, list[tuple[Any, ...]]]) -> int:
        rng = self.rng
        pid = self.next_party
        self.next_party += 1
        division = court[4] if court[2] == "basic" else None
        phone = f"1{rng.choice('3578')}{rng.randrange(10**9):09d}"
        if rng.random() < org_share:
            city = court[3][:2]
            name = f"{city}{rng.choice(self.companies)}"
            rep_name = None
            if self.person_ids:  # a person already on record is its legal representative
                k = rng.randrange(len(self.person_ids))
                rep_name = self.person_names[k]
                out["responsible_persons"].append((pid, self.person_ids[k],
                                                   "legal_representative"))
            out["parties"].append((pid, "organisation", name, "uscc",
                                   self._credit_code(division), None, None, False,
                                   self._address(court), phone, rep_name, self.now))
        else:
            number, born, sex = self._resident_id(division)
            given = rng.choice(self.male if sex == "M" else self.female)
            name = f"{rng.choice(self.surnames)}{given}"
            out["parties"].append((pid, "person", name, "ric", number, sex, born, False,
                                   self._address(court), phone, None, self.now))
            self.person_ids.append(pid)
            self.person_names.append(name)
        return pid

    # -- cases ---------------------------------------------------------------------------
    def chunks(self) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
        for start in range(0, self.n, CHUNK):
            out: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
            for i in range(start, min(self.n, start + CHUNK)):
                self.case(i, out)
            yield out

    def case(self, i: int, out: dict[str, list[tuple[Any, ...]]]) -> None:
        rng = self.rng
        w = self.w
        today = w.today
        case_id = i + 1
        court = w.courts[self.court_of[i]]
        court_id, code, _, name, _ = court
        self.cases_of_court[court_id].append(case_id)
        filed = self.filed[i]
        officer = rng.choice(w.officers[court_id])
        officer.cases += 1
        case_type = rng.choices(["执", "执保", "执恢", "执异", "执协"],
                                weights=[86, 5, 5, 3, 1])[0]
        key = (court_id, filed.year, case_type)
        self.serials[key] += 1
        serial = self.serials[key]
        number = f"（{filed.year}）{code}{case_type}{serial}号"
        effective = filed - timedelta(days=rng.randint(20, 500))
        issued = effective - timedelta(days=rng.randint(15, 45))
        principal = int(10 ** rng.uniform(3.5, 6.7)) * 100
        interest = principal * rng.randint(0, 15) // 10000 * 100
        costs = (50 + principal // 20000) * 100
        applied = principal + interest + costs

        applicant = self.party(court, 0.45, out)
        debtor = self.party(court, 0.3, out)
        out["case_parties"].append((case_id, applicant, "applicant"))
        out["case_parties"].append((case_id, debtor, "debtor"))
        if self.debtor_ids and rng.random() < 0.1:  # a debtor of other cases as co-debtor
            again = rng.choice(self.debtor_ids[-50_000:])
            if again not in (applicant, debtor):
                out["case_parties"].append((case_id, again, "debtor"))
        self.debtor_ids.append(debtor)

        # Where the case is now: the older, the likelier concluded (about 5% overdue).
        age = (today - filed).days
        p_open = 0.06 if age > 200 else 0.35 if age > 120 else 0.7 if age > 45 else 0.95
        concluded = rng.random() > p_open
        state: str
        conclusion = ground = None
        concluded_on = None
        if concluded:
            conclusion = rng.choices(["performed", "closed_for_now", "terminated", "rejected",
                                      "closed_after_transfer"], weights=[40, 38, 14, 4, 4])[0]
            lo = 100 if conclusion == "closed_for_now" else 15
            concluded_on = min(today, filed + timedelta(days=rng.randint(lo, 260)))
            if conclusion == "closed_for_now" and concluded_on <= filed + timedelta(days=93):
                conclusion = "terminated"
            state = "concluded"
            ground = (rng.choice(TERMINATION_GROUNDS) if conclusion == "terminated"
                      else "异议不成立" if conclusion == "rejected"
                      else "移送破产审查" if conclusion == "closed_after_transfer" else None)
        else:
            state = rng.choices(["filed", "notice_served", "investigating", "controlling",
                                 "disposing", "disbursing", "suspended"],
                                weights=[5, 12, 35, 22, 8, 4, 14])[0]
            if state == "filed" and age > 10:
                state = "notice_served"
        end = concluded_on or today

        def on(lo: int, hi: int, after: date) -> date:
            return min(end, after + timedelta(days=rng.randint(lo, hi)))

        order = ["filed", "notice_served", "investigating", "controlling", "disposing",
                 "disbursing"]
        reached = 5 if concluded else (2 if state == "suspended" else order.index(state))
        facts: dict[str, date] = {"officer_assigned": filed}
        if reached >= 1 and not (concluded and conclusion == "rejected"):
            notice = on(1, 6, filed)
            facts["execution_notice"] = facts["property_report_order"] = notice
            if reached >= 2:
                facts["asset_search_started"] = on(1, 6, notice)
        if conclusion == "closed_for_now":
            assert concluded_on is not None
            facts.setdefault("asset_search_started", on(1, 6, filed))
            for kind in ("network_query_done", "consumption_restriction",
                         "dishonest_listing_decided", "debtor_search", "applicant_interview"):
                facts[kind] = concluded_on - timedelta(days=rng.randint(0, 60))
                facts[kind] = max(facts[kind], filed + timedelta(days=1))
        pauses: list[statutory.Interval] = []
        before_suspension = None
        if state == "suspended":
            start = on(10, max(11, age - 1), filed)
            pauses.append(statutory.Interval(start, None))
            before_suspension = rng.choice(["investigating", "controlling"])
        elif not concluded and state in ("disposing", "controlling") and rng.random() < 0.2:
            start = on(20, 90, filed)
            stop = on(20, 90, start)
            pauses.append(statutory.Interval(start, stop if stop < today else None))
        clock = statutory.compute(filed, facts, pauses, 0, today, concluded_on=concluded_on)
        if concluded:
            period_deadline = next_due = next_kind = None
        else:
            period_deadline = clock.period.due_on if clock.period else None
            nxt = clock.next_due
            next_due, next_kind = (nxt.due_on, nxt.kind) if nxt else (None, None)
        at_conclusion = clock.period.due_on if (concluded and clock.period) else None

        recovered = disbursed = 0
        if conclusion == "performed":
            recovered = disbursed = applied
        elif conclusion == "closed_for_now" and rng.random() < 0.3:
            recovered = disbursed = applied * rng.randint(5, 60) // 100
        elif state in ("controlling", "disposing", "disbursing") and rng.random() < 0.5:
            recovered = applied * rng.randint(5, 90) // 100
            disbursed = recovered if state != "controlling" else 0

        # Property: found in about a quarter of the cases, controlled while the case runs.
        if (not concluded and reached >= 3) or (conclusion == "performed" and rng.random() < 0.5) \
                or (conclusion == "closed_for_now" and recovered):
            kind = rng.choices(["deposit", "real_estate", "vehicle"], weights=[60, 25, 15])[0]
            limit = statutory.freeze_limit_days(kind)
            started = on(5, 40, filed)
            if concluded:
                control = "released"
                expires = None
            else:
                control = {"deposit": "frozen", "real_estate": "sealed", "vehicle": "seized"}[kind]
                expires = started + timedelta(days=limit)
                while expires < today:  # renewed before it lapsed
                    expires += timedelta(days=limit)
            self.asset(out, case_id, debtor, kind, control, started, expires, applied)
            if recovered:
                out["ledger_entries"].append((self.next_ledger, case_id, "recovered", recovered,
                                              on(10, 60, started), self.next_asset - 1, None,
                                              None, officer.id, self.now))
                self.next_ledger += 1
        if disbursed:
            out["ledger_entries"].append((self.next_ledger, case_id, "disbursed", disbursed,
                                          end, None, applicant, None, officer.id, self.now))
            self.next_ledger += 1

        for kind, day in facts.items():
            out["case_facts"].append((case_id, kind, day, self.now, officer.id, None))
        for p in pauses:
            out["case_pauses"].append((self.next_pause, case_id,
                                       "suspension" if p.end is None and state == "suspended"
                                       else "auction", p.start, p.end))
            self.next_pause += 1
        changed = datetime.combine(concluded_on or max(facts.values()), datetime.min.time(),
                                   UTC) + timedelta(hours=2)
        row: dict[str, Any] = {
            "id": case_id, "court_id": court_id, "case_number": number, "year": filed.year,
            "case_type": case_type, "serial": serial, "title_issuer": name,
            "title_document_number": f"（{issued.year}）{code}民初{rng.randint(1, 19999)}号",
            "title_date": issued, "title_effective_date": effective, "principal_fen": principal,
            "interest_fen": interest, "costs_fen": costs, "recovered_fen": recovered,
            "disbursed_fen": disbursed, "filed_on": filed, "officer_id": officer.id,
            "approver_id": None, "state": state, "state_before_suspension": before_suspension,
            "state_changed_at": changed, "conclusion": conclusion, "conclusion_ground": ground,
            "concluded_on": concluded_on, "deadline_at_conclusion": at_conclusion,
            "period_deadline": period_deadline, "extension_months": 0,
            "next_due_on": next_due, "next_due_kind": next_kind, "resumed_from_id": None,
            "created_at": changed}
        out["cases"].append(tuple(row.get(c) for c in self.case_columns))
        w.counts[state] += 1
        if period_deadline and period_deadline < today:
            w.counts["overdue"] += 1

    case_columns: Sequence[str] = ()

    def asset(self, out: dict[str, list[tuple[Any, ...]]], case_id: int, debtor: int,
              kind: str, control: str, started: date, expires: date | None,
              applied: int) -> None:
        rng = self.rng
        if kind == "deposit":
            desc, ident, holder = "活期存款账户", f"62{rng.randrange(10**17):017d}", "中国工商银行"
        elif kind == "real_estate":
            desc, ident, holder = ("住宅一套", f"桂(2020)不动产权第{rng.randrange(10**7):07d}号",
                                   "不动产登记中心")
        else:
            desc, ident, holder = ("小型轿车", f"桂{rng.choice('ABCDE')}{rng.randrange(10**5):05d}",
                                   "车辆管理所")
        amount = applied if kind == "deposit" else None
        out["assets"].append((self.next_asset, case_id, debtor, kind, desc, ident, holder,
                              applied, "network_query", None, control, amount, started, expires,
                              self.now))
        self.next_asset += 1


TABLES = ("parties", "responsible_persons", "cases", "case_parties", "case_facts", "case_pauses",
          "assets", "ledger_entries")
COLUMNS: dict[str, tuple[str, ...]] = {
    "parties": ("id", "kind", "name", "id_kind", "id_number", "sex", "birth_date",
                "id_region_unverified", "address", "phone", "legal_representative",
                "created_at"),
    "responsible_persons": ("organisation_id", "person_id", "role"),
    "case_parties": ("case_id", "party_id", "role"),
    "case_facts": ("case_id", "kind", "on", "recorded_at", "recorded_by", "note"),
    "case_pauses": ("id", "case_id", "reason", "started_on", "ended_on"),
    "assets": ("id", "case_id", "debtor_id", "kind", "description", "identifier", "holder",
               "value_fen", "provenance", "source_ref", "control_state", "control_amount_fen",
               "control_started_on", "control_expires_on", "created_at"),
    "ledger_entries": ("id", "case_id", "kind", "amount_fen", "on", "asset_id", "party_id",
                       "note", "recorded_by", "recorded_at"),
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


def _secondary_indexes(tables: Sequence[str]) -> list[Any]:
    from zhixing.core.db import Base

    return [idx for t in tables for idx in Base.metadata.tables[t].indexes]


def bulk_load(engine: Engine, gen: Generator, backend: str) -> dict[str, int]:
    """Drop the secondary indexes, load every table in chunks, rebuild the indexes."""
    from zhixing.core.db import Base

    gen.case_columns = tuple(c.name for c in Base.metadata.tables["cases"].columns)
    columns = {**COLUMNS, "cases": gen.case_columns}
    indexes = _secondary_indexes(TABLES)
    with engine.begin() as conn:
        for idx in indexes:
            idx.drop(conn)
    counts: Counter[str] = Counter()
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if backend == "postgresql":
            # Rows are generated consistent; skip the per-row FK triggers while loading.
            cur.execute("SET session_replication_role = replica")
        else:
            cur.execute("PRAGMA foreign_keys=OFF")
            cur.execute("PRAGMA synchronous=OFF")
            cur.execute("BEGIN")
        for chunk in gen.chunks():
            for table in TABLES:
                rows = chunk.get(table, [])
                if not rows:
                    continue
                counts[table] += len(rows)
                cols = columns[table]
                quoted = ", ".join(f'"{c}"' for c in cols)
                if backend == "postgresql":
                    buf = io.StringIO()
                    for r in rows:
                        buf.write("\t".join(map(_pg_value, r)))
                        buf.write("\n")
                    with cur.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
                        copy.write(buf.getvalue())
                else:
                    marks = ", ".join("?" for _ in cols)
                    cur.executemany(f"INSERT INTO {table} ({quoted}) VALUES ({marks})",  # noqa: S608
                                    [tuple(map(_sqlite_value, r)) for r in rows])
            if counts["cases"] % 200_000 == 0:
                print(f"  … {counts['cases']:,} cases", flush=True)
        seq_rows = [(court_id, year, case_type, serial)
                    for (court_id, year, case_type), serial in gen.serials.items()]
        if backend == "postgresql":
            cur.executemany("INSERT INTO case_sequences (court_id, year, case_type, last_serial)"
                            " VALUES (%s, %s, %s, %s)", seq_rows)
            for table in ("parties", "cases", "case_pauses", "assets", "ledger_entries"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                            f"(SELECT coalesce(max(id), 1) FROM {table}))")
            cur.execute("SET session_replication_role = DEFAULT")
            cur.execute("SET maintenance_work_mem = '512MB'")
        else:
            cur.executemany("INSERT INTO case_sequences (court_id, year, case_type, last_serial)"
                            " VALUES (?, ?, ?, ?)", seq_rows)
            cur.execute("COMMIT")
            cur.execute("PRAGMA foreign_keys=ON")
        raw.commit()
    finally:
        raw.close()
    started = time.perf_counter()
    with engine.begin() as conn:
        if backend == "postgresql":
            conn.execute(text("SET maintenance_work_mem = '512MB'"))
        for idx in indexes:
            idx.create(conn)
    counts["index_seconds"] = round(time.perf_counter() - started)
    return dict(counts)


def analyze(engine: Engine, backend: str) -> None:
    if backend == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE)"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))


# ---------------------------------------------------------------------------------------------
# Measurements


@dataclass
class Figure:
    """``prepare`` picks this run's parameters (untimed); ``fn`` is what the route runs."""

    name: str
    prepare: Callable[[random.Random], Any]
    fn: Callable[[Session, Any], Any]
    samples: list[float] = field(default_factory=list)
    slow: list[tuple[float, str]] = field(default_factory=list)


class Capture:
    """Statements the code under test sends, to EXPLAIN them afterwards."""

    def __init__(self, engine: Engine) -> None:
        self.statements: list[tuple[str, Any]] = []
        self.on = False
        event.listen(engine, "before_cursor_execute", self._hook)

    def _hook(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any,
              _many: bool) -> None:
        if self.on:
            self.statements.append((statement, parameters))

    @contextmanager
    def capturing(self) -> Iterator[list[tuple[str, Any]]]:
        self.statements = []
        self.on = True
        try:
            yield self.statements
        finally:
            self.on = False


def explain(engine: Engine, backend: str, statement: str, parameters: Any) -> str:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if backend == "postgresql":
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            return "\n".join(r[0] for r in cur.fetchall())
        cur.execute("EXPLAIN QUERY PLAN " + statement, parameters)
        return "\n".join(str(r[-1]) for r in cur.fetchall())
    finally:
        raw.close()


def _describe(params: Any) -> str:
    parts = params if isinstance(params, tuple) else (params,)
    out = []
    for p in parts:
        if hasattr(p, "user_id") and hasattr(p, "court_code"):
            out.append(f"actor={p.name}@{p.court_code}")
        elif hasattr(p, "__dataclass_fields__"):
            out.append(", ".join(f"{k}={v}" for k, v in vars(p).items()
                                 if v not in (None, True, "-filed_on") or k == "overdue"))
        else:
            out.append(str(p))
    return "; ".join(out)


def measure(figures: list[Figure], runs: int, seed: int) -> None:
    from zhixing.core.db import session_factory

    factory = session_factory()
    rng = random.Random(seed)
    for fig in figures:
        for _ in range(5):  # warm the code paths (not the parameters: they vary)
            params = fig.prepare(rng)
            with factory() as s:
                fig.fn(s, params)
        fig.samples = []
        timed: list[tuple[float, str]] = []
        for _ in range(runs):
            params = fig.prepare(rng)
            t0 = time.perf_counter()
            with factory() as s:  # a request's session, as get_db opens it
                fig.fn(s, params)
            ms = (time.perf_counter() - t0) * 1000
            fig.samples.append(ms)
            timed.append((ms, _describe(params)))
        fig.slow = sorted(timed, reverse=True)[:10]


@dataclass
class Reach:
    """What the figures draw their parameters from."""

    n_cases: int
    cases_of_court: dict[int, list[int]]


def build_figures(session: Session, world: World, reach: Reach, rng: random.Random,
                  *, implied_bound: bool = False) -> list[Figure]:
    """Every figure. ``implied_bound`` prototypes the overdue query shape recommended in
    docs/benchmarks.md: the same statement plus ``filed_on < today − 6 months``."""
    from dateutil.relativedelta import relativedelta

    from zhixing.cases import ledger, presenters, queries, service
    from zhixing.cases.models import Case
    from zhixing.core.actor import Actor
    from zhixing.courts.identity import actor_for
    from zhixing.courts.models import User

    def actor(username: str) -> Actor:
        user = session.scalar(select(User).where(User.username == username))
        assert user is not None
        return actor_for(session, user, None)

    basic_ids = {cid for cid, _, level, _, _ in world.courts if level == "basic"}
    busy = [o for cid, officers in world.officers.items() if cid in basic_ids
            for o in officers if 100 <= o.cases <= 500]
    if not busy:  # a small trial load: the busiest officers there are
        busy = sorted((o for cid, officers in world.officers.items() if cid in basic_ids
                       for o in officers), key=lambda o: -o.cases)[:40]
    officer_actors = [(o, actor(o.username)) for o in rng.sample(busy, min(40, len(busy)))]
    high = actor("gx.duty")
    codes = [code for _, code, _, _, _ in world.courts]
    states = ["open", "filed", "notice_served", "investigating", "controlling", "disposing",
              "disbursing", "suspended", "concluded"]
    types = ["执", "执保", "执恢", "执异", "执协"]
    all_officers = [o for officers in world.officers.values() for o in officers]
    span = (world.today - START).days

    Make = Callable[[random.Random, Officer | None], queries.CaseFilter]

    def lister(who: str, make: Make) -> tuple[Callable[[random.Random], Any],
                                              Callable[[Session, Any], Any]]:
        def prepare(r: random.Random) -> tuple[Actor, queries.CaseFilter]:
            if who == "officer":
                o, a = r.choice(officer_actors)
                return a, make(r, o)
            return high, make(r, None)

        def fn(s: Session, p: tuple[Actor, queries.CaseFilter]) -> Any:
            page = queries.page(s, p[0], p[1], 50, None)
            return presenters.summaries(s, page.items)

        def fn_bounded(s: Session, p: tuple[Actor, queries.CaseFilter]) -> Any:
            # queries.page's first page, with the bound that overdue implies.
            bound = service.today() - relativedelta(months=statutory.RULES.period_months)
            stmt = (queries.filtered(s, p[0], p[1]).where(Case.filed_on < bound)
                    .order_by(Case.filed_on.desc(), Case.id.desc()).limit(51))
            return presenters.summaries(s, list(s.scalars(stmt))[:50])
        return prepare, fn_bounded if implied_bound else fn

    def colleague(r: random.Random, o: Officer | None) -> str:
        return r.choice(world.officers[o.court_id] if o else all_officers).username

    def f_court(r: random.Random, o: Officer | None) -> queries.CaseFilter:
        return queries.CaseFilter(court=o.court_code if o else r.choice(codes))

    def f_officer(r: random.Random, o: Officer | None) -> queries.CaseFilter:
        return queries.CaseFilter(officer=colleague(r, o))

    def f_state(r: random.Random, o: Officer | None) -> queries.CaseFilter:
        return queries.CaseFilter(state=r.choice(states))

    def f_type(r: random.Random, o: Officer | None) -> queries.CaseFilter:
        return queries.CaseFilter(case_type=r.choice(types))

    def f_period(r: random.Random, o: Officer | None) -> queries.CaseFilter:
        start = START + timedelta(days=r.randrange(span - 30))
        return queries.CaseFilter(filed_from=start,
                                  filed_to=start + timedelta(days=r.choice([7, 30, 90])))

    def f_overdue(r: random.Random, o: Officer | None) -> queries.CaseFilter:
        return queries.CaseFilter(overdue=True)

    def queue_prepare(r: random.Random) -> Actor:
        return r.choice(officer_actors)[1]

    def queue(s: Session, a: Actor) -> Any:
        q = queries.work_queue(s, a)
        expiring = ledger.expiring_controls(s, a.visible_court_ids,
                                            statutory.RULES.freeze_warn_days,
                                            officer_id=a.user_id)
        return (presenters.summaries(s, q.overdue), presenters.summaries(s, q.due_soon),
                presenters.summaries(s, q.open_cases), expiring)

    def page_prepare_officer(r: random.Random) -> tuple[Actor, int]:
        o, a = r.choice(officer_actors)
        return a, r.choice(reach.cases_of_court[o.court_id])

    def page_prepare_high(r: random.Random) -> tuple[Actor, int]:
        return high, r.randrange(1, reach.n_cases + 1)

    def case_page(s: Session, p: tuple[Actor, int]) -> Any:
        case = service.get_case(s, p[0], p[1])
        return presenters.detail(s, p[0], case)

    if implied_bound:
        return [Figure(f"list by overdue + implied filed_on bound, {label}",
                       *lister(who, f_overdue))
                for who, label in (("officer", "basic-court officer"),
                                   ("high", "high-court user"))]
    figs: list[Figure] = []
    for who, label in (("officer", "basic-court officer"), ("high", "high-court user")):
        for fname, make in (("court", f_court), ("officer", f_officer), ("state", f_state),
                            ("case type", f_type), ("filed period", f_period),
                            ("overdue", f_overdue)):
            figs.append(Figure(f"list by {fname}, {label}", *lister(who, make)))
    figs.append(Figure("work queue (+ expiring controls), officer with 100-500 cases",
                       queue_prepare, queue))
    figs.append(Figure("case page, basic-court officer", page_prepare_officer, case_page))
    figs.append(Figure("case page, high-court user", page_prepare_high, case_page))
    return figs


def world_from_db(session: Session, today: date) -> tuple[World, Reach]:
    """The officers, their case counts and the cases of each court, read back (--reuse)."""
    from zhixing.cases.models import Case
    from zhixing.courts.models import Court, User, UserRole

    world = World(_courts(session), defaultdict(list), today)
    counts = dict(session.execute(select(Case.officer_id, func.count())
                                  .group_by(Case.officer_id)).tuples().all())
    for uid, username, court_id, code in session.execute(
            select(User.id, User.username, User.court_id, Court.code)
            .join(Court, Court.id == User.court_id)
            .join(UserRole, UserRole.user_id == User.id)
            .where(UserRole.role == "officer")).tuples():
        world.officers[court_id].append(Officer(uid, username, court_id, code,
                                                counts.get(uid, 0)))
    by_court: dict[int, list[int]] = defaultdict(list)
    for cid, court_id in session.execute(select(Case.id, Case.court_id)).tuples():
        by_court[court_id].append(cid)
    return world, Reach(sum(len(v) for v in by_court.values()), by_court)


def run(url: str, args: argparse.Namespace) -> None:
    from zhixing.cases.service import today
    from zhixing.core.db import make_engine, session_factory, set_engine
    from zhixing.core.migrate import upgrade
    from zhixing.courts.service import sync_courts
    from zhixing.demo import seed_users

    backend = args.backend
    engine = make_engine(url)
    set_engine(engine)
    rng = random.Random(args.seed)
    if args.reuse:
        with session_factory()() as s:
            world, reach = world_from_db(s, today())
        args.cases = reach.n_cases
        print(f"{backend}: reusing {url} ({reach.n_cases:,} cases)")
    else:
        upgrade(engine)
        with session_factory()() as s:
            sync_courts(s)
            seed_users(s)
            s.commit()
            world = World(_courts(s), {}, today())
            s.commit()
        world.officers = create_officers(engine, world.courts, args.cases, 250)
        reach = load(engine, world, args)

    with session_factory()() as s:
        figures = build_figures(s, world, reach, rng)
    # What is left of the load (the cases of each court) must not make the collector's full
    # passes show up as slow requests: keep it out of the collector's sight.
    gc.collect()
    gc.freeze()
    cap = Capture(engine)
    measure(figures, args.runs, args.seed)
    print_table(backend, args, figures)
    print_plans(engine, backend, cap, figures, rng, args.plans)

    if args.try_index:
        try_index(engine, backend, figures, world, reach, args)


def load(engine: Engine, world: World, args: argparse.Namespace) -> Reach:
    backend = args.backend
    n_officers = sum(len(v) for v in world.officers.values())
    print(f"{backend}: loading {args.cases:,} cases, {2 * args.cases:,} parties, "
          f"{n_officers:,} officers …", flush=True)
    t0 = time.perf_counter()
    gen = Generator(world, args.cases, args.seed)
    counts = bulk_load(engine, gen, backend)
    load_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    analyze(engine, backend)
    analyze_s = time.perf_counter() - t1
    per_officer = [o.cases for v in world.officers.values() for o in v]
    print(f"loaded in {load_s:,.0f} s (indexes rebuilt in {counts.pop('index_seconds')} s),"
          f" VACUUM/ANALYZE {analyze_s:,.0f} s")
    print("rows: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    print("states: " + ", ".join(f"{k} {v:,}" for k, v in sorted(world.counts.items())))
    print(f"cases per officer: median {statistics.median(per_officer):.0f}, "
          f"max {max(per_officer)}")
    return Reach(args.cases, gen.cases_of_court)  # the generator's sets go with it


def print_table(backend: str, args: argparse.Namespace, figures: list[Figure]) -> None:
    print(f"\n{backend}, {args.cases:,} cases, {args.runs} runs per figure (server time)\n")
    print("| figure | p50 | p95 |\n|---|---|---|")
    for f in figures:
        print(f"| {f.name} | {statistics.median(f.samples):.1f} ms | "
              f"{percentile(f.samples, 95):.1f} ms |")
    if args.slowest:
        for f in figures:
            print(f"\nslowest runs, {f.name}:")
            for ms, desc in f.slow[:args.slowest]:
                print(f"  {ms:7.1f} ms  {desc}")


def _short(statement: str) -> str:
    """The statement without its column list and with long IN lists counted, for reading."""
    import re

    shape = " ".join(statement.split())
    shape = re.sub(r"^SELECT .*? FROM ", "SELECT … FROM ", shape, count=1)
    item = r"(?:\?|%\(\w+\)s(?:::\w+)?)"  # a SQLite or a psycopg placeholder
    return re.sub(rf"IN \(((?:{item}, ){{9,}}{item})\)",
                  lambda m: f"IN ({m.group(1).count(',') + 1} values)", shape)


def print_plans(engine: Engine, backend: str, cap: Capture, figures: list[Figure],
                rng: random.Random, which: str) -> None:
    """EXPLAIN what one run of each figure sent: its slowest parameters, when recorded."""
    if which == "none":
        return
    from zhixing.core.db import session_factory

    for fig in figures:
        params = fig.prepare(rng)
        with cap.capturing() as statements, session_factory()() as s:
            fig.fn(s, params)
        print(f"\n### {fig.name}\n({_describe(params)})")
        for statement, parameters in statements:
            if which == "main" and "FROM cases" not in statement \
                    and "FROM assets" not in statement:
                continue
            print(f"\n{_short(statement)}")
            print(explain(engine, backend, statement, parameters))


def try_index(engine: Engine, backend: str, figures: list[Figure], world: World,
              reach: Reach, args: argparse.Namespace) -> None:
    """The recommended index and query shape, prototyped in the scratch database."""
    from zhixing.core.db import session_factory

    print("\n## prototype: CREATE INDEX ix_cases_filed ON cases (filed_on, id)")
    t0 = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("CREATE INDEX IF NOT EXISTS ix_cases_filed ON cases (filed_on, id)"))
    analyze(engine, backend)
    print(f"built and analysed in {time.perf_counter() - t0:.0f} s")
    again = [f for f in figures if "high-court" in f.name or "overdue" in f.name]
    with session_factory()() as s:
        bounded = build_figures(s, world, reach, random.Random(args.seed), implied_bound=True)
    measure([*again, *bounded], args.runs, args.seed + 1)
    print_table(backend + " + ix_cases_filed", args, [*again, *bounded])
    cap = Capture(engine)
    print_plans(engine, backend, cap, [*again, *bounded], random.Random(args.seed), "main")
    with engine.begin() as conn:  # leave the schema as the migrations made it
        conn.execute(text("DROP INDEX ix_cases_filed"))


if __name__ == "__main__":
    main()
