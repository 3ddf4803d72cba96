from __future__ import annotations

from application.ports import UnitOfWork
from domain.access import ApiKey


class ListApiKeys:
    """Every stored key (prefix, tenant, scopes, dates; never a key), oldest first."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def execute(self) -> list[ApiKey]:
        with self._uow:
            return self._uow.api_keys.all()
