from __future__ import annotations

from dataclasses import dataclass

from application.ports import Clock, UnitOfWork
from domain.access import ApiKey, Scope, new_key


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """The key itself, shown to its owner once and stored nowhere, and what the store keeps."""

    key: str
    stored: ApiKey


class IssueApiKey:
    """A new API key for a tenant with the given scopes. Only its prefix and keyed hash are
    stored; the key is returned once. Raises InvalidTenant for a malformed tenant name."""

    def __init__(self, uow: UnitOfWork, clock: Clock, pepper: bytes) -> None:
        self._uow = uow
        self._clock = clock
        self._pepper = pepper

    def execute(self, tenant: str, scopes: frozenset[Scope]) -> IssuedKey:
        key, stored = new_key(tenant, scopes, self._pepper, self._clock.now())
        with self._uow:
            self._uow.api_keys.add(stored)
            self._uow.commit()
        return IssuedKey(key, stored)
