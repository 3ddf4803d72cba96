from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from domain.task import Pair


class Arithmetic(Protocol):
    """Does the work of an attempt: the sums of the pairs, in their order.

    May raise domain.errors.TaskFailure (transient: retried with backoff) or
    PermanentTaskFailure (the task fails at once). Any other exception counts as transient."""

    def sum_pairs(self, pairs: Sequence[Pair]) -> list[int]: ...
