"""HTTPTransport over real TLS: a kubeconfig with embedded client certificate, CA verification, 401."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from pyk8s.api.errors import StatusError
from pyk8s.apiserver.app import API_SERVER, APIServerConfig, create_app
from pyk8s.apiserver.auth.x509 import X509Authenticator
from pyk8s.client.client import Client
from pyk8s.client.transport import HTTPTransport, iter_lines, status_error
from pyk8s.server.pki import Pki, ensure_pki
from pyk8s.store.memory import MemoryStore
from tests.client.conftest import NAMESPACES


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("data"))


@pytest.fixture
async def tls_url(pki: Pki) -> AsyncIterator[str]:
    store = MemoryStore()
    app = create_app(APIServerConfig(store=store, authenticator=X509Authenticator()))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=pki.ssl_context())
    await site.start()
    await app[API_SERVER].create_object(NAMESPACES, {"metadata": {"name": "default"}})
    yield f"https://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()
    await store.close()


async def test_from_kubeconfig_with_embedded_certificate(pki: Pki, tls_url: str, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig.yaml"
    kubeconfig.write_text(pki.kubeconfig_for(pki.admin_cert.read_bytes(), pki.admin_key.read_bytes(),
                                             server_url=tls_url))
    client = Client(HTTPTransport.from_kubeconfig(str(kubeconfig)))
    try:
        ns = await client.get(NAMESPACES, "default")
        assert ns["metadata"]["name"] == "default"
    finally:
        await client.close()


async def test_certificate_files_and_ca_file(pki: Pki, tls_url: str) -> None:
    client = Client(HTTPTransport(tls_url, ca_file=str(pki.ca_cert), cert_file=str(pki.admin_cert),
                                  key_file=str(pki.admin_key)))
    try:
        assert (await client.list(NAMESPACES))["items"][0]["metadata"]["name"] == "default"
    finally:
        await client.close()


async def test_no_credentials_is_401(pki: Pki, tls_url: str) -> None:
    client = Client(HTTPTransport(tls_url, ca_data=pki.ca_cert.read_bytes()))
    try:
        with pytest.raises(StatusError) as e:
            await client.get(NAMESPACES, "default")
        assert (e.value.code, e.value.reason) == (401, "Unauthorized")
    finally:
        await client.close()


async def test_an_unknown_ca_is_refused(tls_url: str, tmp_path: Path) -> None:
    other = ensure_pki(tmp_path / "other")
    transport = HTTPTransport(tls_url, ca_file=str(other.ca_cert))
    try:
        with pytest.raises(aiohttp.ClientConnectorCertificateError) as e:
            await transport.request("GET", "/api")
        assert "certificate verify failed" in str(e.value)
    finally:
        await transport.close()


def test_status_error_without_a_status_body() -> None:
    e = status_error(503, b"upstream down")
    assert (e.code, e.reason, e.message) == (503, "ServiceUnavailable", "upstream down")
    body = b'{"kind":"Status","code":409,"reason":"Conflict","message":"m","details":{"name":"x"}}'
    e = status_error(409, body)
    assert (e.code, e.reason, e.message, e.details) == (409, "Conflict", "m", {"name": "x"})


async def test_lines_split_across_chunks() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for c in (b'{"a":', b'1}\n{"b"', b":2}\n\n", b'{"c":3}'):
            yield c

    assert [line async for line in iter_lines(chunks())] == [b'{"a":1}', b'{"b":2}', b'{"c":3}']


@given(st.lists(st.binary(min_size=1, max_size=30).map(lambda b: b.replace(b"\n", b"x")), max_size=20),
       st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=10))
@settings(max_examples=200, deadline=None)
def test_lines_survive_any_chunking(lines: list[bytes], sizes: list[int]) -> None:
    blob = b"".join(line + b"\n" for line in lines)

    async def chunks() -> AsyncIterator[bytes]:
        i = 0
        for n in itertools.cycle(sizes):
            if i >= len(blob):
                return
            yield blob[i:i + n]
            i += n

    async def split() -> list[bytes]:
        return [line async for line in iter_lines(chunks())]

    assert asyncio.run(split()) == [line for line in lines if line.strip()]
