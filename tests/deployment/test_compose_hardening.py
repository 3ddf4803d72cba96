"""docker-compose.yml is safe to expose (issue 15, part 5), checked statically (no Docker engine
here; what compose starts is run as plain processes by tests/integration/test_compose_secrets.py
and test_migrate_waits.py): the API on 127.0.0.1 unless API_BIND says otherwise, no default
password anywhere, Redis behind a password, hardened containers, locked dependencies."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.commands import ROOT
from tests.deployment.test_compose import interpolate

COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
ENV_EXAMPLE = (ROOT / ".env.example").read_text()
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text().replace("\\\n", " ")
LOCK = ROOT / "requirements.lock"
SECRETS_SCRIPT = ROOT / "docker" / "generate_secrets.py"
# A URL with a password in it: scheme://user:password@host.
URL_WITH_PASSWORD = re.compile(r"[a-z+]+://[^/\s@:]*:[^/\s@]+@")


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> volume name, of the service's volumes (short or long syntax)."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            found[volume["target"]] = volume["source"]
            continue
        name, path, *_ = volume.split(":")
        found[path] = name
    return found


def read_only(volume: str | dict[str, Any]) -> bool:
    if isinstance(volume, dict):
        return volume.get("read_only") is True
    return volume.endswith(":ro")


def in_volume(service: dict[str, Any], path: str, volume: str) -> bool:
    return any(
        name == volume and PurePosixPath(mount) in PurePosixPath(path).parents
        for mount, name in mounts(service).items()
    )


def test_the_api_is_published_on_127_0_0_1_unless_api_bind_says_otherwise() -> None:
    assert SERVICES["api"]["ports"] == ["${API_BIND:-127.0.0.1}:${API_PORT:-8000}:8000"]
    published = {name for name, service in SERVICES.items() if service.get("ports")}
    observability = {"prometheus", "grafana"}  # the `observability` profile's consoles
    assert published - observability == {"api"}, (
        "PostgreSQL and Redis are reached inside compose's network only"
    )
    for name in observability & published:
        assert all(port.startswith("127.0.0.1:") for port in SERVICES[name]["ports"]), name
    assert re.search(r"^API_BIND=127\.0\.0\.1$", ENV_EXAMPLE, flags=re.MULTILINE)


def test_no_default_password_in_compose_or_env_example() -> None:
    for text in (COMPOSE_TEXT, ENV_EXAMPLE):
        found = URL_WITH_PASSWORD.search(interpolate(text))
        assert found is None, found
        defaults = re.findall(r"\$\{(\w*PASSWORD\w*):-([^}]*)\}", text)
        assert all(default == "" for _, default in defaults), defaults
    assert not re.findall(r"^\w*PASSWORD\w*=.+$", ENV_EXAMPLE, flags=re.MULTILINE)
    assert "POSTGRES_PASSWORD" not in SERVICES["postgres"]["environment"]


def test_a_one_shot_service_writes_the_passwords_into_a_volume_before_the_stores_start() -> None:
    secrets = SERVICES["secrets"]
    assert secrets["restart"] == "no"
    python, script, directory = secrets["command"]
    assert python == "python"
    assert f"COPY docker/generate_secrets.py {script}" in DOCKERFILE
    assert mounts(secrets)[directory] == "secrets" and "secrets" in COMPOSE["volumes"]
    # .env's passwords, when set, else nothing (then generated): never a fixed value.
    assert secrets["environment"] == {
        "POSTGRES_PASSWORD": "${POSTGRES_PASSWORD:-}",
        "REDIS_PASSWORD": "${REDIS_PASSWORD:-}",
        "GRAFANA_ADMIN_PASSWORD": "${GRAFANA_ADMIN_PASSWORD:-}",
    }
    for store in ("postgres", "redis"):
        condition = SERVICES[store]["depends_on"]["secrets"]["condition"]
        assert condition == "service_completed_successfully"


def test_every_password_is_read_from_the_secrets_volume_read_only() -> None:
    postgres = SERVICES["postgres"]
    assert in_volume(postgres, postgres["environment"]["POSTGRES_PASSWORD_FILE"], "secrets")
    for name, service in SERVICES.items():
        if name != "secrets" and "secrets" in mounts(service).values():
            secrets = [
                v
                for v in service["volumes"]
                if (v.get("source") if isinstance(v, dict) else v.split(":")[0]) == "secrets"
            ]
            assert secrets and all(read_only(v) for v in secrets), name
    # Grafana mounts only its own folder of the volume, not the store's and broker's passwords.
    [grafana] = [v for v in SERVICES["grafana"]["volumes"] if isinstance(v, dict)]
    assert grafana["volume"]["subpath"] == "grafana"
    for name in ("migrate", "api", "worker-high", "worker-medium", "worker-low", "dispatcher"):
        environment = SERVICES[name]["environment"]
        for setting in ("DATABASE_PASSWORD_FILE", "BROKER_PASSWORD_FILE"):
            assert in_volume(SERVICES[name], environment[setting], "secrets"), (name, setting)
        assert environment["BROKER_URL"].startswith("redis://redis:"), name


def test_redis_requires_the_generated_password(tmp_path: Path) -> None:
    redis = SERVICES["redis"]
    command = redis["command"]
    assert command[0] == "redis-server"
    configuration = PurePosixPath(command[1])
    assert in_volume(redis, str(configuration), "secrets")
    # The file the secrets service writes there holds `requirepass`.
    done = subprocess.run(
        [sys.executable, str(SECRETS_SCRIPT), str(tmp_path)], capture_output=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / configuration.name).read_text().startswith("requirepass ")
    # Its health check authenticates (a bare PING answers NOAUTH), through the environment.
    check = " ".join(redis["healthcheck"]["test"])
    assert "REDISCLI_AUTH=" in check and "/secrets/redis_password" in check and "PONG" in check


def test_postgresql_s_health_check_asks_over_tcp() -> None:
    check = " ".join(SERVICES["postgres"]["healthcheck"]["test"])
    assert re.search(r"pg_isready -h 127\.0\.0\.1\b", check), check


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_is_hardened(name: str) -> None:
    service = SERVICES[name]
    assert "no-new-privileges:true" in service["security_opt"]
    assert service["cap_drop"] == ["ALL"]
    assert not service.get("cap_add"), "no capability is given back"
    assert not service.get("privileged")
    limit = service.get("mem_limit") or service["deploy"]["resources"]["limits"]["memory"]
    assert re.fullmatch(r"\d+[kmg]", str(limit)), limit
    # Every service here allows a read-only root filesystem; what it writes goes to a volume or
    # to a tmpfs.
    assert service["read_only"] is True
    assert "/tmp" in service["tmpfs"]
    # Not root: the taskman image's USER, or the store image's own user.
    if "image" in service and not service["image"].startswith("taskman"):
        assert service["user"] not in {"root", "0"}


def test_taskman_writes_only_to_tmpfs() -> None:
    for service in SERVICES.values():
        data_dir = service.get("environment", {}).get("DATA_DIR")
        if data_dir is not None:
            assert any(
                PurePosixPath(t) in PurePosixPath(data_dir).parents for t in service["tmpfs"]
            )


def test_the_image_installs_the_locked_dependencies_by_hash() -> None:
    assert "pip install --no-deps --require-hashes -r requirements.lock" in DOCKERFILE
    assert "COPY requirements.lock" in DOCKERFILE
    installs = [line for line in DOCKERFILE.splitlines() if "pip install" in line]
    assert all("--no-deps" in line for line in installs), installs
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "requirements.lock" not in ignored and "docker" not in ignored


def locked() -> dict[str, tuple[str, str | None, list[str]]]:
    """Package -> (version, marker, hashes), from requirements.lock."""
    pins = {}
    text = LOCK.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            requirement_text, *hashes = line.split("--hash=")
            requirement = Requirement(requirement_text.strip())
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", line
            marker = str(requirement.marker) if requirement.marker else None
            pins[canonicalize_name(requirement.name)] = (
                specifier.version,
                marker,
                [h.strip() for h in hashes],
            )
    return pins


def test_the_lock_pins_every_runtime_dependency_with_hashes() -> None:
    pins = locked()
    assert all(
        hashes and all(h.startswith("sha256:") for h in hashes) for *_, hashes in pins.values()
    )
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    build = [Requirement(r) for r in project["build-system"]["requires"]]
    for requirement in [Requirement(r) for r in project["project"]["dependencies"]] + build:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pins[name][0], prereleases=True), (name, pins[name])


def test_the_lock_holds_every_dependency_of_what_it_pins_on_the_image_s_platform() -> None:
    """The image installs the lock with --no-deps: anything missing would be missing there.
    Dependencies as the installed distributions declare them, on this Linux and Python 3.11."""
    pins = locked()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = [Requirement(r) for r in project["project"]["dependencies"]]
    seen: set[tuple[str, frozenset[str]]] = set()
    while wanted:
        requirement = wanted.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        assert key[0] in pins, f"{key[0]} is not in requirements.lock: run `make lock`"
        for extra in ["", *requirement.extras]:
            for declared in metadata.requires(requirement.name) or []:
                dependency = Requirement(declared)
                environment = {**default_environment(), "extra": extra}
                # `extra == "standard"` holds only while the extra is asked for.
                if dependency.marker is None or dependency.marker.evaluate(environment):
                    wanted.append(dependency)


def test_bandit_is_part_of_make_lint() -> None:
    makefile = (ROOT / "Makefile").read_text()
    lint = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "bandit" in lint
    for package in ("domain", "application", "adapters", "entrypoints"):
        assert package in lint.split("bandit", 1)[1].splitlines()[0]
