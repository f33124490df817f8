"""The demo that `make run` starts with: agents, a supervisor, QA and an admin, customers.

Owns the demo's people and how to seed them idempotently: a user that exists is left alone (its
passwords are not reset), a customer whose first number already belongs to a customer of the
same name is left alone, so a second run changes nothing and says so. One exception: a demo
user seeded before users had web passwords, recognised by its demo SIP password, is given its
web password. The agents match the demo queues in `ivr/queues.yaml`; the numbers are in Ofcom's
ranges for drama (01632 960xxx, 07700 900xxx), which never reach a real person, written with +44
so that any default region reads them. Must not know: the CLI, settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..db.models import User
from ..sip.digest import compute_ha1
from .accounts import AccountService
from .customers import CustomerService, normalize_number
from .qa import QaConflict, QaServices
from .subscribers import add_user


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoUser:
    username: str
    role: str
    # Both the SIP password and the web password: one thing to remember in a demo.
    sip_password: str
    display_name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoCustomer:
    name: str
    company: str
    tier: str
    email: str
    phones: tuple[str, ...]
    note: str


# Documented in README.md; anyone who reads it can register as these users: a demo only.
DEMO_USERS: Final = (
    DemoUser(username="amy", role="agent", sip_password="demo-amy-1", display_name="Amy Agent"),
    DemoUser(username="ben", role="agent", sip_password="demo-ben-1", display_name="Ben Agent"),
    DemoUser(username="cara", role="agent", sip_password="demo-cara-1", display_name="Cara Agent"),
    DemoUser(
        username="sam",
        role="supervisor",
        sip_password="demo-sam-1",
        display_name="Sam Supervisor",
    ),
    DemoUser(username="quinn", role="qa", sip_password="demo-quinn-1", display_name="Quinn QA"),
    DemoUser(username="ada", role="admin", sip_password="demo-ada-1", display_name="Ada Admin"),
)

DEMO_CUSTOMERS: Final = (
    DemoCustomer(
        name="Alice Archer",
        company="",
        tier="regular",
        email="alice@example.com",
        phones=("+44 1632 960001",),
        note="Asked about opening hours last week.",
    ),
    DemoCustomer(
        name="Bob Brown",
        company="Brown Builders",
        tier="silver",
        email="bob@example.com",
        phones=("+44 1632 960002", "+44 7700 900002"),
        note="Prefers a call back on the mobile.",
    ),
    DemoCustomer(
        name="Carol Chen",
        company="Chen Consulting",
        tier="gold",
        email="carol@example.org",
        phones=("+44 7700 900003",),
        note="Renewal due next month.",
    ),
    DemoCustomer(
        name="Dev Desai",
        company="Example Bank",
        tier="vip",
        email="dev.desai@example.net",
        phones=("+44 1632 960004",),
        note="Key account: offer the account manager first.",
    ),
    DemoCustomer(
        name="Eve Evans",
        company="",
        tier="regular",
        email="eve@example.com",
        phones=("+44 7700 900005",),
        note="Reported a billing error; case open.",
    ),
)


# The QA demo: a scorecard reviewers fill in, and the queues quinn (qa) reviews.
DEMO_SCORECARD: Final = {
    "name": "Customer call",
    "description": "The standard review of an inbound customer call.",
    "questions": [
        {"id": "greeting", "text": "Greeted the caller and gave their name", "weight": 1},
        {"id": "identity", "text": "Confirmed the caller's identity before account details",
         "weight": 3},
        {"id": "listening", "text": "Listened and understood the need", "kind": "scale", "max": 5,
         "weight": 2},
        {"id": "resolution", "text": "Resolved the issue or set a clear next step", "weight": 3},
        {"id": "tone", "text": "Courteous, calm and clear throughout", "kind": "scale", "max": 5,
         "weight": 2},
        {"id": "closing", "text": "Summarised and closed the call properly", "weight": 1},
    ],
}  # fmt: skip
DEMO_QA_QUEUES: Final = {"quinn": ("support", "sales")}


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoSeeded:
    """What `seed_demo` did: names created now, and names that were there already."""

    users_created: tuple[str, ...]
    users_existing: tuple[str, ...]
    customers_created: tuple[str, ...]
    customers_existing: tuple[str, ...]
    # Existing demo users that had no web password and got one now (an older demo database).
    web_passwords_set: tuple[str, ...] = ()
    scorecard_created: bool = False

    @property
    def changed(self) -> bool:
        return bool(
            self.users_created
            or self.customers_created
            or self.web_passwords_set
            or self.scorecard_created
        )


async def seed_demo(
    sessions: async_sessionmaker[AsyncSession],
    *,
    realm: str,
    default_region: str,
    accounts: AccountService | None = None,
) -> DemoSeeded:
    """Create the demo users (SIP passwords under `realm`, web passwords through `accounts`)
    and customers that are missing."""
    accounts = accounts if accounts is not None else AccountService(sessions)
    users_created: list[str] = []
    users_existing: list[str] = []
    needs_web_password: list[DemoUser] = []
    web_passwords_set: list[str] = []
    async with sessions.begin() as session:
        for user in DEMO_USERS:
            found = await session.scalar(select(User).where(User.username == user.username))
            if found is not None:
                users_existing.append(user.username)
                # Only the demo's own user (its SIP password is still the demo's): a user of
                # that name made by an operator must not get a password printed in README.md.
                demo_ha1 = compute_ha1(user.username, realm, user.sip_password, "MD5")
                if found.password_hash is None and found.sip_ha1_md5 == demo_ha1:
                    needs_web_password.append(user)
                    web_passwords_set.append(user.username)
                continue
            needs_web_password.append(user)
            await add_user(
                session,
                username=user.username,
                role=user.role,
                realm=realm,
                sip_password=user.sip_password,
                display_name=user.display_name,
            )
            users_created.append(user.username)
    # After the users' transaction: set_password opens its own.
    for user in needs_web_password:
        await accounts.set_password(user.username, user.sip_password)

    service = CustomerService(sessions, default_region=default_region)
    customers_created: list[str] = []
    customers_existing: list[str] = []
    for customer in DEMO_CUSTOMERS:
        e164 = normalize_number(customer.phones[0], default_region)
        matches = await service.match(e164) if e164 is not None else []
        if any(m.name == customer.name for m in matches):
            customers_existing.append(customer.name)
            continue
        created = await service.create(
            name=customer.name,
            company=customer.company,
            tier=customer.tier,
            email=customer.email,
            phones=customer.phones,
        )
        await service.add_note(created.id, customer.note)
        customers_created.append(customer.name)

    qa = QaServices.over(sessions)
    scorecard_created = False
    if not await qa.scorecards.list(retired=True):
        try:
            await qa.scorecards.create(
                name=str(DEMO_SCORECARD["name"]),
                description=str(DEMO_SCORECARD["description"]),
                questions=DEMO_SCORECARD["questions"],
                by="demo",
            )
            scorecard_created = True
        except QaConflict:  # made meanwhile by another seeding
            pass
    for reviewer, queues in DEMO_QA_QUEUES.items():
        if reviewer in users_created:
            await qa.assignments.assign(reviewer, queues)
    return DemoSeeded(
        users_created=tuple(users_created),
        users_existing=tuple(users_existing),
        customers_created=tuple(customers_created),
        customers_existing=tuple(customers_existing),
        web_passwords_set=tuple(web_passwords_set),
        scorecard_created=scorecard_created,
    )
