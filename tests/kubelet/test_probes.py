"""Probes: httpGet and tcpSocket against real loopback servers, exec through the runtime, thresholds, and
readiness and startup probes driving the pod's conditions."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from pyk8s.kubelet import cri
from pyk8s.kubelet.probes import Prober, run_check
from tests.kubelet._harness import conditions, container, kubelet, pod, state
from tests.kubelet.fakeruntime import FakeRuntime
from tests.support.poll import eventually


async def http_server(status: int) -> TestServer:
    async def handler(request: web.Request) -> web.Response:
        assert request.headers["User-Agent"].startswith("kube-probe/")
        return web.Response(status=status, text=request.headers.get("X-Probe", "ok"))
    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def test_http_and_tcp_checks_against_loopback() -> None:
    rt = FakeRuntime()
    good, bad = await http_server(200), await http_server(500)
    try:
        c: dict[str, Any] = {"name": "c", "ports": [{"name": "web", "containerPort": good.port}]}
        res = await run_check({"httpGet": {"port": "web", "path": "/healthz",
                                           "httpHeaders": [{"name": "X-Probe", "value": "yes"}]}},
                              runtime=rt, container_id="", container=c, pod_ip="127.0.0.1", seconds=1)
        assert res.ok and res.output == "yes"
        res = await run_check({"httpGet": {"port": bad.port}}, runtime=rt, container_id="", container=c,
                              pod_ip="127.0.0.1", seconds=1)
        assert not res.ok and res.output == "HTTP probe failed with statuscode: 500"
        res = await run_check({"tcpSocket": {"port": good.port}}, runtime=rt, container_id="", container=c,
                              pod_ip="127.0.0.1", seconds=1)
        assert res.ok
        port = bad.port
    finally:
        await good.close()
        await bad.close()
    res = await run_check({"tcpSocket": {"port": port}}, runtime=rt, container_id="", container=c,
                          pod_ip="127.0.0.1", seconds=1)
    assert not res.ok and res.output.startswith(f"dial tcp 127.0.0.1:{port}")


async def test_prober_thresholds() -> None:
    rt = FakeRuntime()
    sid = await rt.run_pod_sandbox(cri.SandboxConfig(pod_uid="u", namespace="ns", name="p", hostname="p"))
    cid = await rt.create_container(sid, cri.ContainerConfig(name="c", image="i", args=["run"]))
    await rt.start_container(cid)
    answers = iter([1, 1, 0, 0, 1, 1])
    rt.exec_handlers["c"] = lambda _cmd: next(answers, 0)
    results: list[tuple[str, bool]] = []
    failures: list[str] = []
    spec = {"name": "c", "readinessProbe": {"exec": {"command": ["x"]}, "periodSeconds": 0.02,
                                            "failureThreshold": 2, "successThreshold": 2}}
    prober = Prober(runtime=rt, container=spec, container_id=cid, pod_ip="",
                    on_result=lambda k, ok: results.append((k, ok)),
                    on_failure=lambda k, _o: failures.append(k))
    prober.start()
    try:
        await eventually(lambda: len(results) >= 2, within=20, what="two readiness transitions")
    finally:
        await prober.stop()
    # Unready from the start (no report for two failures); two successes make it ready, two failures
    # unready again; each failure is reported.
    assert results[:2] == [("Readiness", True), ("Readiness", False)]
    assert failures == ["Readiness"] * 4



async def test_readiness_probe_drives_ready_condition() -> None:
    async with kubelet() as env:
        healthy = {"value": 1}
        env.runtime.exec_handlers["c"] = lambda _cmd: healthy["value"]
        probe = {"exec": {"command": ["check"]}, "periodSeconds": 1, "failureThreshold": 1}
        await env.create(pod("rp", container("c", readinessProbe=probe)))
        p = await env.wait("rp", lambda p: "running" in state(p, "c").get("state", {}))
        assert conditions(p)["Ready"] == "False" and not state(p, "c")["ready"] and state(p, "c")["started"]
        healthy["value"] = 0
        p = await env.wait("rp", lambda p: conditions(p).get("Ready") == "True")
        assert state(p, "c")["ready"]
        healthy["value"] = 1
        p = await env.wait("rp", lambda p: conditions(p).get("Ready") == "False")
        assert state(p, "c")["restartCount"] == 0  # readiness never restarts
        events = await env.events("rp")
        assert any(r == "Unhealthy" and m.startswith("Readiness probe failed") for _, r, m in events)


async def test_startup_probe_gates_started_and_failing_liveness_restarts() -> None:
    async with kubelet() as env:
        up = {"value": 1}
        calls: list[str] = []

        def handler(cmd: list[str]) -> int:
            calls.append(cmd[0])
            return up["value"] if cmd == ["startup"] else 1
        env.runtime.exec_handlers["c"] = handler
        startup = {"exec": {"command": ["startup"]}, "periodSeconds": 1, "failureThreshold": 1000}
        live = {"exec": {"command": ["live"]}, "periodSeconds": 1, "failureThreshold": 2}
        await env.create(pod("sp", container("c", startupProbe=startup, livenessProbe=live)))
        p = await env.wait("sp", lambda p: "running" in state(p, "c").get("state", {}))
        assert not state(p, "c")["started"]
        await eventually(lambda: calls.count("startup") >= 3, within=20, what="startup probes failing")
        # Liveness waits for the startup probe: never run, no restart while startup has not succeeded.
        assert "live" not in calls
        assert state(await env.get("sp"), "c")["restartCount"] == 0
        up["value"] = 0
        p = await env.wait("sp", lambda p: state(p, "c").get("restartCount", 0) >= 1)
        events = await env.events("sp")
        assert ("Normal", "Killing", "Container c failed liveness probe, will be restarted") in events
