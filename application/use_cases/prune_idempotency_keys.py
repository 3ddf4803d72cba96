from __future__ import annotations

from application.ports import Clock, UnitOfWork


class PruneIdempotencyKeys:
    """Delete idempotency records whose time is up, at most `batch_size` per call (a short
    transaction even after a flood of keyed creates). Answers how many were deleted: as many
    as `batch_size` means more may be waiting."""

    def __init__(self, uow: UnitOfWork, clock: Clock, batch_size: int) -> None:
        self._uow = uow
        self._clock = clock
        self._batch_size = batch_size

    def execute(self) -> int:
        with self._uow:
            pruned = self._uow.idempotency_keys.prune(self._clock.now(), self._batch_size)
            self._uow.commit()
        return pruned
