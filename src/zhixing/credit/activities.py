"""What a listed or restricted person may not do, as the activities partners screen for.

RULES.md (Consumption restriction) names nine restricted behaviours; partners do not screen a
"behaviour", they screen a concrete act: an airline asks about a *flight*, a railway about a
*high-speed train* seat, a bank about a *loan*. So each behaviour (category) is a set of
activities, and every activity is one bit of a 32-bit mask. The screening index stores the mask
of each list entry, a partner subscribes to a set of activities, and an answer names the
activities that are restricted.

A dishonest listing itself (RULES.md, Dishonest-debtor list; SPC 2017 art. 11) adds the credit
discipline measures that are not consumption: loans and credit, public bidding, posts as a civil
servant or as a company's legal representative or officer. An exit restriction (CPL art. 266) is
its own order with its own bit.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Activity(enum.StrEnum):
    FLIGHT = "flight"
    SOFT_SLEEPER = "soft_sleeper"
    SHIP_CABIN = "ship_cabin"
    STAR_HOTEL = "star_hotel"
    NIGHTCLUB = "nightclub"
    GOLF = "golf"
    PROPERTY_PURCHASE = "property_purchase"
    LUXURY_RENOVATION = "luxury_renovation"
    PREMIUM_RENTAL = "premium_rental"
    VEHICLE_PURCHASE = "vehicle_purchase"
    TRAVEL = "travel"
    PRIVATE_SCHOOL = "private_school"
    PREMIUM_INSURANCE = "premium_insurance"  # high-premium insurance and wealth products
    HIGH_SPEED_TRAIN = "high_speed_train"
    OTHER_SPENDING = "other_spending"  # "other non-essential spending"
    EXIT = "exit"
    LOAN = "loan"
    BIDDING = "bidding"
    CIVIL_SERVICE = "civil_service"
    COMPANY_OFFICER = "company_officer"


# Bit positions are part of the index and the partner feed: append, never renumber.
BIT: dict[Activity, int] = {a: i for i, a in enumerate(Activity)}


class Category(enum.StrEnum):
    """The nine restricted behaviours of the consumption restriction (SPC 2015 art. 3)."""

    LUXURY_TRANSPORT = "luxury_transport"  # flights, soft sleepers, ship cabins 2nd class and up
    LUXURY_VENUES = "luxury_venues"  # star hotels, nightclubs, golf
    PROPERTY = "property"  # buying real estate, building, luxury renovation
    PREMIUM_RENTAL = "premium_rental"  # renting high-grade offices, hotels, apartments
    VEHICLES = "vehicles"  # non-essential vehicles
    TRAVEL = "travel"  # travel and holidays
    SCHOOLING = "schooling"  # children in high-fee private schools
    INSURANCE = "insurance"  # high-premium insurance and wealth products
    TRAINS = "trains"  # all G-train seats, 1st class and up on other bullet trains, other spending


CATEGORY_ACTIVITIES: dict[Category, tuple[Activity, ...]] = {
    Category.LUXURY_TRANSPORT: (Activity.FLIGHT, Activity.SOFT_SLEEPER, Activity.SHIP_CABIN),
    Category.LUXURY_VENUES: (Activity.STAR_HOTEL, Activity.NIGHTCLUB, Activity.GOLF),
    Category.PROPERTY: (Activity.PROPERTY_PURCHASE, Activity.LUXURY_RENOVATION),
    Category.PREMIUM_RENTAL: (Activity.PREMIUM_RENTAL,),
    Category.VEHICLES: (Activity.VEHICLE_PURCHASE,),
    Category.TRAVEL: (Activity.TRAVEL,),
    Category.SCHOOLING: (Activity.PRIVATE_SCHOOL,),
    Category.INSURANCE: (Activity.PREMIUM_INSURANCE,),
    Category.TRAINS: (Activity.HIGH_SPEED_TRAIN, Activity.OTHER_SPENDING),
}

ALL_CATEGORIES: tuple[Category, ...] = tuple(Category)
LISTING_ACTIVITIES = (Activity.LOAN, Activity.BIDDING, Activity.CIVIL_SERVICE,
                      Activity.COMPANY_OFFICER)
EXIT_ACTIVITIES = (Activity.EXIT,)


def mask_of(activities: Iterable[Activity | str]) -> int:
    mask = 0
    for a in activities:
        mask |= 1 << BIT[Activity(a)]
    return mask


def activities_of(mask: int) -> list[Activity]:
    return [a for a, bit in BIT.items() if mask >> bit & 1]


def category_mask(categories: Iterable[Category | str]) -> int:
    return mask_of(a for c in categories for a in CATEGORY_ACTIVITIES[Category(c)])


CONSUMPTION_MASK = category_mask(ALL_CATEGORIES)
LISTING_MASK = mask_of(LISTING_ACTIVITIES)
EXIT_MASK = mask_of(EXIT_ACTIVITIES)
ALL_MASK = mask_of(Activity)


def parse_activities(values: Iterable[str]) -> tuple[list[Activity], list[str]]:
    """Known activities and the unknown names (for a per-request error)."""
    known: list[Activity] = []
    unknown: list[str] = []
    for v in values:
        try:
            known.append(Activity(v))
        except ValueError:
            unknown.append(v)
    return known, unknown
