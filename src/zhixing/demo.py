"""Demo data: who can log in to a fresh demo installation."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.core.actor import SYSTEM
from zhixing.courts import identity
from zhixing.courts.models import User

DEMO_PASSWORD = "zhixing-demo"  # noqa: S105 (printed by `zhixing demo`; demo databases only)


@dataclass(frozen=True)
class DemoUser:
    username: str
    display_name: str
    court_code: str
    roles: tuple[str, ...]
    story: str


DEMO_USERS = (
    DemoUser("admin", "系统管理员", "桂", ("admin",), "region-wide administrator"),
    DemoUser("auditor", "审计员 韦审", "桂", ("auditor",), "region-wide auditor"),
    DemoUser("gx.duty", "值班领导 黄建", "桂", ("duty_leader", "duty_officer"),
             "regional duty leader (Zeng story: roll call)"),
    DemoUser("liuzhou.duty", "值班员 覃敏", "桂02", ("duty_officer",),
             "Liuzhou city center duty officer (Zeng story)"),
    DemoUser("guilin.duty", "值班员 莫林", "桂03", ("duty_officer", "duty_leader"),
             "Guilin city center duty leader (Zeng story)"),
    DemoUser("qixing.bailiff", "法警 蒋武", "桂0305", ("bailiff",),
             "Qixing District bailiff (Zeng story: the seizure)"),
    DemoUser("qingxiu.officer", "执行法官 陆青", "桂0103", ("officer",),
             "Qingxiu District officer (Liu story: the online freeze)"),
    DemoUser("qingxiu.approver", "执行局长 梁正", "桂0103", ("approver", "officer"),
             "Qingxiu District approver (deductions, closures)"),
    DemoUser("liunan.officer", "执行法官 韦南", "桂0204", ("officer",),
             "Liunan District officer (Li story: the dishonest list)"),
)


def seed_users(session: Session) -> int:
    created = 0
    for u in DEMO_USERS:
        if session.scalar(select(User.id).where(User.username == u.username)) is not None:
            continue
        identity.create_user(session, SYSTEM, username=u.username, display_name=u.display_name,
                             court_code=u.court_code, password=DEMO_PASSWORD, roles=list(u.roles))
        created += 1
    return created
