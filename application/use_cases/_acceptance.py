"""How creates are accepted: new tasks committed together, with the idempotency records of the
keyed ones in the same transaction, then those already due published at once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from application.ports import (
    Clock,
    IdempotencyKey,
    IdempotencyRecord,
    Metrics,
    StoredResponse,
    TaskQueue,
    UnitOfWork,
)
from application.publication import publish_committed
from domain.access import QuotaExceeded
from domain.errors import DomainError, IdempotencyKeyInFlight, IdempotencyKeyReused
from domain.task import Task, TaskType

DEFAULT_KEY_TTL = timedelta(hours=24)
# A key found taken whose record is then gone (it expired meanwhile, or its transaction rolled
# back after all) is tried again; a key that keeps slipping away is answered as in flight.
MAX_ROUNDS = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class Quota:
    """The most a tenant may have queued at once: tasks, and pairs in batch tasks (None: no
    limit). Checked in the transaction that stores the new tasks, against what is committed: two
    API processes creating for one tenant at the same instant may each see room for one more."""

    queued_tasks: int | None = None
    batch_pairs: int | None = None

    @property
    def enforced(self) -> bool:
        return self.queued_tasks is not None or self.batch_pairs is not None


NO_QUOTA = Quota()


@dataclass(frozen=True, slots=True)
class IdempotentResponse:
    """The answer to a keyed create: the response recorded under its key, `replayed` if it was
    recorded by an earlier request (then no task was created this time)."""

    response: StoredResponse
    replayed: bool


Outcome = Task | IdempotentResponse | DomainError


@dataclass(frozen=True, slots=True)
class Candidate:
    """One create to accept: how to build its task (which may raise DomainError) and its key."""

    build: Callable[[], Task]
    key: IdempotencyKey | None = None


def accept(
    candidates: Sequence[Candidate],
    uow: UnitOfWork,
    queue: TaskQueue,
    clock: Clock,
    now: datetime,
    key_ttl: timedelta = DEFAULT_KEY_TTL,
    quota: Quota = NO_QUOTA,
    metrics: Metrics | None = None,
) -> list[Outcome]:
    """One outcome per candidate, in order: its new task (unkeyed), its IdempotentResponse
    (keyed), or the rule it broke: IdempotencyKeyReused if its key is held by another request,
    IdempotencyKeyInFlight if a candidate before it in this call has the same key,
    QuotaExceeded if its tenant's queued tasks (with those accepted before it in this call)
    already fill its quota. A replayed key is answered even when the quota is full.

    The new tasks and their keys' records are one transaction, so a key is never recorded
    without its task nor a task kept without its key. If a key turns out taken when it is
    written (another process stored it meanwhile), the transaction is rolled back and accepted
    again without that candidate, whose outcome is then read from the record that took it. A
    failure of the store or the broker is every candidate's, and raises."""
    outcomes: list[Outcome | None] = [None] * len(candidates)
    seen: set[tuple[str, str]] = set()
    for i, candidate in enumerate(candidates):
        if candidate.key is not None:
            pair = (candidate.key.scope, candidate.key.key)
            if pair in seen:
                outcomes[i] = IdempotencyKeyInFlight(candidate.key.key)
            seen.add(pair)
    _recall(candidates, range(len(candidates)), outcomes, uow, now)
    slipped: dict[int, int] = {}
    while pending := [i for i, outcome in enumerate(outcomes) if outcome is None]:
        taken = _store(
            candidates, pending, outcomes, uow, queue, clock, now, key_ttl, quota, metrics
        )
        _recall(candidates, taken, outcomes, uow, now)
        for i in taken:
            key = candidates[i].key
            if outcomes[i] is None and key is not None:
                slipped[i] = slipped.get(i, 0) + 1
                if slipped[i] == MAX_ROUNDS:
                    outcomes[i] = IdempotencyKeyInFlight(key.key)
    return [outcome for outcome in outcomes if outcome is not None]


def _recall(
    candidates: Sequence[Candidate],
    indices: Sequence[int],
    outcomes: list[Outcome | None],
    uow: UnitOfWork,
    now: datetime,
) -> None:
    """Settle each keyed candidate whose key already holds a record: a replay of it, or
    IdempotencyKeyReused if the record answers another request."""
    keyed = [(i, key) for i in indices if outcomes[i] is None and (key := candidates[i].key)]
    if not keyed:
        return
    with uow:
        records = [(i, key, uow.idempotency_keys.get(key.scope, key.key, now)) for i, key in keyed]
    for i, key, record in records:
        if record is None:
            continue
        if record.fingerprint == key.fingerprint:
            outcomes[i] = IdempotentResponse(record.response, replayed=True)
        else:
            outcomes[i] = IdempotencyKeyReused(key.key)


def _store(
    candidates: Sequence[Candidate],
    pending: Sequence[int],
    outcomes: list[Outcome | None],
    uow: UnitOfWork,
    queue: TaskQueue,
    clock: Clock,
    now: datetime,
    key_ttl: timedelta,
    quota: Quota,
    metrics: Metrics | None,
) -> list[int]:
    """Commit the pending candidates' tasks with their keys and publish the due ones; settles
    them and answers [], or, if some keys were taken meanwhile, commits nothing and answers
    the candidates whose keys were taken (the others stay pending)."""
    tasks: dict[int, Task] = {}
    for i in pending:
        try:
            tasks[i] = candidates[i].build()
        except DomainError as refused:
            outcomes[i] = refused
    if not tasks:
        return []
    responses: dict[int, StoredResponse] = {}
    with uow:
        if quota.enforced:
            for i, over in _over_quota(uow, tasks, quota).items():
                outcomes[i] = over
                del tasks[i]
            if not tasks:
                return []
        # Committed unpublished: the publication is recorded after the send (publish_committed).
        uow.tasks.add_all(list(tasks.values()))
        records = []
        for i, task in tasks.items():
            key = candidates[i].key
            if key is None:
                continue
            assert task.id is not None
            responses[i] = key.respond(task)
            records.append(
                IdempotencyRecord(
                    scope=key.scope,
                    key=key.key,
                    fingerprint=key.fingerprint,
                    task_id=task.id,
                    response=responses[i],
                    created_at=now,
                    expires_at=now + key_ttl,
                )
            )
        stored = uow.idempotency_keys.add_all(records, now)
        taken = [
            i
            for i in responses
            if (key := candidates[i].key) is not None and (key.scope, key.key) not in stored
        ]
        if taken:
            return taken  # leaving the block rolls the tasks back with the keys
        uow.commit()
    if metrics is not None:
        metrics.tasks_created(list(tasks.values()))
    # Accepted once committed: if the broker is down now, the dispatcher publishes them later.
    publish_committed(uow, queue, clock, list(tasks.values()))
    for i, task in tasks.items():
        outcomes[i] = IdempotentResponse(responses[i], replayed=False) if i in responses else task
    return []


def _over_quota(uow: UnitOfWork, tasks: dict[int, Task], quota: Quota) -> dict[int, QuotaExceeded]:
    """The new tasks that would take their tenant beyond its quota, in order of arrival: each
    one accepted counts against those after it."""
    loads = {tenant: uow.tasks.queued_load(tenant) for tenant in {t.tenant for t in tasks.values()}}
    held = {tenant: [load.tasks, load.batch_pairs] for tenant, load in loads.items()}
    refused: dict[int, QuotaExceeded] = {}
    for i, task in tasks.items():
        counts = held[task.tenant]
        pairs = len(task.operands) if task.type is TaskType.BATCH else 0
        if quota.queued_tasks is not None and counts[0] + 1 > quota.queued_tasks:
            refused[i] = QuotaExceeded("tasks", quota.queued_tasks, counts[0])
        elif quota.batch_pairs is not None and counts[1] + pairs > quota.batch_pairs:
            refused[i] = QuotaExceeded("batch pairs", quota.batch_pairs, counts[1])
        else:
            counts[0] += 1
            counts[1] += pairs
    return refused
