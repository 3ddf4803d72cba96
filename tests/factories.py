"""factory-boy factories for domain entities (unit tests only)."""

from __future__ import annotations

import factory

from domain.priority import DEFAULT_START_DELAYS, Priority
from domain.task import Task, TaskStatus, TaskType
from tests.fakes import EPOCH


class TaskFactory(factory.Factory):
    class Meta:
        model = Task

    id = None
    type = TaskType.SINGLE
    status = TaskStatus.QUEUED
    priority = Priority.MEDIUM
    a = factory.Sequence(lambda n: n)
    b = 1
    result = None
    pairs = None
    results = None
    created_at = EPOCH
    updated_at = factory.SelfAttribute("created_at")
    started_at = None
    finished_at = None
    scheduled_for = factory.LazyAttribute(lambda o: o.created_at + DEFAULT_START_DELAYS[o.priority])
    attempts = 0
    max_attempts = 3
    error_message = None
    dispatch_no = 1
    published_at = None
    lease_expires_at = None


class BatchTaskFactory(TaskFactory):
    type = TaskType.BATCH
    a = None
    b = None
    pairs = factory.LazyFunction(lambda: [(1, 2), (3, 4), (5, 6)])
