"""TaskRepository on SQLAlchemy Core: one statement, one round trip, per call unless noted."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    TIMESTAMP,
    BigInteger,
    Connection,
    CursorResult,
    Executable,
    Integer,
    Numeric,
    Select,
    Text,
    and_,
    bindparam,
    case,
    cast,
    column,
    delete,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.sql.dml import Update
from sqlalchemy.types import TypeEngine

from adapters.sql.errors import store_errors
from adapters.sql.mapping import insert_values, mutable_values, task_from_row
from adapters.sql.tables import (
    AWAITING_PUBLICATION,
    PUBLISHED_AND_QUEUED,
    QUEUED,
    RUNNING,
    RUNNING_TASK,
    task_counts,
    tasks,
)
from application.errors import ConcurrentModification
from application.ports import QueuedLoad, TaskCounts, TaskFilter, TaskPage, TaskRepository
from application.ports import repository as repository_port
from domain.priority import Priority
from domain.task import ATTEMPT_OUTCOME_FIELDS, INT64_MAX, Task, TaskStatus, TaskType

FINISHED_STATUSES = (TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED)
_COUNT_KEY = (task_counts.c.status, task_counts.c.priority, task_counts.c.type)
_COUNTS = select(*_COUNT_KEY, func.sum(task_counts.c.n).label("n")).group_by(*_COUNT_KEY)
_TENANT_COUNTS = _COUNTS.where(task_counts.c.tenant == bindparam("tenant"))
_COUNTS_TO_FOLD = select(
    task_counts.c.tenant, *_COUNT_KEY, func.sum(task_counts.c.n).label("n")
).group_by(task_counts.c.tenant, *_COUNT_KEY)
# The deltas folded into one row per key in one statement. Under concurrent writers it is exact:
# the DELETE takes the rows its snapshot sees, and a delta committed after it stays for the next
# fold; a concurrent fold's rows are skipped once it commits, never counted twice.
_FOLD_PG = text(
    "WITH folded AS (DELETE FROM task_counts RETURNING tenant, status, priority, type, n) "
    "INSERT INTO task_counts (tenant, status, priority, type, n) "
    "SELECT tenant, status, priority, type, sum(n) FROM folded "
    "GROUP BY tenant, status, priority, type HAVING sum(n) <> 0"
)

# Built once: SQLAlchemy caches the compiled SQL by statement, and these are the hot path.
_INSERT = insert(tasks).returning(tasks.c.id)
# One multi-row INSERT (SQLAlchemy's insertmanyvalues), ids returned in the order of the rows.
_INSERT_MANY = insert(tasks).returning(tasks.c.id, sort_by_parameter_order=True)
_GET = select(tasks).where(tasks.c.id == bindparam("task_id"))
# FOR UPDATE (not SKIP LOCKED): a move waits its turn behind the row's current writer. SQLite
# renders nothing; its BEGIN IMMEDIATE already holds the database's one write lock.
_GET_FOR_UPDATE = _GET.with_for_update()
# The compare-and-set. The WHERE names avoid the column names, which the SET clause takes.
_SAVE = (
    update(tasks)
    .where(tasks.c.id == bindparam("expected_id"), tasks.c.version == bindparam("expected_version"))
    .values(version=tasks.c.version + 1)
)

# The claim (docs/glossary.md#claim): one conditional UPDATE, no read before it. It mirrors
# Task.claim (rule: queued and this dispatch number; effect: running, one more attempt, started
# now, lease until now + lease, claimed by the worker) and must change with it: the repository
# contract checks they agree.
_CLAIM_EFFECT = {
    "status": RUNNING,
    "attempts": tasks.c.attempts + 1,
    "started_at": bindparam("now", type_=tasks.c.started_at.type),
    "lease_expires_at": bindparam("lease_until", type_=tasks.c.lease_expires_at.type),
    "updated_at": bindparam("now", type_=tasks.c.updated_at.type),
    "version": tasks.c.version + 1,
    "worker": bindparam("worker", type_=tasks.c.worker.type),
}
_CLAIM = (
    update(tasks)
    .where(
        tasks.c.id == bindparam("task_id"),
        tasks.c.status == QUEUED,
        tasks.c.dispatch_no == bindparam("claimed_dispatch_no"),
    )
    .values(_CLAIM_EFFECT)
    .returning(*tasks.c)
)
# Every dispatch of a message at once, each row on its own rule. `id IN` leads the primary key;
# the row values only filter, so a stale entry (another dispatch number) matches no row.
_CLAIM_ALL = (
    update(tasks)
    .where(
        tasks.c.id.in_(bindparam("ids", expanding=True)),
        tuple_(tasks.c.id, tasks.c.dispatch_no).in_(bindparam("dispatches", expanding=True)),
        tasks.c.status == QUEUED,
    )
    .values(_CLAIM_EFFECT)
    .returning(*tasks.c)
)


# The same on PostgreSQL, with the entries as two array parameters: a short, constant statement
# that psycopg parses once and the server prepares, whatever the message's size (a statement of
# a hundred placeholders would be split and planned anew each time). unnest pairs the arrays up
# row by row; each row then joins its task by primary key.
def _unnested(name: str, columns: dict[str, TypeEngine[Any]]) -> Any:
    """`unnest(:<column>_all, ...) AS name(<column>, ...)`: one array parameter per column,
    paired up row by row."""
    arrays = (bindparam(f"{column_}_all", type_=ARRAY(type_)) for column_, type_ in columns.items())
    return (
        func.unnest(*arrays)
        .table_valued(*(column(column_, type_) for column_, type_ in columns.items()))
        .render_derived(name=name)
    )


def _each_row(rows: Any, dispatch_no: str, status: Any) -> Update:
    """An UPDATE of the tasks `rows` (unnested) name by id, each at its own dispatch number (the
    column `dispatch_no` of `rows`) and in `status`."""
    return update(tasks).where(
        tasks.c.id == rows.c.id,
        tasks.c.dispatch_no == rows.c[dispatch_no],
        tasks.c.status == status,
    )


_ENTRY = _unnested("entry", {"id": BigInteger(), "dispatch_no": Integer()})
_CLAIM_ALL_PG = _each_row(_ENTRY, "dispatch_no", QUEUED).values(_CLAIM_EFFECT).returning(*tasks.c)

# An attempt's outcome, conditional on its claim (docs/glossary.md#claim: results are written
# only by the attempt holding it), not on the version: it sets the outcome's columns
# (ATTEMPT_OUTCOME_FIELDS) and leaves the rest, a priority recorded meanwhile included, as stored.
# On PostgreSQL, behind a concurrent writer it waits for that commit, then re-checks the condition
# on the new row.
_RECORD_OUTCOME = (
    update(tasks)
    .where(
        tasks.c.id == bindparam("task_id"),
        tasks.c.status == RUNNING,
        tasks.c.dispatch_no == bindparam("claimed_dispatch_no"),
    )
    .values(version=tasks.c.version + 1)
    .returning(*tasks.c)
)


# Every outcome of a message on PostgreSQL, each row on _RECORD_OUTCOME's rule, the outcome
# fields as one array parameter each, paired up row by row by unnest (see _ENTRY). The JSON
# results travel as text, one document per row.
_OUTCOME_TYPES: dict[str, TypeEngine[Any]] = {
    "id": BigInteger(),
    "claimed_dispatch_no": Integer(),
    "status": Text(),
    "attempts": Integer(),
    "result": Numeric(),
    "results": Text(),
    "error_message": Text(),
    "finished_at": TIMESTAMP(timezone=True),
    "lease_expires_at": TIMESTAMP(timezone=True),
    "scheduled_for": TIMESTAMP(timezone=True),
    "dispatch_no": Integer(),
    "published_at": TIMESTAMP(timezone=True),
    "updated_at": TIMESTAMP(timezone=True),
}
assert set(_OUTCOME_TYPES) == {"id", "claimed_dispatch_no", *ATTEMPT_OUTCOME_FIELDS}
_OUTCOME = _unnested("outcome", _OUTCOME_TYPES)
_RECORD_OUTCOMES_PG = (
    _each_row(_OUTCOME, "claimed_dispatch_no", RUNNING)
    .values(
        {
            name: cast(_OUTCOME.c[name], JSONB) if name == "results" else _OUTCOME.c[name]
            for name in ATTEMPT_OUTCOME_FIELDS
        }
        | {"version": tasks.c.version + 1}
    )
    .returning(*tasks.c)
)


@functools.lru_cache(maxsize=256)
def _record_outcomes_statement(count: int, varying: tuple[str, ...]) -> Executable:
    """The outcomes of `count` attempts in one UPDATE, each row on _RECORD_OUTCOME's rule (its
    own id, claimed dispatch number and status running), bound as `id_<i>` and `claimed_<i>`.
    A field in `varying` is a CASE on the id, bound as `<field>_<i>`; any other outcome field
    has one value for all, bound as `<field>`. Built once per shape: SQLAlchemy then finds the
    compiled SQL in its cache, and a message's outcomes cost no statement building."""
    ids = [bindparam(f"id_{i}", type_=tasks.c.id.type) for i in range(count)]
    values: dict[str, Any] = {"version": tasks.c.version + 1}
    for name in ATTEMPT_OUTCOME_FIELDS:
        column = tasks.c[name]
        if name not in varying:
            values[name] = bindparam(name, type_=column.type)
            continue
        values[name] = case(
            *(
                (tasks.c.id == ids[i], bindparam(f"{name}_{i}", type_=column.type))
                for i in range(count)
            ),
            else_=column,
        )
    claimed = [bindparam(f"claimed_{i}", type_=tasks.c.dispatch_no.type) for i in range(count)]
    return (
        update(tasks)
        .where(
            tasks.c.id.in_(ids),
            tuple_(tasks.c.id, tasks.c.dispatch_no).in_(
                [tuple_(task_id, number) for task_id, number in zip(ids, claimed, strict=True)]
            ),
            tasks.c.status == RUNNING,
        )
        .values(values)
        .returning(*tasks.c)
    )


# The rows of tasks about to be published, locked so that a dispatcher's selection skips them.
_LOCK_AWAITING_PUBLICATION = (
    select(tasks.c.id)
    .where(
        tasks.c.id.in_(bindparam("ids", expanding=True)),
        tuple_(tasks.c.id, tasks.c.dispatch_no).in_(bindparam("dispatches", expanding=True)),
        AWAITING_PUBLICATION,
    )
    .with_for_update()
)

# The publication of tasks whose messages the broker took: conditional on the dispatch number
# the message carries, so a task moved meanwhile (a new dispatch number, not published) is not
# taken for published. `id IN` leads the primary key; the row values only filter.
_SAVE_PUBLISHED = (
    update(tasks)
    .where(
        tasks.c.id.in_(bindparam("ids", expanding=True)),
        tuple_(tasks.c.id, tasks.c.dispatch_no).in_(bindparam("dispatches", expanding=True)),
        AWAITING_PUBLICATION,
    )
    .values(published_at=bindparam("published"), version=tasks.c.version + 1)
    .returning(tasks.c.id)
)


_QUEUED_LOAD = select(
    func.count().label("tasks"),
    func.coalesce(func.sum(case((tasks.c.type == "batch", tasks.c.pair_count), else_=0)), 0).label(
        "batch_pairs"
    ),
).where(tasks.c.tenant == bindparam("tenant"), tasks.c.status == QUEUED)


# How far apart two tasks' creation times may be while their ids are in the other order: the
# creating processes' clock skew plus the time from reading the clock to the INSERT taking its
# id (bounded by the pool and statement waits). The list takes a creation window as a range of
# ids found from this margin, so a page walks the same indexes a page without it does; a task
# created further out of order than this could be missed by a window near its creation time.
CREATION_SKEW = timedelta(seconds=10)
# The probes read tasks under another name: a subquery on `tasks` itself would be correlated with
# the list's own FROM.
_PROBE = tasks.alias("probe")


def _created_within(after: datetime | None, before: datetime | None) -> list[Any]:
    """The conditions of the creation window `after <= created_at < before`: the window itself,
    and the range of ids it lies in, from one probe of ix_tasks_created_at per end (a scalar
    subquery each, run once): every task created before `after - CREATION_SKEW` has a lower id
    than every task in the window, and every task created from `before + CREATION_SKEW` on a
    higher one. With those bounds the list walks the primary key (or a filter's (column, id)
    index) from the window's newest id down, however old the window is."""
    conditions: list[Any] = []
    if after is not None:
        conditions.append(tasks.c.created_at >= after)
        floor = _shifted(after, -CREATION_SKEW)
        if floor is not None:
            below = (
                select(_PROBE.c.id)
                .where(_PROBE.c.created_at < floor)
                .order_by(_PROBE.c.created_at.desc())
                .limit(1)
                .scalar_subquery()
            )
            conditions.append(tasks.c.id > func.coalesce(below, 0))
    if before is not None:
        conditions.append(tasks.c.created_at < before)
        ceiling = _shifted(before, CREATION_SKEW)
        if ceiling is not None:
            above = (
                select(_PROBE.c.id)
                .where(_PROBE.c.created_at >= ceiling)
                .order_by(_PROBE.c.created_at)
                .limit(1)
                .scalar_subquery()
            )
            # No task created that late: no upper bound (an id is never above INT64_MAX).
            conditions.append(tasks.c.id < func.coalesce(above, INT64_MAX))
    return conditions


def _shifted(moment: datetime, delta: timedelta) -> datetime | None:
    """`moment + delta`, or None beyond the calendar (no bound is needed there)."""
    try:
        return moment + delta
    except OverflowError:
        return None


# When the dispatcher has something to publish next: one statement of three probes, each the
# first entry after :now of one priority's range of ix_tasks_due (priority, scheduled_for), the
# same cost on any size of table.
_NEXT_DUE = select(
    *(
        select(func.min(tasks.c.scheduled_for))
        .where(
            AWAITING_PUBLICATION,
            tasks.c.priority == int(priority),
            tasks.c.scheduled_for > bindparam("now", type_=tasks.c.scheduled_for.type),
        )
        .scalar_subquery()
        for priority in Priority
    )
)


def _locked(query: Select[tuple[object, ...]]) -> Select[tuple[object, ...]]:
    # FOR UPDATE SKIP LOCKED on PostgreSQL, so dispatchers running side by side split the work;
    # SQLite renders nothing, and its one writer at a time gives the same exclusion.
    return query.with_for_update(skip_locked=True)


class SqlTaskRepository(TaskRepository):
    def __init__(
        self, connection: Connection, *, read_only: bool = False, one_statement: bool = False
    ) -> None:
        self._connection = connection
        self._postgres = connection.dialect.name == "postgresql"
        self._read_only = read_only
        self._statements_left = 1 if one_statement else None
        self.wrote = False

    def _execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]:
        if self._statements_left is not None:
            if self._statements_left == 0:
                raise RuntimeError("a one-write unit of work runs a single statement")
            self._statements_left -= 1
        with store_errors():
            return self._connection.execute(statement, parameters)

    def _will_write(self) -> None:
        if self._read_only:
            # On SQLite its deferred transaction would have to upgrade to the write lock, which
            # fails at once with SQLITE_BUSY whenever another writer holds it.
            raise RuntimeError("a read-only unit of work does not write")
        self.wrote = True

    def add(self, task: Task) -> None:
        self._will_write()
        task.id = self._execute(_INSERT, insert_values(task)).scalar_one()

    def add_all(self, new_tasks: Sequence[Task]) -> None:
        if len(new_tasks) == 1:
            self.add(new_tasks[0])
            return
        self._will_write()
        rows = [insert_values(task) for task in new_tasks]
        ids = self._execute(_INSERT_MANY, rows).scalars().all()
        for task, task_id in zip(new_tasks, ids, strict=True):
            task.id = task_id

    def get(self, task_id: int) -> Task | None:
        row = self._execute(_GET, {"task_id": task_id}).mappings().first()
        return task_from_row(row) if row is not None else None

    def get_for_update(self, task_id: int) -> Task | None:
        row = self._execute(_GET_FOR_UPDATE, {"task_id": task_id}).mappings().first()
        return task_from_row(row) if row is not None else None

    def save(self, task: Task) -> None:
        self._will_write()
        params = mutable_values(task)
        params["expected_id"] = task.id
        params["expected_version"] = task.version
        if self._execute(_SAVE, params).rowcount != 1:
            raise ConcurrentModification(f"task {task.id} changed since it was read")
        task.version += 1

    def claim(
        self,
        task_id: int,
        dispatch_no: int,
        now: datetime,
        lease: timedelta,
        *,
        worker: str | None = None,
    ) -> Task | None:
        """`Task.claim` as one conditional UPDATE ... RETURNING (see _CLAIM)."""
        self._will_write()
        params = {
            "task_id": task_id,
            "claimed_dispatch_no": dispatch_no,
            "now": now,
            "lease_until": now + lease,
            "worker": worker,
        }
        row = self._execute(_CLAIM, params).mappings().first()
        return task_from_row(row) if row is not None else None

    def record_outcome(self, task: Task, claimed_dispatch_no: int) -> Task | None:
        """One conditional UPDATE ... RETURNING (see _RECORD_OUTCOME)."""
        self._will_write()
        values = mutable_values(task)
        params = {name: values[name] for name in ATTEMPT_OUTCOME_FIELDS}
        params["task_id"] = task.id
        params["claimed_dispatch_no"] = claimed_dispatch_no
        row = self._execute(_RECORD_OUTCOME, params).mappings().first()
        return task_from_row(row) if row is not None else None

    def claim_all(
        self,
        dispatches: Sequence[tuple[int, int]],
        now: datetime,
        lease: timedelta,
        *,
        worker: str | None = None,
    ) -> list[Task]:
        """Every claim in one conditional UPDATE ... RETURNING (see _CLAIM_ALL)."""
        if len(dispatches) == 1:
            ((task_id, dispatch_no),) = dispatches
            claimed = self.claim(task_id, dispatch_no, now, lease, worker=worker)
            return [claimed] if claimed is not None else []
        if not dispatches:
            return []
        self._will_write()
        params: dict[str, Any] = {"now": now, "lease_until": now + lease, "worker": worker}
        if self._postgres:
            params["id_all"] = [task_id for task_id, _ in dispatches]
            params["dispatch_no_all"] = [dispatch_no for _, dispatch_no in dispatches]
            return self._tasks_written(_CLAIM_ALL_PG, params)
        params["ids"] = [task_id for task_id, _ in dispatches]
        params["dispatches"] = list(dispatches)
        return self._tasks_written(_CLAIM_ALL, params)

    def record_outcomes(self, outcomes: Sequence[tuple[Task, int]]) -> list[Task]:
        """One conditional UPDATE ... RETURNING for all (see _record_outcomes_statement)."""
        if len(outcomes) == 1:
            ((task, claimed_dispatch_no),) = outcomes
            recorded = self.record_outcome(task, claimed_dispatch_no)
            return [recorded] if recorded is not None else []
        if not outcomes:
            return []
        self._will_write()
        rows = [mutable_values(task) for task, _ in outcomes]
        if self._postgres:
            columns: dict[str, list[Any]] = {
                "id": [task.id for task, _ in outcomes],
                "claimed_dispatch_no": [claimed for _, claimed in outcomes],
            }
            for name in ATTEMPT_OUTCOME_FIELDS:
                columns[name] = [row[name] for row in rows]
            columns["results"] = [None if r is None else json.dumps(r) for r in columns["results"]]
            arrays = {f"{name}_all": values for name, values in columns.items()}
            return self._tasks_written(_RECORD_OUTCOMES_PG, arrays)
        params = {}
        varying = []
        for name in ATTEMPT_OUTCOME_FIELDS:
            first = rows[0][name]
            if all(row[name] == first for row in rows):
                params[name] = first
                continue
            varying.append(name)
            params.update((f"{name}_{i}", row[name]) for i, row in enumerate(rows))
        for i, (task, claimed_dispatch_no) in enumerate(outcomes):
            params[f"id_{i}"] = task.id
            params[f"claimed_{i}"] = claimed_dispatch_no
        statement = _record_outcomes_statement(len(outcomes), tuple(varying))
        return self._tasks_written(statement, params)

    def page(
        self, task_filter: TaskFilter, limit: int, offset: int, *, before_id: int | None = None
    ) -> TaskPage:
        conditions = []
        if task_filter.status is not None:
            conditions.append(tasks.c.status == task_filter.status.value)
        if task_filter.type is not None:
            conditions.append(tasks.c.type == task_filter.type.value)
        if task_filter.priority is not None:
            conditions.append(tasks.c.priority == int(task_filter.priority))
        if task_filter.tenant is not None:  # served by ix_tasks_tenant_id
            conditions.append(tasks.c.tenant == task_filter.tenant)
        window = _created_within(task_filter.created_after, task_filter.created_before)
        filters = list(conditions)
        conditions += window
        cursor = [] if before_id is None else [tasks.c.id < before_id]
        # One row more than the page: whether it exists says if there is a next page.
        query = (
            select(tasks)
            .where(*conditions, *cursor)
            .order_by(tasks.c.id.desc())
            .limit(limit + 1)
            .offset(offset)
        )
        items = [task_from_row(row) for row in self._execute(query).mappings()]
        more = len(items) > limit
        del items[limit:]
        next_before_id = items[-1].id if more and items else None
        if task_filter.by_creation_time:
            return TaskPage(items, self._count_in_window(window, filters), next_before_id)
        counts = self.counts(task_filter.tenant)
        total = sum(n for key, n in counts.items() if task_filter.matches(*key))
        return TaskPage(items=items, total=total, next_before_id=next_before_id)

    def _count_in_window(self, window: list[Any], filters: list[Any]) -> int | None:
        """How many tasks of the creation window pass `filters`, if the window holds at most
        COUNT_CAP tasks; else None. One walk of at most COUNT_CAP + 1 rows of the window, in
        whatever order is cheapest: its cost is bounded whatever the filters' selectivity."""
        cap = repository_port.COUNT_CAP
        passes = case((and_(*filters), 1), else_=0) if filters else literal_column("1")
        walked = select(passes.label("passes")).where(*window).limit(cap + 1).subquery()
        counted = select(
            func.count().label("walked"),
            func.coalesce(func.sum(walked.c.passes), 0).label("passing"),
        )
        row = self._execute(counted).mappings().one()
        return int(row["passing"]) if row["walked"] <= cap else None

    def counts(self, tenant: str | None = None) -> TaskCounts:
        rows = (
            self._execute(_COUNTS)
            if tenant is None
            else self._execute(_TENANT_COUNTS, {"tenant": tenant})
        )
        return {
            (TaskStatus(row["status"]), Priority(row["priority"]), TaskType(row["type"])): int(
                row["n"]
            )
            for row in rows.mappings()
            if row["n"]
        }

    def prune_finished(self, status: TaskStatus, finished_before: datetime, limit: int) -> int:
        if status not in FINISHED_STATUSES:
            raise ValueError(f"only finished tasks are pruned, not {status.value} ones")
        self._will_write()
        # The status as a literal, so PostgreSQL proves the partial ix_tasks_finished applies
        # (see tables.QUEUED); the batch walks it oldest finish first and stops after `limit`.
        oldest = (
            select(tasks.c.id)
            .where(
                tasks.c.status == literal_column(f"'{status.value}'"),
                tasks.c.finished_at < finished_before,
            )
            .order_by(tasks.c.finished_at)
            .limit(limit)
        )
        statement = delete(tasks).where(tasks.c.id.in_(_locked(oldest).scalar_subquery()))
        return int(self._execute(statement).rowcount)

    def fold_counts(self) -> None:
        self._will_write()
        if self._connection.dialect.name == "postgresql":
            self._execute(_FOLD_PG)
            return
        # SQLite: its write lock, held since BEGIN IMMEDIATE, keeps every writer out meanwhile.
        folded = [dict(row) for row in self._execute(_COUNTS_TO_FOLD).mappings() if row["n"]]
        self._execute(delete(task_counts))
        if folded:
            self._execute(insert(task_counts), folded)

    def queued_load(self, tenant: str) -> QueuedLoad:
        # Answered from ix_tasks_tenant_queued alone (tenant, type, pair_count of queued rows).
        load = self._execute(_QUEUED_LOAD, {"tenant": tenant}).mappings().one()
        return QueuedLoad(tasks=int(load["tasks"]), batch_pairs=int(load["batch_pairs"]))

    def due_for_dispatch(self, now: datetime, limit: int) -> list[Task]:
        # One statement per priority, highest first, until the batch is full (at most three):
        # each one is a range scan of ix_tasks_due (priority, scheduled_for) in index order that
        # stops after the rows it returns, so it locks exactly those. A single ORDER BY priority,
        # scheduled_for cannot bound its scan by scheduled_for, and PostgreSQL then reads and
        # sorts every due row of every priority (4,500 rows, 15 ms, on the data of
        # scripts/explain_queries.py; 2 ms this way).
        due: list[Task] = []
        for priority in Priority:
            if len(due) >= limit:
                break
            query = (
                select(tasks)
                .where(
                    AWAITING_PUBLICATION,
                    tasks.c.priority == int(priority),
                    tasks.c.scheduled_for <= now,
                )
                .order_by(tasks.c.scheduled_for)
                .limit(limit - len(due))
            )
            due += self._tasks(_locked(query))
        return due

    def next_due_after(self, now: datetime) -> datetime | None:
        row = self._execute(_NEXT_DUE, {"now": now}).one()
        starts: list[datetime] = [value for value in row if value is not None]
        return min(starts, default=None)

    def lock_awaiting_publication(self, tasks: Sequence[Task]) -> list[Task]:
        if not tasks:
            return []
        params = {
            "ids": [task.id for task in tasks],
            "dispatches": [(task.id, task.dispatch_no) for task in tasks],
        }
        locked = set(self._execute(_LOCK_AWAITING_PUBLICATION, params).scalars())
        return [task for task in tasks if task.id in locked]

    def save_published(self, tasks: Sequence[Task], published_at: datetime) -> list[Task]:
        if not tasks:
            return []
        self._will_write()
        params = {
            "ids": [task.id for task in tasks],
            "dispatches": [(task.id, task.dispatch_no) for task in tasks],
            "published": published_at,
        }
        recorded_ids = set(self._execute(_SAVE_PUBLISHED, params).scalars())
        recorded = [task for task in tasks if task.id in recorded_ids]
        for task in recorded:
            task.mark_published(published_at)
            task.version += 1
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
        # One statement, both parts on ix_tasks_published_queued (priority, published_at): the
        # subquery walks it backwards from `counted_at` to the oldest message presumed waiting
        # (`waiting` entries), the outer query forwards from the oldest publication.
        considered = (
            PUBLISHED_AND_QUEUED,
            tasks.c.priority == int(priority),
            tasks.c.published_at <= counted_at,
        )
        conditions = [*considered, tasks.c.published_at < published_before]
        if waiting > 0:
            # NULL when fewer tasks than messages: then no row qualifies, as it should. The
            # subquery locks nothing, so rows another dispatcher holds still count as waiting.
            oldest_waiting = (
                select(tasks.c.published_at)
                .where(*considered)
                .order_by(tasks.c.published_at.desc())
                .offset(waiting - 1)
                .limit(1)
                .scalar_subquery()
            )
            conditions.append(tasks.c.published_at < oldest_waiting)
        query = select(tasks).where(*conditions).order_by(tasks.c.published_at).limit(limit)
        return self._tasks(_locked(query))

    def expired_leases(self, now: datetime, limit: int) -> list[Task]:
        query = (
            select(tasks)
            .where(RUNNING_TASK, tasks.c.lease_expires_at <= now)
            .order_by(tasks.c.lease_expires_at)
            .limit(limit)
        )
        return self._tasks(_locked(query))

    def higher_priority_waiting(self, priority: Priority, due_before: datetime) -> bool:
        """One statement, two probes: each is the head of a partial index (ix_tasks_due,
        ix_tasks_published_queued), so it costs the same on any size of table."""
        higher = tasks.c.priority < int(priority)
        awaiting = exists().where(AWAITING_PUBLICATION, higher, tasks.c.scheduled_for <= due_before)
        published = exists().where(PUBLISHED_AND_QUEUED, higher, tasks.c.published_at <= due_before)
        return bool(self._execute(select(or_(awaiting, published))).scalar())

    def _tasks_written(self, statement: Executable, params: dict[str, Any]) -> list[Task]:
        return [task_from_row(row) for row in self._execute(statement, params).mappings()]

    def _tasks(self, query: Select[tuple[object, ...]]) -> list[Task]:
        return [task_from_row(row) for row in self._execute(query).mappings()]
