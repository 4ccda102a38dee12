"""Public disclosure of the dishonest-debtor list (失信被执行人名单公开): the search anyone may
run, and the presenter that decides what of an entry the public sees.

What is published is fixed by RULES.md ("Dishonest-debtor list"): for persons name, sex, age and
a masked ID number; for organisations name, credit code and legal representative; the
obligation and how far it is performed; the conduct; the title's issuer and number; the case
number, filing date and court. Nothing else leaves this module: no address, phone, birth date or
internal id (an entry is named by an opaque keyed hash of its listing).

A listing is *published* while it is in force (``status == active``) and its grace period is
over (``publish_on <= today``). Deleted, revoked, refused and merely proposed listings never
appear.

The search is built to stay an index range scan at 10 million listings (docs/benchmarks.md):
a first statement reads only ``(listing id, publish date)`` pairs through two covering indexes
(``parties (name, id)`` then ``credit_listings (party_id, status, publish_on, id)``), sorts
them and stops at :data:`COUNT_CAP` + 1; a second one reads the published columns of the 20
rows of the asked page by primary key. A common name therefore costs one sort of at most a few
thousand index tuples, and no page ever touches more than 20 table rows per table.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from zhixing.cases.identifiers import masked as masked_generic
from zhixing.cases.models import Case, IdKind, Party, PartyKind
from zhixing.core.errors import ValidationFailed
from zhixing.core.settings import get_settings
from zhixing.courts.models import Court
from zhixing.credit.models import Listing, ListingStatus
from zhixing.credit.screening_index import cheap_check
from zhixing.web import i18n
from zhixing.web.terms import N_

PAGE_SIZE = 20
# Counting every row of a very common name is work nobody reads: the total stops here, and so
# do the pages (50 pages of 20). Narrow by ID number or province to see past it.
COUNT_CAP = 1000
MAX_PAGE = COUNT_CAP // PAGE_SIZE
NAME_MIN, NAME_MAX = 2, 64

# Anonymous searches per client address: enough for a person checking a few names, too few
# to walk the list name by name.
SEARCH_LIMIT = 30
SEARCH_WINDOW = timedelta(minutes=1)

# GB/T 2260 province-level codes (the first two digits of a division code or resident ID).
PROVINCES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
    "65", "71", "81", "82",
})

# The six grounds in words (SPC 2017, art. 1), as English message ids; zh_CN has the
# statutory wording. The JSON API gives the Chinese wording, the page the reader's language.
GROUNDS: dict[int, str] = {
    1: N_("Able to perform but refuses to perform the obligation in the effective title"),
    2: N_("Obstructs or resists enforcement with forged evidence, violence, threats or "
          "similar means"),
    3: N_("Evades enforcement through false litigation or arbitration, or by hiding or "
          "transferring property"),
    4: N_("Violates the property-report duty"),
    5: N_("Violates a consumption restriction"),
    6: N_("Refuses without good reason to honour an enforcement settlement agreement"),
}

Performance = Literal["unperformed", "partly_performed", "performed"]
PERFORMANCE_LABELS = {"unperformed": N_("Not performed"),
                      "partly_performed": N_("Partly performed"),
                      "performed": N_("Fully performed")}


@dataclass(frozen=True)
class PublicSearch:
    """A checked search: ``id_number`` is normalised (upper case, 18 characters)."""

    name: str
    id_number: str | None = None
    province: str | None = None
    page: int = 1


class PublicEntry(BaseModel):
    """One published entry: exactly what RULES.md lets the public see, and nothing else."""

    id: str = Field(description="opaque reference of the entry (stable, not an internal id)")
    kind: Literal["person", "organisation"]
    name: str
    sex: Literal["M", "F"] | None = Field(description="persons only")
    age: int | None = Field(description="persons only: age today, from the ID's birth date")
    id_number: str | None = Field(
        description="persons only, masked: 18-digit numbers keep the first 10 and last 4 "
                    "characters (4501031985****1234)")
    credit_code: str | None = Field(
        description="organisations only, in full (a credit code is public)")
    legal_representative: str | None = Field(description="organisations only")
    court: str
    case_number: str
    filed_on: date
    title_issuer: str
    title_document_number: str
    obligation_yuan: str = Field(description="principal + interest + costs, yuan (2 decimals)")
    performed_yuan: str = Field(description="recovered so far, yuan (2 decimals)")
    performance: Performance
    conduct: str
    ground: int = Field(ge=1, le=6)
    ground_text: str = Field(description="the ground in the words of the SPC provisions")
    published_on: date


class PublicPage(BaseModel):
    total: int = Field(description=f"matching published entries, counted up to {COUNT_CAP}")
    total_capped: bool = Field(description="true when there are more than `total`")
    page: int
    page_size: int
    pages: int
    entries: list[PublicEntry]


# --- input ---------------------------------------------------------------------------------


def parse_search(name: str | None, id_number: str | None = None, province: str | None = None,
                 page: int | None = None) -> PublicSearch:
    """The search as given by an anonymous client, checked; 422 with a code otherwise."""
    clean = (name or "").strip()
    if not clean:
        raise ValidationFailed("a name is required", code="name_required", field="name")
    if not NAME_MIN <= len(clean) <= NAME_MAX:
        raise ValidationFailed(f"a name has {NAME_MIN} to {NAME_MAX} characters",
                               code="invalid_name", field="name")
    number: str | None = None
    if id_number is not None and id_number.strip():
        checked = cheap_check(id_number.strip())
        # Only a full number narrows: a partial one would turn the page into an oracle for
        # completing someone's ID number.
        if checked.error or checked.kind not in ("ric", "uscc") or len(checked.number) != 18:
            raise ValidationFailed(
                "give the full 18-character resident ID number or unified social credit code",
                code="invalid_id_number", field="id_number")
        number = checked.number
    region: str | None = None
    if province is not None and province.strip():
        region = province.strip()
        if region not in PROVINCES:
            raise ValidationFailed("a province is the 2-digit GB/T 2260 code (Guangxi: 45)",
                                   code="invalid_province", field="province")
    at = 1 if page is None else page
    if not 1 <= at <= MAX_PAGE:
        raise ValidationFailed(f"pages run from 1 to {MAX_PAGE}; narrow the search to see "
                               "more", code="invalid_page", field="page")
    return PublicSearch(clean, number, region, at)


# --- query ---------------------------------------------------------------------------------


def published(on: date) -> ColumnElement[bool]:
    """A listing the public may see on ``on``: in force and past its grace period."""
    return and_(Listing.status == ListingStatus.ACTIVE, Listing.publish_on <= on)


def _province_of(province: str) -> ColumnElement[bool]:
    # The listing court's province, or the debtor's own: a resident ID's first two digits,
    # a credit code's third and fourth (its registration division).
    return or_(
        Court.division_code.startswith(province, autoescape=True),
        and_(Party.id_kind.in_((IdKind.RIC, IdKind.RIC15)),
             Party.id_number.startswith(province, autoescape=True)),
        and_(Party.id_kind == IdKind.USCC, func.substr(Party.id_number, 3, 2) == province),
    )


def search(db: Session, query: PublicSearch, on: date) -> PublicPage:
    keys = (select(Listing.id)
            .join(Party, Party.id == Listing.party_id)
            .where(Party.name == query.name, published(on))
            .order_by(Listing.publish_on.desc(), Listing.id.desc())
            .limit(COUNT_CAP + 1))
    if query.id_number is not None:
        # Both kinds: an all-digit credit code can pass the resident-ID check too; the pair
        # (id_kind, id_number) is the unique index, so this is two point look-ups.
        keys = keys.where(Party.id_kind.in_((IdKind.RIC, IdKind.USCC)),
                          Party.id_number == query.id_number)
    if query.province is not None:
        keys = keys.join(Court, Court.id == Listing.court_id).where(
            _province_of(query.province))
    ids = list(db.scalars(keys))
    total = min(len(ids), COUNT_CAP)
    start = (query.page - 1) * PAGE_SIZE
    wanted = ids[start:start + PAGE_SIZE]
    entries = _entries(db, wanted, on) if wanted else []
    return PublicPage(total=total, total_capped=len(ids) > COUNT_CAP, page=query.page,
                      page_size=PAGE_SIZE, pages=max(1, -(-total // PAGE_SIZE)),
                      entries=entries)


def _entries(db: Session, listing_ids: list[int], on: date) -> list[PublicEntry]:
    # Columns, not entities: Case would load its parties, and nothing unpublished is fetched.
    rows = db.execute(
        select(Listing.id, Listing.ground, Listing.conduct, Listing.publish_on,
               Party.kind, Party.name, Party.id_kind, Party.id_number, Party.sex,
               Party.birth_date, Party.legal_representative,
               Case.case_number, Case.filed_on, Case.title_issuer, Case.title_document_number,
               Case.principal_fen, Case.interest_fen, Case.costs_fen, Case.recovered_fen,
               Court.name_zh)
        .join(Party, Party.id == Listing.party_id)
        .join(Case, Case.id == Listing.case_id)
        .join(Court, Court.id == Listing.court_id)
        .where(Listing.id.in_(listing_ids), published(on))
    ).all()
    order = {lid: k for k, lid in enumerate(listing_ids)}
    rows = sorted(rows, key=lambda r: order[r.id])
    zh = i18n.translations("zh_CN")
    out: list[PublicEntry] = []
    for r in rows:
        person = r.kind == PartyKind.PERSON
        owed = r.principal_fen + r.interest_fen + r.costs_fen
        paid = min(r.recovered_fen, owed)
        out.append(PublicEntry(
            id=opaque_id(r.id),
            kind="person" if person else "organisation",
            name=r.name,
            sex=r.sex if person and r.sex in ("M", "F") else None,
            age=age_on(r.birth_date, on) if person and r.birth_date else None,
            id_number=mask_id_number(r.id_number) if person else None,
            credit_code=None if person else (r.id_number or None),
            legal_representative=None if person else r.legal_representative,
            court=r.name_zh,
            case_number=r.case_number,
            filed_on=r.filed_on,
            title_issuer=r.title_issuer,
            title_document_number=r.title_document_number,
            obligation_yuan=yuan(owed),
            performed_yuan=yuan(paid),
            performance=performance_of(owed, paid),
            conduct=r.conduct,
            ground=r.ground,
            ground_text=zh.ugettext(GROUNDS[r.ground]) if r.ground in GROUNDS else "",
            published_on=r.publish_on,
        ))
    return out


# --- presentation --------------------------------------------------------------------------


def mask_id_number(number: str | None) -> str | None:
    """A person's ID number as the SPC's public site shows it: an 18-digit number keeps its
    region and birth year and its last four (``4501031985****1234``), hiding the birth month
    and day that the age already stands for; a 15-digit one keeps region and year the same way
    (``45010385****123``); anything else keeps only its first and last four characters."""
    if not number:
        return None
    if len(number) == 18:
        return f"{number[:10]}****{number[-4:]}"
    if len(number) == 15:
        return f"{number[:8]}****{number[-3:]}"
    return masked_generic(number)


def age_on(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def yuan(fen: int) -> str:
    """Fen as a yuan amount with two decimals, as text: JSON numbers are binary floats."""
    whole, cents = divmod(fen, 100)
    return f"{whole}.{cents:02d}"


def performance_of(owed_fen: int, paid_fen: int) -> Performance:
    if paid_fen <= 0:
        return "unperformed"
    # Fully performed is a deletion event; until the deletion (3 working days) the entry
    # still shows, and says so.
    return "performed" if paid_fen >= owed_fen else "partly_performed"


def opaque_id(listing_id: int) -> str:
    """A stable reference that does not reveal the internal id or the size of the list."""
    key = get_settings().secret_key.encode()
    digest = hmac.new(key, f"credit.public:{listing_id}".encode(), hashlib.sha256)
    return digest.hexdigest()[:20]
