"""The `Idempotency-Key` header of the create routes, after the IETF httpapi draft
(draft-ietf-httpapi-idempotency-key-header): a client that retries a create with the key it sent
the first time gets the first response again (status, body and Location, even after the task
finished) instead of a second task.

What is recorded, and when, is the core's business (application/use_cases/_acceptance.py): the
response is stored with the task, in its transaction, so a crash never leaves a key without its
task or a task without its key. What lives here is the HTTP side: the header's syntax, the
request's fingerprint (route and canonical body), the response to record, and the keys in
flight in this API process, so that a retry arriving while the first request is still being
stored gets 409 at once. In-flight keys live only in memory: a process that dies takes them
along and leaves nothing stuck; across API processes the store's unique key decides."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Header, Request, Response
from pydantic import BaseModel

from application.ports import IdempotencyKey, StoredResponse
from application.use_cases import IdempotentResponse
from domain.errors import IdempotencyKeyInFlight
from domain.task import Task
from entrypoints.api import API_PREFIX
from entrypoints.api.schemas import TaskOut

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# The draft's value is a Structured Field String ("..."); a bare token, as Stripe's clients
# send it, is accepted too and names the same key. Visible ASCII without quote or backslash.
_CHARS = r"[!#-\[\]-~]"
_CHARS_AND_SPACE = r"[ !#-\[\]-~]"
KEY_PATTERN = rf'^(?:"{_CHARS_AND_SPACE}{{1,{MAX_KEY_LENGTH}}}"|{_CHARS}{{1,{MAX_KEY_LENGTH}}})$'

KEY_DESCRIPTION = (
    "Makes the create safe to retry (IETF httpapi Idempotency-Key draft): a unique value per "
    "create, e.g. a UUID, as a quoted string or a bare token of at most 255 visible ASCII "
    "characters. The same key with the same body answers the first response again (status, "
    "body and Location), also after the task finished; the same key with another body is 422; "
    "while the first request is still being processed, 409. Keys are kept "
    "IDEMPOTENCY_KEY_TTL_SECONDS (24 h by default)."
)

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=HEADER,
        pattern=KEY_PATTERN,
        description=KEY_DESCRIPTION,
        examples=['"8e03978e-40d5-43e8-bc93-6894a57f9324"'],
    ),
]


def location(task_id: int | None) -> str:
    return f"{API_PREFIX}/tasks/{task_id}"


def created_response(task: Task) -> StoredResponse:
    """The 201 a create answers, as recorded under its key."""
    return StoredResponse(
        status=201, body=TaskOut.of(task).model_dump_json(), location=location(task.id)
    )


def keyed(header: str | None, route: str, body: BaseModel, tenant: str) -> IdempotencyKey | None:
    """The key of a create request, None without the header. Keys are the tenant's own: two
    tenants using one key are two keys."""
    if header is None:
        return None
    key = header[1:-1] if header.startswith('"') else header
    # The validated body, so that key order, spacing and spelled-out defaults do not make two
    # equal requests look different.
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    fingerprint = hashlib.sha256(f"{route}\n{canonical}".encode()).hexdigest()
    return IdempotencyKey(scope=tenant, key=key, fingerprint=fingerprint, respond=created_response)


def answer(outcome: IdempotentResponse) -> Response:
    """The recorded response, byte for byte, whether just recorded or replayed."""
    stored = outcome.response
    headers = {"Location": stored.location} if stored.location is not None else None
    return Response(
        stored.body, status_code=stored.status, headers=headers, media_type="application/json"
    )


class InFlightKeys:
    """The keys of the creates this API process is processing right now."""

    def __init__(self) -> None:
        self._held: set[tuple[str, str]] = set()
        self._lock = threading.Lock()  # the batch route runs in the threadpool

    @contextmanager
    def hold(self, key: IdempotencyKey) -> Iterator[None]:
        """Raises IdempotencyKeyInFlight if another request holds the key."""
        pair = (key.scope, key.key)
        with self._lock:
            if pair in self._held:
                raise IdempotencyKeyInFlight(key.key)
            self._held.add(pair)
        try:
            yield
        finally:
            with self._lock:
                self._held.discard(pair)


async def _in_flight_keys(request: Request) -> InFlightKeys:
    # async: a plain function would cost a hop to the threadpool per request
    keys: InFlightKeys = request.app.state.in_flight_keys
    return keys


InFlight = Annotated[InFlightKeys, Depends(_in_flight_keys)]
