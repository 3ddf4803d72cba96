"""The use cases: one business act each, run by `execute` (CreateTask also has `execute_all`,
which accepts many creates in one transaction)."""

from application.use_cases._acceptance import IdempotentResponse, Quota
from application.use_cases.authenticate import Authenticate
from application.use_cases.bulk_move import BulkAction, BulkMove, BulkMoveReport, BulkMoveRequest
from application.use_cases.cancel_task import CancelTask
from application.use_cases.change_priority import ChangePriority, ChangePriorityRequest
from application.use_cases.check_health import CheckHealth, HealthReport
from application.use_cases.console_overview import ConsoleOverview, Overview, PriorityPanel
from application.use_cases.create_batch import CreateBatch, CreateBatchRequest
from application.use_cases.create_task import CreateTask, CreateTaskRequest
from application.use_cases.dispatch_due import DispatchDue, DispatchReport
from application.use_cases.execute_task import (
    AttemptOutcome,
    ExecuteTask,
    ExecuteTaskRequest,
    ExecuteTaskResult,
)
from application.use_cases.explain_task import (
    DelayCause,
    ExplainTask,
    Explanation,
    Reason,
    ReasonCode,
)
from application.use_cases.follow_events import EventCursor, FollowEvents
from application.use_cases.get_attempts import GetAttempts
from application.use_cases.get_task import GetTask
from application.use_cases.issue_api_key import IssueApiKey, IssuedKey
from application.use_cases.list_api_keys import ListApiKeys
from application.use_cases.list_tasks import ListTasks, ListTasksRequest
from application.use_cases.prune_finished_tasks import PruneFinishedTasks
from application.use_cases.prune_idempotency_keys import PruneIdempotencyKeys
from application.use_cases.retry_task import RetryTask
from application.use_cases.revoke_api_key import RevokeApiKey

__all__ = [
    "AttemptOutcome",
    "Authenticate",
    "BulkAction",
    "BulkMove",
    "BulkMoveReport",
    "BulkMoveRequest",
    "CancelTask",
    "ChangePriority",
    "ChangePriorityRequest",
    "CheckHealth",
    "ConsoleOverview",
    "CreateBatch",
    "CreateBatchRequest",
    "CreateTask",
    "CreateTaskRequest",
    "DelayCause",
    "DispatchDue",
    "DispatchReport",
    "EventCursor",
    "ExecuteTask",
    "ExecuteTaskRequest",
    "ExecuteTaskResult",
    "ExplainTask",
    "Explanation",
    "FollowEvents",
    "GetAttempts",
    "GetTask",
    "HealthReport",
    "IdempotentResponse",
    "IssueApiKey",
    "IssuedKey",
    "ListApiKeys",
    "ListTasks",
    "ListTasksRequest",
    "Overview",
    "PriorityPanel",
    "PruneFinishedTasks",
    "PruneIdempotencyKeys",
    "Quota",
    "Reason",
    "ReasonCode",
    "RetryTask",
    "RevokeApiKey",
]
