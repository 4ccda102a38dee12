from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.cn import ric

from zhixing.core.db import transaction
from zhixing.courts.models import CommandCenter, Court
from zhixing.courts.service import (
    chain_of_command,
    get_by_code,
    load_reference_data,
    subordinate_court_ids,
    sync_courts,
)


class TestReferenceData:
    def test_three_levels_with_the_expected_counts(self) -> None:
        rows = load_reference_data()
        assert Counter(r["level"] for r in rows) == {"high": 1, "intermediate": 14, "basic": 111}

    def test_codes_follow_the_division_codes(self) -> None:
        for row in load_reference_data():
            div = row["division_code"]
            if row["level"] == "high":
                assert (row["code"], div) == ("桂", "450000")
            elif row["level"] == "intermediate":
                assert row["code"] == "桂" + div[2:4] and div.endswith("00")
                assert row["parent"] == "桂"
            else:
                assert row["code"] == "桂" + div[2:]
                assert row["parent"] == "桂" + div[2:4]

    def test_parents_precede_children_and_exist(self) -> None:
        seen: set[str] = set()
        for row in load_reference_data():
            if row["parent"]:
                assert row["parent"] in seen
            seen.add(row["code"])

    def test_the_seed_story_courts_exist(self) -> None:
        by_code = {r["code"]: r for r in load_reference_data()}
        assert by_code["桂0103"]["name_zh"] == "南宁市青秀区人民法院"  # Liu story
        assert by_code["桂0204"]["name_zh"] == "柳州市柳南区人民法院"  # Li story
        assert by_code["桂0305"]["name_zh"] == "桂林市七星区人民法院"  # Zeng story
        assert by_code["桂02"]["name_zh"] == "柳州市中级人民法院"

    def test_division_codes_are_known_to_stdnum(self) -> None:
        # Every basic court's division code is a region a resident ID number can carry.
        for row in load_reference_data():
            if row["level"] == "basic":
                assert ric.get_birth_place(row["division_code"] + "20240307001X")

    def test_coordinates_lie_in_guangxi(self) -> None:
        for row in load_reference_data():
            assert 104.2 < row["lon"] < 112.2 and 20.8 < row["lat"] < 26.5, row["code"]


@pytest.mark.usefixtures("test_db")
class TestHierarchy:
    def test_loaded_with_a_command_center_each(self, db: Session) -> None:
        assert len(db.scalars(select(Court)).all()) == 126
        assert len(db.scalars(select(CommandCenter)).all()) == 126
        qingxiu = get_by_code(db, "桂0103")
        assert qingxiu is not None
        assert qingxiu.command_center.name_zh == "南宁市青秀区人民法院执行指挥中心"
        assert qingxiu.path == "/桂/桂01/桂0103/"

    def test_sync_is_idempotent(self) -> None:
        with transaction() as session:
            result = sync_courts(session)
        assert (result.created, result.updated) == (0, 0)

    def test_subordinates(self, db: Session) -> None:
        high, nanning, qingxiu = (get_by_code(db, c) for c in ("桂", "桂01", "桂0103"))
        assert high and nanning and qingxiu
        assert len(subordinate_court_ids(db, high.id)) == 126
        nanning_reach = subordinate_court_ids(db, nanning.id)
        assert qingxiu.id in nanning_reach and high.id not in nanning_reach
        assert subordinate_court_ids(db, qingxiu.id) == {qingxiu.id}

    def test_chain_of_command(self, db: Session) -> None:
        qixing = get_by_code(db, "桂0305")
        assert qixing is not None
        assert [c.code for c in chain_of_command(db, qixing)] == ["桂", "桂03", "桂0305"]

    def test_unknown_parent_is_refused(self) -> None:
        bad = [{"code": "桂9901", "division_code": "459901", "name_zh": "x", "name_en": "x",
                "level": "basic", "parent": "桂99"}]
        with pytest.raises(ValueError, match="parent"), transaction() as session:
            sync_courts(session, bad)
