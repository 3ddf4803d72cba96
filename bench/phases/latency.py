"""Latency seen by a modest client: priority-1 create->finish on an idle system and under a
flood of priority-3 work, and how late delayed tasks start."""

from __future__ import annotations

from typing import Any

from bench.loadgen import wrk
from bench.phases.common import client, say
from bench.plan import Plan
from bench.stats import summary_ms
from bench.system import SystemUnderTest
from bench.timings import Timings


def _probe(sut: SystemUnderTest, priorities: list[int], rate: float, seconds: float) -> dict:
    return client(
        "paced",
        sut.system.base_url,
        "--priorities",
        *map(str, priorities),
        f"--rate={rate}",
        f"--seconds={seconds}",
    )


def p1_idle(sut: SystemUnderTest, db: Timings, plan: Plan) -> dict[str, Any]:
    """The reference for the flood: the same probes with nothing else to do."""
    ids = _probe(sut, [1], plan.probe_rate, plan.idle_probe_seconds)["ids"]["1"]
    db.wait_finished(ids, timeout=60)
    latency = summary_ms(db.create_to_finish_ms(ids))
    say(f"priority 1 create->finish, idle: p50 {latency['p50']} ms, p99 {latency['p99']} ms")
    return {"p1_latency_ms_idle": latency}


def p1_under_flood(
    sut: SystemUnderTest, db: Timings, plan: Plan, connections: int
) -> dict[str, Any]:
    """Priority-3 tasks are created as fast as the API takes them; once they are all in (the
    first already running, the rest waiting), priority-1 probes go in at a steady pace."""
    wrk.run_count(sut.system.base_url, connections=connections, count=plan.flood_tasks, priority=3)
    waiting_before = db.unfinished(3)
    ids = _probe(sut, [1], plan.probe_rate, plan.flood_probe_seconds)["ids"]["1"]
    waiting_after = db.unfinished(3)
    db.wait_finished(ids, timeout=120)
    latency = summary_ms(db.create_to_finish_ms(ids))
    say(
        f"priority 1 create->finish under the flood: p50 {latency['p50']} ms, "
        f"p99 {latency['p99']} ms ({waiting_before} -> {waiting_after} priority-3 unfinished)"
    )
    return {
        "p1_latency_ms_under_flood": latency,
        "flood": {
            "p3_tasks": plan.flood_tasks,
            "p3_unfinished_when_probes_began": waiting_before,
            "p3_unfinished_when_probes_ended": waiting_after,
        },
    }


def delay_lag(sut: SystemUnderTest, db: Timings, plan: Plan) -> dict[str, Any]:
    """Start time minus creation time minus the nominal delay, for priorities 2 and 3."""
    nominal_ms = {
        "2": float(sut.setting("DELAY_MEDIUM_SECONDS")) * 1000,
        "3": float(sut.setting("DELAY_LOW_SECONDS")) * 1000,
    }
    ids = _probe(sut, [2, 3], plan.probe_rate, plan.delay_probe_seconds)["ids"]
    db.wait_finished([*ids["2"], *ids["3"]], timeout=120)
    lags = {}
    for priority, nominal in nominal_ms.items():
        starts = db.start_after_create_ms(ids[priority])
        lags[priority] = summary_ms([start - nominal for start in starts])
        say(
            f"priority {priority} starts {lags[priority]['p50']} ms (p50), "
            f"{lags[priority]['p99']} ms (p99) after its nominal {nominal / 1000:.0f} s"
        )
    return {"delay_lag_ms": lags, "delay_nominal_ms": nominal_ms}
