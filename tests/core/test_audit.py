from __future__ import annotations

import itertools

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from zhixing.cli import app as cli_app
from zhixing.core import audit
from zhixing.core.actor import Actor
from zhixing.core.db import session_factory, transaction
from zhixing.core.models import AuditRecord

ACTOR = Actor(kind="user", id="7", name="tester", roles=frozenset({"officer"}), court_id=1,
              client_ip="10.1.2.3")


def _write(n: int, action: str = "test.write") -> None:
    with transaction() as session:
        for i in range(n):
            audit.record(session, ACTOR, action, object_type="thing", object_id=i,
                         purpose="testing", details={"i": i, "名": "刘某"})


def _verify() -> audit.VerifyResult:
    with session_factory()() as session:
        return audit.verify_chain(session)


@pytest.mark.usefixtures("test_db")
class TestChain:
    def test_records_are_chained_in_commit_order(self, db: Session) -> None:
        _write(3)
        _write(2)
        rows = db.scalars(select(AuditRecord).order_by(AuditRecord.seq)).all()
        assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
        assert rows[0].prev_hash == audit.GENESIS_HASH
        for prev, cur in itertools.pairwise(rows):
            assert cur.prev_hash == prev.hash
        assert rows[0].actor_name == "tester" and rows[0].client_ip == "10.1.2.3"
        result = _verify()
        assert result.ok and result.checked == 5 and result.head_hash == rows[-1].hash

    def test_rolled_back_work_leaves_no_record(self, db: Session) -> None:
        with pytest.raises(RuntimeError), transaction() as session:
            audit.record(session, ACTOR, "test.rolled_back")
            raise RuntimeError("boom")
        _write(1)
        actions = db.scalars(select(AuditRecord.action)).all()
        assert actions == ["test.write"]

    def test_altered_record_is_named(self, db: Session) -> None:
        _write(5)
        db.execute(update(AuditRecord).where(AuditRecord.seq == 3).values(actor_name="someone"))
        db.commit()
        result = _verify()
        assert not result.ok
        assert result.first_bad_seq == 3 and "altered" in (result.problem or "")
        assert result.checked == 2

    def test_altered_details_are_detected(self, db: Session) -> None:
        _write(3)
        db.execute(update(AuditRecord).where(AuditRecord.seq == 2).values(details={"i": 99}))
        db.commit()
        assert _verify().first_bad_seq == 2

    def test_removed_record_is_named(self, db: Session) -> None:
        _write(5)
        db.execute(delete(AuditRecord).where(AuditRecord.seq == 2))
        db.commit()
        result = _verify()
        assert not result.ok and result.first_bad_seq == 2 and "missing" in (result.problem or "")

    def test_rehashed_record_breaks_the_next_link(self, db: Session) -> None:
        _write(4)
        rec = db.get(AuditRecord, 2)
        assert rec is not None
        rec.actor_name = "forger"
        rec.hash = audit.compute_hash(rec)  # a forger who recomputes the hash of one record
        db.commit()
        result = _verify()
        assert result.first_bad_seq == 3 and "link" in (result.problem or "")

    def test_empty_chain_is_intact(self) -> None:
        assert _verify().ok


@pytest.mark.usefixtures("test_db")
class TestVerifyCommand:
    def test_exit_codes(self, db: Session) -> None:
        _write(3)
        runner = CliRunner()
        ok = runner.invoke(cli_app, ["audit", "verify"])
        assert ok.exit_code == 0 and "intact: 3 records" in ok.output
        db.execute(update(AuditRecord).where(AuditRecord.seq == 2).values(action="x.y"))
        db.commit()
        bad = runner.invoke(cli_app, ["audit", "verify"])
        assert bad.exit_code == 1
        assert "record 2" in bad.output
        assert db.scalar(select(func.count()).select_from(AuditRecord)) == 3
