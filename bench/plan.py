"""How much work each phase does: the full plan of issue 7, and a quick one for development."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Plan:
    concurrencies: tuple[int, ...] = (1, 16, 64)
    rate_seconds: int = 5  # each create-rate step, and each pgbench step
    e2e_tasks: int = 10_000
    flood_tasks: int = 20_000
    probe_rate: float = 20.0  # paced probes per second
    idle_probe_seconds: float = 5.0
    flood_probe_seconds: float = 20.0
    delay_probe_seconds: float = 10.0
    batch_pairs: int = 100_000
    make_run_seconds: float = 10.0  # wrk against `make run`, at each of 32 and 64 connections


FULL = Plan()
QUICK = Plan(
    concurrencies=(1, 16),
    rate_seconds=2,
    e2e_tasks=300,
    flood_tasks=600,
    idle_probe_seconds=1.0,
    flood_probe_seconds=2.0,
    delay_probe_seconds=1.0,
    batch_pairs=2_000,
    make_run_seconds=2.0,
)
# Before/after comparisons of one change: the throughput phases at full size, the rest small.
AB = Plan(
    concurrencies=(16, 64),
    rate_seconds=5,
    e2e_tasks=5_000,
    flood_tasks=3_000,
    idle_probe_seconds=2.0,
    flood_probe_seconds=5.0,
    delay_probe_seconds=2.0,
    batch_pairs=10_000,
)
# Before/after comparisons of a change to priority isolation: the flood at full size.
FLOOD = Plan(
    concurrencies=(16,),
    rate_seconds=2,
    e2e_tasks=500,
    flood_tasks=20_000,
    idle_probe_seconds=5.0,
    flood_probe_seconds=20.0,
    delay_probe_seconds=1.0,
    batch_pairs=1_000,
)
PLANS = {"full": FULL, "quick": QUICK, "ab": AB, "flood": FLOOD}
