"""`python -m entrypoints.keys` on the container with the core's fakes: a key is printed once,
listed and stored only as prefix and hash, revoked by id; bad input is an error exit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dependency_injector import providers

from application.use_cases import Authenticate
from domain.access import Scope, Unauthenticated
from entrypoints import keys
from entrypoints.container import Container
from entrypoints.settings import Settings
from tests.fakes import FakeClock, FakeUnitOfWork


@pytest.fixture
def container() -> Iterator[Container]:
    container = Container()
    uow = FakeUnitOfWork()
    settings = Settings(_env_file=None, api_key_pepper="cli pepper")  # type: ignore[call-arg]
    container.settings.override(providers.Object(settings))
    container.uow.override(providers.Object(uow))
    container.read_uow.override(providers.Object(uow))
    container.clock.override(providers.Object(FakeClock()))
    yield container
    container.unwire()


def test_create_prints_the_key_once_and_stores_only_its_prefix_and_hash(
    container: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    assert keys.main(["create", "--tenant", "acme", "--scopes", "tasks:read,admin"], container) == 0
    key = capsys.readouterr().out.strip()

    principal = container.authenticate().execute(key)
    assert (principal.tenant, principal.scopes) == ("acme", frozenset({Scope.READ, Scope.ADMIN}))
    assert keys.main(["list"], container) == 0
    listing = capsys.readouterr().out
    secret = key.split("_", 2)[2]
    assert secret not in listing and f"tm_{key.split('_')[1]}_..." in listing
    assert "acme" in listing and "admin,tasks:read" in listing


def test_revoke_makes_the_key_unauthenticated(
    container: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    keys.main(["create", "--tenant", "acme", "--scopes", "tasks:read"], container)
    key = capsys.readouterr().out.strip()
    authenticate: Authenticate = container.authenticate()

    assert keys.main(["revoke", "1"], container) == 0
    with pytest.raises(Unauthenticated):
        authenticate.execute(key)
    assert keys.main(["revoke", "99"], container) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["create", "--tenant", "acme", "--scopes", "tasks:delete"],
        ["create", "--tenant", "acme", "--scopes", ""],
        ["create", "--tenant", "acme"],
        ["revoke", "one"],
    ],
)
def test_bad_arguments_exit_with_usage(container: Container, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        keys.main(argv, container)
    assert exit_.value.code == 2


@pytest.mark.parametrize("tenant", ["", "a b", "x" * 65, "ténant"])
def test_a_malformed_tenant_is_refused_and_nothing_is_stored(
    container: Container, tenant: str
) -> None:
    assert keys.main(["create", "--tenant", tenant, "--scopes", "tasks:read"], container) == 2
    assert container.list_api_keys().execute() == []
