"""All configuration, read from the environment (or .env) in one place."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.priority import Priority, SchedulePolicy
from domain.retry import RetryPolicy


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
    data_dir: Path = Field(
        default=Path("var"),
        description="Where the embedded defaults (no DATABASE_URL / BROKER_URL) keep their files.",
    )
    host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    port: int = Field(default=8000, description="Port the API listens on.")
    access_log: bool = Field(default=False, description="Log one line per API request.")
    api_workers: int = Field(
        default=2,
        ge=1,
        description="API server processes; one Python process keeps to one core, two use both.",
    )
    worker_concurrency: int = Field(default=2, ge=1, description="Processes per priority pool.")

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
        default=0.1, gt=0, description="Longest pause between two dispatcher rounds."
    )
    dispatcher_batch_size: int = Field(default=500, ge=1, description="Tasks per round.")
    lost_message_after_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A queued task published this long ago whose message can no longer be on "
        "its queue (as many tasks were published after it as messages wait there) is published "
        "again.",
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

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'taskman.db'}"

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or f"filesystem://localhost{self.data_dir.resolve() / 'broker'}"

    def schedule(self) -> SchedulePolicy:
        return SchedulePolicy(
            {
                Priority.HIGH: timedelta(seconds=self.delay_high_seconds),
                Priority.MEDIUM: timedelta(seconds=self.delay_medium_seconds),
                Priority.LOW: timedelta(seconds=self.delay_low_seconds),
            }
        )

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            backoff_base=timedelta(seconds=self.retry_backoff_base_seconds),
            backoff_cap=timedelta(seconds=self.retry_backoff_cap_seconds),
            jitter=self.retry_jitter,
        )
