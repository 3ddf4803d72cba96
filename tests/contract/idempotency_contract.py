"""The promises of the IdempotencyKeys port, as tests.

Subclass `IdempotencyKeysContract` and provide a `uow` fixture holding an empty store: the unit
tests run it against the in-memory fake, the integration tests against PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from application.ports import IdempotencyRecord, StoredResponse, UnitOfWork
from tests.contract.repository_contract import NOW, added, single

TTL = timedelta(hours=24)
# A body as a create answers it: JSON text with a 65-bit integer, kept byte for byte.
BODY = '{"id":7,"results":[18446744073709551614],"note":"é"}'


def record(
    key: str = "k1",
    *,
    scope: str = "default",
    fingerprint: str = "f" * 64,
    task_id: int = 7,
    ttl: timedelta = TTL,
    body: str = BODY,
) -> IdempotencyRecord:
    return IdempotencyRecord(
        scope=scope,
        key=key,
        fingerprint=fingerprint,
        task_id=task_id,
        response=StoredResponse(status=201, body=body, location=f"/api/v1/tasks/{task_id}"),
        created_at=NOW,
        expires_at=NOW + ttl,
    )


def stored_records(uow: UnitOfWork, *records: IdempotencyRecord) -> set[tuple[str, str]]:
    with uow:
        stored = uow.idempotency_keys.add_all(list(records), NOW)
        uow.commit()
    return stored


def looked_up(
    uow: UnitOfWork, key: str, at: datetime = NOW, scope: str = "default"
) -> IdempotencyRecord | None:
    with uow:
        return uow.idempotency_keys.get(scope, key, at)


class IdempotencyKeysContract:
    def test_a_stored_record_comes_back_whole(self, uow: UnitOfWork) -> None:
        original = record(key="x" * 255)

        assert stored_records(uow, original) == {("default", "x" * 255)}

        assert looked_up(uow, "x" * 255) == original

    def test_an_unknown_key_has_no_record(self, uow: UnitOfWork) -> None:
        stored_records(uow, record("k1"))
        assert looked_up(uow, "k2") is None
        assert looked_up(uow, "k1", scope="another tenant") is None

    def test_nothing_is_kept_without_commit(self, uow: UnitOfWork) -> None:
        with uow:
            uow.idempotency_keys.add_all([record("k1")], NOW)
        assert looked_up(uow, "k1") is None

    def test_a_record_is_committed_or_rolled_back_with_the_tasks_of_its_transaction(
        self, uow: UnitOfWork
    ) -> None:
        task = single()
        with uow:
            uow.tasks.add(task)
            uow.idempotency_keys.add_all([record("k1", task_id=task.id or 0)], NOW)
        assert task.id is not None
        with uow:
            assert uow.tasks.get(task.id) is None
        assert looked_up(uow, "k1") is None

    def test_a_key_holding_a_live_record_is_taken_and_keeps_its_record(
        self, uow: UnitOfWork
    ) -> None:
        first = record("k1", fingerprint="a" * 64, task_id=1)
        stored_records(uow, first)

        stored = stored_records(
            uow, record("k1", fingerprint="b" * 64, task_id=2), record("k2", task_id=3)
        )

        assert stored == {("default", "k2")}
        assert looked_up(uow, "k1") == first

    def test_the_same_key_in_another_scope_is_another_key(self, uow: UnitOfWork) -> None:
        stored_records(uow, record("k1", scope="default"))

        assert stored_records(uow, record("k1", scope="tenant-2", task_id=9)) == {
            ("tenant-2", "k1")
        }
        assert looked_up(uow, "k1", scope="tenant-2").task_id == 9  # type: ignore[attr-defined]

    def test_a_record_expires_at_its_expiry_and_its_key_is_then_free(self, uow: UnitOfWork) -> None:
        stored_records(uow, record("k1", ttl=timedelta(seconds=10), task_id=1))
        later = NOW + timedelta(seconds=10)
        assert looked_up(uow, "k1", at=later - timedelta(microseconds=1)) is not None
        assert looked_up(uow, "k1", at=later) is None

        with uow:
            stored = uow.idempotency_keys.add_all([record("k1", task_id=2)], later)
            uow.commit()

        assert stored == {("default", "k1")}
        assert looked_up(uow, "k1", at=later).task_id == 2  # type: ignore[attr-defined]

    def test_prune_deletes_expired_records_only_oldest_first_at_most_the_limit(
        self, uow: UnitOfWork
    ) -> None:
        stored_records(
            uow,
            record("old", ttl=timedelta(seconds=1)),
            record("older", ttl=timedelta(seconds=0.5)),
            record("live", ttl=timedelta(seconds=60)),
        )
        at = NOW + timedelta(seconds=2)

        with uow:
            assert uow.idempotency_keys.prune(at, 1) == 1
            uow.commit()
        with uow:
            survivors = [
                k for k in ("old", "older", "live") if uow.idempotency_keys.get("default", k, NOW)
            ]
        assert survivors == ["old", "live"]

        with uow:
            assert uow.idempotency_keys.prune(at, 10) == 1
            assert uow.idempotency_keys.prune(at, 10) == 0
            uow.commit()
        assert looked_up(uow, "live", at=at) is not None

    def test_prune_keeps_nothing_without_commit(self, uow: UnitOfWork) -> None:
        stored_records(uow, record("old", ttl=timedelta(seconds=1)))
        with uow:
            assert uow.idempotency_keys.prune(NOW + timedelta(seconds=2), 10) == 1
        assert looked_up(uow, "old") is not None

    def test_records_sharing_a_key_in_one_call_are_refused(self, uow: UnitOfWork) -> None:
        with pytest.raises(ValueError), uow:
            uow.idempotency_keys.add_all([record("k1"), record("k1", task_id=8)], NOW)

    def test_tasks_and_keys_live_side_by_side(self, uow: UnitOfWork) -> None:
        (task_id,) = added(uow, single())
        stored_records(uow, record("k1", task_id=task_id))
        assert looked_up(uow, "k1").task_id == task_id  # type: ignore[attr-defined]
