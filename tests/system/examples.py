"""The curl examples of README.md, run verbatim (but for the port) by the system tests.

tests/deployment/test_readme.py checks that README.md shows each of them exactly."""

from __future__ import annotations

CREATE = (
    "curl -X POST http://localhost:8000/api/v1/tasks "
    '-H "Content-Type: application/json" -d \'{"a": 10, "b": 20, "priority": 1}\''
)
CREATE_BATCH = (
    "curl -X POST http://localhost:8000/api/v1/tasks/batch "
    '-H "Content-Type: application/json" '
    '-d \'{"pairs": [{"a": 1, "b": 2}, {"a": 3, "b": 4}], "priority": 1}\''
)
GET = "curl http://localhost:8000/api/v1/tasks/1"
LIST = "curl 'http://localhost:8000/api/v1/tasks?status=success&priority=1&limit=10&offset=0'"
CHANGE_PRIORITY = (
    "curl -X PUT http://localhost:8000/api/v1/tasks/1 "
    '-H "Content-Type: application/json" -d \'{"priority": 3}\''
)
RETRY = "curl -X POST http://localhost:8000/api/v1/tasks/1/retry"
CANCEL = "curl -X POST http://localhost:8000/api/v1/tasks/1/cancel"
HEALTH = "curl http://localhost:8000/api/v1/health"

ALL = [CREATE, CREATE_BATCH, GET, LIST, CHANGE_PRIORITY, RETRY, CANCEL, HEALTH]
