"""Demo data of the command center: a duty roster at all 126 centers (the named demo users on
duty at their centers, generated duty staff elsewhere), and a few open and closed requests."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta

from faker import Faker
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.command import assistance
from zhixing.command.models import (
    AssistanceRequest,
    DutyMember,
    DutyRole,
    DutyShift,
    RequestKind,
    ShiftPattern,
    Urgency,
)
from zhixing.command.network import CenterRef, Network
from zhixing.command.schemas import RequestIn, ResultIn
from zhixing.core import audit
from zhixing.core.actor import SYSTEM, Actor
from zhixing.core.clock import CHINA_TZ, utcnow
from zhixing.core.security import hash_password
from zhixing.courts import identity
from zhixing.courts.models import Role, User, UserRole

DAYS_BACK = 1
DAYS_AHEAD = 7
HANDOVER_HOUR = 8


def duty_username(court_code: str, role: str) -> str:
    """duty.0305 / lead.0305 for 桂0305; duty.gx / lead.gx for the high court."""
    digits = court_code.removeprefix("桂") or "gx"
    return f"{'lead' if role == 'leader' else 'duty'}.{digits}"


def _staff(session: Session, network: Network, fake: Faker) -> dict[int, dict[str, User]]:
    """A duty leader and a duty officer per center: the named demo users where they serve,
    generated users (one password hash for all) elsewhere."""
    from zhixing.demo import DEMO_PASSWORD  # here: the demo command imports this module

    users = session.scalars(select(User).where(User.is_active.is_(True))).all()
    roles: dict[int, set[str]] = {}
    for uid, role in session.execute(select(UserRole.user_id, UserRole.role)).tuples():
        roles.setdefault(uid, set()).add(role)
    staff: dict[int, dict[str, User]] = {c.id: {} for c in network.centers.values()}
    for u in sorted(users, key=lambda u: u.id):
        center = network.center_of_court.get(u.court_id)
        if center is None:
            continue
        have = roles.get(u.id, set())
        if "duty_leader" in have:
            staff[center.id].setdefault("leader", u)
        elif "duty_officer" in have:
            staff[center.id].setdefault("officer", u)
    password_hash: str | None = None
    taken = {u.username for u in users}
    for center in network.centers.values():
        for slot, role in (("leader", Role.DUTY_LEADER), ("officer", Role.DUTY_OFFICER)):
            if slot in staff[center.id]:
                continue
            username = duty_username(center.code, slot)
            if username in taken:
                continue
            password_hash = password_hash or hash_password(DEMO_PASSWORD)
            title = "值班领导" if slot == "leader" else "值班员"
            user = User(username=username, display_name=f"{title} {fake.name()}",
                        court_id=center.court_id, password_hash=password_hash, is_active=True,
                        created_at=utcnow(), failed_logins=0)
            user.role_rows = [UserRole(role=role.value)]
            session.add(user)
            session.flush()
            audit.record(session, SYSTEM, "user.created", object_type="user",
                         object_id=user.id, court_id=center.court_id,
                         details={"username": username, "roles": [role.value], "demo": True})
            staff[center.id][slot] = user
    return staff


def _roster(session: Session, center: CenterRef, staff: dict[str, User], fake: Faker,
            rng: random.Random) -> int:
    today = utcnow().astimezone(CHINA_TZ).date()
    start = datetime.combine(today - timedelta(days=DAYS_BACK), time(HANDOVER_HOUR), CHINA_TZ)
    plate = f"桂{chr(ord('A') + rng.randrange(14))}·J{rng.randrange(1000, 9999)}"
    standby = [fake.name() for _ in range(2)]
    made = 0
    for i in range(DAYS_BACK + DAYS_AHEAD):
        begin = start + timedelta(days=i)
        shift = DutyShift(center_id=center.id, starts_at=begin, ends_at=begin + timedelta(
            days=1), pattern=ShiftPattern.FIXED, team=None, phone=center.duty_phone,
            vehicles=f"{plate}（指挥车）", created_at=utcnow())
        session.add(shift)
        session.flush()
        for slot, role in (("leader", DutyRole.LEADER), ("officer", DutyRole.OFFICER)):
            user = staff.get(slot)
            if user is not None:
                session.add(DutyMember(shift_id=shift.id, role=role, user_id=user.id,
                                       name=user.display_name))
        session.add(DutyMember(shift_id=shift.id, role=DutyRole.STANDBY, user_id=None,
                               name=f"法警 {standby[i % 2]}"))
        made += 1
    return made


def _actor(session: Session, user: User) -> Actor:
    return identity.actor_for(session, user, None)


def _requests(session: Session, network: Network, staff: dict[int, dict[str, User]]) -> int:
    def who(code: str) -> Actor:
        center = network.by_code(code, "court")
        user = staff[center.id].get("leader") or staff[center.id]["officer"]
        return _actor(session, user)

    made = 0
    # Closed: the region asked Guilin to serve a document in Yangshuo; done with the hops.
    req = assistance.open_request(session, who("桂"), network, RequestIn(
        kind=RequestKind.SERVE_DOCUMENT, urgency=Urgency.NORMAL, place_court_code="桂0321",
        place="阳朔县阳朔镇西街", subject="向被执行人送达执行通知书",
        details="被执行人住所地在阳朔县，请协助送达。", to_court_code="桂03"))
    hop = assistance.acknowledge(session, who("桂03"), network, req.current_hop_id or 0)
    hop = assistance.forward(session, who("桂03"), network, hop.id, None)
    assistance.acknowledge(session, who("桂0321"), network, hop.id)
    assistance.report_result(session, who("桂0321"), network, req.id, ResultIn(
        outcome="done", summary="已直接送达被执行人本人，送达回证已签收。"))
    made += 1
    # Open: Nanning asks Liuzhou (a peer city) to verify a lead in Liunan.
    assistance.open_request(session, who("桂01"), network, RequestIn(
        kind=RequestKind.VERIFY_LEAD, urgency=Urgency.NORMAL, place_court_code="桂0204",
        place="柳南区航银路某仓库", subject="核查被执行人存放货物的线索",
        details="申请执行人反映被执行人在柳南区租用仓库存放货物，请协助核查。",
        to_court_code="桂02"))
    made += 1
    # Open, urgent: Hechi asks the region to find a debtor seen in Nanning.
    assistance.open_request(session, who("桂12"), network, RequestIn(
        kind=RequestKind.FIND_PERSON, urgency=Urgency.URGENT, place_court_code="桂0103",
        place="青秀区民族大道某商场", subject="查找被执行人覃某",
        details="被执行人覃某今日在青秀区出现，请协助查找并传唤。"))
    made += 1
    return made


def seed_command(session: Session, *, seed: int = 2014) -> dict[str, int]:
    """Rosters for all 126 centers and a few requests. Idempotent: does nothing when any
    shift exists. Returns what it made."""
    if session.scalar(select(DutyShift.id).limit(1)) is not None:
        return {"shifts": 0, "requests": 0}
    network = Network(session)
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    staff = _staff(session, network, fake)
    shifts = sum(_roster(session, c, staff[c.id], fake, rng)
                 for c in network.in_reach(frozenset(network.center_of_court)))
    requests = 0
    if session.scalar(select(AssistanceRequest.id).limit(1)) is None:
        requests = _requests(session, network, staff)
    session.flush()
    return {"shifts": shifts, "requests": requests}
