"""pods/status writes are checked as ValidatePodStatusUpdate checks them, over HTTP."""

from __future__ import annotations

from typing import Any

from tests.apiserver.conftest import Server

NS = "/api/v1/namespaces/default"
MERGE = "application/merge-patch+json"


async def make(server: Server, name: str, restart: str = "Always") -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"restartPolicy": restart, "containers": [{"name": "c", "image": "busybox"}]}}
    status, body = await server.request("POST", f"{NS}/pods", pod)
    assert status == 201, body


async def patch_status(server: Server, name: str, status: dict[str, Any]) -> tuple[int, Any]:
    return await server.request("PATCH", f"{NS}/pods/{name}/status", {"status": status}, content_type=MERGE)


def causes(body: Any) -> list[tuple[str, str]]:
    return [(c["field"], c["message"]) for c in body["details"]["causes"]]


async def test_pod_ips_must_be_addresses_one_per_family(server: Server) -> None:
    await make(server, "ips")
    code, body = await patch_status(server, "ips", {"podIP": "10.1.0.5", "podIPs": [{"ip": "10.1.0.5"}],
                                                    "hostIPs": [{"ip": "192.168.1.2"}, {"ip": "fd00::2"}]})
    assert code == 200, body
    assert body["status"]["podIPs"] == [{"ip": "10.1.0.5"}]

    code, body = await patch_status(server, "ips", {"podIPs": [{"ip": "10.1.0.300"}]})
    assert code == 422, body
    detail = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
    assert causes(body) == [("status.podIPs[0].ip", f'Invalid value: "10.1.0.300": {detail}')]
    code, body = await patch_status(server, "ips", {"hostIPs": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]})
    assert code == 422 and [f for f, _ in causes(body)] == ["status.hostIPs"], body
    code, body = await patch_status(server, "ips", {"podIPs": [{"ip": "fd00::1"}, {"ip": "fd00::1"}]})
    assert code == 422 and ("status.podIPs[1].ip", 'Duplicate value: "fd00::1"') in causes(body), body

    _, pod = await server.request("GET", f"{NS}/pods/ips")
    assert pod["status"]["podIPs"] == [{"ip": "10.1.0.5"}]  # nothing of the refused writes was kept


async def test_a_container_that_will_not_restart_stays_terminated(server: Server) -> None:
    terminated = {"terminated": {"exitCode": 0, "reason": "Completed"}}
    running = {"running": {"startedAt": "2026-01-01T00:00:00Z"}}

    def statuses(state: dict[str, Any]) -> dict[str, Any]:
        return {"containerStatuses": [{"name": "c", "image": "busybox", "imageID": "", "ready": False,
                                       "restartCount": 0, "state": state}]}

    for restart, allowed in (("Never", False), ("OnFailure", False), ("Always", True)):
        name = f"restart-{restart.lower()}"
        await make(server, name, restart)
        code, body = await patch_status(server, name, statuses(terminated))
        assert code == 200, body
        code, body = await patch_status(server, name, statuses(running))
        if allowed:
            assert code == 200, body
        else:
            assert code == 422, body
            assert causes(body) == [("status.containerStatuses[0].state",
                                     "Forbidden: may not be transitioned to non-terminated state")]


async def test_nominated_node_name_must_be_a_node_name(server: Server) -> None:
    await make(server, "nominated")
    code, body = await patch_status(server, "nominated", {"nominatedNodeName": "Bad_Node"})
    assert code == 422 and [f for f, _ in causes(body)] == ["status.nominatedNodeName"], body
    code, body = await patch_status(server, "nominated", {"nominatedNodeName": "node-1"})
    assert code == 200, body
