"""The SQL adapter reports the store's failures as the port's errors, never the driver's:
StoreUnavailable for a server it cannot reach, StoreBusy for each bounded wait that ran out."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine

from adapters.sql import SqlUnitOfWork, create_engine_for
from adapters.sql.engine import Waits
from application.ports import StoreBusy, StoreUnavailable
from tests.contract.repository_contract import added, single

EngineWith = Callable[[Waits], Engine]


def _closed_port() -> int:
    # Bound then released: nothing listens there, so a connection is refused at once.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def engine_with(pg_url: str) -> Iterator[EngineWith]:
    engines: list[Engine] = []

    def make(waits: Waits) -> Engine:
        engines.append(create_engine_for(pg_url, pool_size=1, max_overflow=0, waits=waits))
        return engines[-1]

    yield make
    for engine in engines:
        engine.dispose()


def test_a_server_that_cannot_be_reached_is_store_unavailable() -> None:
    engine = create_engine_for(f"postgresql://root@127.0.0.1:{_closed_port()}/taskman")
    uow = SqlUnitOfWork(engine)
    try:
        with pytest.raises(StoreUnavailable) as raised:
            uow.ping()
        assert not isinstance(raised.value, StoreBusy)
        with pytest.raises(StoreUnavailable), uow:
            uow.tasks.get(1)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "waits", [Waits(lock=0.05), Waits(statement=0.05)], ids=["lock-timeout", "statement-timeout"]
)
def test_a_wait_on_a_locked_row_that_ran_out_is_store_busy_and_the_unit_begins_again(
    pg_uow: SqlUnitOfWork, engine_with: EngineWith, waits: Waits
) -> None:
    (task_id,) = added(pg_uow, single())
    waiting = SqlUnitOfWork(engine_with(waits))
    with pg_uow:
        assert pg_uow.tasks.get_for_update(task_id) is not None
        with pytest.raises(StoreBusy), waiting:
            waiting.tasks.get_for_update(task_id)
    with waiting:
        assert waiting.tasks.get_for_update(task_id) is not None


def test_a_pool_with_no_connection_free_in_time_is_store_busy(
    pg_uow: SqlUnitOfWork, engine_with: EngineWith
) -> None:
    (task_id,) = added(pg_uow, single())
    engine = engine_with(Waits(pool=0.05))
    holder = SqlUnitOfWork(engine)
    with holder:
        holder.tasks.get(task_id)  # checks out the pool's one connection
        with pytest.raises(StoreBusy):
            SqlUnitOfWork(engine).__enter__()
