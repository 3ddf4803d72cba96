"""All configuration, read from the environment (or .env) in one place."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.broker.envelope import MAX_DISPATCHES
from application.use_cases import Quota
from domain.priority import Priority, SchedulePolicy
from domain.retry import RetryPolicy
from domain.task import TaskStatus


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the task store, e.g. postgresql+psycopg://user@host/db. "
        "Unset: an embedded SQLite file under DATA_DIR.",
    )
    broker_url: str | None = Field(
        default=None,
        description="Celery broker URL, e.g. redis://localhost:6379/0. "
        "Unset: kombu's filesystem transport under DATA_DIR, which needs no server.",
    )
    database_password_file: Path | None = Field(
        default=None,
        description="File holding the password of DATABASE_URL's user (one trailing newline "
        "ignored); it replaces any password in DATABASE_URL. compose points it at the password "
        "its `secrets` service generated.",
    )
    broker_password_file: Path | None = Field(
        default=None,
        description="File holding the Redis password (one trailing newline ignored); it "
        "replaces any password in BROKER_URL. compose points it at the generated one.",
    )
    migrate_wait_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long `migrate` retries connecting to a database that does not accept "
        "connections yet (one log line per try, two tries a second) before it exits non-zero.",
    )
    data_dir: Path = Field(
        default=Path("var"),
        description="Where the embedded defaults (no DATABASE_URL / BROKER_URL) keep their files.",
    )
    host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    port: int = Field(default=8000, description="Port the API listens on.")
    access_log: bool = Field(
        default=False,
        description="Log one line per API request: route template, method, status, duration.",
    )
    api_workers: int = Field(
        default=2,
        ge=1,
        description="API server processes; one Python process keeps to one core, two use both.",
    )
    worker_concurrency: int = Field(default=2, ge=1, description="Processes per priority pool.")
    task_events: bool = Field(
        default=False,
        description="Workers send Celery's task events and heartbeats from the start, so "
        "`celery events` shows taskman's tasks live (not on the embedded filesystem broker). Off, "
        "as in Celery: they cost the pools CPU; Flower and `celery control enable_events` turn "
        "them on while someone watches.",
    )

    delay_high_seconds: float = Field(default=0.0, ge=0, description="Start delay of priority 1.")
    delay_medium_seconds: float = Field(default=5.0, ge=0, description="Start delay of priority 2.")
    delay_low_seconds: float = Field(default=10.0, ge=0, description="Start delay of priority 3.")

    max_attempts: int = Field(default=3, ge=1, le=100, description="Attempts before a task fails.")
    retry_backoff_base_seconds: float = Field(
        default=1.0, ge=0, description="Wait after the first failed attempt; doubles each time."
    )
    retry_backoff_cap_seconds: float = Field(default=300.0, ge=0, description="Longest wait.")
    retry_jitter: float = Field(
        default=0.5, ge=0, le=1, description="Fraction of each wait drawn at random."
    )

    lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a running attempt may take: one still running near the end is "
        "interrupted and counts as a failed attempt; a lost one runs again after it.",
    )
    dispatcher_poll_seconds: float = Field(
        default=0.1,
        gt=0,
        description="Longest pause between two dispatcher rounds (shorter when a delayed task "
        "comes due sooner).",
    )
    dispatcher_batch_size: int = Field(default=500, ge=1, description="Tasks per round.")
    message_max_tasks: int = Field(
        default=100,
        ge=1,
        le=MAX_DISPATCHES,
        description="Most tasks one broker message carries. Tasks published together (a group "
        "of creates, a dispatcher round) share messages, spread over at least "
        "WORKER_CONCURRENCY of them; a worker claims and records a message's tasks in one "
        "statement each. 1: one message per task.",
    )
    lost_message_after_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A queued task published this long ago whose message can no longer be on "
        "its queue (as many tasks were published after it as the messages waiting there carry) "
        "is published again.",
    )
    db_lock_timeout_seconds: float = Field(
        default=1.0,
        gt=0,
        description="Longest wait of a PostgreSQL statement on a lock held by another session, "
        "and of an API request for its turn on a task other requests are changing; then 503 "
        "with Retry-After. taskman holds a row for milliseconds, so a longer wait means "
        "something else holds it; 1 s answers within a 2 s client timeout.",
    )
    db_statement_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Longest run of a PostgreSQL statement, lock waits included; then 503 with "
        "Retry-After. The slowest legitimate one (a 100,000-pair batch) takes under 1 s.",
    )
    db_pool_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        description="Longest wait for a free pooled database connection; then 503 with "
        "Retry-After. The API's pool is larger than its threadpool, so a wait means a leak "
        "or an overload.",
    )
    max_batch_pairs: int = Field(default=100_000, ge=1, description="Largest batch accepted.")
    idempotency_key_ttl_seconds: float = Field(
        default=86400.0,
        gt=0,
        description="How long the first response to a create with an Idempotency-Key is kept "
        "and replayed to its retries; the dispatcher then prunes it.",
    )
    retention_success_seconds: float = Field(
        default=7 * 86400.0,
        ge=0,
        description="Age (since it finished) at which a succeeded task is deleted by the "
        "dispatcher's retention; 0 keeps them forever.",
    )
    retention_failed_seconds: float = Field(
        default=30 * 86400.0,
        ge=0,
        description="Age at which a failed task is deleted; 0 keeps them forever.",
    )
    retention_cancelled_seconds: float = Field(
        default=7 * 86400.0,
        ge=0,
        description="Age at which a cancelled task is deleted; 0 keeps them forever.",
    )
    events_retention_seconds: float = Field(
        default=3600.0,
        ge=0,
        description="Age at which an event of the event log (the Server-Sent Events of "
        "/api/v1/events) is deleted by the dispatcher's retention, so a client reconnecting "
        "within it misses none; 0 keeps them as long as their task.",
    )
    events_poll_seconds: float = Field(
        default=0.25,
        gt=0,
        description="How often the event log is read for new events: by the reader every "
        "stream of every task's events shares (one per API process; sooner only after a full "
        "read of 500 events), and by each task's stream.",
    )
    events_heartbeat_seconds: float = Field(
        default=15.0,
        gt=0,
        description="Interval of the comment an open event stream sends while nothing happens, "
        "so proxies keep it open and a client sees it is alive.",
    )

    task_failure_rate: float = Field(
        default=0.0, ge=0, le=1, description="Fault injection: chance that an attempt raises."
    )
    task_run_seconds: float = Field(
        default=0.0, ge=0, description="Fault injection: time each attempt pretends to work."
    )
    visibility_timeout_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="Redis visibility timeout: longer than any run, or an "
        "unacknowledged message is delivered again while its worker is still busy.",
    )
    broker_message_max_bytes: int = Field(
        default=65536,
        ge=1024,
        description="Largest message a worker takes off a queue, in bytes; a larger one is set "
        "aside as rejected (taskman's own are about 1.3 KB).",
    )
    rejected_messages_max: int = Field(
        default=1000,
        ge=1,
        description="Rejected messages kept per queue (the Redis list <queue>.rejected, or the "
        "embedded broker's rejected/ folder for all queues); older ones are dropped.",
    )
    log_level: str = Field(default="INFO", description="Logging level.")
    log_format: Literal["console", "json"] = Field(
        default="console",
        description="`console`: one readable line per event; `json`: one JSON object per line "
        "(structlog), for a log collector.",
    )
    metrics_enabled: bool = Field(
        default=True,
        description="Prometheus metrics: the API serves them at /metrics; off, nothing is "
        "counted and /metrics answers 404.",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port on which a worker pool or the dispatcher serves its /metrics (the "
        "API serves them on its own port). Unset: not served.",
    )
    prometheus_multiproc_dir: Path | None = Field(
        default=None,
        description="Where the processes of one forking process group (the API's workers, a "
        "worker pool) share their metric files (prometheus-client's multiprocess mode); one "
        "directory per group, emptied at its start. Unset: a fresh temporary directory.",
    )

    auth: Literal["off", "required"] = Field(
        default="off",
        description="off: every request acts as one built-in tenant that may do everything. "
        "required: every /api/v1/tasks call needs Authorization: Bearer <API key> (401 "
        "without a valid one, 403 without the scope); each key sees only its tenant's tasks.",
    )
    api_key_pepper: SecretStr = Field(
        default=SecretStr(""),
        description="Server-side secret mixed into every API key's stored hash; the same in "
        "every API process and the keys command. Changing it invalidates every key.",
    )
    rate_limit_creates_per_second: float | None = Field(
        default=None,
        ge=0,
        description="Creates a tenant may make per second (a token bucket; 0 turns it off). "
        "Unset: 50 with AUTH=required, off with AUTH=off.",
    )
    rate_limit_burst: int | None = Field(
        default=None,
        ge=1,
        description="Creates a tenant may make at once after a pause (the bucket's size). "
        "Unset: twice the rate per second, at least 1.",
    )
    quota_queued_tasks: int | None = Field(
        default=None,
        ge=0,
        description="Most tasks a tenant may have queued at once (0 turns it off). "
        "Unset: 10000 with AUTH=required, off with AUTH=off.",
    )
    quota_batch_pairs: int | None = Field(
        default=None,
        ge=0,
        description="Most pairs a tenant's queued batch tasks may hold together (0 turns it "
        "off). Unset: 1000000 with AUTH=required, off with AUTH=off.",
    )

    @property
    def resolved_database_url(self) -> str:
        """DATABASE_URL with DATABASE_PASSWORD_FILE's password, or the embedded SQLite file.

        Raises OSError if DATABASE_PASSWORD_FILE is set but cannot be read."""
        if self.database_url is None:
            return f"sqlite:///{self.data_dir / 'taskman.db'}"
        return with_password(self.database_url, self.database_password_file)

    @property
    def resolved_broker_url(self) -> str:
        """BROKER_URL with BROKER_PASSWORD_FILE's password, or the embedded broker's folder.

        Raises OSError if BROKER_PASSWORD_FILE is set but cannot be read."""
        if self.broker_url is None:
            return f"filesystem://localhost{self.data_dir.resolve() / 'broker'}"
        return with_password(self.broker_url, self.broker_password_file)

    @property
    def auth_required(self) -> bool:
        return self.auth == "required"

    @property
    def pepper(self) -> bytes:
        return self.api_key_pepper.get_secret_value().encode()

    def _when_required(self, value: float | None, default: float) -> float | None:
        """An explicit 0 is off; unset is `default` when auth is required, else off."""
        if value is None:
            return default if self.auth_required else None
        return value or None

    @property
    def creates_per_second(self) -> float | None:
        return self._when_required(self.rate_limit_creates_per_second, 50.0)

    @property
    def creates_burst(self) -> int:
        rate = self.creates_per_second or 0.0
        return self.rate_limit_burst or max(1, math.ceil(2 * rate))

    def quota(self) -> Quota:
        tasks = self._when_required(self.quota_queued_tasks, 10_000)
        pairs = self._when_required(self.quota_batch_pairs, 1_000_000)
        return Quota(
            queued_tasks=int(tasks) if tasks is not None else None,
            batch_pairs=int(pairs) if pairs is not None else None,
        )

    def schedule(self) -> SchedulePolicy:
        return SchedulePolicy(
            {
                Priority.HIGH: timedelta(seconds=self.delay_high_seconds),
                Priority.MEDIUM: timedelta(seconds=self.delay_medium_seconds),
                Priority.LOW: timedelta(seconds=self.delay_low_seconds),
            }
        )

    def retention(self) -> dict[TaskStatus, timedelta]:
        """The age of each finished status at which its tasks are pruned; 0 means never."""
        return {
            TaskStatus.SUCCESS: timedelta(seconds=self.retention_success_seconds),
            TaskStatus.FAILED: timedelta(seconds=self.retention_failed_seconds),
            TaskStatus.CANCELLED: timedelta(seconds=self.retention_cancelled_seconds),
        }

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            backoff_base=timedelta(seconds=self.retry_backoff_base_seconds),
            backoff_cap=timedelta(seconds=self.retry_backoff_cap_seconds),
            jitter=self.retry_jitter,
        )


def with_password(url: str, password_file: Path | None) -> str:
    """`url` (scheme://[user[:password]@]host...) with the password read from `password_file`
    in place of its own, percent-encoded (SQLAlchemy, kombu and redis-py decode it); `url`
    unchanged when `password_file` is None. Raises OSError if the file cannot be read."""
    if password_file is None:
        return url
    password = password_file.read_text(encoding="utf-8").removesuffix("\n")
    scheme, separator, rest = url.partition("://")
    if not separator:
        raise ValueError("a password file needs a URL of the form scheme://host...")
    # The authority ends at the first '/', '?' or '#'; its user info at the last '@' in it.
    end = next((i for i, char in enumerate(rest) if char in "/?#"), len(rest))
    authority, tail = rest[:end], rest[end:]
    user_info, at, host = authority.rpartition("@")
    user = user_info.partition(":")[0] if at else ""
    return f"{scheme}://{user}:{quote(password, safe='')}@{host}{tail}"
