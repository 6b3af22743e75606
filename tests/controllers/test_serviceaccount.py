from __future__ import annotations

from pyk8s.client.client import Client
from pyk8s.controllers.serviceaccount import ServiceAccountsController
from tests.controllers._housekeeping import running, until
from tests.support.apiserver import api_server, info

NS = info("", "namespaces")
SA = info("", "serviceaccounts")
assert NS is not None and SA is not None


async def _accounts(client: Client, ns: str) -> list[str]:
    return sorted(i["metadata"]["name"] for i in (await client.list(SA, ns))["items"])


async def test_default_account_created_in_every_namespace_and_recreated() -> None:
    async with api_server() as srv, running(srv, ServiceAccountsController) as (client, _):
        await client.create(NS, {"metadata": {"name": "team-a"}})
        await until(lambda: _is(client, "default", ["default"]), what="default/default")
        await until(lambda: _is(client, "team-a", ["default"]), what="team-a/default")
        await client.delete(SA, "default", "team-a")
        await until(lambda: _is(client, "team-a", ["default"]), what="default recreated")
        await client.create(SA, {"metadata": {"name": "builder"}}, "team-a")
        await until(lambda: _is(client, "team-a", ["builder", "default"]), what="other account kept")


async def test_terminating_namespace_gets_no_account() -> None:
    async with api_server() as srv, running(srv, ServiceAccountsController) as (client, _):
        await client.create(NS, {"metadata": {"name": "going"}})
        await until(lambda: _is(client, "going", ["default"]), what="going/default")
        await client.delete(NS, "going")  # stays Terminating: no namespace controller runs here
        await client.delete(SA, "default", "going")
        # The namespace is re-checked on each update; a Terminating one must stay without accounts.
        await client.patch(NS, "going", {"metadata": {"labels": {"poke": "1"}}})
        ns = await client.get(NS, "going")
        assert ns["status"]["phase"] == "Terminating"
        # One worker takes keys in order: once a namespace created after the poke has its account,
        # the poked one was handled.
        await client.create(NS, {"metadata": {"name": "later"}})
        await until(lambda: _is(client, "later", ["default"]), what="later/default")
        assert await _accounts(client, "going") == []


async def _is(client: Client, ns: str, want: list[str]) -> bool:
    return await _accounts(client, ns) == want
