"""Fixtures that run one test against every store driver: memory, sqlite and etcd.

Each test gets a fresh key `prefix` and a `store_factory` that opens the driver (with options such as a
small watch buffer). The etcd driver shares one etcd per session, so tests must stay under their prefix
and must not assume what the first revision is.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from pyk8s.store.protocol import Store
from tests.support.etcd import EtcdProcess, etcd_available

DRIVERS = ["memory", "sqlite", pytest.param("etcd", marks=pytest.mark.etcd)]

StoreFactory = Callable[..., Awaitable[Store]]


async def open_driver(driver: str, path: Path, etcd_endpoint: str, **options: int) -> Store:
    """Open a store of `driver`: sqlite on the file `path`, etcd at `etcd_endpoint`."""
    if driver == "memory":
        from pyk8s.store.memory import MemoryStore

        return MemoryStore(**options)
    if driver == "sqlite":
        from pyk8s.store.sqlite import SqliteStore

        return await SqliteStore.open(str(path), **options)
    from pyk8s.store.etcd import EtcdStore

    return await EtcdStore.open([etcd_endpoint], **options)


@pytest.fixture(scope="session")
def etcd_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not etcd_available():
        pytest.skip("etcd is not installed")
    member = EtcdProcess.start(tmp_path_factory.mktemp("etcd"))
    try:
        yield member.endpoint
    finally:
        member.stop()


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses."""
    return f"/t-{uuid.uuid4().hex[:12]}/"


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store_factory(
    driver: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[StoreFactory]:
    """Opens stores of this test's driver (sqlite: all on one file); closes them after the test."""
    opened: list[Store] = []
    endpoint = request.getfixturevalue("etcd_endpoint") if driver == "etcd" else ""

    async def open_store(**options: int) -> Store:
        store = await open_driver(driver, tmp_path / "store.db", endpoint, **options)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        await store.close()


@pytest.fixture
async def store(store_factory: StoreFactory) -> Store:
    return await store_factory()
