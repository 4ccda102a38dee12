from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import uscc

from tests.linkage.simulator import NOW, resident_id, resident_ids
from zhixing.linkage import wire
from zhixing.linkage.simulator import holdings

UNITS = ("bank-icbc", "dept-land", "dept-vehicles", "dept-market", "csdc")
REGIONS = ("450103", "450107", "450202", "450305", "450502", "110101", "440305")

residents = st.builds(
    resident_id,
    born=st.dates(min_value=date(1930, 1, 1), max_value=date(2008, 12, 31)),
    sequence=st.integers(min_value=0, max_value=999),
    region=st.sampled_from(REGIONS),
)


def _credit_code(body: str) -> str:
    return body + uscc.calc_check_digit(body)


credit_codes = st.builds(
    _credit_code,
    st.builds(lambda region, org: f"91{region}{org}", st.sampled_from(REGIONS),
              st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=9, max_size=9)))
subjects = st.one_of(residents, credit_codes)


def payload(kind: str, id_number: str, unit: str = "bank-icbc") -> holdings.QueryPayload:
    return holdings.query_payload(kind, unit_code=unit, unit_name="中国工商银行广西分行",
                                  id_number=id_number, subject_name="刘某", now=NOW)


@settings(max_examples=60, deadline=None)
@given(id_number=subjects, unit=st.sampled_from(UNITS), kind=st.sampled_from(wire.QUERY_KINDS))
def test_every_payload_is_valid_on_the_wire_and_repeatable(id_number: str, unit: str,
                                                           kind: str) -> None:
    first = payload(kind, id_number, unit)
    again = payload(kind, id_number, unit)
    assert first == again
    assert first.kind == kind
    # It survives the platform's parsing, as the answer of a result.
    result = wire.Result(schema_version="1", task_id="zt_0000000001", status="answered",
                         reported_at=NOW, payload=first)
    assert wire.Result.model_validate_json(result.model_dump_json()) == result


@settings(max_examples=40, deadline=None)
@given(id_number=residents)
def test_vehicles_have_valid_vins_and_short_plates(id_number: str) -> None:
    for vehicle in holdings.vehicles("dept-vehicles", id_number):
        assert holdings.vin_check_digit(vehicle.vin) == vehicle.vin[8]
        assert not set(vehicle.vin) & set("IOQ")
        assert vehicle.plate_number.startswith("桂") and "·" in vehicle.plate_number
        assert len(vehicle.plate_number) <= 16


def test_a_known_vin_checks() -> None:
    assert holdings.vin_check_digit("1M8GDM9AXKP042788") == "X"  # the textbook example


@settings(max_examples=40, deadline=None)
@given(id_number=subjects)
def test_credit_codes_in_business_roles_are_valid(id_number: str) -> None:
    for role in holdings.business_roles("dept-market", id_number):
        assert role.credit_code is None or wire.uscc_valid(role.credit_code)
        assert (role.role == "shareholder") == (role.share_percent is not None)


def test_about_forty_percent_hold_nothing_at_a_bank() -> None:
    ids = [n for n, _ in zip(resident_ids(), range(3000), strict=False)]
    empty = sum(not holdings.deposit_accounts("bank-icbc", "工行", n) for n in ids)
    assert 0.35 < empty / len(ids) < 0.45


def test_account_numbers_are_unique_per_unit_and_stable() -> None:
    ids = [n for n, _ in zip(resident_ids(), range(3000), strict=False)]
    numbers = [a.account_number for n in ids
               for a in holdings.deposit_accounts("bank-icbc", "工行", n)]
    assert len(numbers) == len(set(numbers))
    assert numbers == [a.account_number for n in ids
                       for a in holdings.deposit_accounts("bank-icbc", "工行", n)]
    # Another bank has other numbers for the same people.
    other = {a.account_number
             for n in ids for a in holdings.deposit_accounts("bank-ccb", "建行", n)}
    assert not other & set(numbers)


def test_accounts_look_like_a_banks() -> None:
    ids = [n for n, _ in zip(resident_ids(), range(2000), strict=False)]
    accounts = [a for n in ids for a in holdings.deposit_accounts("bank-icbc", "工行", n)]
    assert {a.currency for a in accounts} == {"CNY"}
    assert {a.account_type for a in accounts} == {"demand", "time", "wealth_product"}
    assert any(a.balance_fen == 0 for a in accounts)
    assert max(a.balance_fen for a in accounts) <= 50_000_000
    assert max(len(holdings.deposit_accounts("bank-icbc", "工行", n)) for n in ids) == 3


def test_lodging_stays_are_recent_and_agree_between_queries() -> None:
    ids = [n for n, _ in zip(resident_ids(), range(300), strict=False)]
    later = NOW + timedelta(days=30)
    some = 0
    for number in ids:
        now_stays = holdings.stays("dept-lodging", number, NOW)
        later_stays = holdings.stays("dept-lodging", number, later)
        some += bool(now_stays)
        for stay in now_stays:
            assert NOW - timedelta(days=90) <= stay.check_in_at <= NOW
        # Both queries see the same stays where their windows overlap (a guest still checked
        # in at the first may have checked out by the second).
        start = later - timedelta(days=90)
        assert [s.check_in_at for s in now_stays if s.check_in_at >= start] == [
            s.check_in_at for s in later_stays if s.check_in_at <= NOW]
    assert some > 50


def test_household_and_marriage_registries_tell_the_same_story() -> None:
    checked = 0
    for number in (n for n, _ in zip(resident_ids(), range(400), strict=False)):
        marriage = holdings.marriage_record(number)
        household = holdings.household_record("dept-hukou", number, "刘某")
        assert marriage is not None
        if household is None or marriage.status != "married":
            continue
        spouses = [m for m in household.members if m.relation == "配偶"]
        assert [(m.name, m.id_number) for m in spouses] == [
            (marriage.spouse_name, marriage.spouse_id_number)]
        assert marriage.spouse_id_number is not None
        assert wire.ric_valid(marriage.spouse_id_number)
        checked += 1
    assert checked > 50


def test_organisations_have_no_family_and_no_stays() -> None:
    code = _credit_code("91450103MA5KX2P3Y")
    assert holdings.household_record("dept-hukou", code, None) is None
    assert holdings.marriage_record(code) is None
    assert holdings.stays("dept-lodging", code, NOW) == []


def test_assets_are_recognised_by_their_references() -> None:
    number = next(n for n in resident_ids() if holdings.vehicles("dept-vehicles", n)
                  and holdings.properties("dept-land", n))
    vehicle = holdings.vehicles("dept-vehicles", number)[0]
    prop = holdings.properties("dept-land", number)[0]
    for reference in (vehicle.plate_number, vehicle.plate_number.replace("·", ""), vehicle.vin):
        assert holdings.asset_held("vehicle", reference, unit_code="dept-vehicles",
                                   id_number=number)
    assert holdings.asset_held("real_estate", prop.certificate_number, unit_code="dept-land",
                               id_number=number)
    assert not holdings.asset_held("vehicle", "桂A·00000", unit_code="dept-vehicles",
                                   id_number=number)
    assert holdings.asset_held("movable", "挖掘机一台", unit_code="dept-vehicles",
                               id_number=number)


def test_an_unknown_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="not a query kind"):
        payload("freeze", resident_id())
