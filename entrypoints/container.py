"""The wiring: which adapter serves each port, configured from Settings.

The API, the workers and the dispatcher each build one Container and resolve use cases from it.
It holds only what every process shares: what one process alone needs is built by that
process's entry point (the API's create groups and task turns by its app factory), so the
worker, the dispatcher and the health check never import the API (import-linter checks it).
Tests swap an adapter with `container.<provider>.override(fake)`."""

from __future__ import annotations

from datetime import timedelta

from dependency_injector import containers, providers
from prometheus_client import CollectorRegistry

from adapters.arithmetic import ExactArithmetic, FaultInjectingArithmetic
from adapters.broker import CeleryTaskQueue, create_celery_app
from adapters.clock import SystemClock
from adapters.sql import SqlUnitOfWork, Waits, create_engine_for
from application.use_cases import (
    Authenticate,
    BulkMove,
    CancelTask,
    ChangePriority,
    CheckHealth,
    ConsoleOverview,
    CreateBatch,
    CreateTask,
    DispatchDue,
    ExecuteTask,
    ExplainTask,
    FollowEvents,
    GetAttempts,
    GetTask,
    IssueApiKey,
    ListApiKeys,
    ListTasks,
    PruneFinishedTasks,
    PruneIdempotencyKeys,
    RetryTask,
    RevokeApiKey,
)
from entrypoints.observability import build_metrics
from entrypoints.settings import Settings

# How long a reader of every task's events waits for a missing event id (application/use_cases/
# follow_events.py): longer than any transaction that writes events takes to commit.
EVENT_GAP_WAIT_SECONDS = 2.0


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


class Container(containers.DeclarativeContainer):
    # ThreadSafeSingleton: the API resolves these from its threadpool, and two requests racing
    # on the first use of a plain Singleton would build two engines (two connection pools).
    settings = providers.ThreadSafeSingleton(Settings)

    clock = providers.ThreadSafeSingleton(SystemClock)
    engine = providers.ThreadSafeSingleton(
        create_engine_for,
        settings.provided.resolved_database_url,
        waits=providers.Factory(
            Waits,
            lock=settings.provided.db_lock_timeout_seconds,
            statement=settings.provided.db_statement_timeout_seconds,
            pool=settings.provided.db_pool_timeout_seconds,
        ),
    )
    uow = providers.Factory(SqlUnitOfWork, engine)
    # For the use cases that only read: on SQLite they then never wait behind a writer.
    read_uow = providers.Factory(SqlUnitOfWork, engine, read_only=True)
    celery_app = providers.ThreadSafeSingleton(
        create_celery_app,
        broker_url=settings.provided.resolved_broker_url,
        visibility_timeout_seconds=settings.provided.visibility_timeout_seconds,
        attempt_time_limit_seconds=settings.provided.lease_seconds,
        message_max_bytes=settings.provided.broker_message_max_bytes,
        rejected_messages_max=settings.provided.rejected_messages_max,
        task_events=settings.provided.task_events,
    )
    queue = providers.ThreadSafeSingleton(
        CeleryTaskQueue,
        celery_app,
        max_tasks=settings.provided.message_max_tasks,
        spread=settings.provided.worker_concurrency,
    )
    arithmetic = providers.ThreadSafeSingleton(
        FaultInjectingArithmetic,
        inner=providers.Singleton(ExactArithmetic),
        failure_rate=settings.provided.task_failure_rate,
        run_seconds=settings.provided.task_run_seconds,
    )
    schedule = providers.ThreadSafeSingleton(Settings.schedule, settings)
    retry_policy = providers.ThreadSafeSingleton(Settings.retry_policy, settings)
    max_attempts = settings.provided.max_attempts
    # One registry per container: tests build many containers in one process.
    metrics_registry = providers.ThreadSafeSingleton(CollectorRegistry)
    metrics = providers.ThreadSafeSingleton(build_metrics, settings, metrics_registry)

    key_ttl = providers.Callable(_seconds, settings.provided.idempotency_key_ttl_seconds)
    quota = providers.ThreadSafeSingleton(Settings.quota, settings)
    pepper = settings.provided.pepper

    create_task = providers.Factory(
        CreateTask,
        uow,
        queue,
        clock,
        schedule,
        max_attempts,
        key_ttl=key_ttl,
        quota=quota,
        metrics=metrics,
    )
    create_batch = providers.Factory(
        CreateBatch,
        uow,
        queue,
        clock,
        schedule,
        max_attempts,
        settings.provided.max_batch_pairs,
        key_ttl=key_ttl,
        quota=quota,
        metrics=metrics,
    )
    get_task = providers.Factory(GetTask, read_uow)
    list_tasks = providers.Factory(ListTasks, read_uow)
    change_priority = providers.Factory(ChangePriority, uow, queue, clock, schedule)
    retry_task = providers.Factory(RetryTask, uow, queue, clock, schedule)
    cancel_task = providers.Factory(CancelTask, uow, clock)
    check_health = providers.Factory(CheckHealth, read_uow, queue)
    get_attempts = providers.Factory(GetAttempts, read_uow)
    explain_task = providers.Factory(ExplainTask, read_uow, queue, clock)
    follow_events = providers.Factory(FollowEvents, read_uow, EVENT_GAP_WAIT_SECONDS)
    console_overview = providers.Factory(ConsoleOverview, read_uow, clock, schedule)
    bulk_move = providers.Factory(BulkMove, uow, retry_task, cancel_task, change_priority)
    authenticate = providers.Factory(Authenticate, read_uow, pepper)
    issue_api_key = providers.Factory(IssueApiKey, uow, clock, pepper)
    list_api_keys = providers.Factory(ListApiKeys, read_uow)
    revoke_api_key = providers.Factory(RevokeApiKey, uow, clock)
    # Who runs the attempts: a worker entry point names itself (entrypoints/worker.py); none
    # elsewhere.
    worker_name: providers.Provider[str | None] = providers.Object(None)
    execute_task = providers.Factory(
        ExecuteTask,
        uow,
        clock,
        arithmetic,
        retry_policy,
        providers.Callable(_seconds, settings.provided.lease_seconds),
        metrics,
        worker=worker_name,
    )
    dispatch_due = providers.Factory(
        DispatchDue,
        uow,
        queue,
        clock,
        settings.provided.dispatcher_batch_size,
        providers.Callable(_seconds, settings.provided.lost_message_after_seconds),
    )
    prune_idempotency_keys = providers.Factory(
        PruneIdempotencyKeys, uow, clock, settings.provided.dispatcher_batch_size
    )
    prune_finished_tasks = providers.Factory(
        PruneFinishedTasks,
        uow,
        clock,
        providers.Callable(Settings.retention, settings),
        settings.provided.dispatcher_batch_size,
        events_retention=providers.Callable(_seconds, settings.provided.events_retention_seconds),
    )
