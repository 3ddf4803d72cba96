"""Who acts: tenants, scopes, principals, and API keys (docs/operations.md#authentication).

An API key is `tm_<prefix>_<secret>`: the prefix names the stored key (one indexed read finds
it), the secret proves the caller holds it. The store keeps only HMAC-SHA256(pepper, key):
keys are long random strings, so a fast keyed hash is as good as a slow one against guessing,
and the pepper (a server-side setting, never in the store) makes a stolen table useless alone.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from domain.errors import DomainError

# The tenant every request acts as when authentication is off, and the owner of every task
# created before tenants existed.
DEFAULT_TENANT = "default"
TENANT_MAX_LENGTH = 64
KEY_PREFIX = "tm_"
_PREFIX_BYTES = 6  # 12 hex characters: the lookup handle, not a secret
_SECRET_BYTES = 32  # 256 random bits


class Scope(StrEnum):
    READ = "tasks:read"
    WRITE = "tasks:write"
    ADMIN = "admin"


class Unauthenticated(DomainError):
    """No credential, or one that names no live key. The message never repeats the key."""


class Forbidden(DomainError):
    """The key is valid but lacks the scope the call needs."""

    def __init__(self, scope: Scope) -> None:
        super().__init__(f"this call needs the scope {scope.value!r}, which the key lacks")
        self.scope = scope


class InvalidTenant(DomainError):
    """A tenant name that is empty, too long or not made of [A-Za-z0-9._-]."""


def check_tenant(name: str) -> str:
    allowed = name.replace("-", "").replace("_", "").replace(".", "")
    if not 0 < len(name) <= TENANT_MAX_LENGTH or not (allowed.isascii() and allowed.isalnum()):
        raise InvalidTenant(
            f"a tenant is 1 to {TENANT_MAX_LENGTH} characters of A-Z, a-z, 0-9, '.', '_', '-'"
        )
    return name


def parse_scopes(text: str | Iterable[str]) -> frozenset[Scope]:
    """`"tasks:read,tasks:write"` (or the names one by one) as scopes; ValueError if unknown."""
    names = text.split(",") if isinstance(text, str) else list(text)
    scopes = frozenset(Scope(name.strip()) for name in names if name.strip())
    if not scopes:
        raise ValueError("a key needs at least one scope")
    return scopes


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: a tenant and what its key may do."""

    tenant: str
    scopes: frozenset[Scope]

    @property
    def is_admin(self) -> bool:
        return Scope.ADMIN in self.scopes

    def require(self, scope: Scope) -> None:
        """Raises Forbidden unless the principal holds `scope` (admin holds every scope)."""
        if scope not in self.scopes and not self.is_admin:
            raise Forbidden(scope)

    def sees(self, tenant: str) -> bool:
        """A task of `tenant` exists for this principal: its own, or any one for an admin."""
        return self.is_admin or tenant == self.tenant

    @property
    def visible_tenant(self) -> str | None:
        """The one tenant whose tasks a list shows; None (every tenant) for an admin."""
        return None if self.is_admin else self.tenant


# Authentication off: one built-in tenant that may do everything, as before there were keys.
BUILT_IN = Principal(DEFAULT_TENANT, frozenset(Scope))


@dataclass(kw_only=True)
class ApiKey:
    """A stored key: never the key itself, only its prefix and its keyed hash."""

    id: int | None
    tenant: str
    scopes: frozenset[Scope]
    prefix: str
    hash: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def principal(self) -> Principal:
        return Principal(self.tenant, self.scopes)

    def revoke(self, now: datetime) -> None:
        if self.revoked_at is None:
            self.revoked_at = now

    def matches(self, key: str, pepper: bytes) -> bool:
        """Constant-time comparison of the presented key's hash with the stored one."""
        return hmac.compare_digest(hash_key(key, pepper), self.hash) and self.revoked_at is None


def hash_key(key: str, pepper: bytes) -> str:
    return hmac.new(pepper, key.encode(), hashlib.sha256).hexdigest()


def new_key(
    tenant: str, scopes: frozenset[Scope], pepper: bytes, now: datetime
) -> tuple[str, ApiKey]:
    """A fresh key (shown to its owner once) and what the store keeps of it."""
    prefix = secrets.token_hex(_PREFIX_BYTES)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    stored = ApiKey(
        id=None,
        tenant=check_tenant(tenant),
        scopes=scopes,
        prefix=prefix,
        hash=hash_key(key, pepper),
        created_at=now,
    )
    return key, stored


def prefix_of(key: str) -> str | None:
    """The lookup prefix of a presented key, None if it is not shaped like one of ours."""
    if not key.startswith(KEY_PREFIX):
        return None
    prefix, _, secret = key[len(KEY_PREFIX) :].partition("_")
    if len(prefix) != 2 * _PREFIX_BYTES or not secret:
        return None
    return prefix


class QuotaExceeded(DomainError):
    """The tenant already holds as many queued tasks (or queued batch pairs) as allowed."""

    def __init__(self, what: str, limit: int, held: int) -> None:
        super().__init__(
            f"the tenant holds {held} queued {what}; the quota is {limit}: wait for some to run"
        )
        self.what = what
        self.limit = limit
        self.held = held
