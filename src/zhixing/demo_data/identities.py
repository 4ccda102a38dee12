"""Valid identity numbers for demo data, built from parts that agree (RULES.md, Identifiers):
a region code in use in the birth year, a real birth date, the right check character."""

from __future__ import annotations

import random
from datetime import date, timedelta
from functools import cache

from stdnum.cn import ric, uscc

from zhixing.courts.service import load_reference_data


@cache
def guangxi_county_codes() -> tuple[str, ...]:
    """Current county-level division codes of Guangxi, from the court reference data."""
    return tuple(r["division_code"] for r in load_reference_data() if r["level"] == "basic")


def region_valid_in(code: str, year: int) -> bool:
    probe = f"{code}{year:04d}0101001"
    try:
        ric.get_birth_place(probe + ric.calc_check_digit(probe + "0"))
    except Exception:
        return False
    return True


def resident_id(rng: random.Random, *, region: str | None = None, born: date | None = None,
                sex: str | None = None) -> str:
    """An 18-digit resident ID whose region code was in use in the birth year."""
    for _ in range(100):
        code = region or rng.choice(guangxi_county_codes())
        birth = born or date(1955, 1, 1) + timedelta(days=rng.randrange(0, 365 * 48))
        if region_valid_in(code, birth.year):
            break
        region = None  # try another region for this birth year
    else:
        raise RuntimeError("no region code valid for the birth year")
    seq = rng.randrange(0, 500) * 2 + (1 if (sex or rng.choice("MF")) == "M" else 0)
    body = f"{code}{birth:%Y%m%d}{seq:03d}"
    return body + ric.calc_check_digit(body + "0")


USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def credit_code(rng: random.Random, *, region: str | None = None) -> str:
    """A unified social credit code: 91 (enterprise, company) + region + org code + check."""
    code = region or rng.choice(guangxi_county_codes())
    org = "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(9))
    body = f"91{code}{org}"
    return body + uscc.calc_check_digit(body)
