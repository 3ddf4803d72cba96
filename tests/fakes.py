"""In-memory implementations of the ports, for unit tests of the core and of the API.

They keep the promises the real adapters keep: the repository hands out copies and writes back
only through a version check; the unit of work keeps nothing that was not committed."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from application.errors import ConcurrentModification
from application.ports import (
    ApiKeys,
    Arithmetic,
    Attempt,
    AttemptResult,
    Clock,
    Dispatch,
    IdempotencyKeys,
    IdempotencyRecord,
    Metrics,
    QueuedLoad,
    QueueUnavailable,
    StoreUnavailable,
    TaskCounts,
    TaskEvent,
    TaskFilter,
    TaskHistory,
    TaskPage,
    TaskQueue,
    TaskRepository,
    UnitOfWork,
)
from application.ports import repository as repository_port
from domain.access import ApiKey
from domain.errors import TaskFailure
from domain.priority import Priority
from domain.task import (
    ATTEMPT_OUTCOME_FIELDS,
    LEASE_EXPIRED_MESSAGE,
    Pair,
    Task,
    TaskStatus,
    TaskType,
    add_pairs,
)

EPOCH = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


class FakeClock(Clock):
    def __init__(self, start: datetime = EPOCH) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


class InMemoryStore:
    """What the database holds: committed tasks, the id sequence, committed idempotency keys."""

    def __init__(self) -> None:
        self.rows: dict[int, Task] = {}
        self.last_id = 0
        self.keys: dict[tuple[str, str], IdempotencyRecord] = {}
        self.api_keys: dict[int, ApiKey] = {}
        # What the triggers of revision 0007 record, recorded at each commit (InMemoryTaskHistory).
        self.attempts: list[Attempt] = []
        self.events: list[TaskEvent] = []
        self.last_event_id = 0

    def record_history(self, before: Task | None, after: Task) -> None:
        """What the triggers do for one committed write of a task."""
        assert after.id is not None
        if before is not None and after.status is not before.status:
            if after.status is TaskStatus.RUNNING:
                self.attempts.append(_opened_attempt(before, after))
            elif before.status is TaskStatus.RUNNING:
                self._close_attempt(before, after)
        if before is None or (after.status, after.priority) != (before.status, before.priority):
            self.last_event_id += 1
            event = TaskEvent(
                id=self.last_event_id,
                task_id=after.id,
                tenant=after.tenant,
                status=after.status,
                priority=after.priority,
                at=after.updated_at,
            )
            self.events.append(event)

    def _close_attempt(self, before: Task, after: Task) -> None:
        if after.status is TaskStatus.SUCCESS:
            outcome = AttemptResult.SUCCESS
        elif after.attempts < before.attempts:
            outcome = AttemptResult.RELEASED
        elif after.error_message == LEASE_EXPIRED_MESSAGE:
            outcome = AttemptResult.LOST
        elif after.status is TaskStatus.FAILED:
            outcome = AttemptResult.FAILED
        else:
            outcome = AttemptResult.RETRIED
        for index, attempt in enumerate(self.attempts):
            if (
                attempt.task_id == after.id
                and attempt.dispatch_no == before.dispatch_no
                and attempt.finished_at is None
            ):
                self.attempts[index] = replace(
                    attempt,
                    finished_at=after.updated_at,
                    outcome=outcome,
                    error=None
                    if outcome in (AttemptResult.SUCCESS, AttemptResult.RELEASED)
                    else after.error_message,
                )

    def forget(self, task_id: int) -> None:
        """A task's history goes with it."""
        self.attempts = [a for a in self.attempts if a.task_id != task_id]
        self.events = [e for e in self.events if e.task_id != task_id]


def _opened_attempt(before: Task, after: Task) -> Attempt:
    assert after.id is not None and after.started_at is not None
    return Attempt(
        task_id=after.id,
        number=after.attempts,
        dispatch_no=after.dispatch_no,
        priority=after.priority,
        scheduled_for=before.scheduled_for,
        started_at=after.started_at,
        finished_at=None,
        outcome=None,
        error=None,
        worker=after.worker,
    )


class InMemoryTaskHistory(TaskHistory):
    """Reads of what InMemoryStore.record_history recorded at each commit; writes (the pruning
    of events) are applied at once, as the fakes' one writer at a time allows."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store

    def attempts(self, task_id: int) -> list[Attempt]:
        return [a for a in self._store.attempts if a.task_id == task_id]

    def recent_attempts(self, started_since: datetime, limit: int) -> list[Attempt]:
        recent = [a for a in self._store.attempts if a.started_at >= started_since]
        return sorted(recent, key=lambda a: a.started_at, reverse=True)[:limit]

    def events(self, after_id: int, limit: int, *, task_id: int | None = None) -> list[TaskEvent]:
        return [
            e
            for e in self._store.events
            if e.id > after_id and (task_id is None or e.task_id == task_id)
        ][:limit]

    def last_event_id(self) -> int:
        return self._store.events[-1].id if self._store.events else 0

    def prune_events(self, before: datetime, limit: int) -> int:
        old = [e for e in self._store.events if e.at < before][:limit]
        self._store.events = [e for e in self._store.events if e not in old]
        return len(old)

    def not_yet_due(self, now: datetime) -> dict[Priority, int]:
        waiting = Counter(
            t.priority
            for t in self._store.rows.values()
            if t.status is TaskStatus.QUEUED and t.published_at is None and t.scheduled_for > now
        )
        return dict(waiting)


class InMemoryTaskRepository(TaskRepository):
    def __init__(self, store: InMemoryStore, *, one_statement: bool = False) -> None:
        self._store = store
        self.staged: dict[int, Task] = {}
        self.deleted: set[int] = set()
        self._statements_left = 1 if one_statement else None

    def _statement(self) -> None:
        """Each public method is one statement of the SQL repository: a one-write unit runs one."""
        if self._statements_left is not None:
            if self._statements_left == 0:
                raise RuntimeError("a one-write unit of work runs a single statement")
            self._statements_left -= 1

    def _current(self, task_id: int) -> Task | None:
        if task_id in self.deleted:
            return None
        return self.staged.get(task_id, self._store.rows.get(task_id))

    def _all(self) -> list[Task]:
        return [t for t in (self._current(i) for i in self._ids()) if t is not None]

    def _ids(self) -> set[int]:
        return set(self._store.rows) | set(self.staged)

    def add(self, task: Task) -> None:
        self._statement()
        self._add(task)

    def _add(self, task: Task) -> None:
        self._store.last_id += 1  # a sequence: never reused, even after a rollback
        task.id = self._store.last_id
        self.staged[task.id] = copy.deepcopy(task)

    def add_all(self, tasks: Sequence[Task]) -> None:
        self._statement()
        for task in tasks:
            self._add(task)

    def get(self, task_id: int) -> Task | None:
        self._statement()
        task = self._current(task_id)
        return copy.deepcopy(task) if task is not None else None

    def get_for_update(self, task_id: int) -> Task | None:
        # One thread at a time runs the core on the fakes: there is no other writer to lock out.
        return self.get(task_id)

    def save(self, task: Task) -> None:
        self._statement()
        self._save(task)

    def _save(self, task: Task) -> None:
        assert task.id is not None
        stored = self._current(task.id)
        if stored is None or stored.version != task.version:
            raise ConcurrentModification(f"task {task.id} changed since it was read")
        task.version += 1
        self.staged[task.id] = copy.deepcopy(task)

    def claim(
        self,
        task_id: int,
        dispatch_no: int,
        now: datetime,
        lease: timedelta,
        *,
        worker: str | None = None,
    ) -> Task | None:
        self._statement()
        return self._claim(task_id, dispatch_no, now, lease, worker)

    def _claim(
        self, task_id: int, dispatch_no: int, now: datetime, lease: timedelta, worker: str | None
    ) -> Task | None:
        current = self._current(task_id)
        task = copy.deepcopy(current) if current is not None else None
        if task is None or not task.can_claim(dispatch_no):
            return None
        task.claim(dispatch_no, now, lease, worker=worker)  # the entity's rule: the SQL mirrors it
        task.version += 1  # a conditional write, not `save`: no version to check
        self.staged[task_id] = copy.deepcopy(task)
        return task

    def claim_all(
        self,
        dispatches: Sequence[tuple[int, int]],
        now: datetime,
        lease: timedelta,
        *,
        worker: str | None = None,
    ) -> list[Task]:
        self._statement()
        claimed = (
            self._claim(task_id, dispatch_no, now, lease, worker)
            for task_id, dispatch_no in dispatches
        )
        return [task for task in claimed if task is not None]

    def record_outcomes(self, outcomes: Sequence[tuple[Task, int]]) -> list[Task]:
        self._statement()
        recorded = (self._record_outcome(task, claimed) for task, claimed in outcomes)
        return [task for task in recorded if task is not None]

    def record_outcome(self, task: Task, claimed_dispatch_no: int) -> Task | None:
        self._statement()
        return self._record_outcome(task, claimed_dispatch_no)

    def _record_outcome(self, task: Task, claimed_dispatch_no: int) -> Task | None:
        assert task.id is not None
        current = self._current(task.id)
        if current is None or not current.holds_claim(claimed_dispatch_no):
            return None
        recorded = copy.deepcopy(current)  # what a concurrent move changed stays as stored
        for name in ATTEMPT_OUTCOME_FIELDS:
            setattr(recorded, name, copy.deepcopy(getattr(task, name)))
        recorded.version += 1  # a conditional write, not `save`: no version to check
        self.staged[task.id] = copy.deepcopy(recorded)
        return recorded

    def page(
        self, task_filter: TaskFilter, limit: int, offset: int, *, before_id: int | None = None
    ) -> TaskPage:
        self._statement()
        matching = [
            t
            for t in self._all()
            if task_filter.matches(t.status, t.priority, t.type)
            and (task_filter.tenant is None or t.tenant == task_filter.tenant)
            and task_filter.created_within(t.created_at)
        ]
        matching.sort(key=lambda t: t.id or 0, reverse=True)
        after_cursor = [t for t in matching if before_id is None or (t.id or 0) < before_id]
        chosen = after_cursor[offset : offset + limit + 1]
        items = [copy.deepcopy(t) for t in chosen[:limit]]
        total: int | None = len(matching)
        window = [t for t in self._all() if task_filter.created_within(t.created_at)]
        if task_filter.by_creation_time and len(window) > repository_port.COUNT_CAP:
            total = None  # the window holds too many tasks to be counted
        next_before_id = items[-1].id if len(chosen) > limit and items else None
        return TaskPage(items=items, total=total, next_before_id=next_before_id)

    def counts(self, tenant: str | None = None) -> TaskCounts:
        return Counter(
            (t.status, t.priority, t.type)
            for t in self._all()
            if tenant is None or t.tenant == tenant
        )

    def prune_finished(self, status: TaskStatus, finished_before: datetime, limit: int) -> int:
        self._statement()
        if status not in (TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED):
            raise ValueError(f"only finished tasks are pruned, not {status.value} ones")
        old = self._select(
            lambda t: (
                t.status is status and t.finished_at is not None and t.finished_at < finished_before
            ),
            lambda t: t.finished_at,
            limit,
        )
        for task in old:
            assert task.id is not None
            self.staged.pop(task.id, None)
            self.deleted.add(task.id)
        return len(old)

    def fold_counts(self) -> None:
        self._statement()

    def queued_load(self, tenant: str) -> QueuedLoad:
        self._statement()
        queued = [t for t in self._all() if t.tenant == tenant and t.status is TaskStatus.QUEUED]
        pairs = sum(len(t.operands) for t in queued if t.type is TaskType.BATCH)
        return QueuedLoad(tasks=len(queued), batch_pairs=pairs)

    def _select(
        self, keep: Callable[[Task], bool], order: Callable[[Task], object], limit: int
    ) -> list[Task]:
        chosen = sorted((t for t in self._all() if keep(t)), key=order)[:limit]  # type: ignore[arg-type]
        return [copy.deepcopy(t) for t in chosen]

    def due_for_dispatch(self, now: datetime, limit: int) -> list[Task]:
        self._statement()
        return self._select(
            lambda t: t.is_due(now) and t.published_at is None,
            lambda t: (t.priority, t.scheduled_for),
            limit,
        )

    def next_due_after(self, now: datetime) -> datetime | None:
        self._statement()
        starts = [
            t.scheduled_for
            for t in self._all()
            if t.status is TaskStatus.QUEUED and t.published_at is None and t.scheduled_for > now
        ]
        return min(starts, default=None)

    def lock_awaiting_publication(self, tasks: Sequence[Task]) -> list[Task]:
        self._statement()
        return [task for task in tasks if self._awaits_publication(task)]

    def _awaits_publication(self, task: Task) -> bool:
        assert task.id is not None
        stored = self._current(task.id)
        return (
            stored is not None
            and stored.status is TaskStatus.QUEUED
            and stored.published_at is None
            and stored.dispatch_no == task.dispatch_no
        )

    def save_published(self, tasks: Sequence[Task], published_at: datetime) -> list[Task]:
        self._statement()
        recorded = []
        for task in tasks:
            assert task.id is not None
            stored = self._current(task.id)
            if (
                stored is None
                or stored.status is not TaskStatus.QUEUED
                or stored.published_at is not None
                or stored.dispatch_no != task.dispatch_no
            ):
                continue  # moved, claimed or published by someone else meanwhile
            stored = copy.deepcopy(stored)
            stored.mark_published(published_at)
            self._save(stored)
            task.mark_published(published_at)
            task.version = stored.version
            recorded.append(task)
        return recorded

    def lost_messages(
        self,
        priority: Priority,
        *,
        waiting: int,
        counted_at: datetime,
        published_before: datetime,
        limit: int,
    ) -> list[Task]:
        published = sorted(
            (
                t.published_at
                for t in self._all()
                if t.status is TaskStatus.QUEUED
                and t.priority is priority
                and t.published_at is not None
                and t.published_at <= counted_at
            ),
            reverse=True,
        )
        if waiting > len(published):
            return []  # every one of them may still have its message on the queue
        # Strictly older than the oldest message presumed waiting (ties count as waiting).
        bound = min(published_before, published[waiting - 1]) if waiting else published_before
        return self._select(
            lambda t: (
                t.status is TaskStatus.QUEUED
                and t.priority is priority
                and t.published_at is not None
                and t.published_at <= counted_at
                and t.published_at < bound
            ),
            lambda t: t.published_at,
            limit,
        )

    def higher_priority_waiting(self, priority: Priority, due_before: datetime) -> bool:
        self._statement()
        return any(
            t.status is TaskStatus.QUEUED
            and t.priority < priority
            and (
                t.scheduled_for <= due_before
                if t.published_at is None
                else t.published_at <= due_before
            )
            for t in self._all()
        )

    def expired_leases(self, now: datetime, limit: int) -> list[Task]:
        self._statement()
        return self._select(lambda t: t.lease_expired(now), lambda t: t.lease_expires_at, limit)


class InMemoryIdempotencyKeys(IdempotencyKeys):
    """One writer at a time in memory: a key is never being written by someone else."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self.staged: dict[tuple[str, str], IdempotencyRecord] = {}
        self.deleted: set[tuple[str, str]] = set()

    def _current(self, pair: tuple[str, str]) -> IdempotencyRecord | None:
        if pair in self.deleted:
            return None
        return self.staged.get(pair, self._store.keys.get(pair))

    def get(self, scope: str, key: str, now: datetime) -> IdempotencyRecord | None:
        record = self._current((scope, key))
        return record if record is not None and record.expires_at > now else None

    def add_all(self, records: Sequence[IdempotencyRecord], now: datetime) -> set[tuple[str, str]]:
        pairs = [(r.scope, r.key) for r in records]
        if len(set(pairs)) != len(pairs):
            raise ValueError("two records share a (scope, key)")
        stored = set()
        for pair, record in zip(pairs, records, strict=True):
            if self.get(*pair, now) is None:
                self.deleted.discard(pair)
                self.staged[pair] = record
                stored.add(pair)
        return stored

    def prune(self, now: datetime, limit: int) -> int:
        every = {**self._store.keys, **self.staged}
        expired = sorted(
            (r for pair, r in every.items() if pair not in self.deleted and r.expires_at <= now),
            key=lambda r: r.expires_at,
        )[:limit]
        for record in expired:
            pair = (record.scope, record.key)
            self.staged.pop(pair, None)
            self.deleted.add(pair)
        return len(expired)

    def commit(self) -> None:
        for pair in self.deleted:
            self._store.keys.pop(pair, None)
        self._store.keys.update(self.staged)
        self.rollback()

    def rollback(self) -> None:
        self.staged.clear()
        self.deleted.clear()


class InMemoryApiKeys(ApiKeys):
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self.staged: dict[int, ApiKey] = {}

    def _every(self) -> dict[int, ApiKey]:
        return {**self._store.api_keys, **self.staged}

    def add(self, key: ApiKey) -> None:
        if any(k.prefix == key.prefix for k in self._every().values()):
            raise ValueError(f"prefix {key.prefix} is taken")
        key.id = max(self._every(), default=0) + 1
        self.staged[key.id] = copy.deepcopy(key)

    def by_prefix(self, prefix: str) -> ApiKey | None:
        found = [k for k in self._every().values() if k.prefix == prefix]
        return copy.deepcopy(found[0]) if found else None

    def all(self) -> list[ApiKey]:
        return [copy.deepcopy(k) for _, k in sorted(self._every().items())]

    def revoke(self, key_id: int, now: datetime) -> ApiKey | None:
        key = copy.deepcopy(self._every().get(key_id))
        if key is None:
            return None
        key.revoke(now)
        self.staged[key_id] = key
        return copy.deepcopy(key)


class FakeUnitOfWork(UnitOfWork):
    def __init__(self, store: InMemoryStore | None = None) -> None:
        self.store = store or InMemoryStore()
        self.commits = 0
        self.available = True
        self._one_write = False
        self.tasks = InMemoryTaskRepository(self.store)
        self.idempotency_keys = InMemoryIdempotencyKeys(self.store)
        self.api_keys = InMemoryApiKeys(self.store)
        self.history = InMemoryTaskHistory(self.store)

    def one_write(self) -> Self:
        self._one_write = True
        return self

    def __enter__(self) -> Self:
        one_write, self._one_write = self._one_write, False
        if not self.available:
            raise StoreUnavailable("database down")
        self.tasks = InMemoryTaskRepository(self.store, one_statement=one_write)
        self.idempotency_keys = InMemoryIdempotencyKeys(self.store)
        self.api_keys = InMemoryApiKeys(self.store)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.tasks.staged.clear()  # rollback of whatever was not committed
        self.tasks.deleted.clear()
        self.idempotency_keys.rollback()
        self.api_keys.staged.clear()

    def commit(self) -> None:
        if not self.available:
            raise StoreUnavailable("database down")
        for task_id, task in self.tasks.staged.items():
            self.store.record_history(self.store.rows.get(task_id), task)
        self.store.rows.update(self.tasks.staged)
        for task_id in self.tasks.deleted:
            self.store.rows.pop(task_id, None)
            self.store.forget(task_id)
        self.tasks.staged.clear()
        self.tasks.deleted.clear()
        self.idempotency_keys.commit()
        self.store.api_keys.update(self.api_keys.staged)
        self.api_keys.staged.clear()
        self.commits += 1

    def ping(self) -> None:
        if not self.available:
            raise StoreUnavailable("database down")

    def stored(self, task_id: int) -> Task:
        """The committed state of a task, for assertions."""
        return copy.deepcopy(self.store.rows[task_id])


class RecordingQueue(TaskQueue):
    """A broker that keeps every message published, in order, until a test delivers it."""

    def __init__(self) -> None:
        self.published: list[Dispatch] = []
        self.waiting: list[Dispatch] = []
        self.available = True
        self.consumer_counts: dict[Priority, int] = {p: 1 for p in Priority}

    def publish(self, dispatches: Sequence[Dispatch]) -> None:
        if not self.available:
            raise QueueUnavailable("broker down")
        self.published.extend(dispatches)
        self.waiting.extend(dispatches)

    def pending(self, priority: Priority) -> int:
        if not self.available:
            raise QueueUnavailable("broker down")
        return sum(1 for d in self.waiting if d.priority is priority)

    def waiting_dispatches(self, priority: Priority) -> int:
        return self.pending(priority)  # exact: the fake keeps each dispatch apart

    def consumers(self) -> Mapping[Priority, int]:
        if not self.available:
            raise QueueUnavailable("broker down")
        return dict(self.consumer_counts)

    def take(self) -> list[Dispatch]:
        """Hand every waiting message to a worker (and forget it, as an ack would)."""
        taken, self.waiting = self.waiting, []
        return taken

    def wipe(self) -> None:
        """What a broker restart without persistence does."""
        self.waiting.clear()


class ScriptedArithmetic(Arithmetic):
    """Raises the scripted failures one per attempt, then adds exactly. `meanwhile`, if set, runs
    once in the middle of the next attempt: what the rest of the world does while it works."""

    def __init__(self, failures: Sequence[BaseException] = ()) -> None:
        self.failures = list(failures)
        self.calls = 0
        self.meanwhile: Callable[[], object] | None = None

    def sum_pairs(self, pairs: Sequence[Pair]) -> list[int]:
        self.calls += 1
        if self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()
        if self.failures:
            raise self.failures.pop(0)
        return add_pairs(pairs)


class WorkerKilled(BaseException):
    """The worker process dies mid-attempt: not an exception the attempt could handle."""


def transient(message: str = "transient glitch") -> TaskFailure:
    return TaskFailure(message)


class FakeMetrics(Metrics):
    """Records what the use cases report, to assert on it."""

    def __init__(self, *, counts_inversions: bool = True) -> None:
        self._counts_inversions = counts_inversions
        self.created: list[tuple[Priority, str]] = []
        self.started: list[tuple[Priority, float, float, bool]] = []
        self.finished: list[tuple[Priority | None, AttemptResult, float]] = []
        self.rounds: list[tuple[float, int, int, int]] = []

    @property
    def counts_inversions(self) -> bool:
        return self._counts_inversions

    def tasks_created(self, tasks: Sequence[Task]) -> None:
        self.created.extend((t.priority, str(t.type)) for t in tasks)

    def attempt_started(
        self, priority: Priority, *, lateness: float, wait: float, inversion: bool
    ) -> None:
        self.started.append((priority, lateness, wait, inversion))

    def attempt_finished(
        self, priority: Priority | None, result: AttemptResult, run: float
    ) -> None:
        self.finished.append((priority, result, run))

    def dispatch_round(
        self, seconds: float, *, published: int, republished_lost: int, expired_leases: int
    ) -> None:
        self.rounds.append((seconds, published, republished_lost, expired_leases))
