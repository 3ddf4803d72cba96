import pytest

from tests.contract.history_contract import TaskHistoryContract
from tests.contract.idempotency_contract import IdempotencyKeysContract
from tests.contract.repository_contract import TaskRepositoryContract
from tests.contract.scale_contract import CreationWindowContract, ScaleContract
from tests.contract.tenancy_contract import ApiKeysContract, TenancyContract
from tests.fakes import FakeUnitOfWork


class TestInMemoryRepository(TaskRepositoryContract):
    @pytest.fixture
    def uow(self) -> FakeUnitOfWork:
        return FakeUnitOfWork()


class TestInMemoryIdempotencyKeys(IdempotencyKeysContract):
    @pytest.fixture
    def uow(self) -> FakeUnitOfWork:
        return FakeUnitOfWork()


class TestInMemoryTenancy(TenancyContract):
    @pytest.fixture
    def uow(self) -> FakeUnitOfWork:
        return FakeUnitOfWork()


class TestInMemoryApiKeys(ApiKeysContract):
    @pytest.fixture
    def uow(self) -> FakeUnitOfWork:
        return FakeUnitOfWork()


class TestInMemoryScale(ScaleContract, CreationWindowContract):
    @pytest.fixture
    def uow(self) -> FakeUnitOfWork:
        return FakeUnitOfWork()


class TestInMemoryHistory(TaskHistoryContract):
    @pytest.fixture
    def uow(self) -> FakeUnitOfWork:
        return FakeUnitOfWork()
