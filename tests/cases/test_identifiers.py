from __future__ import annotations

import random
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import ric

from zhixing.cases.identifiers import (
    check_credit_code,
    check_identity,
    check_old_resident_id,
    check_org_code,
    check_resident_id,
    masked,
)
from zhixing.cases.models import IdKind
from zhixing.cases.service import today
from zhixing.core.errors import ValidationFailed
from zhixing.demo_data.identities import credit_code, resident_id


def _code(exc: pytest.ExceptionInfo[ValidationFailed]) -> str:
    return exc.value.code


class TestResidentId:
    def test_valid_number(self) -> None:
        number = resident_id(random.Random(1), sex="F")
        checked = check_resident_id(number)
        assert checked.number == number and checked.sex == "F" and checked.birth_date
        assert not checked.region_unverified

    def test_lower_case_x_is_normalised(self) -> None:
        rng = random.Random(3)
        number = next(n for n in (resident_id(rng) for _ in range(500)) if n.endswith("X"))
        assert check_resident_id(number.lower()).number == number

    @pytest.mark.parametrize(("raw", "code"), [
        ("45010319900307", "invalid_id_length"),
        ("4501031990030A0011", "invalid_id_format"),
        ("450103199002300012", "invalid_id_checksum"),
    ])
    def test_hard_rules(self, raw: str, code: str) -> None:
        with pytest.raises(ValidationFailed) as info:
            check_resident_id(raw)
        assert _code(info) == code

    def test_impossible_birth_date_with_right_check_digit(self) -> None:
        body = "45010319900230001"  # 30 February
        with pytest.raises(ValidationFailed) as info:
            check_resident_id(body + ric.calc_check_digit(body + "0"))
        assert _code(info) == "invalid_birth_date"

    def test_future_birth_date(self) -> None:
        born = today() + timedelta(days=40)
        body = f"450103{born:%Y%m%d}001"
        with pytest.raises(ValidationFailed) as info:
            check_resident_id(body + ric.calc_check_digit(body + "0"))
        assert _code(info) == "invalid_birth_date"

    def test_region_not_in_use_is_a_warning_the_officer_confirms(self) -> None:
        # 450181 (Hengzhou City) exists only since 2021: a 1980 birth under it fails the
        # region check, though a court must still record such a number.
        body = "45018119800101001"
        number = body + ric.calc_check_digit(body + "0")
        with pytest.raises(ValidationFailed) as info:
            check_resident_id(number)
        assert _code(info) == "id_region_unconfirmed"
        confirmed = check_resident_id(number, region_confirmed=True)
        assert confirmed.region_unverified

    @given(st.integers(0, 10_000), st.integers(0, 16), st.integers(1, 9))
    def test_any_single_digit_change_is_caught(self, seed: int, pos: int, delta: int) -> None:
        number = resident_id(random.Random(seed))
        changed = number[:pos] + str((int(number[pos]) + delta) % 10) + number[pos + 1:]
        with pytest.raises(ValidationFailed):
            check_resident_id(changed)


class TestOtherIdentifiers:
    def test_old_fifteen_digit_id(self) -> None:
        checked = check_old_resident_id("450103800101003")
        assert checked.kind is IdKind.RIC15 and checked.birth_date and checked.sex == "M"
        with pytest.raises(ValidationFailed):
            check_old_resident_id("450103801301003")

    def test_credit_code(self) -> None:
        code = credit_code(random.Random(5))
        assert check_credit_code(code).number == code
        wrong = code[:-1] + ("0" if code[-1] != "0" else "1")
        with pytest.raises(ValidationFailed) as info:
            check_credit_code(wrong)
        assert _code(info) == "invalid_credit_code_checksum"

    def test_org_code(self) -> None:
        assert check_org_code("D2143569-X").number == "D2143569X"
        with pytest.raises(ValidationFailed):
            check_org_code("D21435691")

    def test_other_documents(self) -> None:
        assert check_identity(IdKind.OTHER, " e12345678 ").number == "E12345678"
        with pytest.raises(ValidationFailed):
            check_identity(IdKind.OTHER, "<script>")

    def test_masking(self) -> None:
        assert masked("45010319900307123X") == "4501**********123X"
        assert masked(None) == "" and masked("1234") == "****"
