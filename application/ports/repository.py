"""Storage of tasks: the unit of work and the repository it carries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Protocol, Self

from application.ports.api_keys import ApiKeys
from application.ports.history import TaskHistory
from application.ports.idempotency import IdempotencyKeys
from domain.priority import Priority
from domain.task import Task, TaskStatus, TaskType

# With a creation window, a list's total cannot come from the exact counts (kept per status,
# priority and type only): it is counted from the window's tasks when the window holds at most
# this many tasks of any kind (a bounded walk, about 2 ms of PostgreSQL's time at this cap), and
# is unknown (None) otherwise, as a search engine answers "10,000+". Read at each call, so a test
# may lower it.
COUNT_CAP = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskFilter:
    """Which tasks a list or a bulk move takes: every given field must match. The creation
    window is half open: `created_after <= created_at < created_before`, either end optional;
    both are aware datetimes."""

    status: TaskStatus | None = None
    type: TaskType | None = None
    priority: Priority | None = None
    # Only this tenant's tasks; None: every tenant's (an admin's list).
    tenant: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    @property
    def by_creation_time(self) -> bool:
        return self.created_after is not None or self.created_before is not None

    def created_within(self, created_at: datetime) -> bool:
        """Whether a task created at `created_at` is inside the creation window."""
        return (self.created_after is None or created_at >= self.created_after) and (
            self.created_before is None or created_at < self.created_before
        )

    def matches(self, status: TaskStatus, priority: Priority, type: TaskType) -> bool:
        """Whether tasks of this (status, priority, type) pass the filter (the tenant and the
        creation window aside)."""
        return (
            (self.status is None or self.status is status)
            and (self.priority is None or self.priority is priority)
            and (self.type is None or self.type is type)
        )


def check_creation_window(task_filter: TaskFilter) -> None:
    """Raise ValueError if a creation bound has no time zone (an instant is needed)."""
    for bound in (task_filter.created_after, task_filter.created_before):
        if bound is not None and bound.utcoffset() is None:
            raise ValueError(f"a creation bound needs its time zone: {bound.isoformat()}")


@dataclass(frozen=True, slots=True)
class QueuedLoad:
    """What a tenant has waiting: its queued tasks, and the pairs its queued batches hold."""

    tasks: int
    batch_pairs: int


@dataclass(frozen=True, slots=True)
class TaskPage:
    """`items` newest first; `total` counts every matching task, on all pages (None: not
    counted, the filter's creation window holds more than COUNT_CAP tasks); `next_before_id` is
    the cursor of the next page (pass it as `before_id`), None when this page is the last."""

    items: list[Task]
    total: int | None
    next_before_id: int | None = None


# How many tasks there are of each (status, priority, type); a key with none may be missing.
TaskCounts = Mapping[tuple[TaskStatus, Priority, TaskType], int]


class StoreUnavailable(Exception):
    """The task store could not be reached, or dropped the connection: nothing of the unit of
    work's transaction is known to be durable. Any call of the store may raise it.

    Its message names the failure for logs, not for clients (it may quote the driver)."""


class StoreBusy(StoreUnavailable):
    """A bounded wait of the store ran out: on a row lock, a statement, or a free pooled
    connection. The store is up but saturated or contended; trying again shortly is reasonable."""


class TaskRepository(Protocol):
    """Tasks as the source of truth sees them. Reads and writes join the unit of work's
    transaction; nothing is durable before `UnitOfWork.commit()`. Every call may raise
    StoreUnavailable (StoreBusy when one of its bounded waits ran out)."""

    def add(self, task: Task) -> None:
        """Store a new task and give it its id (assigned by the store, never reused)."""

    def add_all(self, tasks: Sequence[Task]) -> None:
        """Store new tasks in one go, as `add` would one by one: ids increase in their order."""

    def get(self, task_id: int) -> Task | None:
        """The task as stored, or None."""

    def get_for_update(self, task_id: int) -> Task | None:
        """The task as stored, or None, its row locked against every other writer until the unit
        of work ends: a writer that reads this way and then saves never meets a conflict, and
        concurrent writers of one task queue behind each other (in arrival order on PostgreSQL)
        instead of failing. The wait is as long as the holder's unit of work, which is short;
        the dispatcher's selections skip a locked row instead of waiting for it."""

    def save(self, task: Task) -> None:
        """Write back a task read from this store: one conditional update that succeeds only if
        the stored version is still `task.version`, which it then increments.

        Raises ConcurrentModification if someone else changed the task since it was read."""

    def claim(
        self,
        task_id: int,
        dispatch_no: int,
        now: datetime,
        lease: timedelta,
        *,
        worker: str | None = None,
    ) -> Task | None:
        """Claim a task for one attempt in a single conditional write: `Task.claim`'s rule and
        effect, nothing more. A queued task whose dispatch number is `dispatch_no` becomes
        running, its attempt counted, started at `now`, its lease running until `now + lease`,
        claimed by `worker` (a name, at most 255 characters), its version incremented; that
        task is returned. The attempt the store records (TaskHistory) names that worker.
        Otherwise (unknown id, not queued, another dispatch number: a stale or duplicate
        message) nothing changes and the answer is None.

        It never raises ConcurrentModification: no read precedes the write, and of concurrent
        claims of one dispatch exactly one gets the task."""

    def record_outcome(self, task: Task, claimed_dispatch_no: int) -> Task | None:
        """Write an attempt's outcome in a single conditional write, only while the attempt still
        holds its claim: the stored task is running under `claimed_dispatch_no`.

        `task` is the copy `claim` returned, moved by `Task.complete` or `Task.fail_attempt`.
        Only the outcome's fields (`ATTEMPT_OUTCOME_FIELDS`) are written; every other field
        keeps its stored value, so a legal move made while the attempt ran (a new priority) is
        kept, and is what a retry is later dispatched on. The version is incremented. Returns
        the task as stored after the write; None if the claim was lost (its lease expired and
        the task was handed on or failed) or the id is unknown, and then nothing changes.

        It never raises ConcurrentModification: no version is compared, and a concurrent writer
        of the row only makes it wait for that writer's commit."""

    def claim_all(
        self,
        dispatches: Sequence[tuple[int, int]],
        now: datetime,
        lease: timedelta,
        *,
        worker: str | None = None,
    ) -> list[Task]:
        """`claim` of every `(task id, dispatch number)` of a message in a single conditional
        write, each row checked on its own: those claimed are returned (in any order), the
        others (stale, duplicate, unknown) are left as they are. No task id appears twice in
        `dispatches`. Never raises ConcurrentModification."""

    def record_outcomes(self, outcomes: Sequence[tuple[Task, int]]) -> list[Task]:
        """`record_outcome` of every `(task, claimed dispatch number)` in a single conditional
        write, each row on its own claim: the tasks as stored after the write are returned (in
        any order), for those whose claim held; an outcome whose claim was lost changes nothing
        and is left out. Each task appears once. Never raises ConcurrentModification."""

    def page(
        self, task_filter: TaskFilter, limit: int, offset: int, *, before_id: int | None = None
    ) -> TaskPage:
        """A page of at most `limit` matching tasks, newest first, skipping `offset` of them;
        with `before_id`, only tasks whose id is below it (a keyset page: its cost does not
        grow with how deep it is, as an offset's does). `total` counts every matching task and
        comes from the exact counts, never from a scan (see `counts`); with a creation window,
        from the window's tasks if it holds at most COUNT_CAP of them (else None). A creation
        window costs what a page without it does, whatever its position in a table of any size:
        the store may
        rely on ids growing with creation times (a task created more than a few seconds after
        another has a higher id; see the adapter for its bound)."""

    def counts(self, tenant: str | None = None) -> TaskCounts:
        """How many tasks there are per (status, priority, type), every tenant's or only
        `tenant`'s, exact as of this unit of work's snapshot: kept by every write in its own
        transaction, read without scanning the tasks (its cost does not grow with their
        number). Keys with no task may be missing."""

    def prune_finished(self, status: TaskStatus, finished_before: datetime, limit: int) -> int:
        """Delete at most `limit` tasks in `status` (a finished one: success, failed or
        cancelled) that finished before `finished_before`, oldest finish first; rows another
        transaction holds are skipped, never waited for. The counts follow in the same
        transaction. Answers how many were deleted. Raises ValueError for an unfinished
        status."""

    def fold_counts(self) -> None:
        """Housekeeping of the counts' storage (folding appended deltas into one row per key),
        so that reading them stays cheap; changes no count. A store may have nothing to do."""

    def queued_load(self, tenant: str) -> QueuedLoad:
        """How many of the tenant's tasks are queued, and how many pairs its queued batch tasks
        hold together. Reads every queued task of the tenant (so it costs as much as its quota
        allows, and is asked only when a quota is set)."""

    def due_for_dispatch(self, now: datetime, limit: int) -> list[Task]:
        """Queued, unpublished tasks whose start time has come: highest priority first (a due
        priority-1 task never waits behind due priority-3 ones), then oldest start first. The
        rows stay locked against other dispatchers until the unit of work ends; rows another
        dispatcher holds are skipped, never waited for."""

    def next_due_after(self, now: datetime) -> datetime | None:
        """The earliest start time later than `now` of a queued, unpublished task (a priority's
        delay or a retry's backoff still running), or None: when the dispatcher has something
        to publish next. Locks nothing."""

    def lock_awaiting_publication(self, tasks: Sequence[Task]) -> list[Task]:
        """Lock, until the unit of work ends, the rows of those of `tasks` still stored queued,
        unpublished and at the dispatch number of the copy in hand; answers those, in order, in
        one statement. On PostgreSQL a row another transaction holds is waited for, then checked
        again: a task that transaction published or moved is not answered."""

    def save_published(self, tasks: Sequence[Task], published_at: datetime) -> list[Task]:
        """Record the publication at `published_at` of each task's current dispatch number, in
        one statement for all of them, where the stored task is still queued, unpublished and at
        that dispatch number; answers those recorded, in their order. A task moved, claimed or
        published by someone else since it was read is left as that writer left it. Each
        recorded task's copy in hand is marked published and takes the incremented version, as
        `save` would. Called once the broker took the messages of rows this unit of work holds
        locked (application/publication.py)."""

    def lost_messages(
        self,
        priority: Priority,
        *,
        waiting: int,
        counted_at: datetime,
        published_before: datetime,
        limit: int,
    ) -> list[Task]:
        """Queued tasks of that priority whose message the broker no longer holds, oldest
        publication first, at most `limit`, locked and skipped like `due_for_dispatch`.

        `waiting` is how many dispatches (at most) the messages on the priority's queue carried
        when counted at `counted_at`. Queues are FIFO, so those dispatches belong to the tasks
        published last. Among the queued,
        published tasks of the priority published at or before `counted_at`, the `waiting` most
        recently published are presumed still on the queue (and every one published at the same
        instant as the oldest of them: the order within one instant is unknown); each of the
        others that was published before `published_before` lost its message. With `waiting`
        0 that is every one published before `published_before`.

        The promise is conservative: a message on the queue that belongs to no such task (a
        duplicate, a stale one after a priority change, a cancelled task's) only makes the
        answer smaller. The rows presumed waiting are ranked whether or not another dispatcher
        holds them; only the rows returned are locked."""

    def expired_leases(self, now: datetime, limit: int) -> list[Task]:
        """Running tasks whose lease ran out, locked and skipped like `due_for_dispatch`."""

    def higher_priority_waiting(self, priority: Priority, due_before: datetime) -> bool:
        """Whether a queued task of a higher priority than `priority` was due at `due_before`
        and is still unclaimed: one that awaits publication with `scheduled_for <= due_before`,
        or one published at or before `due_before` (a task is published only once due). A read
        of at most two index entries."""


class UnitOfWork(Protocol):
    """One transaction against the task store. `with uow:` begins it; leaving the block rolls
    back whatever was not committed. The same object may be entered again for a new one.
    Entering, committing and leaving may raise StoreUnavailable (StoreBusy: a bounded wait)."""

    tasks: TaskRepository
    idempotency_keys: IdempotencyKeys
    api_keys: ApiKeys
    history: TaskHistory

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None:
        """Make every change of this transaction durable, or raise and keep none of them."""

    def one_write(self) -> Self:
        """Ready the next `with uow:` block for a unit whose whole work is one repository call
        that is one statement (`claim`, `claim_all`, `record_outcomes`, `save`, `add_all`),
        followed at once by `commit()`.

        One statement is atomic on its own, so the store may run it as its own transaction and
        spare the BEGIN and COMMIT round trips: the write may then be durable before `commit()`,
        which still confirms it. A second repository call in the block raises RuntimeError."""

    def ping(self) -> None:
        """Raise StoreUnavailable if the store cannot be reached."""
