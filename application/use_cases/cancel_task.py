from __future__ import annotations

from application.ports import Clock, UnitOfWork
from application.use_cases._moves import apply_move
from domain.access import BUILT_IN, Principal
from domain.task import Task


class CancelTask:
    """Cancel a queued task (IllegalTransition otherwise). A message already published for it is
    dropped by the worker, since only queued tasks can be claimed. Ownership and scope as for
    every move (see apply_move)."""

    def __init__(self, uow: UnitOfWork, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def execute(self, task_id: int, principal: Principal = BUILT_IN) -> Task:
        now = self._clock.now()
        return apply_move(self._uow, task_id, lambda task: task.cancel(now), principal)
