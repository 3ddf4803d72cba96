from __future__ import annotations

from application.ports import UnitOfWork
from domain.access import Principal, Unauthenticated, prefix_of


class Authenticate:
    """Who a presented API key acts as.

    Rules: the key is found by its prefix (one indexed read) and accepted only if its keyed hash
    matches in constant time and it is not revoked; anything else is Unauthenticated, with one
    message whatever the reason (it never repeats the key), so a caller learns nothing about
    which keys exist."""

    def __init__(self, uow: UnitOfWork, pepper: bytes) -> None:
        self._uow = uow
        self._pepper = pepper

    def execute(self, key: str) -> Principal:
        prefix = prefix_of(key)
        stored = None
        if prefix is not None:
            with self._uow:
                stored = self._uow.api_keys.by_prefix(prefix)
        if stored is None or not stored.matches(key, self._pepper):
            raise Unauthenticated("the API key is missing, unknown or revoked")
        return stored.principal
