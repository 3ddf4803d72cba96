"""`python -m entrypoints.worker --queue high|medium|low` (or 1|2|3): one priority's worker pool.

Each priority has its own queue and its own pool of `WORKER_CONCURRENCY` processes, so a flood of
low-priority work never delays high-priority work. The Celery task is thin: it resolves
ExecuteTask from the container and runs one attempt of each task the message names (one or
several, adapters/broker/messages.py); the use case decides everything else.

If the store is down the attempt raises, Celery logs it and acknowledges the message; nothing is
lost, since the dispatcher republishes a queued task whose message vanished and requeues a
running one whose lease ran out.

A message that is not a valid taskman message is set aside by the broker transport before it
gets here (adapters/broker/envelope.py). An error the worker cannot recover from ends it with a
non-zero exit status, so that compose's restart policy or any supervisor sees a failure."""

from __future__ import annotations

import argparse
import atexit
import logging
import multiprocessing.util
import os
import shutil
import signal
import sys
from logging import INFO, WARNING
from typing import Any

import structlog
from celery import Celery, signals
from dependency_injector import providers

from adapters.broker import EXECUTE_TASK
from adapters.broker.envelope import PoisonMessage, dispatches_of
from application.use_cases.execute_task import AttemptOutcome, ExecuteTaskRequest
from domain.priority import Priority
from entrypoints.container import Container
from entrypoints.node_names import NodeIndex, attempt_worker, node_name
from entrypoints.observability import (
    configure_logging,
    serve_metrics,
    share_metrics_between_processes,
)

log = structlog.get_logger("taskman.worker")

CPU_NICENESS = {Priority.HIGH: 0, Priority.MEDIUM: 5, Priority.LOW: 10}


def parse_priority(value: str) -> Priority:
    for priority in Priority:
        if value in (priority.queue_name, str(priority.value)):
            return priority
    raise argparse.ArgumentTypeError(f"unknown queue {value!r}: high|medium|low or 1|2|3")


def register_tasks(app: Celery, container: Container, priority: Priority) -> None:
    # Not shared: registered on this app only, with this container.
    @app.task(name=EXECUTE_TASK, ignore_result=True, shared=False)  # type: ignore[untyped-decorator]
    def execute(*args: Any, **kwargs: Any) -> None:
        # The transport screens every message already; on a transport it does not cover, a bad
        # one still goes no further than this (Celery then acknowledges it).
        try:
            if kwargs:
                raise PoisonMessage("keyword arguments (taskman sends none)")
            dispatches = dispatches_of(args)
        except PoisonMessage as poison:
            log.warning(f"[{priority.queue_name}] rejected a message: {poison}; dropped")
            return
        requests = [ExecuteTaskRequest(task_id, no, priority) for task_id, no in dispatches]
        results = container.execute_task().execute_all(requests)
        for (task_id, dispatch_no), done in zip(dispatches, results, strict=True):
            task = done.task
            # One line per attempt (or dropped entry), whatever its outcome.
            log.log(
                WARNING if done.outcome is AttemptOutcome.LOST_CLAIM else INFO,
                "attempt" if task is not None else "message dropped",
                task_id=task_id,
                dispatch_no=dispatch_no,
                priority=int(task.priority) if task is not None else int(priority),
                attempt=task.attempts if task is not None else None,
                outcome=str(done.result),
                duration_ms=_ms(done.run),
                lateness_ms=_ms(done.lateness),
                error=task.error_message if task is not None and done.result != "success" else None,
            )

    def forget_parent_engine(**_: Any) -> None:
        # A pool process is forked: connections inherited from the parent share its sockets, so
        # drop them without closing them (closing would end the parent's sessions too).
        container.engine().dispose(close=False)
        # A supervisor (honcho, a test, `kill -TERM -PGID`) signals the worker's whole process
        # group: a pool process killed by that SIGTERM dies mid-attempt, the main process logs
        # an ERROR for it and its warm shutdown then waits on a pool it cannot close. Only the
        # main process decides: its warm shutdown lets each pool process finish its attempt
        # and exit. (Celery already has them ignore SIGINT; Celery sets PR_SET_PDEATHSIG, so
        # they still die with the main process.)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # Connected here, in the pool process, so it runs after every receiver connected before
        # the pool started (it ends the process).
        signals.worker_process_shutdown.connect(exit_at_once, weak=False)

    signals.worker_process_init.connect(forget_parent_engine, weak=False)


def _ms(seconds: float | None) -> float | None:
    return round(seconds * 1000, 3) if seconds is not None else None


def exit_at_once(exitcode: int, **_: Any) -> None:
    """End a pool process whose work loop is over, with its exit status, without billiard's
    last second.

    Sent by billiard's pool process on its way out (`Worker._do_exit`): its attempt, if any, is
    over and answered (a warm shutdown lets it finish; acks_late acknowledges the message only
    then). billiard then tells the main process of its death, sleeps 1 s for the main process to
    SIGTERM it, which it ignores (see `forget_parent_engine`), and ends with `os._exit` anyway:
    that second, times three workers, was most of `make run`'s Ctrl-C. Nothing else is skipped:
    the main process learns of the exit from waitpid, as it does after any death."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exitcode)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue", required=True, type=parse_priority, help="high|medium|low")
    args = parser.parse_args(argv)
    priority: Priority = args.queue

    container = Container()
    settings = container.settings()
    configure_logging(settings)
    # Celery would configure logging its own way unless a receiver of this signal does it.
    signals.setup_logging.connect(lambda **_: configure_logging(settings), weak=False)
    # The pool's processes are forked: each writes its metrics to the group's directory, and
    # this process serves them all on METRICS_PORT.
    share_metrics_between_processes(settings)
    container.metrics()  # declared before the fork, so every child counts on the same metrics
    serve_metrics(settings, container.metrics_registry())
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # the embedded defaults live there
    # Separate queues and pools keep low-priority work from occupying high-priority workers,
    # but on a busy machine they still share the CPUs: a lower scheduling priority (inherited
    # by the forked pool) lets the kernel run high-priority attempts first.
    os.nice(CPU_NICENESS[priority])
    app = container.celery_app()
    register_tasks(app, container, priority)
    node = NodeIndex(priority.queue_name, settings.resolved_broker_url)
    node.forget_in_pool_processes()
    name = node_name(priority.queue_name, node.index)
    # Resolved in each pool process, at each message: the process id is the pool process's.
    container.worker_name.override(providers.Callable(attempt_worker, name))
    status = [1]  # until the worker has run and stopped

    def on_ready(**_: Any) -> None:
        # Registered once the worker is up (billiard moves multiprocessing's exit handler last
        # while it starts): atexit runs the last registered first, so what Celery registers
        # while it works (a SIGHUP restart re-executes the worker from there) still runs, and
        # the interpreter's own teardown after this does not.
        atexit.register(end_process, status)

    signals.worker_ready.connect(on_ready, weak=False)
    status[0] = run_worker(app, priority, settings.worker_concurrency, settings.log_level, name)
    sys.exit(status[0])


def end_process(status: list[int]) -> None:
    """Exit with `status[0]` once the worker has stopped, skipping the interpreter's teardown.

    By then the pool is joined (each pool process answered its attempt and exited) and the
    broker connection closed. What the teardown would still do costs one to three seconds of a
    Ctrl-C and saves nothing: joining billiard's idle timeout thread (it polls once a second),
    then garbage-collecting every object Celery, kombu and SQLAlchemy made, for memory the exit
    returns anyway. Its two useful steps are done here: billiard's temporary directory is
    removed and the log handlers are flushed."""
    shutil.rmtree(multiprocessing.util.get_temp_dir(), ignore_errors=True)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is not None:
            stream.flush()
    os._exit(status[0])


def run_worker(app: Celery, priority: Priority, concurrency: int, log_level: str, node: str) -> int:
    """Run Celery's worker, named `node` (entrypoints/node_names.py), until it stops; its exit
    status (0 after a requested shutdown, 1 after an unrecoverable error). `worker_main`
    discards it, so it is read off the worker."""
    workers: list[Any] = []

    def remember(sender: Any, **_: Any) -> None:
        workers.append(sender)

    signals.worker_init.connect(remember, weak=False)
    app.worker_main(
        argv=[
            # Celery's banner (its configuration, three times over in `make run`) only at DEBUG;
            # the "<node> ready." line stays. A global option: before the sub-command.
            *([] if log_level.upper() == "DEBUG" else ["--quiet"]),
            "worker",
            f"--queues={priority.queue_name}",
            f"--concurrency={concurrency}",
            # Stable across restarts (Flower keeps no dead node behind), unique among live ones.
            f"--hostname={node}",
            f"--loglevel={log_level}",
            "--pool=prefork",
            # No worker-to-worker chatter: nothing here uses it, and it slows the start. Event
            # heartbeats stay on (one event every 2 s): Flower shows a worker online by them.
            "--without-mingle",
            "--without-gossip",
        ]
    )
    # No worker at all: Celery refused its arguments or configuration, and said why.
    exit_code = workers[-1].exitcode if workers else 1
    return int(exit_code or 0)


if __name__ == "__main__":
    main()
