"""bench/results/chart.png: latency per priority, and throughput against the baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on a server
import matplotlib.pyplot as plt

BAR = 0.38
P1_GOAL_MS = 50
LAG_GOAL_MS = 250


def draw(figures: dict[str, Any], path: Path) -> None:
    fig, (latency, throughput) = plt.subplots(1, 2, figsize=(13, 5))
    _latency(latency, figures)
    _throughput(throughput, figures)
    fig.suptitle(f"taskman bench, {figures.get('generated_at', '')} (2-core machine)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _latency(axis: Any, figures: dict[str, Any]) -> None:
    groups = {
        "p1 create→finish\nidle": figures["p1_latency_ms_idle"],
        "p1 create→finish\nunder p3 flood": figures["p1_latency_ms_under_flood"],
        **{
            f"p{priority} start lag\n(after nominal delay)": lag
            for priority, lag in figures["delay_lag_ms"].items()
        },
    }
    positions = range(len(groups))
    for offset, quantile in ((-BAR / 2, "p50"), (BAR / 2, "p99")):
        values = [summary[quantile] or 0 for summary in groups.values()]
        bars = axis.bar([p + offset for p in positions], values, BAR, label=quantile)
        axis.bar_label(bars, fmt="%.0f", fontsize=8)
    axis.axhline(P1_GOAL_MS, color="tab:red", linestyle=":", label=f"p1 goal {P1_GOAL_MS} ms")
    axis.axhline(LAG_GOAL_MS, color="tab:purple", linestyle=":", label=f"lag goal {LAG_GOAL_MS} ms")
    axis.set_xticks(list(positions), list(groups), fontsize=8)
    axis.set_ylabel("milliseconds")
    axis.set_title("Latency per priority")
    axis.legend(fontsize=8)


def _throughput(axis: Any, figures: dict[str, Any]) -> None:
    pairs = {
        f"create\n{c} conn": (figures["create_per_s"][c], figures["pgbench_insert_tps"].get(c))
        for c in figures["create_per_s"]
    }
    bare = figures["bare_celery_tasks_per_s"]
    pairs["e2e\npriority 1"] = (figures["e2e_tasks_per_s"], bare)
    pairs["backlog\ndrain"] = (figures["drain_tasks_per_s"], bare)
    positions = range(len(pairs))
    taskman = axis.bar(
        [p - BAR / 2 for p in positions], [v for v, _ in pairs.values()], BAR, label="taskman"
    )
    baseline = axis.bar(
        [p + BAR / 2 for p in positions],
        [b or 0 for _, b in pairs.values()],
        BAR,
        label="baseline (pgbench INSERT / bare Celery)",
        color="tab:gray",
    )
    axis.bar_label(taskman, fmt="%.0f", fontsize=8)
    axis.bar_label(baseline, fmt="%.0f", fontsize=8)
    axis.set_yscale("log")
    axis.set_xticks(list(positions), list(pairs), fontsize=8)
    axis.set_ylabel("per second (log scale)")
    axis.set_title("Throughput against the stack's ceilings")
    axis.legend(fontsize=8)
