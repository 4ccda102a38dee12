"""What a simulated unit holds about a subject, derived deterministically.

Every answer is drawn from a ``random.Random`` seeded with the SHA-256 of (unit code, the
subject's identity number, the kind), so a unit asked twice about the same person says the same
thing, in any process, on any day, without storing anything. Facts that belong to the person
rather than to a unit (marital status, spouse, children) are seeded from the identity number
alone, so the civil-affairs bureau and the household registry tell the same story.

Dates that are "in the past" are anchored at fixed years (vehicles registered up to 2024,
marriages up to mid-2025) rather than at today's date, which would make answers drift from one
day to the next. The exception is lodging, which the brief wants within the last 90 days: stays
follow a fixed per-person schedule in absolute time and a query returns those of the last 90
days, so two queries agree on every stay they both cover.

Everything returned validates as the wire models of :mod:`zhixing.linkage.wire`.
"""

from __future__ import annotations

import hashlib
import math
import random
from datetime import UTC, date, datetime, time, timedelta
from typing import Final, Literal

from stdnum.cn import ric, uscc

from zhixing.linkage import wire

QueryPayload = (
    wire.DepositsPayload | wire.RealEstatePayload | wire.VehiclesPayload
    | wire.BusinessRegistrationPayload | wire.SecuritiesPayload
    | wire.HouseholdRegistrationPayload | wire.MarriageRegistrationPayload | wire.LodgingPayload
)

MaritalStatus = Literal["unmarried", "married", "divorced", "widowed"]
Office = Literal["legal_representative", "director", "supervisor", "manager"]

SHARE_OF_BANK_CUSTOMERS: Final = 0.6
"""About 40% of subjects hold nothing at a given bank."""
LODGING_WINDOW: Final = timedelta(days=90)

_LODGING_EPOCH: Final = date(2020, 1, 1)
_FACTS_AS_OF: Final = date(2025, 6, 30)  # latest date a deterministic "past" fact may carry

# --- seeding -----------------------------------------------------------------------------------


def seed_of(*parts: str) -> int:
    """A 64-bit seed from the SHA-256 of the parts (``\\x1f``-separated: no ambiguity)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def _rng(*parts: str) -> random.Random:
    return random.Random(seed_of(*parts))


def _digits(count: int, *parts: str) -> str:
    """``count`` decimal digits from the hash of the parts: stable, and unique in practice."""
    value = int.from_bytes(hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest(), "big")
    return str(value % 10**count).zfill(count)


def is_person(id_number: str) -> bool:
    """Whether an identity number is a resident ID (a person) rather than an organisation's."""
    return wire.ric_valid(id_number) or (len(id_number) == 15 and id_number.isdigit())


# --- places and names --------------------------------------------------------------------------

# (city, plate letter, division code prefix, [(district, division code, roads)])
_CITIES: Final = (
    ("南宁市", "A", "4501", (("青秀区", "450103", ("民族大道", "东葛路", "金湖路", "竹溪大道")),
                             ("西乡塘区", "450107", ("大学东路", "明秀东路", "友爱北路")),
                             ("江南区", "450105", ("星光大道", "亭洪路", "白沙大道")))),
    ("柳州市", "B", "4502", (("城中区", "450202", ("文昌路", "三中路")),
                             ("鱼峰区", "450203", ("柳石路", "荣军路")))),
    ("桂林市", "C", "4503", (("七星区", "450305", ("七星路", "穿山路")),
                             ("秀峰区", "450302", ("中山中路", "解放西路")))),
    ("梧州市", "D", "4504", (("万秀区", "450403", ("大东路", "西江一路")),)),
    ("北海市", "E", "4505", (("海城区", "450502", ("北部湾中路", "四川路")),)),
    ("玉林市", "K", "4509", (("玉州区", "450902", ("人民中路", "教育中路")),)),
    ("百色市", "L", "4510", (("右江区", "451002", ("向阳路", "城东大道")),)),
    ("钦州市", "N", "4507", (("钦南区", "450702", ("永福西大街", "南珠大街")),)),
)

_SURNAMES: Final = "李黄陈刘覃韦梁莫蒙林张王杨罗蓝周吴邓"
_GIVEN: Final = ("伟", "芳", "志强", "秀英", "海燕", "建华", "丽娟", "国庆", "春梅", "振宇",
                 "晓东", "桂兰", "明", "婷", "文斌", "玉凤", "俊杰", "小红")


def _name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + rng.choice(_GIVEN)


def _resident_id(rng: random.Random, born: date, male: bool) -> str:
    """A valid 18-character resident ID born on ``born``, registered in Guangxi."""
    _, _, _, districts = rng.choice(_CITIES)
    region = rng.choice(districts)[1]
    sequence = rng.randrange(0, 500) * 2 + (1 if male else 0)
    body = f"{region}{born:%Y%m%d}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")


def credit_code(rng: random.Random, city: str | None = None) -> str:
    """A unified social credit code: 91 (company) + a Guangxi division (in ``city`` if given)
    + 9 characters + the check character."""
    districts = next((c[3] for c in _CITIES if c[0] == city), rng.choice(_CITIES)[3])
    org = "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(9))
    body = f"91{rng.choice(districts)[1]}{org}"
    return body + uscc.calc_check_digit(body)


# --- deposits ----------------------------------------------------------------------------------

_BRANCHES: Final = ("南宁青秀支行", "南宁民族大道支行", "南宁西乡塘支行", "柳州城中支行",
                    "桂林七星支行", "梧州万秀支行", "北海海城支行", "玉林玉州支行",
                    "百色右江支行", "钦州钦南支行")
_WEALTH_PRODUCTS: Final = (("WM-90", "安鑫90天"), ("WM-180", "稳盈180天"),
                           ("WM-365", "年年享365天"), ("WM-Q", "季季享"))


def _luhn(digits: str) -> str:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str((10 - total % 10) % 10)


def account_number(unit_code: str, id_number: str, index: int) -> str:
    """A 19-digit account number with a Luhn check digit, stable per (unit, subject, index).

    16 digits come from a hash of the three: 10^16 values, so two subjects of one unit share
    a number with odds far below one in a million even for 10^5 accounts; the ledger's primary
    key refuses that case loudly rather than merging two owners' accounts.
    """
    body = "62" + _digits(16, "account", unit_code, id_number, str(index))
    return body + _luhn(body)


def _balance(rng: random.Random) -> int:
    if rng.random() < 0.25:
        return 0  # dormant accounts are common, and "found, but empty" is worth testing
    return int(10 ** rng.uniform(3, math.log10(50_000_000)))  # 10 yuan .. 500,000 yuan


def deposit_accounts(unit_code: str, bank_name: str, id_number: str) -> list[wire.DepositAccount]:
    """The accounts a bank holds for a subject when it first looks (0-3 of them)."""
    rng = _rng(unit_code, id_number, "deposits")
    if rng.random() >= SHARE_OF_BANK_CUSTOMERS:
        return []
    bank = bank_name[:128]
    accounts: list[wire.DepositAccount] = []
    for index in range(rng.choice((1, 1, 1, 2, 2, 3))):
        branch = rng.choice(_BRANCHES)
        roll = rng.random()
        balance = _balance(rng)
        if roll < 0.1:
            code, product_name = rng.choice(_WEALTH_PRODUCTS)
            value = max(balance, 1_000_000)  # products start at 10,000 yuan
            accounts.append(wire.DepositAccount(
                account_number="WM" + _digits(14, "product", unit_code, id_number, str(index)),
                bank=bank, branch=branch, balance_fen=value, currency="CNY",
                account_type="wealth_product",
                wealth_product=wire.WealthProduct(
                    product_code=code, product_name=product_name, value_fen=value,
                    matures_on=date(2026, 1, 1) + timedelta(days=rng.randrange(0, 730)))))
            continue
        accounts.append(wire.DepositAccount(
            account_number=account_number(unit_code, id_number, index), bank=bank,
            branch=branch, balance_fen=balance, currency="CNY",
            account_type="time" if roll < 0.3 else "demand"))
    return accounts


# --- real estate -------------------------------------------------------------------------------


def properties(unit_code: str, id_number: str) -> list[wire.Property]:
    rng = _rng(unit_code, id_number, "real_estate")
    found: list[wire.Property] = []
    for index in range(rng.choices((0, 1, 2), weights=(45, 35, 20))[0]):
        city, _, _, districts = rng.choice(_CITIES)
        district, _, roads = rng.choice(districts)
        street = f"{city}{district}{rng.choice(roads)}{rng.randrange(1, 400)}号"
        usage = rng.choices(("住宅", "商业", "办公"), weights=(75, 15, 10))[0]
        if usage == "住宅":
            address = (f"{street}{rng.randrange(1, 20)}栋{rng.randrange(1, 5)}单元"
                       f"{rng.randrange(1, 33)}{rng.randrange(1, 5):02d}号")
            area = rng.randrange(4500, 18000)
        else:
            address = f"{street}{rng.randrange(1, 60)}号{'商铺' if usage == '商业' else '办公室'}"
            area = rng.randrange(2000, 40000)
        number = _digits(7, "property", unit_code, id_number, str(index))
        co_owners = [_name(rng)] if is_person(id_number) and rng.random() < 0.4 else []
        found.append(wire.Property(
            certificate_number=f"桂({rng.randrange(2015, 2026)}){city}不动产权第{number}号",
            address=address, area_m2=f"{area // 100}.{area % 100:02d}", usage=usage,
            co_owners=co_owners))
    return found


# --- vehicles ----------------------------------------------------------------------------------

_MODELS: Final = (("LSV", "大众朗逸"), ("LSV", "大众帕萨特"), ("LFV", "大众速腾"),
                  ("LSG", "别克英朗"), ("LZW", "五菱宏光"), ("LZW", "宝骏510"),
                  ("LGX", "比亚迪秦PLUS"), ("LGX", "比亚迪宋Pro"), ("LHG", "本田雅阁"),
                  ("LVG", "丰田凯美瑞"), ("LGB", "日产轩逸"), ("LVS", "福特福克斯"))
VIN_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
_VIN_VALUES: Final = {**{str(d): d for d in range(10)},
                      **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
                      **dict(zip("JKLMN", range(1, 6), strict=True)), "P": 7, "R": 9,
                      **dict(zip("STUVWXYZ", range(2, 10), strict=True))}
_VIN_WEIGHTS: Final = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_YEAR_CODES: Final = "ABCDEFGHJKLMNPRS"  # model years 2010 .. 2025
_PLATE_CHARS: Final = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # plates skip I and O


def vin_check_digit(vin: str) -> str:
    """The check character (position 9) of a VIN, per ISO 3779 / GB 16735."""
    total = sum(_VIN_VALUES[c] * w for c, w in zip(vin, _VIN_WEIGHTS, strict=True))
    return "X" if total % 11 == 10 else str(total % 11)


def _vin(rng: random.Random, wmi: str, year: int) -> str:
    vds = "".join(rng.choice(VIN_ALPHABET) for _ in range(5))
    tail = (_YEAR_CODES[year - 2010] + rng.choice(VIN_ALPHABET)
            + "".join(rng.choice("0123456789") for _ in range(6)))
    draft = f"{wmi}{vds}0{tail}"
    return draft[:8] + vin_check_digit(draft) + draft[9:]


def vehicles(unit_code: str, id_number: str) -> list[wire.Vehicle]:
    rng = _rng(unit_code, id_number, "vehicles")
    found: list[wire.Vehicle] = []
    for _ in range(rng.choices((0, 1, 2), weights=(50, 35, 15))[0]):
        wmi, model = rng.choice(_MODELS)
        year = rng.randrange(2010, 2025)
        _, letter, _, _ = rng.choice(_CITIES)
        serial = "".join(rng.choice("0123456789") for _ in range(5))
        if rng.random() < 0.3:  # one letter among the digits, as many plates have
            spot = rng.randrange(5)
            serial = serial[:spot] + rng.choice(_PLATE_CHARS[10:]) + serial[spot + 1:]
        found.append(wire.Vehicle(
            plate_number=f"桂{letter}·{serial}", model=model, vin=_vin(rng, wmi, year),
            registered_on=date(year, 1, 1) + timedelta(days=rng.randrange(0, 365))))
    return found


# --- business registration ---------------------------------------------------------------------

_TRADE_NAMES: Final = ("恒信", "嘉禾", "鑫源", "德隆", "华盛", "中桂", "广顺", "泰和", "邕江",
                       "漓江", "红豆", "金桂")
_INDUSTRIES: Final = ("贸易", "建筑工程", "商贸", "物流", "房地产开发", "科技", "餐饮管理",
                      "农业开发")
_CAPITALS_YUAN: Final = (1_000_000, 2_000_000, 5_000_000, 10_000_000, 30_000_000)


def _percent(basis_points: int) -> str:
    """Decimal text of a share given in basis points (1/100 of a percent): 3550 -> ``35.5``."""
    whole, fraction = divmod(basis_points, 100)
    return str(whole) if fraction == 0 else f"{whole}.{fraction:02d}".rstrip("0")


def business_roles(unit_code: str, id_number: str) -> list[wire.BusinessRole]:
    rng = _rng(unit_code, id_number, "business_registration")
    roles: list[wire.BusinessRole] = []
    for _ in range(rng.choices((0, 1, 2), weights=(55, 30, 15))[0]):
        city = rng.choice(_CITIES)[0]
        company = (f"{city.removesuffix('市')}{rng.choice(_TRADE_NAMES)}"
                   f"{rng.choice(_INDUSTRIES)}有限公司")
        code = credit_code(rng, city) if rng.random() < 0.95 else None  # a few pre-2015 firms
        share = rng.choice((10000, 10000, 5100, 3550, 2000, 1000, 500, 3333))
        capital = rng.choice(_CAPITALS_YUAN) * 100 * share // 10000
        roles.append(wire.BusinessRole(company_name=company, credit_code=code, role="shareholder",
                                       share_percent=_percent(share), capital_fen=capital))
        if not is_person(id_number):
            continue  # an organisation holds shares; offices are held by people
        offices: list[Office] = ["legal_representative", "manager"] if share > 5000 else []
        if rng.random() < 0.3:
            offices.append(rng.choice(("director", "supervisor")))
        roles += [wire.BusinessRole(company_name=company, credit_code=code, role=office)
                  for office in offices]
    return roles


# --- securities --------------------------------------------------------------------------------

_BROKERS: Final = ("国海证券", "中信证券", "华泰证券", "招商证券", "国泰君安证券")
_STOCKS: Final = (("600519", "贵州茅台"), ("000001", "平安银行"), ("601318", "中国平安"),
                  ("000858", "五粮液"), ("600036", "招商银行"), ("000725", "京东方A"),
                  ("600900", "长江电力"), ("002594", "比亚迪"), ("000750", "国海证券"),
                  ("600368", "五洲交通"), ("000582", "北部湾港"), ("600236", "桂冠电力"))


def securities_accounts(unit_code: str, id_number: str) -> list[wire.SecuritiesAccount]:
    rng = _rng(unit_code, id_number, "securities")
    if rng.random() >= (0.3 if is_person(id_number) else 0.15):
        return []
    accounts: list[wire.SecuritiesAccount] = []
    for market in ("A", "0")[:rng.choice((1, 1, 1, 2))]:  # Shanghai A..., Shenzhen 0...
        stocks = rng.sample(_STOCKS, rng.randrange(0, 6))
        accounts.append(wire.SecuritiesAccount(
            account=market + _digits(9, "securities", unit_code, id_number, market),
            broker=rng.choice(_BROKERS),
            holdings=[wire.Holding(code=code, name=name, quantity=100 * rng.randrange(1, 500))
                      for code, name in stocks]))
    return accounts


# --- family: household and marriage records ----------------------------------------------------


def _birth(id_number: str) -> date:
    if not wire.ric_valid(id_number):  # a 15-digit or foreign number: an adult of no age
        return date(1980, 1, 1)
    born: date = ric.get_birth_date(id_number)
    return born


def _male(id_number: str) -> bool:
    return len(id_number) == 18 and id_number[16].isdigit() and int(id_number[16]) % 2 == 1


def _home_address(rng: random.Random, id_number: str) -> str:
    """An address in the city the resident ID was issued in (Nanning when not in the list)."""
    city = next((c for c in _CITIES if c[2] == id_number[:4]), _CITIES[0])
    district, _, roads = rng.choice(city[3])
    return (f"{city[0]}{district}{rng.choice(roads)}{rng.randrange(1, 400)}号"
            f"{rng.randrange(1, 30)}栋{rng.randrange(101, 2505)}号")


class _Family:
    """Facts of a person, seeded by the identity number alone (not by the unit)."""

    def __init__(self, id_number: str) -> None:
        rng = _rng("family", id_number)
        self.born = _birth(id_number)
        self.male = _male(id_number)
        earliest = self.born + timedelta(days=365 * 22)
        roll = rng.random()
        self.status: MaritalStatus
        if earliest >= _FACTS_AS_OF or roll < 0.25:
            self.status = "unmarried"
        else:
            self.status = "married" if roll < 0.8 else "divorced" if roll < 0.95 else "widowed"
        self.spouse_name = _name(rng)
        spouse_born = self.born + timedelta(days=rng.randrange(-5 * 365, 5 * 365))
        self.spouse_id = _resident_id(rng, spouse_born, not self.male)
        span = max(1, min((_FACTS_AS_OF - earliest).days, 13 * 365))
        self.married_on = earliest + timedelta(days=rng.randrange(span))
        self.children = [_name(rng) for _ in range(rng.choice((0, 1, 1, 2)))] \
            if self.status != "unmarried" else []
        self.head_is_parent = rng.random() < 0.3
        self.parent_name = _name(rng)
        self.address = _home_address(rng, id_number)


def household_record(unit_code: str, id_number: str,
                     subject_name: str | None) -> wire.HouseholdRecord | None:
    if not is_person(id_number):
        return None
    rng = _rng(unit_code, id_number, "household_registration")
    if rng.random() < 0.05:
        return None  # registered in another province: this registry has nothing
    family = _Family(id_number)
    name = subject_name or _name(rng)
    members: list[wire.HouseholdMember] = []
    if family.head_is_parent:
        members.append(wire.HouseholdMember(name=family.parent_name, relation="户主"))
        members.append(wire.HouseholdMember(name=name, relation="子" if family.male else "女",
                                            id_number=id_number))
    else:
        members.append(wire.HouseholdMember(name=name, relation="户主", id_number=id_number))
    if family.status == "married":
        members.append(wire.HouseholdMember(name=family.spouse_name, relation="配偶",
                                            id_number=family.spouse_id))
    members += [wire.HouseholdMember(name=child, relation="子女") for child in family.children]
    return wire.HouseholdRecord(address=family.address, household_head=members[0].name,
                                members=members)


def marriage_record(id_number: str) -> wire.MarriageRecord | None:
    if not is_person(id_number):
        return None
    family = _Family(id_number)
    if family.status == "unmarried":
        return wire.MarriageRecord(status="unmarried")
    return wire.MarriageRecord(status=family.status,
                               spouse_name=family.spouse_name,
                               spouse_id_number=family.spouse_id,
                               registered_on=family.married_on)


# --- lodging -----------------------------------------------------------------------------------

_HOTEL_WORDS: Final = ("友谊商务酒店", "江景大酒店", "快捷宾馆", "假日酒店", "国际饭店",
                       "悦来客栈")


def stays(unit_code: str, id_number: str, now: datetime) -> list[wire.Stay]:
    """Stays checked in within the last 90 days of ``now``, from a fixed schedule."""
    if not is_person(id_number):
        return []
    rng = _rng(unit_code, id_number, "lodging")
    if rng.random() < 0.5:
        return []
    period = rng.randrange(12, 60)  # days between stays
    phase = rng.randrange(period)
    china_now = now.astimezone(wire.CHINA_TIME)
    start = china_now - LODGING_WINDOW
    first = max(0, math.ceil(((start.date() - _LODGING_EPOCH).days - phase) / period))
    found: list[wire.Stay] = []
    k = first
    while True:
        day = _LODGING_EPOCH + timedelta(days=phase + k * period)
        stay_rng = _rng(unit_code, id_number, "lodging", str(k))
        # Hotels check guests in from noon.
        check_in = datetime.combine(day, time(stay_rng.randrange(12, 24), stay_rng.randrange(60)),
                                    wire.CHINA_TIME)
        if check_in > china_now:
            break
        k += 1
        if check_in < start:
            continue
        check_out: datetime | None = datetime.combine(
            day + timedelta(days=stay_rng.randrange(1, 4)),
            time(stay_rng.randrange(8, 12), stay_rng.randrange(60)), wire.CHINA_TIME)
        if check_out is not None and check_out > china_now:
            check_out = None  # still checked in
        city, _, _, districts = stay_rng.choice(_CITIES)
        district, _, roads = stay_rng.choice(districts)
        found.append(wire.Stay(
            hotel=f"{city.removesuffix('市')}{stay_rng.choice(_HOTEL_WORDS)}",
            address=f"{city}{district}{stay_rng.choice(roads)}{stay_rng.randrange(1, 300)}号",
            check_in_at=check_in, check_out_at=check_out))
    return found


# --- dispatch ----------------------------------------------------------------------------------


def query_payload(kind: str, *, unit_code: str, unit_name: str, id_number: str,
                  subject_name: str | None = None, now: datetime | None = None) -> QueryPayload:
    """The answer of a unit to a query of ``kind`` about a subject, as its wire payload.

    ``deposits`` here are the accounts as first found: a ledger keeps them from then on (with
    balances that change), so a bank answers later queries from its ledger instead.
    """
    now = now or datetime.now(UTC)
    if kind == "deposits":
        return wire.DepositsPayload(kind="deposits",
                                    accounts=deposit_accounts(unit_code, unit_name, id_number))
    if kind == "real_estate":
        return wire.RealEstatePayload(kind="real_estate",
                                      properties=properties(unit_code, id_number))
    if kind == "vehicles":
        return wire.VehiclesPayload(kind="vehicles", vehicles=vehicles(unit_code, id_number))
    if kind == "business_registration":
        return wire.BusinessRegistrationPayload(kind="business_registration",
                                                roles=business_roles(unit_code, id_number))
    if kind == "securities":
        return wire.SecuritiesPayload(kind="securities",
                                      accounts=securities_accounts(unit_code, id_number))
    if kind == "household_registration":
        return wire.HouseholdRegistrationPayload(
            kind="household_registration",
            record=household_record(unit_code, id_number, subject_name))
    if kind == "marriage_registration":
        return wire.MarriageRegistrationPayload(kind="marriage_registration",
                                                record=marriage_record(id_number))
    if kind == "lodging":
        return wire.LodgingPayload(kind="lodging", stays=stays(unit_code, id_number, now))
    raise ValueError(f"{kind} is not a query kind")


def asset_held(asset_type: str, reference: str, *, unit_code: str, id_number: str) -> bool:
    """Whether the subject holds the (non-money) asset a seal or freeze names, per holdings.

    Movables and other rights have no register here: they are taken as held.
    """
    if asset_type == "real_estate":
        return any(reference in (p.certificate_number, p.address)
                   for p in properties(unit_code, id_number))
    if asset_type == "vehicle":
        return any(reference in (v.plate_number, v.plate_number.replace("·", ""), v.vin)
                   for v in vehicles(unit_code, id_number))
    if asset_type == "equity":
        return any(r.role == "shareholder" and reference in (r.credit_code, r.company_name)
                   for r in business_roles(unit_code, id_number))
    if asset_type == "securities_account":
        return any(a.account == reference for a in securities_accounts(unit_code, id_number))
    return True
