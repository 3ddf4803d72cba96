"""What the bench reads back from PostgreSQL, the source of truth: when each task was created,
started and finished, as the system itself recorded it (one clock: all on this machine)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg

FINISHED = ("success", "failed", "cancelled")


@dataclass(frozen=True)
class Progress:
    total: int
    finished: int
    succeeded: int
    first_started: datetime | None
    last_finished: datetime | None

    @property
    def done(self) -> bool:
        return self.total > 0 and self.finished == self.total


class Timings:
    def __init__(self, libpq_url: str) -> None:
        self._connection = psycopg.connect(libpq_url, autocommit=True)

    def close(self) -> None:
        self._connection.close()

    def max_id(self) -> int:
        row = self._connection.execute("SELECT coalesce(max(id), 0) FROM tasks").fetchone()
        return int(row[0]) if row else 0

    def progress_after(self, floor_id: int) -> Progress:
        """Tasks with an id above `floor_id`: the ones a phase created."""
        row = self._connection.execute(
            """SELECT count(*),
                      count(*) FILTER (WHERE status = ANY(%(finished)s)),
                      count(*) FILTER (WHERE status = 'success'),
                      min(started_at), max(finished_at)
               FROM tasks WHERE id > %(floor)s""",
            {"floor": floor_id, "finished": list(FINISHED)},
        ).fetchone()
        assert row is not None
        return Progress(*row)

    def wait_finished_after(self, floor_id: int, timeout: float, settle: float = 0.3) -> Progress:
        """Waits until every task above `floor_id` finished and no new one appeared for a
        moment (requests still in flight when the generator stopped may add a few)."""
        deadline = time.monotonic() + timeout
        while True:
            progress = self.progress_after(floor_id)
            if progress.done:
                time.sleep(settle)
                again = self.progress_after(floor_id)
                if again.done and again.total == progress.total:
                    return again
                continue
            if time.monotonic() > deadline:
                raise TimeoutError(f"{progress.total - progress.finished} tasks still unfinished")
            time.sleep(0.05)

    def wait_finished(self, ids: Sequence[int], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            row = self._connection.execute(
                "SELECT count(*) FROM tasks WHERE id = ANY(%s) AND NOT status = ANY(%s)",
                (list(ids), list(FINISHED)),
            ).fetchone()
            if row is not None and row[0] == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{row[0] if row else '?'} probe tasks still unfinished")
            time.sleep(0.1)

    def create_to_finish_ms(self, ids: Sequence[int]) -> list[float]:
        return self._column_ms("finished_at - created_at", ids)

    def start_after_create_ms(self, ids: Sequence[int]) -> list[float]:
        return self._column_ms("started_at - created_at", ids)

    def unfinished(self, priority: int) -> int:
        row = self._connection.execute(
            "SELECT count(*) FROM tasks WHERE priority = %s AND NOT status = ANY(%s)",
            (priority, list(FINISHED)),
        ).fetchone()
        return int(row[0]) if row else 0

    def finished_at(self, task_id: int) -> datetime | None:
        row = self._connection.execute(
            "SELECT finished_at FROM tasks WHERE id = %s AND status = ANY(%s)",
            (task_id, list(FINISHED)),
        ).fetchone()
        return row[0] if row else None

    def failures(self, floor_id: int) -> int:
        row = self._connection.execute(
            "SELECT count(*) FROM tasks WHERE id > %s AND status <> 'success'", (floor_id,)
        ).fetchone()
        return int(row[0]) if row else 0

    def _column_ms(self, interval: str, ids: Sequence[int]) -> list[float]:
        rows = self._connection.execute(
            f"SELECT extract(epoch FROM {interval}) * 1000 FROM tasks "
            "WHERE id = ANY(%s) AND status = 'success'",
            (list(ids),),
        ).fetchall()
        return [float(row[0]) for row in rows]
