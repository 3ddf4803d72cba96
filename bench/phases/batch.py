"""One batch of 100,000 pairs at priority 1: the time to its 201, and to its success."""

from __future__ import annotations

import time
from typing import Any

from bench.phases.common import client, epoch, say
from bench.plan import Plan
from bench.system import SystemUnderTest
from bench.timings import Timings


def big_batch(sut: SystemUnderTest, db: Timings, plan: Plan, timeout: float = 300) -> dict:
    accepted = client("batch", sut.system.base_url, f"--pairs={plan.batch_pairs}", "--priority=1")
    deadline = time.monotonic() + timeout
    while (finished_at := db.finished_at(accepted["id"])) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the {plan.batch_pairs}-pair batch did not finish in {timeout} s")
        time.sleep(0.05)
    done_s = epoch(finished_at) - accepted["sent_at"]
    say(
        f"batch of {plan.batch_pairs} pairs ({accepted['body_bytes'] / 1e6:.1f} MB): "
        f"201 after {accepted['accept_s']:.2f} s, success after {done_s:.2f} s"
    )
    figures: dict[str, Any] = {
        "batch_pairs": plan.batch_pairs,
        "batch_100k_s": {"accept": round(accepted["accept_s"], 3), "done": round(done_s, 3)},
    }
    return figures
