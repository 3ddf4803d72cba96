"""Static checks of docker-compose.yml: no Docker engine runs here, so what compose would start
is checked against what the system tests really start as processes, and against Settings."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from entrypoints.settings import Settings
from tests.commands import MIGRATE, ROOT, procfile

APP_SERVICES = ["migrate", "api", "worker-high", "worker-medium", "worker-low", "dispatcher"]
LONG_RUNNING = [
    "postgres",
    "redis",
    "api",
    "worker-high",
    "worker-medium",
    "worker-low",
    "dispatcher",
]
INTERPOLATION = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(document, dict)
    return document


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]  # type: ignore[no-any-return]


def interpolate(value: object) -> str:
    """What compose makes of `${NAME:-default}` when NAME is not set."""
    return INTERPOLATION.sub(lambda m: m.group(2) or "", str(value))


def test_every_part_of_the_system_is_a_service(compose: dict[str, Any]) -> None:
    default = {name for name, service in services(compose).items() if "profiles" not in service}
    assert default == {"secrets", "postgres", "redis", *APP_SERVICES}
    observability = {
        name
        for name, service in services(compose).items()
        if "observability" in service.get("profiles", [])
    }
    assert observability == {"prometheus", "grafana"}


def test_every_app_command_is_one_the_system_tests_run(compose: dict[str, Any]) -> None:
    started_by_tests = [*procfile().values(), MIGRATE]
    for name in APP_SERVICES:
        assert services(compose)[name]["command"] in started_by_tests, name
    ran = [services(compose)[name]["command"] for name in APP_SERVICES]
    assert sorted(map(tuple, ran)) == sorted(map(tuple, started_by_tests))


def test_app_services_wait_for_healthy_stores_and_finished_migrations(
    compose: dict[str, Any],
) -> None:
    for name in APP_SERVICES:
        depends = services(compose)[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        if name != "migrate":
            assert depends["redis"]["condition"] == "service_healthy"
            assert depends["migrate"]["condition"] == "service_completed_successfully"


def test_long_running_services_have_health_checks_and_restart(compose: dict[str, Any]) -> None:
    for name in LONG_RUNNING:
        service = services(compose)[name]
        assert service["healthcheck"]["test"], name
        assert service["restart"] == "unless-stopped", name
    assert services(compose)["migrate"]["restart"] == "no"


def test_postgres_keeps_data_in_a_named_volume_and_redis_appends(compose: dict[str, Any]) -> None:
    volume = services(compose)["postgres"]["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]
    assert "--appendonly" in services(compose)["redis"]["command"]
    assert (
        services(compose)["redis"]["command"][
            services(compose)["redis"]["command"].index("--appendonly") + 1
        ]
        == "yes"
    )


def test_the_api_is_published_on_8000_of_127_0_0_1(compose: dict[str, Any]) -> None:
    assert interpolate(services(compose)["api"]["ports"][0]) == "127.0.0.1:8000:8000"


def test_compose_environment_is_settings_and_valid(compose: dict[str, Any]) -> None:
    fields = {name.upper() for name in Settings.model_fields}
    for name in APP_SERVICES:
        environment = {k: interpolate(v) for k, v in services(compose)[name]["environment"].items()}
        assert set(environment) <= fields, f"{name}: {set(environment) - fields} are not settings"
        assert environment["DATABASE_URL"].startswith("postgresql+psycopg://"), name
        assert environment["BROKER_URL"].startswith("redis://"), name
        settings = Settings(_env_file=None, **{k.lower(): v for k, v in environment.items()})
        assert settings.database_url == environment["DATABASE_URL"]


def test_env_example_names_only_settings_or_compose_variables(compose: dict[str, Any]) -> None:
    compose_variables = set(INTERPOLATION.findall((ROOT / "docker-compose.yml").read_text()))
    compose_names = {name for name, _ in compose_variables}
    fields = {name.upper() for name in Settings.model_fields}
    example = (ROOT / ".env.example").read_text()
    names = set(re.findall(r"^#?\s*([A-Z_]+)=", example, flags=re.MULTILINE))
    assert names, "no variables documented"
    assert names <= fields | compose_names, names - fields - compose_names
