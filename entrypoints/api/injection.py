"""dependency-injector's `Provide` marker, made awaitable for FastAPI.

FastAPI calls the callable of every `Depends(...)` to get a value; the stock marker's `__call__`
is a plain function, so FastAPI would hop to its threadpool on every request just to get the
marker back, before `@inject` swaps it for the provider's instance. An async `__call__` costs no
hop; the wiring treats this subclass exactly like the stock marker."""

from typing import Self

from dependency_injector import wiring


class Provide(wiring.Provide):  # type: ignore[misc, valid-type]
    async def __call__(self) -> Self:
        return self
