"""The ledger's judgement of an attempt history, on histories made up here: what the matrix's
scenarios rely on to call a task run twice (no system is started)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fault.ledger import Ledger, Verdict

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def attempt(outcome: str | None, started: float, finished: float | None) -> dict[str, Any]:
    return {
        "attempt": 1,
        "dispatch_no": 1,
        "outcome": outcome,
        "started_at": at(started),
        "finished_at": None if finished is None else at(finished),
    }


def judge(ledger: Ledger, attempts: int, history: list[dict[str, Any]]) -> Verdict:
    verdict = Verdict("made up")
    row = {"status": "success", "attempts": attempts}
    ledger._judge_attempts(verdict, 1, row, history)
    return verdict


def test_one_success_is_clean() -> None:
    verdict = judge(Ledger("none"), 1, [attempt("success", 0, 0.1)])
    assert verdict.ok and verdict.lost_attempts == 0


def test_a_released_claim_is_explained_and_not_counted() -> None:
    history = [attempt("released", 0, 1), attempt("success", 1.1, 1.2)]
    verdict = judge(Ledger("none"), 1, history)
    assert verdict.ok and verdict.released_attempts == 1


def test_an_attempt_lost_in_flight_during_a_fault_is_explained() -> None:
    ledger = Ledger("a kill")
    ledger.faults.append((at(1), at(1.01)))
    verdict = judge(ledger, 2, [attempt("lost", 0.5, 4), attempt("success", 4.1, 4.2)])
    assert verdict.ok, verdict.problems
    assert verdict.lost_attempts == 1 and verdict.rerun_after_killed_attempt == 1


def test_an_attempt_lost_with_no_fault_in_flight_is_a_run_twice() -> None:
    ledger = Ledger("a kill")
    ledger.faults.append((at(10), at(10.01)))  # after the attempt was handed on
    verdict = judge(ledger, 2, [attempt("lost", 0.5, 4), attempt("success", 4.1, 4.2)])
    assert verdict.run_twice == 1 and not verdict.ok


def test_a_second_success_is_a_run_twice() -> None:
    history = [attempt("success", 0, 0.1), attempt("success", 0.2, 0.3)]
    verdict = judge(Ledger("none"), 2, history)
    assert verdict.run_twice >= 1 and not verdict.ok


def test_an_attempts_count_that_disagrees_with_the_history_is_a_problem() -> None:
    history = [attempt("released", 0, 1), attempt("success", 1.1, 1.2)]
    verdict = judge(Ledger("none"), 2, history)
    assert not verdict.ok


def test_an_attempt_left_open_before_the_last_is_a_problem() -> None:
    verdict = judge(Ledger("none"), 2, [attempt(None, 0, None), attempt("success", 1, 1.1)])
    assert not verdict.ok
