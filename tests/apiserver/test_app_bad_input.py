"""Hostile and broken requests get a Status with the right code and leave nothing half-written."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from pyk8s.apiserver.app import APIServerConfig, create_app
from pyk8s.apiserver.interfaces import Attributes, Decision, UserInfo
from pyk8s.store.memory import MemoryStore
from tests.apiserver.conftest import Server, start_server
from tests.apiserver.test_codec import BOMB

CM_PATH = "/api/v1/namespaces/default/configmaps"


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


async def assert_no_configmaps(server: Server) -> None:
    status, body = await server.request("GET", CM_PATH)
    assert status == 200
    assert body["items"] == []


async def test_body_over_3_mib_is_413(server: Server) -> None:
    big = (
        b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"a":"'
        + b"x" * (4 << 20)
        + b'"}}'
    )
    status, body = await server.request("POST", CM_PATH, data=big)
    assert status == 413
    assert body["reason"] == "RequestEntityTooLarge"
    assert body["message"] == "Request entity too large: limit is 3145728"
    await assert_no_configmaps(server)


async def test_chunked_body_over_the_limit_is_413(server: Server) -> None:
    async def chunks() -> Any:
        yield b'{"data":"'
        for _ in range(5):
            yield b"y" * (1 << 20)
        yield b'"}'

    async with server.session.post(
        server.url + CM_PATH, data=chunks(), headers={"Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 413
    await assert_no_configmaps(server)


async def test_malformed_json_is_400(server: Server) -> None:
    status, body = await server.request("POST", CM_PATH, data=b'{"apiVersion": "v1", "kind": ')
    assert status == 400
    assert body["kind"] == "Status" and body["reason"] == "BadRequest"
    await assert_no_configmaps(server)


async def test_yaml_alias_bomb_is_400(server: Server) -> None:
    status, body = await server.request("POST", CM_PATH, data=BOMB, content_type="application/yaml")
    assert status == 400
    assert "alias" in body["message"]
    await assert_no_configmaps(server)


async def test_yaml_body_creates(server: Server) -> None:
    doc = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  k: v\n"
    status, body = await server.request("POST", CM_PATH, data=doc, content_type="application/yaml")
    assert status == 201
    assert body["data"] == {"k": "v"}


async def test_malformed_protobuf_is_400_and_unknown_media_type_is_415(server: Server) -> None:
    status, body = await server.request(
        "POST", CM_PATH, data=b"k8s\x00\x0a\xff", content_type="application/vnd.kubernetes.protobuf"
    )
    assert status == 400 and body["kind"] == "Status"
    status, body = await server.request("POST", CM_PATH, data=b"\xa0", content_type="application/cbor")
    assert status == 415
    assert body["reason"] == "UnsupportedMediaType"
    await assert_no_configmaps(server)


async def test_strict_field_validation_is_400_and_warn_is_a_header(server: Server) -> None:
    obj = cm("strict") | {"foo": 1}
    status, body = await server.request("POST", CM_PATH, obj, fieldValidation="Strict")
    assert status == 400
    assert body["message"] == 'strict decoding error: unknown field "foo"'
    await assert_no_configmaps(server)
    async with server.session.post(
        server.url + CM_PATH, json=obj, params={"fieldValidation": "Warn"}
    ) as resp:
        assert resp.status == 201
        assert resp.headers["Warning"] == '299 - "unknown field \\"foo\\""'


async def test_unknown_resource_and_path_are_404_status(server: Server) -> None:
    status, body = await server.request("GET", "/api/v1/namespaces/default/widgets")
    assert status == 404 and body["kind"] == "Status"
    status, body = await server.request("GET", "/nothing/here")
    assert status == 404 and body["kind"] == "Status"


async def test_bad_selectors_and_params_are_400(server: Server) -> None:
    status, body = await server.request("GET", CM_PATH, fieldSelector="spec.nodeName=x")
    assert status == 400
    assert body["message"] == "field label not supported: spec.nodeName"
    status, _ = await server.request("GET", CM_PATH, labelSelector="a in (b")
    assert status == 400
    status, _ = await server.request("GET", CM_PATH, limit="many")
    assert status == 400
    status, _ = await server.request("GET", CM_PATH, resourceVersion="abc")
    assert status == 400
    status, _ = await server.request("GET", CM_PATH, **{"continue": "garbage"})
    assert status == 400
    status, _ = await server.request("POST", CM_PATH, cm("x"), dryRun="Some")
    assert status == 400


class TokenAuthenticator:
    async def authenticate(self, request: Any) -> UserInfo | None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return UserInfo(token, groups=("system:authenticated",)) if token else None


class OnlyAliceMayListPods:
    def __init__(self) -> None:
        self.seen: list[Attributes] = []

    async def authorize(self, attributes: Attributes) -> Decision:
        self.seen.append(attributes)
        return Decision(allowed=attributes.user.name == "alice")


@pytest.fixture
async def secured() -> Any:
    store = MemoryStore()
    events: list[dict[str, Any]] = []
    authz = OnlyAliceMayListPods()
    test_server, _ = await start_server(
        APIServerConfig(
            store=store, authenticator=TokenAuthenticator(), authorizer=authz, audit=events.append
        )
    )
    async with aiohttp.ClientSession() as session:
        yield str(test_server.make_url("")).rstrip("/"), session, events, authz
    await test_server.close()
    await store.close()


async def test_no_credentials_is_401(secured: Any) -> None:
    url, session, _, _ = secured
    async with session.get(url + "/api/v1/namespaces/default/pods") as resp:
        assert resp.status == 401
        body = await resp.json()
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    async with session.get(url + "/readyz") as resp:  # health answers without credentials
        assert resp.status == 200 and await resp.text() == "ok"


async def test_denied_is_403_with_kubernetes_message_and_audited(secured: Any) -> None:
    url, session, events, authz = secured
    async with session.get(
        url + "/api/v1/namespaces/default/pods", headers={"Authorization": "Bearer bob"}
    ) as r:
        assert r.status == 403
        body = await r.json()
    assert body["reason"] == "Forbidden"
    assert body["message"] == (
        'pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "default"'
    )
    assert body["details"] == {"kind": "pods"}
    async with session.get(
        url + "/apis/apps/v1/namespaces/x/deployments/web/scale", headers={"Authorization": "Bearer bob"}
    ) as r:
        assert (await r.json())["message"] == (
            'deployments.apps "web" is forbidden: User "bob" cannot get resource "deployments/scale" '
            "in API group "
            '"apps" in the namespace "x"'
        )
    async with session.get(url + "/api/v1/nodes", headers={"Authorization": "Bearer bob"}) as r:
        assert (await r.json())["message"].endswith(
            'cannot list resource "nodes" in API group "" at the cluster scope'
        )
    async with session.get(
        url + "/api/v1/namespaces/default/pods", headers={"Authorization": "Bearer alice"}
    ) as r:
        assert r.status == 200
    assert authz.seen[-1].verb == "list" and authz.seen[-1].namespace == "default"
    denied = [e for e in events if e["responseStatus"]["code"] == 403]
    assert denied[0]["user"]["username"] == "bob"
    assert denied[0]["objectRef"] == {"resource": "pods", "namespace": "default", "apiVersion": "v1"}
    assert events[-1]["verb"] == "list" and events[-1]["responseStatus"]["code"] == 200


async def test_unexpected_error_is_500_status_and_server_survives(server: Server) -> None:
    class Broken:
        name = "broken"

        async def admit(self, request: Any) -> None:
            raise RuntimeError("boom")

        async def validate(self, request: Any) -> None:
            return None

    server.api.registry.plugins.append(Broken())
    status, body = await server.request("POST", CM_PATH, cm("a"))
    assert status == 500
    assert body["reason"] == "InternalError"
    server.api.registry.plugins.clear()
    status, _ = await server.request("POST", CM_PATH, cm("a"))
    assert status == 201


async def test_metrics_count_requests(server: Server) -> None:
    for _ in range(3):
        await server.request("GET", CM_PATH)
    await server.request("GET", CM_PATH, watch="true", timeoutSeconds="1")
    async with server.session.get(server.url + "/metrics") as resp:
        text = await resp.text()
    labels = 'group="",resource="configmaps",subresource=""'
    assert f'apiserver_request_total{{code="200",{labels},verb="LIST"}} 3.0' in text
    assert f'apiserver_request_duration_seconds_count{{{labels},verb="LIST"}} 3.0' in text
    # A watch is counted, but its duration is no request latency (as Kubernetes).
    assert f'apiserver_request_total{{code="200",{labels},verb="WATCH"}} 1.0' in text
    assert f'apiserver_request_duration_seconds_count{{{labels},verb="WATCH"}}' not in text


def test_create_app_builds_without_a_loop() -> None:
    app = create_app(APIServerConfig(store=MemoryStore()))
    assert app.router is not None


async def test_virtual_creates_answer_without_storing() -> None:
    seen: list[tuple[str, str, str]] = []

    async def token_review(user: UserInfo, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        seen.append((user.name, namespace, name))
        return body | {"status": {"authenticated": True}}

    async def sa_token(user: UserInfo, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        seen.append((user.name, namespace, name))
        return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "status": {"token": "t"}}

    store = MemoryStore()
    virtual = {
        ("authentication.k8s.io", "tokenreviews", ""): token_review,
        ("", "serviceaccounts", "token"): sa_token,
    }
    test_server, _ = await start_server(APIServerConfig(store=store, virtual_creates=virtual))
    url = str(test_server.make_url("")).rstrip("/")
    try:
        async with aiohttp.ClientSession() as session:
            review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "x"}}
            async with session.post(url + "/apis/authentication.k8s.io/v1/tokenreviews", json=review) as r:
                assert r.status == 201
                assert (await r.json())["status"] == {"authenticated": True}
            async with session.post(
                url + "/api/v1/namespaces/default/serviceaccounts/builder/token", json={}
            ) as r:
                assert r.status == 201
                assert (await r.json())["status"]["token"] == "t"
            async with session.get(url + "/apis/authentication.k8s.io/v1/tokenreviews") as r:
                assert r.status == 405
        assert seen == [("system:admin", "", ""), ("system:admin", "default", "builder")]
        assert not [kv for kv in (await store.list("/registry/")).items if "tokenreview" in kv.key]
    finally:
        await test_server.close()
        await store.close()


async def test_health_endpoints(server: Server) -> None:
    for path in ("/healthz", "/livez", "/readyz", "/readyz/etcd", "/readyz/informer-sync"):
        async with server.session.get(server.url + path) as resp:
            assert (resp.status, await resp.text()) == (200, "ok"), path
    async with server.session.get(server.url + "/readyz", params={"verbose": ""}) as resp:
        assert await resp.text() == "[+]ping ok\n[+]etcd ok\n[+]informer-sync ok\nreadyz check passed\n"
    async with server.session.get(server.url + "/livez/nothing") as resp:
        assert resp.status == 404
    await server.store.close()
    async with server.session.get(server.url + "/readyz", params={"verbose": ""}) as resp:
        assert resp.status == 500
        assert "[-]etcd failed: reason withheld" in await resp.text()
