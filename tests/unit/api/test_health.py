"""GET /health: 200 when the store and the broker answer ("degraded" if a queue has no worker),
else a 503 problem naming the part. /health/live: the process answers. /health/ready: 200 only
when the store and the broker answer and every queue has a worker, else a 503 naming what is
missing."""

from domain.priority import Priority
from tests.unit.api.conftest import Api
from tests.unit.api.shapes import assert_problem


def test_healthy_reports_ok_and_the_workers_of_each_queue(api: Api) -> None:
    response = api.client.get("/api/v1/health")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "broker": "ok",
        "workers": {"high": 1, "medium": 1, "low": 1},
    }


def test_a_queue_without_workers_is_degraded_but_still_200(api: Api) -> None:
    api.queue.consumer_counts = {Priority.HIGH: 0, Priority.MEDIUM: 2, Priority.LOW: 1}

    response = api.client.get("/api/v1/health")

    assert response.status_code == 200
    assert response.json() == {
        "status": "degraded",
        "database": "ok",
        "broker": "ok",
        "workers": {"high": 0, "medium": 2, "low": 1},
    }


def test_a_broker_that_cannot_count_its_workers_reports_them_unknown(api: Api) -> None:
    api.queue.consumer_counts = {}

    response = api.client.get("/api/v1/health")

    assert response.status_code == 200
    assert response.json()["workers"] is None


def test_database_down_is_503_naming_the_database(api: Api) -> None:
    api.uow.available = False

    body = assert_problem(api.client.get("/api/v1/health"), 503, "unhealthy")

    assert body["detail"] == "database unavailable: StoreUnavailable"
    assert body["database"].startswith("unavailable: StoreUnavailable")
    assert body["broker"] == "ok"
    assert body["workers"] == {"high": 1, "medium": 1, "low": 1}


def test_broker_down_is_503_naming_the_broker(api: Api) -> None:
    api.queue.available = False

    body = assert_problem(api.client.get("/api/v1/health"), 503, "unhealthy")

    # The adapter's message (its host:port and the reason) is the broker's state.
    assert body["detail"] == "broker unavailable: broker down"
    assert body["database"] == "ok"
    assert body["broker"] == "unavailable: broker down"
    assert body["workers"] is None


def test_both_down_names_both(api: Api) -> None:
    api.uow.available = False
    api.queue.available = False

    body = assert_problem(api.client.get("/api/v1/health"), 503, "unhealthy")

    assert body["detail"] == (
        "database unavailable: StoreUnavailable; broker unavailable: broker down"
    )


def test_live_answers_whatever_the_store_and_broker_say(api: Api) -> None:
    api.uow.available = False
    api.queue.available = False

    response = api.client.get("/api/v1/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_when_every_queue_has_a_worker(api: Api) -> None:
    response = api.client.get("/api/v1/health/ready")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "database": "ok",
        "broker": "ok",
        "workers": {"high": 1, "medium": 1, "low": 1},
    }


def test_not_ready_names_each_queue_without_a_worker(api: Api) -> None:
    api.queue.consumer_counts = {Priority.HIGH: 0, Priority.MEDIUM: 3, Priority.LOW: 0}

    body = assert_problem(api.client.get("/api/v1/health/ready"), 503, "not-ready")

    assert body["detail"] == "no worker consumes the high queue; no worker consumes the low queue"
    assert body["missing"] == ["high", "low"]
    assert body["workers"] == {"high": 0, "medium": 3, "low": 0}


def test_not_ready_names_the_store_and_the_broker(api: Api) -> None:
    api.uow.available = False
    api.queue.available = False

    body = assert_problem(api.client.get("/api/v1/health/ready"), 503, "not-ready")

    assert body["missing"] == ["database", "broker"]
    assert body["detail"] == (
        "database unavailable: StoreUnavailable; broker unavailable: broker down"
    )


def test_ready_rests_on_store_and_broker_when_workers_cannot_be_counted(api: Api) -> None:
    api.queue.consumer_counts = {}

    response = api.client.get("/api/v1/health/ready")

    assert response.status_code == 200
    assert response.json()["workers"] is None
