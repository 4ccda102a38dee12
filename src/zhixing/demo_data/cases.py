"""Demo enforcement cases across the Guangxi courts, entered through the real services.

Two layers:

* :func:`plan_cases` is pure: from a seed and "today" it decides every case — court, parties
  (Faker ``zh_CN`` names, companies and addresses; resident IDs and credit codes from
  :mod:`zhixing.demo_data.identities`), the title, the amounts and the dated history (notice,
  investigation, facts, assets, controls, money, suspension, conclusion). Same seed, same day:
  the same plans.
* :func:`seed_cases` replays the plans through ``service.register``, ``service.transition``,
  ``service.record_fact``, ``service.start_pause``/``end_pause`` and the ledger, acting as an
  officer of each case's court, so every rule (dates, 终本 conditions, freeze limits, the
  outstanding amount) is checked exactly as for a person at the console. It commits one
  transaction per batch of cases.

The three stories of the seed document are named cases (see ``shared/seed/README.md``):
Liu's deposit frozen online at Qingxiu, Li's 600,000+ yuan paid at Liunan after the
dishonest-debtor list and restrictions, and Zeng's car tipped by Yang in a Liuzhou case.
"""

from __future__ import annotations

import gc
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

from dateutil.relativedelta import relativedelta
from faker import Faker
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhixing.cases import ledger, service
from zhixing.cases.models import Asset, Case, CaseParty, LedgerEntry, Party
from zhixing.cases.schemas import (
    AssetIn,
    CaseCreate,
    ControlIn,
    FactIn,
    MoneyIn,
    PartyIn,
    ResponsiblePersonIn,
    TransitionIn,
)
from zhixing.core import audit
from zhixing.core.actor import SYSTEM, Actor
from zhixing.core.clock import utcnow
from zhixing.core.security import hash_password
from zhixing.courts.identity import actor_for
from zhixing.courts.models import Court, Role, User, UserRole
from zhixing.courts.service import load_reference_data
from zhixing.demo_data.identities import credit_code, resident_id
from zhixing.linkage.simulator import holdings

FIRST_FILING = date(2023, 1, 1)
BATCH = 200

# ---------------------------------------------------------------------------------------------
# Plans: what happens to each case, decided without a database.


@dataclass(frozen=True)
class Advance:
    on: date
    to: str


@dataclass(frozen=True)
class Suspend:
    on: date
    ground: str


@dataclass(frozen=True)
class Resume:
    on: date


@dataclass(frozen=True)
class Conclude:
    on: date
    conclusion: str
    ground: str | None = None


@dataclass(frozen=True)
class Fact:
    on: date
    kind: str


@dataclass(frozen=True)
class DeleteListing:
    """The officer deletes the case's listings (a deletion event in RULES.md)."""

    on: date
    ground: str


@dataclass(frozen=True)
class Pause:
    on: date
    reason: str


@dataclass(frozen=True)
class EndPause:
    on: date
    reason: str


@dataclass(frozen=True)
class AddAsset:
    """An asset of the case's ``debtor``-th debtor; later steps name it by its position."""

    on: date
    debtor: int
    kind: str
    description: str
    identifier: str | None
    holder: str | None
    value_fen: int | None
    provenance: str  # tip, manual, network_query


@dataclass(frozen=True)
class Control:
    on: date
    asset: int
    action: str
    amount_fen: int | None = None


@dataclass(frozen=True)
class Money:
    on: date
    kind: str  # recovered / disbursed
    amount_fen: int
    asset: int | None = None


Step = (Advance | Suspend | Resume | Conclude | Fact | Pause | EndPause | AddAsset | Control | Money
        | DeleteListing)


@dataclass(frozen=True)
class CasePlan:
    court_code: str
    officer_slot: int  # which of the court's officers handles it (sorted by username)
    create: CaseCreate  # officer_username is filled in when the plan is applied
    steps: tuple[Step, ...]
    story: str | None = None
    officer_username: str | None = None  # a named officer (the stories)


@dataclass(frozen=True)
class SeedReport:
    cases: int
    parties: int
    officers_created: int
    states: dict[str, int]
    conclusions: dict[str, int]
    overdue: int
    assets: int
    controlled_assets: int
    recovered_fen: int
    disbursed_fen: int
    stories: dict[str, str]  # story -> case number
    seconds: float
    service_calls: int = 0

    @property
    def liu_case(self) -> str:
        return self.stories["liu"]

    @property
    def li_case(self) -> str:
        return self.stories["li"]

    @property
    def zeng_case(self) -> str:
        return self.stories["zeng"]


@dataclass(frozen=True)
class CourtRef:
    code: str
    name: str
    level: str
    city: str | None
    county: str | None
    division: str


def court_refs() -> tuple[CourtRef, ...]:
    return tuple(CourtRef(r["code"], r["name_zh"], r["level"], r.get("city_zh"),
                          r.get("county_zh"), r["division_code"]) for r in load_reference_data())


def officer_username(court_code: str) -> str:
    """officer.0103 for 桂0103, officer.02 for 桂02, officer.gx for the high court."""
    digits = court_code.removeprefix("桂")
    return f"officer.{digits or 'gx'}"


# Where the cases are: basic courts carry the load, Qingxiu (a busy Nanning district and the
# Liu story's court) more than most, intermediate courts some, the high court a few.
def _court_weight(c: CourtRef) -> float:
    if c.code in ("桂0103", "桂0204", "桂0202", "桂0305"):
        return 3.0
    return {"basic": 1.0, "intermediate": 0.4, "high": 0.05}[c.level]


CASE_TYPES = (("执", 84), ("执保", 5), ("执恢", 5), ("执异", 3), ("执复", 1), ("执监", 1),
              ("执协", 1))
SUSPEND_GROUNDS = ("settlement", "third_party_objection", "applicant_agreed", "bankruptcy",
                   "party_died_awaiting_heir", "retrial")
TERMINATE_GROUNDS = (("applicant_withdrew", 55), ("debtor_destitute", 15),
                     ("debtor_died_no_estate", 8), ("title_revoked", 7), ("other", 15))
OTHER_CONCLUSIONS = (("not_enforced", "仲裁裁决经审查不予执行"),
                     ("rejected", "申请超过法定执行期间"),
                     ("closed_after_transfer", "移送破产审查"))
BANKS = ("中国工商银行", "中国农业银行", "中国银行", "中国建设银行", "交通银行",
         "中国邮政储蓄银行", "广西北部湾银行", "柳州银行", "桂林银行", "招商银行")
LAW_TYPES = ("民初", "民初", "民初", "民终", "商初", "民特")
CAR_MODELS = ("大众 帕萨特", "丰田 凯美瑞", "本田 雅阁", "五菱 宏光", "比亚迪 汉", "别克 君威",
              "日产 轩逸", "宝马 525Li", "奔驰 E300L", "吉利 星越")
PLATE_LETTERS = "ABCDEFGHJKLMNPR"  # 桂A Nanning, 桂B Liuzhou, 桂C Guilin, ...


@cache
def codes_valid_by_year() -> dict[int, tuple[str, ...]]:
    """Guangxi county-level codes in use in each birth year, from stdnum's region table (read
    once), so a resident ID is drawn from a region and a year that agree. Older people carry
    codes that no longer exist (南宁地区 4521xx, …): the current codes date from 1983 on."""
    from importlib import resources

    text = resources.files("stdnum").joinpath("cn", "loc.dat").read_text("utf-8")
    spans: dict[str, list[tuple[int, int]]] = {}
    in_guangxi = False
    for line in text.splitlines():
        if not line.startswith(" "):
            in_guangxi = line.startswith("45 ")
            continue
        if not in_guangxi:
            continue
        digits, _, names = line.strip().partition(" county=")
        if digits.endswith("00") or "市辖区" in names or "郊区" in names:
            continue
        for entry in names.strip('"').split(","):
            lo, hi = 0, 9999
            if entry.startswith("["):
                start, end = entry[1:].split("]")[0].split("-")
                lo, hi = int(start or 0), int(end or 9999)
            spans.setdefault("45" + digits, []).append((lo, hi))
    return {year: tuple(c for c, ranges in spans.items()
                        if any(a <= year <= b for a, b in ranges))
            for year in range(1940, 2011)}


def _weighted(rng: random.Random, items: Sequence[tuple[str, int]]) -> str:
    return rng.choices([i for i, _ in items], weights=[w for _, w in items])[0]


class _Population:
    """People and organisations, generated once each and reused as cases recur."""

    def __init__(self, rng: random.Random, fake: Faker, courts: Sequence[CourtRef]) -> None:
        self.rng = rng
        self.fake = fake
        self.basic = [c for c in courts if c.level == "basic"]
        self.used_ids: set[str] = set()
        self.recurring: list[PartyIn] = []  # debtors that may appear again
        self.uses: Counter[str] = Counter()
        self.banks: list[PartyIn] = []

    def address(self, court: CourtRef | None = None) -> str:
        c = court if court and court.county else self.rng.choice(self.basic)
        return (f"广西壮族自治区{c.city}{c.county}{self.fake.street_name()}"
                f"{self.rng.randint(1, 399)}号")

    def _unique(self, make: Callable[[], str]) -> str:
        for _ in range(50):
            number = make()
            if number not in self.used_ids:
                self.used_ids.add(number)
                return number
        raise RuntimeError("could not draw an unused identity number")

    def person(self, court: CourtRef | None = None, *, surname: str | None = None,
               sex: str | None = None, address: str | None = None) -> PartyIn:
        # Enforcement debtors are more often men.
        sex = sex or ("M" if self.rng.random() < 0.7 else "F")
        given = self.fake.first_name_male() if sex == "M" else self.fake.first_name_female()
        name = (surname or self.fake.last_name()) + given

        def draw() -> str:
            born = date(1956, 1, 1) + timedelta(days=self.rng.randrange(365 * 47))
            codes = codes_valid_by_year().get(born.year, ())
            region = court.division if court and court.division in codes else (
                self.rng.choice(codes) if codes else None)
            return resident_id(self.rng, region=region, born=born if region else None, sex=sex)

        number = self._unique(draw)
        return PartyIn(kind="person", name=name, id_kind="ric", id_number=number,
                       address=address or self.address(court),
                       phone=self.fake.phone_number())

    def organisation(self, court: CourtRef | None = None) -> PartyIn:
        c = court if court and court.city else self.rng.choice(self.basic)
        city = (c.city or "南宁市").removesuffix("市")
        name = f"{city}{self.fake.company()}"
        region = c.division if c.level == "basic" else None
        number = self._unique(lambda: credit_code(self.rng, region=region))
        rep = self.person(c)
        roles = [ResponsiblePersonIn(role="legal_representative", person=rep)]
        if self.rng.random() < 0.25:
            roles.append(ResponsiblePersonIn(role="actual_controller", person=self.person(c)))
        return PartyIn(kind="organisation", name=name, id_kind="uscc", id_number=number,
                       address=self.address(c), phone=self.fake.phone_number(),
                       legal_representative=rep.name, responsible_persons=roles)

    @staticmethod
    def again(p: PartyIn) -> PartyIn:
        """A party entered again in a later case: its responsible persons are on record
        already, so they are not typed again (``parties.resolve`` keeps the known ones)."""
        return p.model_copy(update={"responsible_persons": []}) if p.responsible_persons else p

    def bank_branch(self, court: CourtRef) -> PartyIn:
        """Banks are frequent applicants (loan judgments), the same branch across cases. A
        branch is represented by its principal (负责人), not a legal representative."""
        if len(self.banks) < 24 or self.rng.random() < 0.2:
            city = (court.city or "南宁市").removesuffix("市")
            name = f"{self.rng.choice(BANKS)}股份有限公司{city}分行"
            if any(b.name == name for b in self.banks):
                return self.again(next(b for b in self.banks if b.name == name))
            number = self._unique(lambda: credit_code(self.rng, region=None))
            rep = self.person(court)
            bank = PartyIn(kind="organisation", name=name, id_kind="uscc", id_number=number,
                           address=self.address(court), legal_representative=rep.name,
                           responsible_persons=[ResponsiblePersonIn(
                               role="principal", person=rep)])
            self.banks.append(bank)
            return bank
        return self.again(self.rng.choice(self.banks))

    def debtor(self, court: CourtRef) -> PartyIn:
        """A debtor; about one in seven is someone already a debtor elsewhere (at most 3)."""
        if self.recurring and self.rng.random() < 0.14:
            p = self.rng.choice(self.recurring)
            self.uses[p.id_number] += 1
            if self.uses[p.id_number] >= 3:
                self.recurring.remove(p)
            return self.again(p)
        p = self.organisation(court) if self.rng.random() < 0.3 else self.person(court)
        self.uses[p.id_number] += 1
        if self.rng.random() < 0.3:
            self.recurring.append(p)
        return p

    def applicant(self, court: CourtRef) -> PartyIn:
        r = self.rng.random()
        if r < 0.2:
            return self.bank_branch(court)
        if r < 0.45:
            return self.organisation(court)
        return self.person(court)


def _days(rng: random.Random, d: date, lo: int, hi: int) -> date:
    return d + timedelta(days=rng.randint(lo, hi))


class _History:
    """Builds one case's dated steps; nothing after ``today`` is kept (the case stays open)."""

    def __init__(self, rng: random.Random, filed: date, today: date, applied: int,
                 debtors: int) -> None:
        self.rng = rng
        self.t = filed
        self.filed = filed
        self.today = today
        self.steps: list[Step] = []
        self.stopped = False
        self.applied = applied
        self.recovered = 0
        self.disbursed = 0
        self.debtors = debtors
        self.assets: list[AddAsset] = []
        self.controlled: dict[int, tuple[date, date]] = {}  # asset -> (started, expires)
        self.state = "filed"
        self.facts: set[str] = set()

    def at(self, lo: int, hi: int) -> date | None:
        """Move the clock on; None (and stop) once it passes today."""
        if self.stopped:
            return None
        when = _days(self.rng, self.t, lo, hi)
        if when > self.today:
            self.stopped = True
            return None
        self.t = when
        return when

    def add(self, step: Step) -> None:
        self.steps.append(step)

    def advance(self, to: str, lo: int, hi: int) -> bool:
        on = self.at(lo, hi)
        if on is None:
            return False
        self.add(Advance(on, to))
        self.state = to
        if to == "notice_served":
            self.facts |= {"execution_notice", "property_report_order"}
        return True

    def fact(self, kind: str, lo: int, hi: int) -> bool:
        if kind in self.facts:
            return True
        on = self.at(lo, hi)
        if on is None:
            return False
        self.add(Fact(on, kind))
        self.facts.add(kind)
        return True

    def asset(self, kind: str, description: str, identifier: str | None, holder: str | None,
              value: int | None, provenance: str = "network_query") -> int:
        a = AddAsset(self.t, self.rng.randrange(self.debtors), kind, description, identifier,
                     holder, value, provenance)
        self.add(a)
        self.assets.append(a)
        return len(self.assets) - 1

    def control(self, asset: int, lo: int, hi: int) -> bool:
        on = self.at(lo, hi)
        if on is None:
            return False
        kind = self.assets[asset].kind
        action = {"deposit": "freeze", "securities": "freeze", "equity": "freeze",
                  "real_estate": "seal", "vehicle": "seize"}.get(kind, "seal")
        amount = None
        if kind == "deposit":
            value = self.assets[asset].value_fen or self.outstanding
            amount = max(1, min(value, self.outstanding))
        self.add(Control(on, asset, action, amount))
        limit = {"deposit": 365, "vehicle": 730}.get(kind, 1095)
        self.controlled[asset] = (on, on + timedelta(days=limit))
        return True

    def release(self, asset: int) -> None:
        if asset in self.controlled and not self.stopped:
            self.add(Control(self.t, asset, "release"))
            del self.controlled[asset]

    def renew_controls(self, until: date) -> None:
        """Renew each control a few days before it lapses, as long as the case is open; one
        expiring within the next weeks is left for the officer's queue."""
        for asset, (started, expires) in sorted(self.controlled.items()):
            limit = {"deposit": 365, "vehicle": 730}.get(self.assets[asset].kind, 1095)
            while expires <= until + timedelta(days=20):
                on = expires - timedelta(days=self.rng.randint(5, 25))
                if on > self.today or on > until:
                    break
                self.steps.append(Control(on, asset, "renew"))
                expires += timedelta(days=limit)
            self.controlled[asset] = (started, expires)

    @property
    def outstanding(self) -> int:
        return max(0, self.applied - self.recovered)

    def recover(self, amount: int, lo: int, hi: int, asset: int | None = None) -> bool:
        amount = min(amount, self.outstanding)
        if amount <= 0:
            return True
        on = self.at(lo, hi)
        if on is None:
            return False
        self.add(Money(on, "recovered", amount, asset))
        self.recovered += amount
        return True

    def disburse(self, lo: int, hi: int) -> bool:
        held = self.recovered - self.disbursed
        if held <= 0:
            return True
        on = self.at(lo, hi)
        if on is None:
            return False
        self.add(Money(on, "disbursed", held))
        self.disbursed += held
        return True

    def conclude(self, conclusion: str, lo: int, hi: int, ground: str | None = None,
                 not_before: date | None = None) -> bool:
        if not_before is not None and self.t < not_before:
            self.t = not_before  # wait until the earliest lawful day
            lo = 0
        on = self.at(lo, hi)
        if on is None:
            return False
        self.add(Conclude(on, conclusion, ground))
        self.state = "concluded"
        return True


def _money_asset(h: _History, rng: random.Random, fake: Faker) -> int:
    """A property the search finds: deposits most often, then real estate, cars, shares."""
    kind = rng.choices(["deposit", "real_estate", "vehicle", "equity"], weights=[55, 20, 18, 7])[0]
    if kind == "deposit":
        bank = rng.choice(BANKS)
        value = rng.randint(max(100, h.outstanding // 20), max(200, h.outstanding * 2))
        return h.asset("deposit", f"{bank}活期存款账户", "62" + "".join(
            rng.choice("0123456789") for _ in range(17)), bank, value)
    if kind == "real_estate":
        return h.asset("real_estate", f"住宅一套（{fake.street_name()}{rng.randint(1, 300)}号"
                       f"{rng.randint(1, 30)}栋{rng.randint(1, 32)}0{rng.randint(1, 6)}房）",
                       f"桂({rng.randint(2015, 2024)})不动产权第{rng.randint(1, 9999999):07d}号",
                       "不动产登记中心", rng.randint(30, 300) * 1_000_000)
    if kind == "vehicle":
        plate = f"桂{rng.choice(PLATE_LETTERS)}" + "".join(
            rng.choice("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(5))
        return h.asset("vehicle", f"小型轿车 {rng.choice(CAR_MODELS)}", plate,
                       "公安交通管理部门车辆管理所", rng.randint(3, 40) * 1_000_000)
    return h.asset("equity", f"{fake.company()} {rng.randint(5, 60)}% 股权", None,
                   "市场监督管理局", rng.randint(10, 500) * 1_000_000)


def _history(rng: random.Random, fake: Faker, filed: date, today: date, applied: int,
             debtors: int, case_type: str) -> tuple[Step, ...]:
    h = _History(rng, filed, today, applied, debtors)
    age = (today - filed).days
    if case_type in ("执异", "执复", "执监"):
        # Objections and reviews: decided, mostly dismissed, after a month or three.
        if rng.random() < 0.8:
            h.conclude("rejected", 20, 100, "异议不成立，裁定驳回")
        return tuple(h.steps)
    if case_type == "执保":
        # Preservation: control property quickly; handed over once the measures are in place.
        if not h.advance("notice_served", 0, 3) or not h.advance("investigating", 0, 3):
            return tuple(h.steps)
        a = _money_asset(h, rng, fake)
        if not h.advance("controlling", 1, 10) or not h.control(a, 0, 0):
            return tuple(h.steps)
        if rng.random() < 0.6:
            h.conclude("closed_after_transfer", 5, 40, "保全措施已实施，移交执行")
        else:
            h.renew_controls(today)
        return tuple(h.steps)
    outcome = rng.choices(["performed", "closed_for_now", "terminated", "other", "open"],
                          weights=[37, 33, 10, 3, 6 if age > 300 else 12 if age > 180 else 25])[0]
    open_at = rng.choices(["filed", "notice_served", "investigating", "controlling", "disposing",
                           "disbursing", "suspended"], weights=[4, 12, 34, 22, 8, 5, 15])[0]
    if outcome == "open" and open_at == "filed":
        return ()
    voluntary = outcome == "performed" and rng.random() < 0.4
    # Suspension and resumption on the way, for a few concluded cases too.
    detour = rng.random() < 0.05 and outcome != "open"

    if not h.advance("notice_served", 1, 6):
        return tuple(h.steps)
    if outcome == "open" and open_at == "notice_served":
        return tuple(h.steps)
    if outcome == "terminated" and rng.random() < 0.4:
        h.conclude("terminated", 10, 80, _weighted(rng, TERMINATE_GROUNDS))
        return tuple(h.steps)
    if voluntary:
        # Paid after the execution notice, in one or two instalments.
        if rng.random() < 0.25:
            h.recover(h.applied // 2, 5, 40)
        h.recover(h.outstanding, 5, 60)
        h.disburse(2, 20)
        h.conclude("performed", 0, 5)
        return tuple(h.steps)
    if not h.advance("investigating", 1, 6):
        return tuple(h.steps)
    h.fact("network_query_done", 0, 3)
    if detour and h.at(3, 30):
        h.add(Suspend(h.t, rng.choice(SUSPEND_GROUNDS)))
        if h.at(20, 120):
            h.add(Resume(h.t))
    if outcome == "open" and open_at == "investigating":
        return tuple(h.steps)
    if outcome == "open" and open_at == "suspended":
        if h.at(5, 90):
            h.add(Suspend(h.t, rng.choice(SUSPEND_GROUNDS)))
        return tuple(h.steps)
    if outcome == "terminated":
        h.conclude("terminated", 10, 150, _weighted(rng, TERMINATE_GROUNDS))
        return tuple(h.steps)
    if outcome == "other":
        conclusion, ground = rng.choice(OTHER_CONCLUSIONS)
        h.conclude(conclusion, 10, 120, ground)
        return tuple(h.steps)
    if outcome == "closed_for_now":
        # 终本: every condition, in order, then at least three months after filing.
        found = rng.random() < 0.3
        if found:
            a = _money_asset(h, rng, fake)
            if not h.advance("controlling", 2, 15) or not h.control(a, 0, 0):
                return tuple(h.steps)
            share = h.outstanding * rng.randint(5, 60) // 100
            if h.assets[a].kind == "deposit":
                share = min(share, h.assets[a].value_fen or share)
            if not h.recover(share, 10, 60, a):
                return tuple(h.steps)
            h.release(a)
            if not h.disburse(3, 25):
                return tuple(h.steps)
            if not h.advance("investigating", 0, 3):
                return tuple(h.steps)
        for kind, lo, hi in (("consumption_restriction", 3, 20),
                             ("dishonest_listing_decided", 3, 30),
                             (rng.choice(["debtor_search", "debtor_search", "debtor_located"]),
                              5, 40),
                             (rng.choice(["applicant_interview", "applicant_interview",
                                          "panel_review"]), 5, 40)):
            if not h.fact(kind, lo, hi):
                return tuple(h.steps)
        h.conclude("closed_for_now", 1, 30,
                   not_before=filed + relativedelta(months=3) + timedelta(days=1))
        return tuple(h.steps)

    # performed, or open further down the process: find property and control it.
    a = _money_asset(h, rng, fake)
    if not h.advance("controlling", 2, 30) or not h.control(a, 0, 0):
        return tuple(h.steps)
    if outcome == "open" and open_at == "controlling":
        if rng.random() < 0.3:
            h.recover(h.outstanding * rng.randint(5, 50) // 100, 5, 60, a)
        h.renew_controls(today)
        return tuple(h.steps)
    needs_sale = h.assets[a].kind != "deposit"
    if needs_sale:
        if not h.advance("disposing", 10, 60):
            h.renew_controls(today)
            return tuple(h.steps)
        auction = rng.random() < 0.3
        if auction and h.at(10, 40):
            h.add(Pause(h.t, "auction"))
            if not h.at(20, 90):
                return tuple(h.steps)
            h.add(EndPause(h.t, "auction"))
        if outcome == "open" and open_at == "disposing":
            h.renew_controls(today)
            return tuple(h.steps)
    from_asset = h.assets[a].value_fen or h.outstanding
    if outcome == "open" and rng.random() < 0.5:
        h.recover(min(from_asset, h.outstanding * rng.randint(20, 90) // 100), 5, 60, a)
    else:
        h.recover(min(from_asset, h.outstanding), 5, 90, a)
        if outcome == "performed":
            h.recover(h.outstanding, 1, 45)  # the rest paid by the debtor
    if not h.advance("disbursing", 1, 15):
        h.renew_controls(today)
        return tuple(h.steps)
    if outcome == "open":
        h.renew_controls(today)
        return tuple(h.steps)
    h.release(a)
    if not h.disburse(2, 25):
        return tuple(h.steps)
    h.conclude("performed", 0, 10)
    return tuple(h.steps)


def _title(rng: random.Random, court: CourtRef, courts: Sequence[CourtRef],
           filed: date) -> tuple[str, str, date, date]:
    effective = filed - timedelta(days=rng.randint(20, 600))
    issued = effective - timedelta(days=rng.randint(15, 45))
    r = rng.random()
    if r < 0.12:
        city = (court.city or "南宁市").removesuffix("市")
        return (f"{city}仲裁委员会", f"（{issued.year}）{city}仲字第{rng.randint(1, 3999)}号",
                issued, effective)
    if r < 0.18:
        return (f"广西壮族自治区{court.city or '南宁市'}公证处",
                f"（{issued.year}）桂{court.city or '南宁'}证经字第{rng.randint(1, 9999)}号",
                issued, effective)
    issuer = court if court.level == "basic" or rng.random() < 0.6 else rng.choice(courts)
    kind = rng.choice(LAW_TYPES)
    return (issuer.name, f"（{issued.year}）{issuer.code}{kind}{rng.randint(1, 19999)}号",
            issued, effective)


def _amounts(rng: random.Random) -> tuple[int, int, int]:
    # Log-uniform principal, 3,000 to 5,000,000 yuan, in fen; round to the yuan.
    yuan = int(10 ** rng.uniform(3.5, 6.7))
    principal = yuan * 100
    interest = principal * rng.randint(0, 18) // 100 // 100 * 100
    costs = (50 + yuan // 200) * 100 if rng.random() < 0.7 else 0
    return principal, interest, costs


def _story_plans(pop: _Population, rng: random.Random, courts: dict[str, CourtRef],
                 today: date) -> list[CasePlan]:
    plans: list[CasePlan] = []
    # Liu (Qingxiu): the deposit appeared on 12 September, the bank froze it online in
    # minutes. The case is open in property control with the freeze in place.
    freeze_on = date(today.year, 9, 12)
    if freeze_on > today - timedelta(days=1):
        freeze_on = date(today.year - 1, 9, 12)
    filed = freeze_on - timedelta(days=96)
    qingxiu = courts["桂0103"]
    liu = pop.person(qingxiu, surname="刘", sex="M",
                     address="广东省东莞市长安镇" + pop.fake.street_name() + "88号")
    while not holdings.deposit_accounts("bank-icbc", "中国工商银行", liu.id_number or ""):
        # The simulated ICBC must hold an account of his, for the story to play live.
        liu = pop.person(qingxiu, surname="刘", sex="M", address=liu.address)
    applicant = pop.organisation(qingxiu)
    title = ("南宁市青秀区人民法院", f"（{filed.year - 1}）桂0103民初{rng.randint(1000, 9999)}号",
             filed - timedelta(days=90), filed - timedelta(days=60))
    account = "6222" + "".join(rng.choice("0123456789") for _ in range(15))
    plans.append(CasePlan("桂0103", 0, CaseCreate(
        court_code="桂0103", title_issuer=title[0], title_document_number=title[1],
        title_date=title[2], title_effective_date=title[3], principal_fen=86_500_000,
        interest_fen=4_120_000, costs_fen=820_000, filed_on=filed,
        applicants=[applicant], debtors=[liu]), (
        Advance(filed + timedelta(days=2), "notice_served"),
        Advance(filed + timedelta(days=5), "investigating"),
        Fact(filed + timedelta(days=5), "network_query_done"),
        Fact(filed + timedelta(days=20), "consumption_restriction"),
        Fact(filed + timedelta(days=30), "debtor_search"),
        AddAsset(freeze_on, 0, "deposit", "中国工商银行活期存款账户（经营款到账）", account,
                 "中国工商银行股份有限公司南宁分行", 92_000_000, "network_query"),
        Advance(freeze_on, "controlling"),
        Control(freeze_on, 0, "freeze", 91_440_000),
    ), story="liu", officer_username="qingxiu.officer"))

    # Li (Liunan): restricted from high consumption and from leaving the country, listed as a
    # dishonest debtor; when his visa was refused he paid 600,000+ yuan and the case closed.
    liunan = courts["桂0204"]
    filed = min(today - timedelta(days=200), date(today.year - 1, 3, 6))
    li = pop.person(liunan, surname="李", sex="M")
    applicant = pop.organisation(liunan)
    principal, interest, costs = 60_000_000, 3_460_000, 1_024_000
    applied = principal + interest + costs
    plans.append(CasePlan("桂0204", 0, CaseCreate(
        court_code="桂0204", title_issuer="柳州市柳南区人民法院",
        title_document_number=f"（{filed.year - 1}）桂0204民初{rng.randint(1000, 9999)}号",
        title_date=filed - timedelta(days=110), title_effective_date=filed - timedelta(days=80),
        principal_fen=principal, interest_fen=interest, costs_fen=costs, filed_on=filed,
        applicants=[applicant], debtors=[li]), (
        Advance(filed + timedelta(days=3), "notice_served"),
        Advance(filed + timedelta(days=6), "investigating"),
        Fact(filed + timedelta(days=7), "network_query_done"),
        Fact(filed + timedelta(days=25), "consumption_restriction"),
        Fact(filed + timedelta(days=40), "dishonest_listing_decided"),
        Money(filed + timedelta(days=97), "recovered", applied),
        DeleteListing(filed + timedelta(days=98), "full_performance"),
        Advance(filed + timedelta(days=98), "controlling"),
        Advance(filed + timedelta(days=99), "disbursing"),
        Money(filed + timedelta(days=110), "disbursed", applied),
        Conclude(filed + timedelta(days=111), "performed"),
    ), story="li", officer_username="liunan.officer"))

    # Zeng (Liuzhou): applicant Yang tipped that Zeng's car is parked at a hotel in Guilin's
    # Qixing district; the case is in investigation, the car recorded from the tip, not yet
    # seized (the command centers' coordination does that).
    filed = today - timedelta(days=41)
    zeng = pop.person(courts["桂0202"], surname="曾", sex="M")
    yang = pop.person(courts["桂0203"], surname="杨")
    plate = "桂C" + "".join(rng.choice("0123456789") for _ in range(2)) + "".join(
        rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(1)) + "".join(
        rng.choice("0123456789") for _ in range(2))
    plans.append(CasePlan("桂02", 0, CaseCreate(
        court_code="桂02", title_issuer="柳州市中级人民法院",
        title_document_number=f"（{filed.year - 1}）桂02民终{rng.randint(100, 2999)}号",
        title_date=filed - timedelta(days=75), title_effective_date=filed - timedelta(days=60),
        principal_fen=238_000_000, interest_fen=15_600_000, costs_fen=2_410_000,
        filed_on=filed, applicants=[yang], debtors=[zeng]), (
        Advance(filed + timedelta(days=2), "notice_served"),
        Advance(filed + timedelta(days=4), "investigating"),
        Fact(filed + timedelta(days=5), "network_query_done"),
        AddAsset(today, 0, "vehicle", "小型轿车 大众 迈腾（申请人提供线索：停放于桂林市七星区"
                 "某酒店停车场）", plate, "桂林市公安局交通警察支队车辆管理所", 16_800_000,
                 "tip"),
    ), story="zeng"))
    return plans


def plan_cases(*, count: int = 3000, seed: int = 2014, today: date | None = None,
               courts: Sequence[CourtRef] | None = None) -> list[CasePlan]:
    """Every case of the demo, in filing order. Pure: no database, deterministic for the
    seed and the day."""
    if count < 3:
        raise ValueError("the demo needs at least the three story cases")
    today = today or service.today()
    courts = tuple(courts or court_refs())
    by_code = {c.code: c for c in courts}
    rng = random.Random(seed)
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    pop = _Population(rng, fake, courts)
    plans = _story_plans(pop, rng, by_code, today)
    weights = [_court_weight(c) for c in courts]
    span = (today - FIRST_FILING).days
    for _ in range(count - len(plans)):
        court = rng.choices(courts, weights=weights)[0]
        # Filings grow a little over time; nothing in the future.
        filed = FIRST_FILING + timedelta(days=int(span * rng.random() ** 0.85))
        case_type = _weighted(rng, CASE_TYPES)
        if case_type in ("执复", "执监") and court.level == "basic":
            case_type = "执"
        issuer, doc, issued, effective = _title(rng, court, courts, filed)
        principal, interest, costs = _amounts(rng)
        debtors = [pop.debtor(court)]
        if rng.random() < 0.12:  # a guarantor or co-debtor
            extra = pop.debtor(court)
            if extra.id_number != debtors[0].id_number:
                debtors.append(extra)
        applicant = pop.applicant(court)
        if applicant.id_number in {d.id_number for d in debtors}:
            applicant = pop.person(court)
        create = CaseCreate.model_validate(dict(
            court_code=court.code, case_type=case_type, title_issuer=issuer,
            title_document_number=doc, title_date=issued, title_effective_date=effective,
            principal_fen=principal, interest_fen=interest, costs_fen=costs, filed_on=filed,
            applicants=[applicant], debtors=debtors))
        steps = _history(rng, fake, filed, today, create.principal_fen + interest + costs,
                         len(debtors), case_type)
        plans.append(CasePlan(court.code, rng.randrange(1000), create, steps))
    # Registered in filing order, as a court's register numbers them.
    order = sorted(range(len(plans)), key=lambda i: (plans[i].create.filed_on, i))
    return [plans[i] for i in order]


def party_specs(plans: Sequence[CasePlan]) -> list[PartyIn]:
    """Every party of the plans, responsible persons included (for checks and tests)."""
    out: list[PartyIn] = []
    for plan in plans:
        for p in (*plan.create.applicants, *plan.create.debtors):
            out.append(p)
            out.extend(rp.person for rp in p.responsible_persons)
    return out


# ---------------------------------------------------------------------------------------------
# Applying the plans through the services.


def ensure_officers(session: Session, *, seed: int = 2014) -> int:
    """One demo officer for every court without an officer. The password is hashed once and
    the hash reused (argon2 costs ~50 ms a hash); the named demo users stay as they are."""
    return _ensure_role(session, Role.OFFICER, officer_username, "执行法官", seed + 1)


def approver_username(court_code: str) -> str:
    """approver.0103 for 桂0103, approver.gx for the high court."""
    return "approver." + officer_username(court_code).removeprefix("officer.")


def ensure_approvers(session: Session, *, seed: int = 2014) -> int:
    """One approver (执行局长) for every court without one: listing decisions and deductions
    need a second person."""
    return _ensure_role(session, Role.APPROVER, approver_username, "执行局长", seed + 2)


def _ensure_role(session: Session, role: Role, username_of: Callable[[str], str], title: str,
                 seed: int) -> int:
    from zhixing.demo import DEMO_PASSWORD  # here: the demo command may import this module

    with_role = set(session.scalars(
        select(User.court_id).join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == role.value, User.is_active.is_(True))))
    courts = session.scalars(select(Court).order_by(Court.path)).all()
    missing = [c for c in courts if c.id not in with_role]
    if not missing:
        return 0
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    password_hash = hash_password(DEMO_PASSWORD)
    taken = set(session.scalars(select(User.username)))
    created = 0
    for court in missing:
        username = username_of(court.code)
        if username in taken:
            continue
        user = User(username=username, display_name=f"{title} {fake.name()}",
                    court_id=court.id, password_hash=password_hash, is_active=True,
                    created_at=utcnow(), failed_logins=0)
        user.role_rows = [UserRole(role=role.value)]
        session.add(user)
        session.flush()
        audit.record(session, SYSTEM, "user.created", object_type="user", object_id=user.id,
                     court_id=court.id, details={"username": username, "roles": [role.value],
                                                 "demo": True})
        created += 1
    return created


class _Officers:
    """Actors for the officers of each court, built once."""

    def __init__(self, session: Session) -> None:
        rows = session.execute(
            select(User.username, Court.code).join(Court, Court.id == User.court_id)
            .join(UserRole, UserRole.user_id == User.id)
            .where(UserRole.role == Role.OFFICER.value, User.is_active.is_(True))
            .order_by(User.username)).tuples().all()
        self.by_court: dict[str, list[str]] = {}
        for username, code in rows:
            self.by_court.setdefault(code, []).append(username)
        self.session = session
        self.actors: dict[str, Actor] = {}

    def username(self, plan: CasePlan) -> str:
        if plan.officer_username:
            return plan.officer_username
        names = self.by_court.get(plan.court_code)
        if not names:
            raise LookupError(f"court {plan.court_code} has no officer")
        return names[plan.officer_slot % len(names)]

    def approver(self, court_code: str, officer: str) -> Actor | None:
        """The court's first approver who is not the case's officer: two people decide."""
        username = self.session.scalar(
            select(User.username).join(Court, Court.id == User.court_id)
            .join(UserRole, UserRole.user_id == User.id)
            .where(Court.code == court_code, UserRole.role == Role.APPROVER.value,
                   User.is_active.is_(True), User.username != officer)
            .order_by(User.username).limit(1))
        return self.actor(username) if username else None

    def actor(self, username: str) -> Actor:
        if username not in self.actors:
            user = self.session.scalar(select(User).where(User.username == username))
            assert user is not None, username
            self.actors[username] = actor_for(self.session, user, None)
        return self.actors[username]


def apply_plan(session: Session, actor: Actor, plan: CasePlan, officer: str,
               approver: Actor | None = None) -> tuple[Case, int]:
    """Register one case and replay its history. Returns the case and the service calls.
    With an ``approver``, listing and restriction facts become real listing decisions and
    restriction orders (credit discipline), made by the officer and approved by him."""
    create = plan.create.model_copy(update={"officer_username": officer})
    case = service.register(session, actor, create)
    calls = 1
    if not plan.steps:
        return case, calls
    ids = dict(session.execute(
        select(Party.id_number, Party.id).join(CaseParty, CaseParty.party_id == Party.id)
        .where(CaseParty.case_id == case.id)).tuples().all())
    debtors = [ids[p.id_number] for p in create.debtors]
    applicant = ids[create.applicants[0].id_number]
    assets: list[int] = []
    for step in plan.steps:
        calls += 1
        if isinstance(step, Advance):
            service.transition(session, actor, case, TransitionIn.model_validate(
                {"action": "advance", "to": step.to, "on": step.on}))
        elif isinstance(step, Suspend):
            service.transition(session, actor, case, TransitionIn.model_validate(
                {"action": "suspend", "ground": step.ground, "on": step.on}))
        elif isinstance(step, Resume):
            service.transition(session, actor, case, TransitionIn.model_validate(
                {"action": "resume", "on": step.on}))
        elif isinstance(step, Conclude):
            service.transition(session, actor, case, TransitionIn.model_validate(
                {"action": "conclude", "conclusion": step.conclusion, "ground": step.ground,
                 "on": step.on}))
        elif isinstance(step, Fact) and approver is not None and _credit_fact(
                session, actor, approver, case, debtors[0], step):
            pass
        elif isinstance(step, Fact):
            service.record_fact(session, actor, case, FactIn(kind=step.kind, on=step.on))
        elif isinstance(step, DeleteListing):
            _delete_listing(session, actor, case, step)
        elif isinstance(step, Pause):
            service.start_pause(session, actor, case, step.reason, step.on)
        elif isinstance(step, EndPause):
            service.end_pause(session, actor, case, step.reason, step.on)
        elif isinstance(step, AddAsset):
            body = AssetIn.model_validate({
                "debtor_id": debtors[step.debtor], "kind": step.kind,
                "description": step.description, "identifier": step.identifier,
                "holder": step.holder, "value_fen": step.value_fen,
                "provenance": step.provenance if step.provenance == "tip" else "manual"})
            assets.append(ledger.add_asset(session, actor, case, body,
                                           provenance=step.provenance).id)
        elif isinstance(step, Control):
            ledger.control(session, actor, case, assets[step.asset], ControlIn.model_validate(
                {"action": step.action, "on": step.on, "amount_fen": step.amount_fen}))
        else:
            ledger.record_money(session, actor, case, MoneyIn.model_validate({
                "kind": step.kind, "amount_fen": step.amount_fen, "on": step.on,
                "asset_id": assets[step.asset] if step.asset is not None else None,
                "party_id": applicant if step.kind == "disbursed" else None}))
    return case, calls


CONDUCT = "有履行能力而拒不履行生效法律文书确定的义务"


def _credit_fact(session: Session, officer: Actor, approver: Actor, case: Case, debtor_id: int,
                 step: Fact) -> bool:
    """A listing or a consumption restriction made through the credit services. False when
    the fact is of another kind (or the case is not far enough to restrict)."""
    from zhixing.credit import listings, restrictions
    from zhixing.credit.schemas import ListingDecisionIn, ListingIn, RestrictionIn

    if step.kind == "consumption_restriction" and case.state not in ("filed", "concluded",
                                                                     "suspended"):
        restrictions.issue(session, officer, case, RestrictionIn(party_id=debtor_id,
                                                                 on=step.on))
        return True
    if step.kind == "dishonest_listing_decided" and case.state not in ("concluded",
                                                                       "suspended"):
        listing = listings.propose(session, officer, case, ListingIn(
            party_id=debtor_id, ground=1, conduct=CONDUCT))
        listings.decide(session, approver, listing, ListingDecisionIn(approve=True, on=step.on))
        return True
    return False


def _delete_listing(session: Session, actor: Actor, case: Case, step: DeleteListing) -> None:
    from zhixing.credit import listings
    from zhixing.credit.models import Listing, ListingStatus
    from zhixing.credit.schemas import ListingDeletionIn

    for listing in session.scalars(select(Listing).where(
            Listing.case_id == case.id, Listing.status == ListingStatus.ACTIVE)):
        listings.delete(session, actor, listing, ListingDeletionIn.model_validate(
            {"ground": step.ground, "on": step.on}))


def seed_cases(session: Session, *, count: int = 3000, seed: int = 2014,
               batch: int = BATCH) -> SeedReport:
    """Create ``count`` demo cases (the three story cases among them) through the services.

    Needs the courts (``sync_courts``) and the demo users (``seed_users``). Commits
    ``session`` once per ``batch`` cases, so a large seed never holds one huge transaction.
    """
    started = time.perf_counter()
    created_officers = ensure_officers(session, seed=seed)
    ensure_approvers(session, seed=seed)
    session.commit()
    plans = plan_cases(count=count, seed=seed)
    officers = _Officers(session)
    stories: dict[str, str] = {}
    case_ids: list[int] = []
    calls = 0
    # A bulk load makes many short-lived ORM objects; the cyclic collector would otherwise
    # scan them again and again (measured: a fifth of the run).
    threshold = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(max(threshold[0], 50_000), *threshold[1:])
    try:
        for i, plan in enumerate(plans):
            username = officers.username(plan)
            case, n = apply_plan(session, officers.actor(username), plan, username,
                                 officers.approver(plan.court_code, username))
            calls += n
            case_ids.append(case.id)
            if plan.story:
                stories[plan.story] = case.case_number
            # Written but not yet committed: the rows stay in the transaction, the objects
            # leave the session so it does not grow with the batch.
            session.flush()
            session.expunge_all()
            if (i + 1) % batch == 0:
                session.commit()
        session.commit()
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
    return _report(session, case_ids, stories, created_officers,
                   time.perf_counter() - started, calls)


def _report(session: Session, case_ids: list[int], stories: dict[str, str], officers: int,
            seconds: float, calls: int) -> SeedReport:
    lo, hi = min(case_ids), max(case_ids)
    in_seed = Case.id.between(lo, hi)
    states = dict(session.execute(select(Case.state, func.count()).where(in_seed)
                                  .group_by(Case.state)).tuples().all())
    conclusions = dict(session.execute(
        select(Case.conclusion, func.count()).where(in_seed, Case.conclusion.is_not(None))
        .group_by(Case.conclusion)).tuples().all())
    overdue = session.scalar(select(func.count()).select_from(Case).where(
        in_seed, Case.period_deadline < service.today())) or 0
    assets = session.scalar(select(func.count()).select_from(Asset)
                            .where(Asset.case_id.between(lo, hi))) or 0
    controlled = session.scalar(select(func.count()).select_from(Asset).where(
        Asset.case_id.between(lo, hi), Asset.control_state.in_(ledger.UNDER_CONTROL))) or 0
    money = dict(session.execute(
        select(LedgerEntry.kind, func.sum(LedgerEntry.amount_fen))
        .where(LedgerEntry.case_id.between(lo, hi)).group_by(LedgerEntry.kind)).tuples().all())
    parties = session.scalar(select(func.count(func.distinct(CaseParty.party_id)))
                             .where(CaseParty.case_id.between(lo, hi))) or 0  # on the cases
    return SeedReport(
        cases=len(case_ids), parties=parties, officers_created=officers,
        states={str(k): v for k, v in sorted(states.items())},
        conclusions={str(k): v for k, v in sorted(conclusions.items())},
        overdue=overdue, assets=assets, controlled_assets=controlled,
        recovered_fen=int(money.get("recovered") or 0),
        disbursed_fen=int(money.get("disbursed") or 0), stories=stories,
        seconds=round(seconds, 2), service_calls=calls)


__all__ = ["CasePlan", "SeedReport", "apply_plan", "ensure_officers", "officer_username",
           "party_specs", "plan_cases", "seed_cases"]
