"""The figures as a table on stdout and as bench/results/latest.json, with the design goals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.stats import ratio

Row = tuple[str, Any, Any, Any, str]


def goals(figures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The design goals of issue 7: checked here, never asserted in tests."""
    best_create = max(figures["create_per_s"].values())
    e2e_ratio = ratio(figures["e2e_tasks_per_s"], figures["bare_celery_tasks_per_s"])
    p1_p99 = figures["p1_latency_ms_under_flood"]["p99"]
    lag_p99 = max(lag["p99"] or 0 for lag in figures["delay_lag_ms"].values())
    drain_ratio = ratio(figures["drain_tasks_per_s"], figures["bare_celery_tasks_per_s"])
    p1_idle_p99 = figures["p1_latency_ms_idle"]["p99"]
    return {
        "e2e_vs_bare_celery>=0.5": {"value": e2e_ratio, "met": (e2e_ratio or 0) >= 0.5},
        # Issue 14's goals.
        "e2e_vs_bare_celery>=1.5": {"value": e2e_ratio, "met": (e2e_ratio or 0) >= 1.5},
        "drain_vs_bare_celery>=2": {"value": drain_ratio, "met": (drain_ratio or 0) >= 2},
        "p1_p99_idle_ms<=15": {
            "value": p1_idle_p99,
            "met": p1_idle_p99 is not None and p1_idle_p99 <= 15,
        },
        "p1_p99_under_flood_ms<=25": {
            "value": p1_p99,
            "met": p1_p99 is not None and p1_p99 <= 25,
        },
        "delay_lag_p99_ms<=100": {"value": lag_p99, "met": lag_p99 <= 100},
        "best_create_per_s>=1000": {"value": best_create, "met": best_create >= 1000},
        "p1_p99_under_flood_ms<=50": {"value": p1_p99, "met": p1_p99 is not None and p1_p99 <= 50},
        "delay_lag_p99_ms<=250": {"value": lag_p99, "met": lag_p99 <= 250},
        # Each cost is judged by CPU per task, the steadier of its two measures (bench/phases/
        # costs.py); a report from before CPU was measured has only the throughput cost.
        **{
            f"{name}<=0.05": {"value": _cost(figures[name]), "met": _cost(figures[name]) <= 0.05}
            # Issue 13's (task events, metrics) and issue 16's (attempt history, event streams).
            for name in ("events_cost", "metrics_cost", "history_cost", "event_streams_cost")
            if name in figures
        },
        # Issue 14: logging at `make run`'s level costs less than a sixth of the throughput.
        **(
            {
                "logging_cost<1/6": {
                    "value": _cost(figures["logging_cost"]),
                    "met": _cost(figures["logging_cost"]) < 1 / 6,
                }
            }
            if "logging_cost" in figures
            else {}
        ),
    }


def _cost(measured: dict[str, Any]) -> float:
    """A feature's cost to the run: its share of the run's CPU per task where measured so (task
    events: bench/phases/costs.py), else its CPU-per-task cost, else its throughput cost."""
    for key in ("cost_of_run", "cpu_cost", "cost"):
        if key in measured:
            return float(measured[key])
    raise KeyError(f"no cost in {measured}")


def rows(figures: dict[str, Any]) -> list[Row]:
    table: list[Row] = []
    for c, per_s in figures["create_per_s"].items():
        pg = figures["pgbench_insert_tps"].get(c)
        table.append((f"create, {c} conn (req/s)", per_s, pg, ratio(per_s, pg), "pgbench INSERT"))
    for c, p99 in figures["create_p99_ms"].items():
        p50 = figures["create_p50_ms"][c]
        pg50 = figures["pgbench_insert_p50_ms"].get(c)
        pg99 = figures["pgbench_insert_p99_ms"].get(c)
        table.append((f"create p50, {c} conn (ms)", p50, pg50, ratio(p50, pg50), "pgbench"))
        table.append((f"create p99, {c} conn (ms)", p99, pg99, ratio(p99, pg99), "pgbench"))
    bare = figures["bare_celery_tasks_per_s"]
    e2e = figures["e2e_tasks_per_s"]
    table.append(("e2e priority 1 (tasks/s)", e2e, bare, ratio(e2e, bare), "bare Celery"))
    for name, what, off in (
        ("events_cost", "task events on", "task events off"),
        ("metrics_cost", "metrics on", "metrics off"),
        ("logging_cost", "logging at INFO", "WARNING"),
        ("history_cost", "attempt history on", "history triggers off"),
    ):
        if name in figures:  # median pair of end-to-end runs with it on and off
            pair = sorted(figures[name]["pairs"], key=lambda p: p["cost"])[
                len(figures[name]["pairs"]) // 2
            ]
            table.append(
                (
                    # Task events and logging are measured by the high pool draining a backlog.
                    f"{'drain' if 'cost_of_run' in figures[name] else 'e2e'}, {what} (tasks/s)",
                    pair["on"],
                    pair["off"],
                    ratio(pair["on"], pair["off"]),
                    off,
                )
            )
            if "cpu_cost" in figures[name]:  # and the median pair by CPU per task
                by_cpu = sorted(figures[name]["pairs"], key=lambda p: p["cpu_cost"])[
                    len(figures[name]["pairs"]) // 2
                ]
                on_ms, off_ms = by_cpu["cpu_ms_on"], by_cpu["cpu_ms_off"]
                # Drains count the one process that pays; end-to-end runs, all of them.
                of = figures[name].get("cpu_of", "all processes")
                table.append(
                    (f"CPU per task, {what} ({of}, ms)", on_ms, off_ms, ratio(on_ms, off_ms), off)
                )
    if "event_streams_cost" in figures:  # measured by bursts of events (bench/history_cost.py)
        streams = figures["event_streams_cost"]
        table.append(
            (
                f"CPU per task, {streams['streams']} event streams (API + PostgreSQL, ms)",
                streams["cpu_ms_per_task"],
                streams["run_cpu_ms_per_task"],
                ratio(streams["cpu_ms_per_task"], streams["run_cpu_ms_per_task"]),
                "whole system e2e",
            )
        )
    for size, per_s in figures.get("e2e_by_message_max_tasks", {}).items():
        name = f"e2e, messages of <= {size} (tasks/s)"
        table.append((name, per_s, bare, ratio(per_s, bare), "bare Celery"))
    drain = figures["drain_tasks_per_s"]
    table.append(
        ("high pool backlog drain (tasks/s)", drain, bare, ratio(drain, bare), "bare Celery")
    )
    idle = figures["p1_latency_ms_idle"]
    flood = figures["p1_latency_ms_under_flood"]
    for q in ("p50", "p99"):
        table.append(
            (
                f"p1 create->finish {q}, flood (ms)",
                flood[q],
                idle[q],
                ratio(flood[q], idle[q]),
                "idle",
            )
        )
    for priority, lag in figures["delay_lag_ms"].items():
        for q in ("p50", "p99"):
            table.append((f"p{priority} start lag {q} (ms)", lag[q], None, None, ""))
    for connections, run in figures.get("make_run_wrk", {}).get("runs", {}).items():
        table.append(
            (f"make run, wrk {connections} conn: creates/s", run["creates_per_s"], None, None, "")
        )
        table.append(
            (f"make run, wrk {connections} conn: tasks/s", run["tasks_per_s"], None, None, "")
        )
    batch = figures["batch_100k_s"]
    pairs = figures["batch_pairs"]
    table.append((f"batch {pairs} pairs: 201 (s)", batch["accept"], None, None, ""))
    table.append((f"batch {pairs} pairs: success (s)", batch["done"], None, None, ""))
    return table


def render(figures: dict[str, Any]) -> str:
    lines = [f"{'figure':<38}{'taskman':>11}{'baseline':>11}{'ratio':>8}  baseline is"]
    for name, value, baseline, rate, source in rows(figures):
        lines.append(f"{name:<38}{_cell(value):>11}{_cell(baseline):>11}{_cell(rate):>8}  {source}")
    lines.append("")
    lines.append("design goals:")
    for goal, verdict in figures["goals"].items():
        mark = "met" if verdict["met"] else "NOT met"
        lines.append(f"  {goal:<30} {_cell(verdict['value']):>10}  {mark}")
    return "\n".join(lines)


def write_json(figures: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    temporary.replace(path)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)
