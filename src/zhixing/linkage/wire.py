"""The JSON messages of linkage protocol v1, as pydantic models.

Rules that hold for every message:

- ``schema_version`` is ``"1"``; v1 never changes shape (see the versioning section of
  ``docs/linkage-protocol.md``), so unknown fields are refused, not ignored.
- Types are strict: a number is never a string, an integer never a float, a boolean never 0/1.
- Money is an integer in fen (1 yuan = 100 fen); a foreign-currency balance is in that currency's
  ISO 4217 minor unit (cents for USD, yen for JPY). Areas are decimal text in m² (``"89.35"``).
- Date-times are RFC 3339 text with an offset (``2026-11-26T09:30:00+08:00`` or ``...Z``);
  dates are ``YYYY-MM-DD`` (a China-time calendar date).
- Lists have caps, so an oversized message is refused whole, before anything is stored.

Parse bytes received with ``Model.model_validate_json(body)`` and build bytes to send with
``model.model_dump_json()``.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, Final, Literal, Self, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    model_validator,
)
from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError as StdnumError

SCHEMA_VERSION: Final = "1"
SchemaVersion = Literal["1"]

CHINA_TIME = timezone(timedelta(hours=8))

# --- caps --------------------------------------------------------------------------------------

MAX_BODY_BYTES: Final = 4 * 1024 * 1024
"""No request or response body of the protocol is larger; the platform answers 413 beyond."""
MAX_FEN: Final = 10**15
MAX_TASKS_PER_FETCH: Final = 100
MAX_FETCH_WAIT_SECONDS: Final = 30
MAX_TASKS_PER_PUSH: Final = 100
MAX_ACK_IDS: Final = 500
MAX_RESULTS_PER_BATCH: Final = 100
MAX_EVENTS_PER_BATCH: Final = 100
MAX_ACCOUNTS: Final = 500
MAX_PROPERTIES: Final = 200
MAX_VEHICLES: Final = 200
MAX_BUSINESS_ROLES: Final = 500
MAX_SECURITIES_ACCOUNTS: Final = 20
MAX_HOLDINGS_PER_ACCOUNT: Final = 1000
MAX_HOLDINGS_TOTAL: Final = 2000
MAX_CO_OWNERS: Final = 20
MAX_HOUSEHOLD_MEMBERS: Final = 50
MAX_STAYS: Final = 500
MAX_CHAIN_LENGTH: Final = 1000

# --- kinds -------------------------------------------------------------------------------------

QueryKind = Literal[
    "deposits", "real_estate", "vehicles", "business_registration", "securities",
    "household_registration", "marriage_registration", "lodging",
]
ControlKind = Literal["freeze", "renew_freeze", "release", "deduct", "seal"]
TaskKind = Literal[
    "deposits", "real_estate", "vehicles", "business_registration", "securities",
    "household_registration", "marriage_registration", "lodging",
    "freeze", "renew_freeze", "release", "deduct", "seal",
]
QUERY_KINDS: Final[tuple[str, ...]] = get_args(QueryKind)
CONTROL_KINDS: Final[tuple[str, ...]] = get_args(ControlKind)
TASK_KINDS: Final[tuple[str, ...]] = get_args(TaskKind)

AssetType = Literal[
    "deposit_account", "wealth_product", "securities_account", "equity", "other_right",
    "real_estate", "vehicle", "movable",
]
MAX_PERIOD_DAYS: Final[dict[str, int]] = {
    # SPC: deposits 1 year; movables 2 years; real estate and other property rights 3 years.
    "deposit_account": 365,
    "wealth_product": 365,  # held at a bank like a deposit: the shorter, safe limit
    "securities_account": 1095,
    "equity": 1095,
    "other_right": 1095,
    "real_estate": 1095,
    "vehicle": 730,
    "movable": 730,
}
FREEZABLE: Final = frozenset({"deposit_account", "wealth_product", "securities_account",
                              "equity", "other_right"})
SEALABLE: Final = frozenset({"real_estate", "vehicle", "movable"})
MONEY_ASSETS: Final = frozenset({"deposit_account", "wealth_product"})

_ISO_4217_CODES = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP
BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR
FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES
KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR
MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF
SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
"""
ISO_4217: Final = frozenset(_ISO_4217_CODES.split())
"""ISO 4217 codes of currencies in circulation (funds, metals and test codes excluded)."""


# --- field types -------------------------------------------------------------------------------


def _plain_text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    if value != value.strip():
        raise ValueError("no leading or trailing spaces")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value):
        raise ValueError("no control characters (one line of text)")
    return value


Text16 = Annotated[str, StringConstraints(min_length=1, max_length=16),
                   AfterValidator(_plain_text)]
Text32 = Annotated[str, StringConstraints(min_length=1, max_length=32),
                   AfterValidator(_plain_text)]
Text64 = Annotated[str, StringConstraints(min_length=1, max_length=64),
                   AfterValidator(_plain_text)]
Text128 = Annotated[str, StringConstraints(min_length=1, max_length=128),
                    AfterValidator(_plain_text)]
Text255 = Annotated[str, StringConstraints(min_length=1, max_length=255),
                    AfterValidator(_plain_text)]
Text500 = Annotated[str, StringConstraints(min_length=1, max_length=500),
                    AfterValidator(_plain_text)]

TaskId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
"""The platform's id of a task; the idempotency key of everything done for it."""
UnitId = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,64}$")]
"""An id a unit gives (event ids, references): 1-64 printable ASCII characters, no spaces."""
AccountNumber = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z-]{1,40}$")]
Code32 = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z()._/-]{1,32}$")]
Vin = Annotated[str, StringConstraints(pattern=r"^[A-HJ-NPR-Z0-9]{17}$")]
SecurityCode = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z.]{1,16}$")]
AreaM2 = Annotated[str, StringConstraints(pattern=r"^(0|[1-9][0-9]{0,6})(\.[0-9]{1,2})?$")]
"""Area in m², decimal text with at most 2 decimals (0.01 m²)."""
Percent = Annotated[str, StringConstraints(
    pattern=r"^(100(\.0{1,4})?|[1-9]?[0-9](\.[0-9]{1,4})?)$")]
"""A share in percent, decimal text 0-100 with at most 4 decimals."""
ErrorCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]

Fen = Annotated[StrictInt, Field(ge=0, le=MAX_FEN)]
PositiveFen = Annotated[StrictInt, Field(ge=1, le=MAX_FEN)]

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _moment_input(value: object) -> object:
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC3339.fullmatch(value)):
        return value
    raise ValueError("an RFC 3339 date-time with an offset, e.g. 2026-11-26T09:30:00+08:00")


def _day_input(value: object) -> object:
    if (isinstance(value, date) and not isinstance(value, datetime)) or (
            isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        return value
    raise ValueError("a date, YYYY-MM-DD")


def _currency(value: str) -> str:
    if value not in ISO_4217:
        raise ValueError("an ISO 4217 currency code in upper case, e.g. CNY")
    return value


Moment = Annotated[AwareDatetime, BeforeValidator(_moment_input), Field(strict=False)]
Day = Annotated[date, BeforeValidator(_day_input), Field(strict=False)]
Currency = Annotated[str, AfterValidator(_currency)]


# --- identity numbers ---------------------------------------------------------------------------
# python-stdnum, as everywhere in Zhixing, for the hard rules only (RULES.md, Identifiers): the
# platform validated the subject in full when the case was registered, and a resident ID whose
# region code was not yet in use in the birth year is real and must pass.

IdKind = Literal["ric", "ric15", "uscc", "org_code", "other"]

_ORG_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def ric_valid(number: str) -> bool:
    """An 18-character resident ID (GB 11643): digits, check character, a real birth date."""
    if not re.fullmatch(r"[0-9]{17}[0-9X]", number):
        return False
    if number[17] != ric.calc_check_digit(number):
        return False
    try:
        ric.get_birth_date(number)
    except (StdnumError, ValueError):
        return False
    return True


def uscc_valid(number: str) -> bool:
    """An 18-character unified social credit code (GB 32100) with its check character."""
    try:
        return bool(uscc.validate(number) == number)
    except StdnumError:
        return False


def org_code_valid(number: str) -> bool:
    """A 9-character organisation code (GB 11714) with its check character (as
    ``zhixing.cases.identifiers``: python-stdnum has no module for it)."""
    if not re.fullmatch(r"[0-9A-Z]{8}[0-9X]", number):
        return False
    total = sum(_ORG_ALPHABET.index(c) * w for c, w in zip(number[:8], _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return number[8] == {10: "X", 11: "0"}.get(check, str(check))


def id_number_valid(kind: str, number: str) -> bool:
    if kind == "ric":
        return ric_valid(number)
    if kind == "ric15":
        return re.fullmatch(r"[0-9]{15}", number) is not None
    if kind == "uscc":
        return uscc_valid(number)
    if kind == "org_code":
        return org_code_valid(number)
    return re.fullmatch(r"[0-9A-Za-z()-]{4,32}", number) is not None


def _uscc(value: str) -> str:
    if not uscc_valid(value):
        raise ValueError("a unified social credit code: 18 characters with a valid check")
    return value


CreditCode = Annotated[str, AfterValidator(_uscc)]


# --- base --------------------------------------------------------------------------------------


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Subject(WireModel):
    """Whom a task is about: always a debtor of the case (never a third party)."""

    subject_type: Literal["person", "organisation"]
    name: Text128
    id_kind: IdKind
    id_number: Annotated[str, StringConstraints(min_length=1, max_length=32)]

    @model_validator(mode="after")
    def _identity(self) -> Self:
        if not id_number_valid(self.id_kind, self.id_number):
            raise ValueError(f"id_number is not a valid {self.id_kind} number")
        if self.id_kind in ("ric", "ric15") and self.subject_type != "person":
            raise ValueError("a resident ID identifies a person")
        if self.id_kind in ("uscc", "org_code") and self.subject_type != "organisation":
            raise ValueError("a credit or organisation code identifies an organisation")
        return self


class Officer(WireModel):
    """The named, authorised enforcement officer who requested the task."""

    name: Text64
    certificate_number: Code32


class AssetRef(WireModel):
    """The asset a control order applies to."""

    asset_type: AssetType
    reference: Text64
    institution: Text128 | None = None
    description: Text255 | None = None


class ControlOrder(WireModel):
    """The control part of a freeze, renewal, release, deduction or seal.

    Orders on one asset form a chain: the first order (a freeze, a seal, or a deduction of free
    money) has ``sequence`` 1 and ``chain_id`` equal to its own task id; every later order
    (renewal, release, deduction of frozen money) has the next sequence number and names the
    order it follows in ``supersedes_task_id``. A unit applies order *n* only after it has
    applied order *n - 1* of the chain; otherwise it refuses it with ``out_of_order``.
    """

    chain_id: TaskId
    sequence: Annotated[StrictInt, Field(ge=1, le=MAX_CHAIN_LENGTH)]
    supersedes_task_id: TaskId | None = None
    document_number: Text64
    asset: AssetRef
    amount_fen: PositiveFen | None = None
    period_days: Annotated[StrictInt, Field(ge=1, le=1095)] | None = None


class Task(WireModel):
    """A query or a control order, platform to unit."""

    schema_version: SchemaVersion
    task_id: TaskId
    kind: TaskKind
    case_number: Text64
    court_code: Text16
    court_name: Text64
    officer: Officer
    requested_at: Moment
    due_by: Moment
    subject: Subject
    purpose: Text255
    legal_basis: Text255
    control: ControlOrder | None = None

    @model_validator(mode="after")
    def _rules(self) -> Self:
        if self.due_by <= self.requested_at:
            raise ValueError("due_by must be after requested_at")
        if self.kind in QUERY_KINDS:
            if self.control is not None:
                raise ValueError(f"a {self.kind} query carries no control order")
            return self
        if self.control is None:
            raise ValueError(f"a {self.kind} task carries a control order")
        _check_control(self.task_id, self.kind, self.control)
        return self


def _check_control(task_id: str, kind: str, order: ControlOrder) -> None:
    first = order.sequence == 1
    if first != (order.supersedes_task_id is None):
        raise ValueError("supersedes_task_id is given exactly when sequence > 1")
    if first and order.chain_id != task_id:
        raise ValueError("the first order of a chain has chain_id equal to its task_id")
    if not first and task_id in (order.chain_id, order.supersedes_task_id):
        raise ValueError("a later order names an earlier task as chain_id and supersedes")
    asset = order.asset.asset_type
    if kind in ("freeze", "seal") and not first:
        raise ValueError(f"a {kind} starts a chain (sequence 1)")
    if kind in ("renew_freeze", "release") and first:
        raise ValueError(f"a {kind} follows an earlier order (sequence > 1)")
    if kind == "freeze" and asset not in FREEZABLE:
        raise ValueError(f"a {asset} is sealed, not frozen")
    if kind == "seal" and asset not in SEALABLE:
        raise ValueError(f"a {asset} is frozen, not sealed")
    if kind == "deduct" and asset != "deposit_account":
        raise ValueError("only a deposit account is deducted online")
    if kind in ("freeze", "deduct") and asset in MONEY_ASSETS and order.amount_fen is None:
        raise ValueError(f"a {kind} of money states amount_fen")
    if kind in ("freeze", "renew_freeze", "seal"):
        if order.period_days is None:
            raise ValueError(f"a {kind} states period_days")
        if order.period_days > MAX_PERIOD_DAYS[asset]:
            raise ValueError(f"a {asset} is held for at most {MAX_PERIOD_DAYS[asset]} days "
                             "per order")
    elif order.period_days is not None:
        raise ValueError(f"a {kind} has no period_days")


# --- results -----------------------------------------------------------------------------------


class WealthProduct(WireModel):
    product_code: Code32
    product_name: Text128
    value_fen: Fen
    matures_on: Day | None = None


class DepositAccount(WireModel):
    account_number: AccountNumber
    bank: Text128
    branch: Text128
    balance_fen: Fen
    currency: Currency
    account_type: Literal["demand", "time", "wealth_product", "other"]
    wealth_product: WealthProduct | None = None

    @model_validator(mode="after")
    def _product(self) -> Self:
        if (self.account_type == "wealth_product") != (self.wealth_product is not None):
            raise ValueError("wealth_product is given exactly for a wealth_product account")
        return self


class DepositsPayload(WireModel):
    kind: Literal["deposits"]
    accounts: Annotated[list[DepositAccount], Field(max_length=MAX_ACCOUNTS)]


class Property(WireModel):
    certificate_number: Text64
    address: Text255
    area_m2: AreaM2
    usage: Text64
    co_owners: Annotated[list[Text128], Field(max_length=MAX_CO_OWNERS)]

    @property
    def area(self) -> Decimal:
        return Decimal(self.area_m2)


class RealEstatePayload(WireModel):
    kind: Literal["real_estate"]
    properties: Annotated[list[Property], Field(max_length=MAX_PROPERTIES)]


class Vehicle(WireModel):
    plate_number: Text16
    model: Text128
    vin: Vin
    registered_on: Day


class VehiclesPayload(WireModel):
    kind: Literal["vehicles"]
    vehicles: Annotated[list[Vehicle], Field(max_length=MAX_VEHICLES)]


class BusinessRole(WireModel):
    company_name: Text128
    credit_code: CreditCode | None = None
    role: Literal["shareholder", "legal_representative", "director", "supervisor",
                  "manager", "other"]
    share_percent: Percent | None = None
    capital_fen: Fen | None = None

    @model_validator(mode="after")
    def _share(self) -> Self:
        if self.role != "shareholder" and (self.share_percent is not None
                                           or self.capital_fen is not None):
            raise ValueError("share_percent and capital_fen belong to a shareholder")
        if self.role == "shareholder" and self.share_percent is None:
            raise ValueError("a shareholder has share_percent")
        return self


class BusinessRegistrationPayload(WireModel):
    kind: Literal["business_registration"]
    roles: Annotated[list[BusinessRole], Field(max_length=MAX_BUSINESS_ROLES)]


class Holding(WireModel):
    code: SecurityCode
    name: Text64
    quantity: Annotated[StrictInt, Field(ge=0, le=MAX_FEN)]


class SecuritiesAccount(WireModel):
    account: Code32
    broker: Text128 | None = None
    holdings: Annotated[list[Holding], Field(max_length=MAX_HOLDINGS_PER_ACCOUNT)]


class SecuritiesPayload(WireModel):
    kind: Literal["securities"]
    accounts: Annotated[list[SecuritiesAccount], Field(max_length=MAX_SECURITIES_ACCOUNTS)]

    @model_validator(mode="after")
    def _total(self) -> Self:
        if sum(len(a.holdings) for a in self.accounts) > MAX_HOLDINGS_TOTAL:
            raise ValueError(f"at most {MAX_HOLDINGS_TOTAL} holdings in one result")
        return self


class HouseholdMember(WireModel):
    name: Text128
    relation: Text32
    id_number: Code32 | None = None


class HouseholdRecord(WireModel):
    address: Text255
    household_head: Text128
    members: Annotated[list[HouseholdMember], Field(max_length=MAX_HOUSEHOLD_MEMBERS)]


class HouseholdRegistrationPayload(WireModel):
    kind: Literal["household_registration"]
    record: HouseholdRecord | None


class MarriageRecord(WireModel):
    status: Literal["unmarried", "married", "divorced", "widowed"]
    spouse_name: Text128 | None = None
    spouse_id_number: Code32 | None = None
    registered_on: Day | None = None

    @model_validator(mode="after")
    def _spouse(self) -> Self:
        if self.status == "unmarried":
            if self.spouse_name or self.spouse_id_number or self.registered_on:
                raise ValueError("an unmarried record names no spouse and no registration")
        elif self.spouse_name is None or self.registered_on is None:
            raise ValueError(f"a {self.status} record names the (former) spouse and the date "
                             "of the last registration")
        return self


class MarriageRegistrationPayload(WireModel):
    kind: Literal["marriage_registration"]
    record: MarriageRecord | None


class Stay(WireModel):
    hotel: Text128
    address: Text255
    check_in_at: Moment
    check_out_at: Moment | None = None

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.check_out_at is not None and self.check_out_at < self.check_in_at:
            raise ValueError("check_out_at is not before check_in_at")
        return self


class LodgingPayload(WireModel):
    kind: Literal["lodging"]
    stays: Annotated[list[Stay], Field(max_length=MAX_STAYS)]


class ControlOutcome(WireModel):
    """What a unit did with a control order it applied (fully or in part)."""

    kind: ControlKind
    unit_reference: UnitId
    applied_at: Moment
    amount_ordered_fen: Fen | None = None
    amount_applied_fen: Fen | None = None
    expires_on: Day | None = None
    shortfall_reason: Literal["insufficient_balance", "prior_freeze", "other"] | None = None

    @model_validator(mode="after")
    def _amounts(self) -> Self:
        ordered, applied = self.amount_ordered_fen, self.amount_applied_fen
        if (ordered is None) != (applied is None):
            raise ValueError("amount_ordered_fen and amount_applied_fen come together")
        if ordered is not None and applied is not None:
            if applied > ordered:
                raise ValueError("amount_applied_fen is never more than amount_ordered_fen")
            if (applied < ordered) != (self.shortfall_reason is not None):
                raise ValueError("shortfall_reason is given exactly when less was applied "
                                 "than ordered")
        elif self.shortfall_reason is not None:
            raise ValueError("shortfall_reason explains an amount")
        holds = self.kind in ("freeze", "renew_freeze", "seal")
        if holds != (self.expires_on is not None):
            raise ValueError("expires_on is given exactly for a freeze, renewal or seal")
        if self.expires_on is not None and (
                self.expires_on < self.applied_at.astimezone(CHINA_TIME).date()):
            raise ValueError("expires_on is not before applied_at")
        return self


ResultPayload = Annotated[
    DepositsPayload | RealEstatePayload | VehiclesPayload | BusinessRegistrationPayload
    | SecuritiesPayload | HouseholdRegistrationPayload | MarriageRegistrationPayload
    | LodgingPayload | ControlOutcome,
    Field(discriminator="kind"),
]

RefusalCode = Literal[
    "subject_mismatch", "account_not_found", "asset_not_found", "insufficient_legal_basis",
    "online_unsupported", "out_of_order", "already_released", "objection", "unit_error",
    "other",
]


class Refusal(WireModel):
    code: RefusalCode
    message: Text500


class Result(WireModel):
    """A unit's final answer to a task, unit to platform. One per task id."""

    schema_version: SchemaVersion
    task_id: TaskId
    status: Literal["answered", "refused", "failed"]
    reported_at: Moment
    payload: ResultPayload | None = None
    refusal: Refusal | None = None

    @model_validator(mode="after")
    def _status(self) -> Self:
        if self.status == "answered":
            if self.payload is None or self.refusal is not None:
                raise ValueError("an answered result has a payload and no refusal")
        elif self.payload is not None or self.refusal is None:
            raise ValueError(f"a {self.status} result has a refusal and no payload")
        return self


class Event(WireModel):
    """Unsolicited: money arrived in an account under a standing freeze, unit to platform."""

    schema_version: SchemaVersion
    event_id: UnitId
    kind: Literal["funds_arrived"]
    related_task_id: TaskId
    account_number: AccountNumber
    currency: Currency
    amount_fen: PositiveFen
    amount_frozen_fen: Fen
    arrived_at: Moment

    @model_validator(mode="after")
    def _frozen(self) -> Self:
        if self.amount_frozen_fen > self.amount_fen:
            raise ValueError("amount_frozen_fen is never more than amount_fen")
        return self


# --- batches and outcomes ----------------------------------------------------------------------


def _unique(ids: list[str], what: str) -> None:
    if len(set(ids)) != len(ids):
        raise ValueError(f"each {what} appears once in a batch")


class TaskBatch(WireModel):
    """Answer to ``GET /api/v1/linkage/tasks?limit=N``."""

    schema_version: SchemaVersion
    tasks: Annotated[list[Task], Field(max_length=MAX_TASKS_PER_FETCH)]
    more: StrictBool


class TaskPush(WireModel):
    """Body of a push, platform to the unit's URL."""

    schema_version: SchemaVersion
    tasks: Annotated[list[Task], Field(min_length=1, max_length=MAX_TASKS_PER_PUSH)]

    @model_validator(mode="after")
    def _ids(self) -> Self:
        _unique([t.task_id for t in self.tasks], "task_id")
        return self


class AckRequest(WireModel):
    """Body of ``POST /api/v1/linkage/tasks/ack``."""

    schema_version: SchemaVersion
    task_ids: Annotated[list[TaskId], Field(min_length=1, max_length=MAX_ACK_IDS)]

    @model_validator(mode="after")
    def _ids(self) -> Self:
        _unique(self.task_ids, "task_id")
        return self


class ResultBatch(WireModel):
    """Body of ``POST /api/v1/linkage/results``."""

    schema_version: SchemaVersion
    results: Annotated[list[Result], Field(min_length=1, max_length=MAX_RESULTS_PER_BATCH)]

    @model_validator(mode="after")
    def _ids(self) -> Self:
        _unique([r.task_id for r in self.results], "task_id")
        return self


class EventBatch(WireModel):
    """Body of ``POST /api/v1/linkage/events``."""

    schema_version: SchemaVersion
    events: Annotated[list[Event], Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)]

    @model_validator(mode="after")
    def _ids(self) -> Self:
        _unique([e.event_id for e in self.events], "event_id")
        return self


class ErrorDetail(WireModel):
    code: ErrorCode
    message: Annotated[str, StringConstraints(max_length=2000)]
    field: Annotated[str, StringConstraints(max_length=128)] | None = None
    details: dict[str, Any] | None = None


class ErrorBody(WireModel):
    """Body of every 4xx/5xx answer of the platform."""

    error: ErrorDetail


class ItemOutcome(WireModel):
    """What the platform did with one item of a batch (a task id acked, a result, an event)."""

    id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    outcome: Literal["accepted", "duplicate", "rejected"]
    error: ErrorDetail | None = None

    @model_validator(mode="after")
    def _error(self) -> Self:
        if (self.outcome == "rejected") != (self.error is not None):
            raise ValueError("error is given exactly for a rejected item")
        return self


class BatchOutcome(WireModel):
    """Answer to an ack, a result batch or an event batch: one outcome per item, in order."""

    schema_version: SchemaVersion
    outcomes: list[ItemOutcome]


# --- helpers for the receiving side ------------------------------------------------------------


class WireError(ValueError):
    """A message, or one item of a batch, is refused; ``code`` is machine-readable."""

    def __init__(self, code: str, message: str, *, status_code: int = 422) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status_code = status_code

    def detail(self) -> ErrorDetail:
        return ErrorDetail(code=self.code, message=self.message[:2000])


def describe(error: ValidationError) -> str:
    """A short, one-line account of a pydantic validation error for an error message."""
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "body"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _envelope(body: bytes, key: str, cap: int) -> list[Any]:
    if len(body) > MAX_BODY_BYTES:
        raise WireError("payload_too_large", f"a body has at most {MAX_BODY_BYTES} bytes",
                        status_code=413)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WireError("validation_failed", "the body is not JSON") from None
    if isinstance(data, dict) and data.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise WireError("unsupported_schema_version",
                        f"this endpoint speaks schema_version {SCHEMA_VERSION!r}")
    if not isinstance(data, dict) or set(data) != {"schema_version", key}:
        raise WireError("validation_failed", f"the body is {{schema_version, {key}}}")
    items = data[key]
    if not isinstance(items, list) or not 1 <= len(items) <= cap:
        raise WireError("validation_failed", f"{key} is a list of 1 to {cap} items")
    return items


def _item_id(item: Any, field: str, index: int) -> str:
    value = item.get(field) if isinstance(item, dict) else None
    if isinstance(value, str) and 0 < len(value) <= 64:
        return value
    return f"#{index}"


def split_result_batch(body: bytes) -> tuple[list[Result], list[ItemOutcome]]:
    """Parse a result batch item by item: (valid results, outcomes of the refused ones).

    A bad envelope raises :class:`WireError`; a bad item only rejects that item
    (``invalid_result``), so one unit bug does not hold back the other answers.
    """
    results: list[Result] = []
    rejected: list[ItemOutcome] = []
    seen: set[str] = set()
    for index, item in enumerate(_envelope(body, "results", MAX_RESULTS_PER_BATCH)):
        item_id = _item_id(item, "task_id", index)
        try:
            result = Result.model_validate_json(json.dumps(item))
        except ValidationError as exc:
            rejected.append(ItemOutcome(id=item_id, outcome="rejected", error=ErrorDetail(
                code="invalid_result", message=describe(exc))))
            continue
        if result.task_id in seen:
            rejected.append(ItemOutcome(id=item_id, outcome="rejected", error=ErrorDetail(
                code="repeated_in_batch", message="this task_id appears twice in the batch")))
            continue
        seen.add(result.task_id)
        results.append(result)
    return results, rejected


def split_event_batch(body: bytes) -> tuple[list[Event], list[ItemOutcome]]:
    """Parse an event batch item by item, as :func:`split_result_batch` (``invalid_event``)."""
    events: list[Event] = []
    rejected: list[ItemOutcome] = []
    seen: set[str] = set()
    for index, item in enumerate(_envelope(body, "events", MAX_EVENTS_PER_BATCH)):
        item_id = _item_id(item, "event_id", index)
        try:
            event = Event.model_validate_json(json.dumps(item))
        except ValidationError as exc:
            rejected.append(ItemOutcome(id=item_id, outcome="rejected", error=ErrorDetail(
                code="invalid_event", message=describe(exc))))
            continue
        if event.event_id in seen:
            rejected.append(ItemOutcome(id=item_id, outcome="rejected", error=ErrorDetail(
                code="repeated_in_batch", message="this event_id appears twice in the batch")))
            continue
        seen.add(event.event_id)
        events.append(event)
    return events, rejected


def check_result(task: Task, result: Result) -> None:
    """Rules that need the task as well as the result; :class:`WireError` on the first broken.

    Codes: ``task_mismatch``, ``kind_mismatch``, ``amount_mismatch``, ``period_exceeded``.
    """
    order = task.control
    check_result_for(task.task_id, task.kind, result,
                     ordered_fen=order.amount_fen if order else None,
                     period_days=order.period_days if order else None,
                     is_control=order is not None)


def check_result_for(task_id: str, kind: str, result: Result, *, ordered_fen: int | None,
                     period_days: int | None, is_control: bool) -> None:
    """:func:`check_result` from the task's fields (a receiver that stored the task as JSON
    need not parse it again)."""
    if result.task_id != task_id:
        raise WireError("task_mismatch", "the result answers another task")
    payload = result.payload
    if payload is None:
        return
    if payload.kind != kind:
        raise WireError("kind_mismatch", f"a {kind} task is answered with a "
                        f"{payload.kind} payload")
    if not isinstance(payload, ControlOutcome) or not is_control:
        return
    if payload.amount_ordered_fen != ordered_fen:
        raise WireError("amount_mismatch", "amount_ordered_fen is the task's amount_fen "
                        f"({ordered_fen})")
    if payload.expires_on is not None and period_days is not None:
        applied_on = payload.applied_at.astimezone(CHINA_TIME).date()
        if payload.expires_on > applied_on + timedelta(days=period_days):
            raise WireError("period_exceeded", f"the order holds for at most "
                            f"{period_days} days from the day it was applied")


def same_content(a: BaseModel, b: BaseModel,
                 ignore: frozenset[str] = frozenset({"reported_at"})) -> bool:
    """Whether two messages say the same thing, to tell a duplicate from a conflict.

    ``reported_at`` is ignored by default: a unit that rebuilds a result to send it again
    stamps it anew, and that does not make it a different answer.
    """
    return a.model_dump(mode="json", exclude=set(ignore)) == b.model_dump(
        mode="json", exclude=set(ignore))
