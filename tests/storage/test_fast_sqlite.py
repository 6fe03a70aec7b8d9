"""Prebuilt statements on SQLite's driver give what SQLAlchemy gives, in the same transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    delete,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError, NoResultFound

from portside.metadata.engines import SyncConnection, create_sync_read_engine
from portside.metadata.fast_sqlite import StatementPlans, prebuilt

metadata = MetaData()
items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("size", BigInteger, nullable=False),
    Column("hidden", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

NOW = datetime(2026, 11, 28, 17, 40, 1, 123456, tzinfo=UTC)

INSERT = prebuilt(
    items.insert().values(
        name=bindparam("p_name"), size=bindparam("p_size"), hidden=bindparam("p_hidden"), created_at=bindparam("p_now")
    )
)
UPSERT = prebuilt(
    sqlite.insert(items)
    .values(name=bindparam("p_name"), size=bindparam("p_size"), hidden=False, created_at=bindparam("p_now"))
    .on_conflict_do_update(index_elements=[items.c.name], set_={"size": bindparam("p_size")})
)
BY_NAME = prebuilt(select(items).where(items.c.name == bindparam("p_name")))
NAMES_IN = prebuilt(
    select(literal("item").label("kind"), items.c.name)
    .where(items.c.name.in_(bindparam("p_names", expanding=True)))
    .order_by(items.c.name)
)
BOTH_KINDS = prebuilt(
    union_all(
        select(literal("small").label("kind"), items.c.name).where(items.c.size < bindparam("p_limit")),
        select(literal("large").label("kind"), items.c.name).where(items.c.size >= bindparam("p_limit")),
    )
)
GROW = prebuilt(
    update(items)
    .where(items.c.name == bindparam("p_name"))
    .values(size=items.c.size + bindparam("p_by"))
    .returning(items.c.size, items.c.created_at)
)
REMOVE = prebuilt(delete(items).where(items.c.size > bindparam("p_size")))
NOT_PREBUILT = select(items.c.name).where(items.c.size > bindparam("p_size"))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    created = create_sync_read_engine(f"sqlite:///{tmp_path / 'fast.db'}")
    metadata.create_all(created)
    yield created
    created.dispose()


def _run(engine: Engine, plans: StatementPlans | None, work: Any) -> Any:
    async def go() -> Any:
        with engine.connect() as conn:
            conn.begin()
            result = await work(SyncConnection(conn, plans))
            conn.commit()
            return result

    return asyncio.run(go())


def _fill(engine: Engine, plans: StatementPlans | None) -> None:
    async def work(conn: SyncConnection) -> None:
        rows = [{"p_name": f"item-{n}", "p_size": n * 10, "p_hidden": n % 2 == 0, "p_now": NOW} for n in range(1, 6)]
        result = await conn.execute(INSERT, rows)
        assert result.rowcount == 5

    _run(engine, plans, work)


def test_every_prebuilt_statement_gets_a_plan_and_others_do_not(engine: Engine) -> None:
    plans = StatementPlans(engine.dialect)
    for statement in (INSERT, UPSERT, BY_NAME, NAMES_IN, BOTH_KINDS, GROW, REMOVE):
        assert plans.plan_for(statement) is not None, statement
    assert plans.plan_for(NOT_PREBUILT) is None


def test_reads_give_the_same_rows_and_types_as_sqlalchemy(engine: Engine) -> None:
    _fill(engine, StatementPlans(engine.dialect))

    async def read(conn: SyncConnection) -> list[Any]:
        one = (await conn.execute(BY_NAME, {"p_name": "item-2"})).one()
        named = (await conn.execute(NAMES_IN, {"p_names": ["item-4", "item-1", "nope"]})).all()
        kinds = (await conn.execute(BOTH_KINDS, {"p_limit": 30})).all()
        missing = (await conn.execute(BY_NAME, {"p_name": "nope"})).first()
        sizes = (await conn.execute(select(items.c.size).order_by(items.c.id))).scalars().all()
        return [
            tuple(one),
            one.created_at,
            one.hidden,
            [tuple(r) for r in named],
            sorted(map(tuple, kinds)),
            missing,
            sizes,
        ]

    fast = _run(engine, StatementPlans(engine.dialect), read)
    slow = _run(engine, None, read)
    assert fast == slow
    assert fast[1] == NOW.replace(tzinfo=None)  # SQLite keeps naive UTC, as SQLAlchemy returns it
    assert fast[2] is True
    assert fast[3] == [("item", "item-1"), ("item", "item-4")]


def test_writes_returning_and_rowcounts_match_sqlalchemy(engine: Engine) -> None:
    async def write(conn: SyncConnection) -> list[Any]:
        grown = (await conn.execute(GROW, {"p_name": "item-3", "p_by": 5})).one()
        upserted = (await conn.execute(UPSERT, {"p_name": "item-1", "p_size": 99, "p_now": NOW})).rowcount
        removed = (await conn.execute(REMOVE, {"p_size": 40})).rowcount
        left = (await conn.execute(select(items.c.name, items.c.size).order_by(items.c.name))).all()
        return [tuple(grown), upserted, removed, [tuple(row) for row in left]]

    results = []
    for plans in (StatementPlans(engine.dialect), None):
        _run(engine, None, lambda conn: conn.execute(delete(items)))
        _fill(engine, plans)
        results.append(_run(engine, plans, write))
    assert results[0] == results[1]
    assert results[0][0] == (35, NOW.replace(tzinfo=None))


def test_an_empty_in_list_and_a_missing_parameter_fall_back_to_sqlalchemy(engine: Engine) -> None:
    plans = StatementPlans(engine.dialect)
    _fill(engine, plans)
    plan = plans.plan_for(NAMES_IN)
    assert plan is not None

    async def read(conn: SyncConnection) -> Any:
        assert plan.run(conn._conn.connection.dbapi_connection, {"p_names": []}) is None  # type: ignore[arg-type]
        return (await conn.execute(NAMES_IN, {"p_names": []})).all()

    assert _run(engine, plans, read) == []
    insert_plan = plans.plan_for(INSERT)
    assert insert_plan is not None

    async def incomplete(conn: SyncConnection) -> Any:
        return insert_plan.run(conn._conn.connection.dbapi_connection, {"p_name": "x"})  # type: ignore[arg-type]

    assert _run(engine, plans, incomplete) is None


def test_driver_errors_are_sqlalchemys_and_a_rollback_undoes_fast_writes(engine: Engine) -> None:
    plans = StatementPlans(engine.dialect)
    _fill(engine, plans)

    async def duplicate(conn: SyncConnection) -> None:
        await conn.execute(INSERT, {"p_name": "item-1", "p_size": 1, "p_hidden": False, "p_now": NOW})

    with pytest.raises(IntegrityError):
        _run(engine, plans, duplicate)

    async def insert_then_fail(conn: SyncConnection) -> None:
        await conn.execute(INSERT, {"p_name": "fresh", "p_size": 1, "p_hidden": False, "p_now": NOW})
        assert (await conn.execute(BY_NAME, {"p_name": "fresh"})).one().size == 1
        raise RuntimeError("abandon the transaction")

    async def in_transaction() -> None:
        with engine.connect() as conn:
            conn.begin()
            with pytest.raises(RuntimeError):
                await insert_then_fail(SyncConnection(conn, plans))
            conn.rollback()

    asyncio.run(in_transaction())

    async def lookup(conn: SyncConnection) -> Any:
        return (await conn.execute(BY_NAME, {"p_name": "fresh"})).first()

    assert _run(engine, plans, lookup) is None

    async def exactly_one(conn: SyncConnection) -> Any:
        return (await conn.execute(BY_NAME, {"p_name": "fresh"})).one()

    with pytest.raises(NoResultFound):
        _run(engine, plans, exactly_one)
