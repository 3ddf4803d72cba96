"""Worker node names: stable across restarts, unique among live workers of a queue on a host."""

import os
import socket
import subprocess
import sys
from pathlib import Path

from adapters.broker.app import create_celery_app
from entrypoints.node_names import NodeIndex, attempt_worker, is_node_of, node_name

BROKER = "redis://127.0.0.1:6379/1"


def test_the_first_worker_of_a_queue_is_named_after_the_queue_alone() -> None:
    assert node_name("high", 1) == "high@%h"
    assert node_name("high", 2, "box") == "high-2@box"


def test_an_attempt_records_the_node_with_its_host_filled_in_and_the_process_id() -> None:
    assert attempt_worker(node_name("low", 2)) == f"low-2@{socket.gethostname()}:{os.getpid()}"
    assert len(attempt_worker("x" * 300 + "@%h")) == 255


def test_a_second_live_worker_takes_the_next_index_and_a_restart_gets_its_own_back(
    tmp_path: Path,
) -> None:
    first = NodeIndex("high", BROKER, tmp_path)
    second = NodeIndex("high", BROKER, tmp_path)
    assert (first.index, second.index) == (1, 2)

    first.release()  # the first worker stops...
    restarted = NodeIndex("high", BROKER, tmp_path)  # ...and starts again
    assert restarted.index == 1


def test_indexes_are_per_queue_and_per_broker(tmp_path: Path) -> None:
    NodeIndex("high", BROKER, tmp_path)

    assert NodeIndex("low", BROKER, tmp_path).index == 1
    assert NodeIndex("high", "redis://127.0.0.1:6379/2", tmp_path).index == 1


def test_a_killed_worker_leaves_its_index_free(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from entrypoints.node_names import "
            f"NodeIndex; n = NodeIndex('high', {BROKER!r}, Path({str(tmp_path)!r})); "
            "print(n.index, flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "1"
    assert NodeIndex("high", BROKER, tmp_path).index == 2
    holder.kill()
    holder.wait()

    assert NodeIndex("high", BROKER, tmp_path).index == 1


def test_a_node_name_is_recognised_as_its_queue_s_on_its_host() -> None:
    assert is_node_of("high@box", "high", "box")
    assert is_node_of("high-3@box", "high", "box")
    assert not is_node_of("high@other", "high", "box")
    assert not is_node_of("highest@box", "high", "box")
    assert not is_node_of("medium@box", "high", "box")


def test_task_events_are_on_for_a_network_broker_unless_turned_off() -> None:
    on = create_celery_app(BROKER, visibility_timeout_seconds=60).conf
    off = create_celery_app(BROKER, visibility_timeout_seconds=60, task_events=False).conf

    assert (on.worker_send_task_events, on.task_send_sent_event) == (True, True)
    assert (off.worker_send_task_events, off.task_send_sent_event) == (False, False)


def test_task_events_stay_off_on_the_embedded_filesystem_broker(tmp_path: Path) -> None:
    url = f"filesystem://localhost{tmp_path}"
    conf = create_celery_app(url, visibility_timeout_seconds=60).conf

    assert conf.worker_send_task_events is False
