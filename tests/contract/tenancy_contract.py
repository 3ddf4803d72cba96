"""The promises of tenancy in the store: a task keeps its tenant, a list can be one tenant's,
a tenant's queued load is counted exactly; and the ApiKeys port.

Subclass and provide a `uow` fixture holding an empty store: run on the in-memory fake and on
PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import timedelta

import pytest

from application.ports import QueuedLoad, TaskFilter, UnitOfWork
from domain.access import DEFAULT_TENANT, Scope, new_key
from domain.task import TaskStatus
from tests.contract.repository_contract import NOW, SCHEDULE, added, batch, single, stored

PEPPER = b"contract pepper"


def owned(tenant: str, a: int = 1, b: int = 2):  # type: ignore[no-untyped-def]
    task = single(a, b)
    task.tenant = tenant
    return task


class TenancyContract:
    def test_a_task_keeps_its_tenant_and_a_task_made_without_one_is_the_default_s(
        self, uow: UnitOfWork
    ) -> None:
        mine, plain = added(uow, owned("acme"), single())
        assert stored(uow, mine).tenant == "acme"
        assert stored(uow, plain).tenant == DEFAULT_TENANT

    def test_a_move_written_back_keeps_the_tenant(self, uow: UnitOfWork) -> None:
        (task_id,) = added(uow, owned("acme"))
        with uow:
            task = uow.tasks.get_for_update(task_id)
            assert task is not None
            task.cancel(NOW)
            uow.tasks.save(task)
            uow.commit()
        assert stored(uow, task_id).tenant == "acme"

    def test_a_page_of_one_tenant_holds_only_its_tasks_and_counts_only_them(
        self, uow: UnitOfWork
    ) -> None:
        ids = added(uow, owned("acme"), owned("globex"), owned("acme"), owned("globex"))
        with uow:
            acme = uow.tasks.page(TaskFilter(tenant="acme"), limit=1, offset=0)
            every = uow.tasks.page(TaskFilter(), limit=10, offset=0)
            queued_globex = uow.tasks.page(
                TaskFilter(tenant="globex", status=TaskStatus.QUEUED), limit=10, offset=0
            )
            nobody = uow.tasks.page(TaskFilter(tenant="initech"), limit=10, offset=0)
        assert [t.id for t in acme.items] == [ids[2]] and acme.total == 2
        assert every.total == 4
        assert [t.id for t in queued_globex.items] == [ids[3], ids[1]]
        assert nobody.items == [] and nobody.total == 0

    def test_queued_load_counts_a_tenant_s_queued_tasks_and_their_batch_pairs(
        self, uow: UnitOfWork
    ) -> None:
        big = batch([(1, 1)] * 5)
        big.tenant = "acme"
        small = batch([(2, 2)] * 2)
        small.tenant = "acme"
        other = batch([(3, 3)] * 7)
        other.tenant = "globex"
        cancelled = batch([(4, 4)] * 11)
        cancelled.tenant = "acme"
        cancelled.cancel(NOW)
        added(uow, owned("acme"), big, small, other, cancelled, owned("acme"))
        with uow:
            acme = uow.tasks.queued_load("acme")
            globex = uow.tasks.queued_load("globex")
            nobody = uow.tasks.queued_load("initech")
        assert acme == QueuedLoad(tasks=4, batch_pairs=7)
        assert globex == QueuedLoad(tasks=1, batch_pairs=7)
        assert nobody == QueuedLoad(tasks=0, batch_pairs=0)

    def test_a_task_that_leaves_queued_leaves_the_load(self, uow: UnitOfWork) -> None:
        (task_id,) = added(uow, owned("acme"))
        with uow:
            claimed = uow.tasks.claim(task_id, 1, NOW, timedelta(seconds=30))
            uow.commit()
        assert claimed is not None
        with uow:
            assert uow.tasks.queued_load("acme") == QueuedLoad(tasks=0, batch_pairs=0)
        assert SCHEDULE  # the same policy the tasks were made with


class ApiKeysContract:
    def test_a_key_is_found_by_its_prefix_and_keeps_everything_but_the_key(
        self, uow: UnitOfWork
    ) -> None:
        key, api_key = new_key("acme", frozenset({Scope.READ, Scope.WRITE}), PEPPER, NOW)
        with uow:
            uow.api_keys.add(api_key)
            uow.commit()
        assert api_key.id is not None
        with uow:
            back = uow.api_keys.by_prefix(api_key.prefix)
        assert back is not None
        assert (back.id, back.tenant, back.scopes, back.created_at) == (
            api_key.id,
            "acme",
            frozenset({Scope.READ, Scope.WRITE}),
            NOW,
        )
        assert back.revoked_at is None and back.matches(key, PEPPER)
        assert key not in repr(back) and back.hash != key

    def test_an_unknown_prefix_is_none_and_nothing_is_kept_without_commit(
        self, uow: UnitOfWork
    ) -> None:
        _, api_key = new_key("acme", frozenset({Scope.READ}), PEPPER, NOW)
        with uow:
            uow.api_keys.add(api_key)
        with uow:
            assert uow.api_keys.by_prefix(api_key.prefix) is None
            assert uow.api_keys.all() == []

    def test_a_revoked_key_stays_listed_keeps_its_first_revocation_and_matches_no_more(
        self, uow: UnitOfWork
    ) -> None:
        key, api_key = new_key("acme", frozenset({Scope.ADMIN}), PEPPER, NOW)
        _, other = new_key("globex", frozenset({Scope.READ}), PEPPER, NOW)
        with uow:
            uow.api_keys.add(api_key)
            uow.api_keys.add(other)
            uow.commit()
        assert api_key.id is not None
        later = NOW + timedelta(hours=1)
        with uow:
            revoked = uow.api_keys.revoke(api_key.id, later)
            uow.commit()
        with uow:
            uow.api_keys.revoke(api_key.id, later + timedelta(hours=1))
            uow.commit()
        with uow:
            missing = uow.api_keys.revoke(api_key.id + 1000, later)
            listed = uow.api_keys.all()
            back = uow.api_keys.by_prefix(api_key.prefix)
        assert revoked is not None and revoked.revoked_at == later
        assert missing is None
        assert [k.tenant for k in listed] == ["acme", "globex"]
        assert back is not None and back.revoked_at == later and not back.matches(key, PEPPER)
        assert listed[1].revoked_at is None

    def test_a_prefix_is_unique(self, uow: UnitOfWork) -> None:
        _, first = new_key("acme", frozenset({Scope.READ}), PEPPER, NOW)
        _, second = new_key("globex", frozenset({Scope.READ}), PEPPER, NOW)
        second.prefix = first.prefix
        with uow:
            uow.api_keys.add(first)
            uow.commit()
        with pytest.raises(Exception), uow:  # noqa: B017 (each store raises its own)
            uow.api_keys.add(second)
            uow.commit()
