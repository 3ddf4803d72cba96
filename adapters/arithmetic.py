"""The work of an attempt, and the fault injection used by demos and fault tests."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence

from application.ports import Arithmetic
from domain.errors import TaskFailure
from domain.task import Pair, add_pairs


class ExactArithmetic(Arithmetic):
    def sum_pairs(self, pairs: Sequence[Pair]) -> list[int]:
        return add_pairs(pairs)


class InjectedFault(TaskFailure):
    """A transient failure raised on purpose (TASK_FAILURE_RATE)."""


class FaultInjectingArithmetic(Arithmetic):
    """Wraps the real work: each attempt first takes `run_seconds`, then fails with probability
    `failure_rate`. With both at zero it is the real work and nothing else."""

    def __init__(
        self,
        inner: Arithmetic,
        failure_rate: float,
        run_seconds: float = 0.0,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self._inner = inner
        self._failure_rate = failure_rate
        self._run_seconds = run_seconds
        self._draw = draw

    def sum_pairs(self, pairs: Sequence[Pair]) -> list[int]:
        if self._run_seconds:
            time.sleep(self._run_seconds)
        if self._draw() < self._failure_rate:
            raise InjectedFault(f"injected fault (TASK_FAILURE_RATE={self._failure_rate})")
        return self._inner.sum_pairs(pairs)
