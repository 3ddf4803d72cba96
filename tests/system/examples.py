"""The curl examples of README.md and docs/, run verbatim (but for the port) by the system tests.

The pages show a walk a newcomer can follow on a fresh system, in this order: the ids in the
commands (tasks 1 to 5) are those a fresh database hands out. Where a page shows the response
right after a command (a ```json block after the ```bash block that ends with it), the system
test compares the real response with it, timestamps aside; tests/deployment/test_readme.py
checks that each page shows each of its commands exactly, in this order."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from tests.commands import ROOT

# Values that differ from run to run: the shown response only has to agree on which are null and
# which are equal to one another.
TIMESTAMPS = ("created_at", "started_at", "finished_at", "scheduled_for", "updated_at")


@dataclass(frozen=True, slots=True)
class Example:
    page: str  # path from the repository root
    command: str
    shows_response: bool

    def text(self) -> str:
        return (ROOT / self.page).read_text()

    def shown_response(self) -> Any:
        """The JSON the page shows right after the code block that holds the command.

        Raises ValueError if the page has no such block."""
        text = self.text()
        at = text.index(self.command)
        match = re.compile(r"\n```\n```json\n(.*?)\n```", re.DOTALL).match(
            text, at + len(self.command)
        )
        if match is None:
            raise ValueError(f"{self.page} shows no response right after {self.command!r}")
        return json.loads(match.group(1))


def _json_command(method: str, path: str, body: str) -> str:
    return (
        f"curl -X {method} http://localhost:8000/api/v1/{path} "
        f"-H \"Content-Type: application/json\" -d '{body}'"
    )


README = "README.md"
API = "docs/api.md"
OPERATIONS = "docs/operations.md"

# Task 1: created at priority 1, then watched until it succeeded.
CREATE = Example(README, _json_command("POST", "tasks", '{"a": 10, "b": 20, "priority": 1}'), True)
GET = Example(README, "curl http://localhost:8000/api/v1/tasks/1", True)
# Task 2: created at priority 3 (it would start in 10 s), moved to priority 1 (it starts at once).
CREATE_LOW = Example(
    README, _json_command("POST", "tasks", '{"a": 2, "b": 3, "priority": 3}'), False
)
CHANGE_PRIORITY = Example(README, _json_command("PUT", "tasks/2", '{"priority": 1}'), True)
# Task 3: created at priority 3 and cancelled while it waits.
CREATE_TO_CANCEL = Example(
    README, _json_command("POST", "tasks", '{"a": 4, "b": 5, "priority": 3}'), False
)
CANCEL = Example(README, "curl -X POST http://localhost:8000/api/v1/tasks/3/cancel", True)
# Task 4: created while every attempt fails (TASK_FAILURE_RATE=1), failed, then retried by hand.
CREATE_TO_FAIL = Example(
    README, _json_command("POST", "tasks", '{"a": 20, "b": 22, "priority": 1}'), False
)
RETRY = Example(README, "curl -X POST http://localhost:8000/api/v1/tasks/4/retry", True)
# Task 5: a batch, then the list of batches.
CREATE_BATCH = Example(
    API,
    _json_command(
        "POST", "tasks/batch", '{"pairs": [{"a": 1, "b": 2}, {"a": 3, "b": 4}], "priority": 1}'
    ),
    True,
)
LIST = Example(
    API,
    "curl 'http://localhost:8000/api/v1/tasks?type=batch&status=success&limit=10&offset=0'",
    True,
)
HEALTH = Example(OPERATIONS, "curl http://localhost:8000/api/v1/health", True)

ALL = [
    CREATE,
    GET,
    CREATE_LOW,
    CHANGE_PRIORITY,
    CREATE_TO_CANCEL,
    CANCEL,
    CREATE_TO_FAIL,
    RETRY,
    CREATE_BATCH,
    LIST,
    HEALTH,
]


def assert_agrees(shown: Any, actual: Any) -> None:
    """A response agrees with the one a page shows: the same fields and values, and timestamps
    null where the page's are, equal to one another where the page's are."""
    if isinstance(shown, list):
        assert isinstance(actual, list) and len(actual) == len(shown), (shown, actual)
        for shown_item, actual_item in zip(shown, actual, strict=True):
            assert_agrees(shown_item, actual_item)
        return
    if not isinstance(shown, dict):
        assert shown == actual
        return
    assert isinstance(actual, dict) and set(actual) == set(shown), (shown, actual)
    times = [name for name in TIMESTAMPS if name in shown]
    for name, value in shown.items():
        if name not in times:
            assert_agrees(value, actual[name])
    assert [shown[t] is None for t in times] == [actual[t] is None for t in times], actual
    assert _equal_pairs(shown, times) == _equal_pairs(actual, times), actual


def _equal_pairs(task: dict[str, Any], times: list[str]) -> set[tuple[str, str]]:
    return {
        (first, second)
        for i, first in enumerate(times)
        for second in times[i + 1 :]
        if task[first] is not None and task[first] == task[second]
    }
