from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from zhixing.cli import app as cli_app
from zhixing.core import audit
from zhixing.core.actor import Actor
from zhixing.core.db import session_factory, transaction
from zhixing.core.models import AuditHead, AuditRecord

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
        rec.body_digest = audit.body_digest(rec)  # a forger who recomputes one record
        rec.hash = audit.expected_hash(rec)
        db.commit()
        result = _verify()
        assert result.first_bad_seq == 3 and "link" in (result.problem or "")

    def test_empty_chain_is_intact(self) -> None:
        assert _verify().ok

    def test_records_removed_from_the_end_disagree_with_the_head(self, db: Session) -> None:
        _write(4)
        db.execute(delete(AuditRecord).where(AuditRecord.seq >= 3))
        db.commit()
        result = _verify()
        assert not result.ok and result.checked == 2 and result.first_bad_seq == 3
        assert "head names record 4" in (result.problem or "")

    def test_a_record_that_lost_its_digest_is_named(self, db: Session) -> None:
        _write(3)
        rec = db.get(AuditRecord, 2)
        assert rec is not None
        rec.body_digest = None  # passed off as a record of the old rule
        rec.hash = audit.legacy_hash(rec)
        db.commit()
        assert _verify().first_bad_seq == 2

    def test_records_of_the_old_rule_verify_and_the_chain_goes_on(self, db: Session) -> None:
        """Records chained before 0014 (hash over fields and link, no digest) stay valid, and
        new records link to the newest of them."""
        prev = audit.GENESIS_HASH
        for seq in (1, 2):
            rec = AuditRecord(seq=seq, occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
                              actor_kind="system", action="old.write", details={"n": seq},
                              prev_hash=prev)
            rec.hash = audit.legacy_hash(rec)
            db.add(rec)
            prev = rec.hash
        head = db.get(AuditHead, 1)
        assert head is not None
        head.seq, head.hash = 2, prev
        db.commit()
        _write(2)
        rows = db.scalars(select(AuditRecord).order_by(AuditRecord.seq)).all()
        assert [r.body_digest is None for r in rows] == [True, True, False, False]
        assert rows[2].prev_hash == prev
        result = _verify()
        assert result.ok and result.checked == 4 and result.head_hash == rows[-1].hash

    def test_the_database_computes_the_same_link_as_the_verifier(self, db: Session) -> None:
        _write(3)
        for rec in db.scalars(select(AuditRecord)):
            assert rec.body_digest == audit.body_digest(rec)
            assert rec.hash == audit.link_hash(rec.prev_hash, rec.seq, rec.body_digest)
        head = db.get(AuditHead, 1)
        assert head is not None and (head.seq, head.hash) == (3, rec.hash)


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


@pytest.mark.usefixtures("test_db")
def test_concurrent_commits_make_one_unbroken_chain(db: Session) -> None:
    """Eight writers at once, each committing audited transactions: every record is in the
    chain once, in commit order, and the head names the newest."""
    from concurrent.futures import ThreadPoolExecutor

    def writer(_: int) -> None:
        for _ in range(5):
            _write(2)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(writer, range(8)))
    result = _verify()
    assert result.ok and result.checked == 8 * 5 * 2
    head = db.get(AuditHead, 1)
    assert head is not None and head.seq == 80 and head.hash == result.head_hash
