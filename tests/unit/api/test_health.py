"""GET /health: 200 when the store and the broker answer, else a 503 problem naming the part."""

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


def test_a_queue_without_workers_is_reported_but_still_healthy(api: Api) -> None:
    api.queue.consumer_counts = {Priority.HIGH: 2, Priority.MEDIUM: 0, Priority.LOW: 0}

    response = api.client.get("/api/v1/health")

    assert response.status_code == 200
    assert response.json()["workers"] == {"high": 2, "medium": 0, "low": 0}


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
