"""Customers, phones, notes and caller-ID matching on a real migrated SQLite database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.cli import migrate
from callcenter.db.models import Customer, CustomerPhone
from callcenter.db.session import create_engine, create_sessionmaker
from callcenter.services.customers import (
    TIER_RANK,
    CustomerError,
    CustomerRecord,
    CustomerService,
    extract_caller_id,
    repository,
)
from callcenter.settings import Settings


@pytest_asyncio.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    settings = Settings(data_dir=tmp_path)
    # migrate() runs its own event loop (Alembic's async env): give it a thread.
    assert await asyncio.to_thread(migrate, settings) == 0
    engine = create_engine(settings.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def service(engine: AsyncEngine) -> CustomerService:
    return CustomerService(create_sessionmaker(engine), default_region="GB")


@pytest.mark.asyncio
async def test_create_normalises_phones_and_matches(service: CustomerService) -> None:
    alice = await service.create(
        name=" Alice Smith ",
        company="Acme",
        tier="gold",
        email="alice@example.com",
        phones=["020 7946 0018", "+44 7700 900123", "0044 20 7946 0018"],
    )
    assert alice.name == "Alice Smith"
    assert [p.e164 for p in await service.phones(alice.id)] == ["+442079460018", "+447700900123"]
    [found] = await service.match("+447700900123")
    assert (found.customer_id, found.name, found.company, found.tier, found.email) == (
        alice.id,
        "Alice Smith",
        "Acme",
        "gold",
        "alice@example.com",
    )
    assert found.e164 == "+447700900123"
    assert found.tier_rank == TIER_RANK["gold"]
    assert await service.match("+442079460019") == []


@pytest.mark.asyncio
async def test_several_owners_all_returned_by_tier_then_newest(service: CustomerService) -> None:
    office = "+442079460018"
    old_regular = await service.create(name="Old regular", phones=[office])
    vip = await service.create(name="VIP", tier="vip", phones=[office])
    new_regular = await service.create(name="New regular", phones=[office])
    silver = await service.create(name="Silver", tier="silver", phones=[office])
    await service.create(name="Someone else", tier="vip", phones=["+447700900123"])
    matches = await service.match(office)
    assert [m.customer_id for m in matches] == [vip.id, silver.id, new_regular.id, old_regular.id]
    assert [m.customer_id for m in await service.match(office, limit=2)] == [vip.id, silver.id]


@pytest.mark.asyncio
async def test_match_caller_from_headers(service: CustomerService) -> None:
    bob = await service.create(name="Bob", phones=["07700 900123"])
    caller = extract_caller_id(
        p_asserted_identity=["<sip:+447700900123@carrier.example;user=phone>"],
        from_="<sip:07700900123@carrier.example>;tag=1",
        default_region="GB",
    )
    assert [m.customer_id for m in await service.match_caller(caller)] == [bob.id]
    withheld = extract_caller_id(
        p_asserted_identity=["<sip:+447700900123@carrier.example>"],
        from_="<sip:anonymous@anonymous.invalid>",
        privacy="id",
        default_region="GB",
    )
    assert await service.match_caller(withheld) == []


@pytest.mark.asyncio
async def test_update_fields_and_email_sentinel(service: CustomerService) -> None:
    carol = await service.create(name="Carol", email="carol@example.com")
    changed = await service.update(carol.id, tier="vip", company="Initech")
    assert (changed.tier, changed.company, changed.email) == ("vip", "Initech", "carol@example.com")
    cleared = await service.update(carol.id, email=None)
    assert cleared.email is None
    reread = await service.get(carol.id)
    assert (reread.name, reread.tier, reread.email) == ("Carol", "vip", None)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": ""},
        {"name": "x" * 201},
        {"name": "Dave", "tier": "platinum"},
        {"name": "Dave", "email": "not-an-address"},
        {"name": "Dave", "phones": ["1001"]},
        {"name": "Dave", "phones": ["call me maybe"]},
    ],
)
async def test_create_rejects_bad_input(service: CustomerService, kwargs: dict[str, str]) -> None:
    with pytest.raises(CustomerError):
        await service.create(**kwargs)
    assert await service.match("+442079460018") == []


@pytest.mark.asyncio
async def test_add_and_remove_phones(service: CustomerService) -> None:
    erin = await service.create(name="Erin")
    phone = await service.add_phone(erin.id, "07700 900123", label="mobile")
    assert (phone.e164, phone.label) == ("+447700900123", "mobile")
    # The same number again only relabels it.
    again = await service.add_phone(erin.id, "+447700900123", label="work mobile")
    assert again.id == phone.id
    assert [(p.e164, p.label) for p in await service.phones(erin.id)] == [
        ("+447700900123", "work mobile")
    ]
    [found] = await service.match("+447700900123")
    assert found.label == "work mobile"
    with pytest.raises(CustomerError, match="not a phone number"):
        await service.add_phone(erin.id, "12")
    with pytest.raises(CustomerError, match="no customer"):
        await service.add_phone(999_999, "+447700900123")
    assert await service.remove_phone(erin.id, "07700900123") is True
    assert await service.remove_phone(erin.id, "07700900123") is False
    assert await service.remove_phone(erin.id, "garbage") is False
    assert await service.match("+447700900123") == []


@pytest.mark.asyncio
async def test_notes_newest_first(service: CustomerService) -> None:
    frank = await service.create(name="Frank")
    await service.add_note(frank.id, "Prefers e-mail", author="agent1")
    await service.add_note(frank.id, "Invoice 42 charged twice", kind="complaint", author="agent2")
    await service.add_note(frank.id, "Refund case opened", kind="case")
    notes = await service.notes(frank.id)
    assert [(n.kind, n.text, n.author) for n in notes] == [
        ("case", "Refund case opened", None),
        ("complaint", "Invoice 42 charged twice", "agent2"),
        ("note", "Prefers e-mail", "agent1"),
    ]
    assert all(n.created_at.tzinfo is not None for n in notes)
    assert len(await service.notes(frank.id, limit=1)) == 1
    for bad in [{"text": ""}, {"text": "x", "kind": "rant"}, {"text": "x", "author": ""}]:
        with pytest.raises(CustomerError):
            await service.add_note(frank.id, **bad)
    with pytest.raises(CustomerError, match="no customer"):
        await service.add_note(424242, "lost")


@pytest.mark.asyncio
async def test_bulk_import(service: CustomerService) -> None:
    records = [
        CustomerRecord(
            name=f"Customer {i}",
            tier=("regular", "silver", "gold", "vip")[i % 4],
            phones=[f"+4420794{i:05d}", f"07700 9{i:05d}", f"+4420794{i:05d}", "bad"],
        )
        for i in range(1234)
    ]
    result = await service.bulk_import(records, batch_size=500)
    assert (result.customers, result.phones, result.rejected_phones) == (1234, 2468, 1234)
    [found] = await service.match("+447700900077")
    assert (found.name, found.tier) == ("Customer 77", "silver")


@pytest.mark.asyncio
async def test_bulk_import_is_all_or_nothing(service: CustomerService) -> None:
    records = [CustomerRecord(name="ok", phones=["+447700900001"]), CustomerRecord(name="")]
    with pytest.raises(CustomerError):
        await service.bulk_import(records, batch_size=1)
    assert await service.match("+447700900001") == []


@pytest.mark.asyncio
async def test_schema_enforces_tier_uniqueness_and_cascade(engine: AsyncEngine) -> None:
    sessions = create_sessionmaker(engine)
    with pytest.raises(IntegrityError, match="ck_customers_tier"):
        async with sessions.begin() as session:
            session.add(Customer(name="x", tier="platinum"))
    async with sessions.begin() as session:
        customer = Customer(name="y")
        session.add(customer)
        await session.flush()
        session.add(CustomerPhone(customer_id=customer.id, e164="+447700900123"))
    with pytest.raises(IntegrityError, match="UNIQUE"):
        async with sessions.begin() as session:
            session.add(CustomerPhone(customer_id=customer.id, e164="+447700900123"))
    async with sessions.begin() as session:
        await session.delete(await session.get(Customer, customer.id))
    async with engine.connect() as connection:
        left = await connection.scalar(text("SELECT count(*) FROM customer_phones"))
    assert left == 0


@pytest.mark.asyncio
async def test_lookup_uses_the_e164_index(engine: AsyncEngine) -> None:
    # The plan of the very statement `match` runs: a search on the index, never a table scan.
    compiled = repository._MATCH.compile(dialect=engine.dialect)
    params = compiled.construct_params({"e164": "+447700900123", "limit": 20})
    assert compiled.positiontup is not None
    args = tuple(params[name] for name in compiled.positiontup)
    async with engine.connect() as connection:
        plan = (await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", args)).all()
    details = " | ".join(str(row[-1]) for row in plan)
    assert "SEARCH customer_phones USING INDEX ix_customer_phones_e164" in details, details
    assert "SCAN customer_phones" not in details, details
