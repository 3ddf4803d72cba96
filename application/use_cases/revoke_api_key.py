from __future__ import annotations

from application.ports import Clock, UnitOfWork
from domain.access import ApiKey


class RevokeApiKey:
    """Revoke a key by id: from the commit on, every request with it is Unauthenticated.
    Revoking a revoked key keeps its first revocation. Returns the key as stored, or None if
    there is no such key."""

    def __init__(self, uow: UnitOfWork, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def execute(self, key_id: int) -> ApiKey | None:
        with self._uow:
            revoked = self._uow.api_keys.revoke(key_id, self._clock.now())
            self._uow.commit()
        return revoked
