"""The pod state machine over the fake runtime, against a real in-process API server."""

from __future__ import annotations

from typing import Any

from tests.kubelet._harness import NODE, PODS, conditions, container, kubelet, pod, state
from tests.kubelet.fakeruntime import FakeRuntime
from tests.support.poll import eventually, until


def waiting(p: dict[str, Any], name: str = "c") -> str:
    return str(state(p, name).get("state", {}).get("waiting", {}).get("reason", ""))


def running(name: str = "c") -> Any:
    return lambda p: "running" in state(p, name).get("state", {})


async def test_pod_runs_with_ip_status_conditions_and_events() -> None:
    async with kubelet() as env:
        await env.create(pod("p", container("c")))
        p = await env.wait("p", lambda p: p["status"].get("phase") == "Running"
                           and conditions(p).get("Ready") == "True")
        st = p["status"]
        assert st["podIP"].startswith("10.88.0.") and st["podIPs"] == [{"ip": st["podIP"]}]
        assert st["hostIP"] == "192.0.2.10" and st["qosClass"] == "BestEffort" and st["startTime"]
        cs = state(p, "c")
        assert cs["ready"] and cs["started"] and cs["restartCount"] == 0
        assert cs["containerID"].startswith("runc://")
        assert cs["imageID"].startswith("docker.io/library/busybox@sha256:")
        assert set(conditions(p)) >= {"PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready"}
        reasons = [r for _, r, _ in await env.events("p")]
        assert reasons[:3] == ["Pulled", "Created", "Started"]
        sandbox = next(iter(env.runtime.sandbox_configs.values()))
        assert sandbox.cgroup_parent == f"/kubepods/besteffort/pod{p['metadata']['uid']}"


async def test_exit_codes_and_phases_by_restart_policy() -> None:
    async with kubelet() as env:
        await env.create(pod("ok", container("c", "exit", "0"), restart="Never"))
        await env.create(pod("bad", container("c", "exit", "3"), restart="Never"))
        await env.create(pod("oom", container("c", "oom"), restart="Never"))
        ok = await env.wait("ok", lambda p: p["status"].get("phase") == "Succeeded")
        assert state(ok, "c")["state"]["terminated"]["reason"] == "Completed"
        assert conditions(ok)["Ready"] == "False"
        bad = await env.wait("bad", lambda p: p["status"].get("phase") == "Failed")
        term = state(bad, "c")["state"]["terminated"]
        assert (term["exitCode"], term["reason"]) == (3, "Error")
        oom = await env.wait("oom", lambda p: p["status"].get("phase") == "Failed")
        assert state(oom, "c")["state"]["terminated"]["reason"] == "OOMKilled"


async def test_crashloop_backoff_restarts_with_growing_delay() -> None:
    async with kubelet() as env:
        await env.create(pod("crash", container("c", "exit", "1")))
        p = await env.wait("crash", lambda p: state(p, "c").get("restartCount", 0) >= 2
                           and state(p, "c")["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff",
                           within=20)
        cs = state(p, "c")
        assert cs["lastState"]["terminated"]["exitCode"] == 1
        assert "back-off" in cs["state"]["waiting"]["message"]
        assert p["status"]["phase"] == "Running"
        assert ("Warning", "BackOff") in [(t, r) for t, r, _ in await env.events("crash")]


async def test_on_failure_restarts_until_success() -> None:
    async with kubelet() as env:
        await env.create(pod("once", container("c", "exit", "0"), restart="OnFailure"))
        p = await env.wait("once", lambda p: p["status"].get("phase") == "Succeeded")
        assert state(p, "c")["restartCount"] == 0


async def test_init_containers_run_in_order_before_containers() -> None:
    async with kubelet() as env:
        spec = pod("init", container("main"), initContainers=[container("i1", "exit", "0", "0.05"),
                                                              container("i2", "exit", "0")])
        await env.create(spec)
        p = await env.wait("init", running("main"))
        assert env.runtime.started == ["i1", "i2", "main"]
        assert state(p, "i1", init=True)["state"]["terminated"]["reason"] == "Completed"
        assert conditions(p)["Initialized"] == "True"


async def test_failed_init_container_with_never_fails_pod() -> None:
    async with kubelet() as env:
        await env.create(pod("initbad", container("main"), restart="Never",
                             initContainers=[container("i1", "exit", "2")]))
        p = await env.wait("initbad", lambda p: p["status"].get("phase") == "Failed")
        assert "main" not in env.runtime.started
        assert state(p, "main")["state"]["waiting"]["reason"] == "PodInitializing"


async def test_sidecar_init_container_keeps_running() -> None:
    async with kubelet() as env:
        side = container("side", restartPolicy="Always")
        await env.create(pod("sc", container("main", "exit", "0", "0.1"), restart="Never",
                             initContainers=[side]))
        p = await env.wait("sc", lambda p: p["status"].get("phase") == "Succeeded", within=20)
        assert env.runtime.started[:2] == ["side", "main"]
        # The sidecar is stopped once the pod finished.
        assert all(c.status.state == "exited" for c in env.runtime.containers.values())
        assert p["status"]["phase"] == "Succeeded"


async def test_missing_image_err_image_pull_then_back_off() -> None:
    async with kubelet() as env:
        c = container("c", image="registry.invalid/nope:1")
        c["image"] = "registry.invalid/nope:1"
        await env.create(pod("img", c))
        p = await env.wait("img", lambda p: state(p, "c").get("state", {}).get("waiting", {}).get("reason")
                           == "ImagePullBackOff")
        assert p["status"]["phase"] == "Pending"
        events = await env.events("img")
        assert ("Normal", "Pulling", 'Pulling image "registry.invalid/nope:1"') in events
        assert ("Warning", "Failed", "Error: ErrImagePull") in events
        assert ("Normal", "BackOff", 'Back-off pulling image "registry.invalid/nope:1"') in events


async def test_image_pull_secrets_reach_the_image_service() -> None:
    import base64
    import json
    async with kubelet() as env:
        from pyk8s.api import catalog
        secrets = catalog.lookup("", "v1", "secrets")
        assert secrets
        cfg = {"auths": {"reg.example:5000": {"username": "u", "password": "p"}}}
        await env.client.create(secrets, {"metadata": {"name": "pull", "namespace": "default"},
                                          "type": "kubernetes.io/dockerconfigjson",
                                          "data": {".dockerconfigjson": base64.b64encode(
                                              json.dumps(cfg).encode()).decode()}})
        env.images.remote["reg.example:5000/app:1"] = env.images.present["busybox"]
        c = container("c")
        c["image"] = "reg.example:5000/app:1"
        await env.create(pod("auth", c, imagePullSecrets=[{"name": "pull"}]))
        await env.wait("auth", running())
        ref, auth = env.images.pulls[-1]
        assert ref == "reg.example:5000/app:1"
        assert auth and (auth[0].server, auth[0].username, auth[0].password) == ("reg.example:5000", "u", "p")


async def test_run_as_non_root_refuses_root_image() -> None:
    async with kubelet() as env:
        await env.create(pod("nonroot", container("c", securityContext={"runAsNonRoot": True})))
        p = await env.wait("nonroot", lambda p: waiting(p) == "CreateContainerConfigError")
        message = state(p, "c")["state"]["waiting"]["message"]
        assert "container has runAsNonRoot and image will run as root" in message


async def test_missing_runtime_class_fails_with_event() -> None:
    async with kubelet() as env:
        await env.create(pod("rc", container("c"), runtimeClassName="nosuch"))

        async def event() -> bool:
            return ("Warning", "FailedCreatePodSandBox",
                    'Failed to create pod sandbox: RuntimeClass "nosuch" not found') in await env.events("rc")
        await until(event, what="FailedCreatePodSandBox event")
        assert not env.runtime.sandboxes


async def test_deletion_runs_prestop_stops_gracefully_and_confirms() -> None:
    async with kubelet() as env:
        hooks: list[list[str]] = []
        env.runtime.exec_handlers["c"] = lambda cmd: hooks.append(cmd) or 0
        c = container("c", lifecycle={"preStop": {"exec": {"command": ["echo", "bye"]}}})
        await env.create(pod("del", c, terminationGracePeriodSeconds=5))
        await env.wait("del", running())
        await env.client.delete(PODS, "del", "default")

        async def gone() -> bool:
            try:
                await env.get("del")
            except Exception:
                return True
            return False
        await until(gone, what="pod deleted by the kubelet")
        assert hooks == [["echo", "bye"]]
        assert env.runtime.stops and env.runtime.stops[0][0] == "c" and 0 < env.runtime.stops[0][1] <= 5
        assert not env.runtime.sandboxes and env.runtime.removed_sandboxes


async def test_restart_adopts_running_containers_and_removes_orphans() -> None:
    runtime = FakeRuntime()
    from tests.support.apiserver import api_server
    async with api_server() as srv:
        async with kubelet(runtime, srv) as env:
            await env.create(pod("keep", container("c")))
            await env.create(pod("gone", container("c")))
            await env.wait("keep", running())
            await env.wait("gone", running())
        keep_id = next(cid for cid, c in runtime.containers.items()
                       if runtime.sandboxes[c.status.sandbox_id].name == "keep")
        # While the kubelet is away, "gone" is removed from the API for good.
        from pyk8s.client.client import Client
        from pyk8s.client.transport import HTTPTransport
        client = Client(HTTPTransport(srv.url))
        await client.delete(PODS, "gone", "default", grace_period_seconds=0)
        await client.close()
        started_before = list(runtime.started)
        async with kubelet(runtime, srv) as env:
            await eventually(lambda: len(runtime.sandboxes) == 1, within=20, what="orphan removed")
            p = await env.wait("keep", running())
            assert runtime.containers[keep_id].status.state == "running"
            assert runtime.started == started_before  # nothing started again
            assert state(p, "c")["containerID"] == f"runc://{keep_id}"



async def test_active_deadline_fails_pod() -> None:
    async with kubelet() as env:
        await env.create(pod("dl", container("c"), activeDeadlineSeconds=1))
        p = await env.wait("dl", lambda p: p["status"].get("phase") == "Failed", within=20)
        assert p["status"]["reason"] == "DeadlineExceeded"
        assert NODE


async def test_container_config_env_argv_and_service_links() -> None:
    from pyk8s.api import catalog
    services = catalog.lookup("", "v1", "services")
    assert services
    async with kubelet() as env:
        spec = {"ports": [{"port": 80}], "clusterIP": "10.43.0.10"}
        svc = await env.client.create(services, {"metadata": {"name": "web", "namespace": "default"},
                                                 "spec": spec})
        ip = svc["spec"]["clusterIP"]
        await eventually(lambda: env.manager.services.lister.get_by_key("default/web") is not None,
                         within=20, what="service cached")
        c = container("c", "echo", "$(GREETING) from $(POD)", env=[
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "GREETING", "value": "hello"}])
        await env.create(pod("cfg", c))
        await env.wait("cfg", running())
        config = next(fc.config for fc in env.runtime.containers.values() if fc.config.name == "c")
        assert config.args == ["echo", "hello from cfg"]
        vars_ = dict(config.env)
        assert vars_["PATH"] == "/usr/bin:/bin"  # from the image
        assert vars_["WEB_SERVICE_HOST"] == ip and vars_["WEB_SERVICE_PORT"] == "80"
        assert config.log_path == "c/0.log" and config.labels["io.kubernetes.container.name"] == "c"


async def test_dns_policies_shape_the_sandbox_resolv_conf() -> None:
    from pyk8s.kubelet import cri
    async with kubelet(cluster_dns="10.43.0.10") as env:
        await env.create(pod("dns-cf", container("c")))
        await env.create(pod("dns-host", container("c"), hostNetwork=True))
        await env.create(pod("dns-none", container("c"), dnsPolicy="None", dnsConfig={
            "nameservers": ["192.0.2.53"], "options": [{"name": "ndots", "value": "2"}]}))
        await env.create(pod("dns-extra", container("c"), dnsConfig={
            "searches": ["example.org"], "options": [{"name": "ndots", "value": "1"}, {"name": "rotate"}]}))
        for name in ("dns-cf", "dns-host", "dns-none", "dns-extra"):
            await env.wait(name, running())
        by_name = {c.name: c.dns for c in env.runtime.sandbox_configs.values()}
        search = ("default.svc.cluster.local", "svc.cluster.local", "cluster.local")
        assert by_name["dns-cf"] == cri.DNSConfig(("10.43.0.10",), search, ("ndots:5",))
        assert by_name["dns-host"] is None  # ClusterFirst on the host network: the host's resolv.conf
        assert by_name["dns-none"] == cri.DNSConfig(("192.0.2.53",), (), ("ndots:2",))
        assert by_name["dns-extra"] == cri.DNSConfig(("10.43.0.10",), (*search, "example.org"),
                                                     ("ndots:1", "rotate"))


async def test_always_pull_failing_offline_falls_back_to_the_local_image() -> None:
    async with kubelet() as env:
        c = container("c")
        c["imagePullPolicy"] = "Always"
        env.images.pull_image = _failing_pull  # type: ignore[method-assign]
        await env.create(pod("offline", c))
        await env.wait("offline", running())
        events = await env.events("offline")
        assert any(t == "Warning" and m.endswith("using the image present on the node") for t, _, m in events)


async def _failing_pull(ref: str, auth: Any = None) -> Any:
    from pyk8s.kubelet import cri
    raise cri.ImagePullError(f'failed to resolve "{ref}": no network')


async def test_changed_image_restarts_the_container() -> None:
    async with kubelet() as env:
        await env.create(pod("img2", container("c")))
        p = await env.wait("img2", running())
        first = state(p, "c")["containerID"]
        env.images.present["busybox:v2"] = env.images.present["busybox"]
        await env.client.patch(PODS, "img2", {"spec": {"containers": [{"name": "c", "image": "busybox:v2"}]}},
                               "strategic", "default")
        p = await env.wait("img2", lambda p: running()(p) and state(p, "c")["containerID"] != first)
        assert state(p, "c")["restartCount"] == 1 and state(p, "c")["image"] == "busybox:v2"
        killing = ("Normal", "Killing", "Container c definition changed, will be restarted")
        assert killing in await env.events("img2")


async def test_runtime_class_handler_reaches_the_sandbox() -> None:
    from pyk8s.api import catalog
    rcs = catalog.lookup("node.k8s.io", "v1", "runtimeclasses")
    assert rcs
    async with kubelet(FakeRuntime(handler_names=["runc", "runsc"])) as env:
        await env.client.create(rcs, {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                                      "metadata": {"name": "gvisor"}, "handler": "runsc"})
        await env.client.create(rcs, {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                                      "metadata": {"name": "kata"}, "handler": "kata"})
        await eventually(lambda: env.manager.runtime_class("kata") is not None, within=20,
                         what="classes cached")
        await env.create(pod("gv", container("c"), runtimeClassName="gvisor"))
        await env.create(pod("kata", container("c"), runtimeClassName="kata"))
        await env.wait("gv", running())
        assert [c.runtime_handler for c in env.runtime.sandbox_configs.values()] == ["runsc"]

        async def event() -> bool:
            message = 'Failed to create pod sandbox: no runtime for "kata" is configured'
            return ("Warning", "FailedCreatePodSandBox", message) in await env.events("kata")
        await until(event, what="no runtime for kata")


async def test_post_start_hook_runs_and_its_failure_kills_the_container() -> None:
    async with kubelet() as env:
        ran: list[list[str]] = []

        def hook(cmd: list[str]) -> int:
            ran.append(cmd)
            return 0 if cmd == ["good"] else 1
        env.runtime.exec_handlers["c"] = hook
        good = container("c", lifecycle={"postStart": {"exec": {"command": ["good"]}}})
        await env.create(pod("hook", good))
        await env.wait("hook", running())
        assert ran == [["good"]]
        bad = container("c", lifecycle={"postStart": {"exec": {"command": ["bad"]}}})
        await env.create(pod("badhook", bad, restart="Never"))
        p = await env.wait("badhook", lambda p: p["status"].get("phase") == "Failed")
        assert state(p, "c")["state"]["terminated"]["exitCode"] != 0
        events = await env.events("badhook")
        assert any(r == "FailedPostStartHook" for _, r, _ in events)


async def test_volume_setup_failure_is_a_failed_mount_event() -> None:
    class Broken:
        async def setup(self, pod: dict[str, Any]) -> Any:
            err = RuntimeError('MountVolume.SetUp failed for volume "cfg" : configmap "cfg" not found')
            err.reason = "FailedMount"  # type: ignore[attr-defined]
            raise err

        async def teardown(self, pod_uid: str) -> None:
            pass

    async with kubelet() as env:
        env.manager.volumes = Broken()
        await env.create(pod("mnt", container("c")))

        async def event() -> bool:
            return any(r == "FailedMount" and "configmap \"cfg\" not found" in m
                       for _, r, m in await env.events("mnt"))
        await until(event, what="FailedMount")
        p = await env.get("mnt")
        assert p["status"]["phase"] == "Pending" and "c" not in env.runtime.started


async def test_readiness_gates_hold_ready_until_their_conditions_are_true() -> None:
    gate = "example.com/lb-ready"
    async with kubelet() as env:
        await env.create(pod("gated", container("c"), readinessGates=[{"conditionType": gate}]))
        p = await env.wait("gated", lambda p: conditions(p).get("ContainersReady") == "True")
        ready = next(c for c in p["status"]["conditions"] if c["type"] == "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "ReadinessGatesNotReady")
        assert ready["message"] == f'corresponding condition of pod readiness gate "{gate}" does not exist.'

        async def set_gate(status: str) -> None:  # as a controller does, through pods/status
            body = {"status": {"conditions": [{"type": gate, "status": status}]}}
            await env.client.patch(PODS, "gated", body, "strategic", "default", subresource="status")

        await set_gate("False")
        p = await env.wait("gated", lambda p: "but False" in next(
            c for c in p["status"]["conditions"] if c["type"] == "Ready").get("message", ""))
        ready = next(c for c in p["status"]["conditions"] if c["type"] == "Ready")
        assert ready["message"] == f'the status of pod readiness gate "{gate}" is not "True", but False'
        await set_gate("True")
        p = await env.wait("gated", lambda p: conditions(p).get("Ready") == "True")
        ready = next(c for c in p["status"]["conditions"] if c["type"] == "Ready")
        assert "reason" not in ready and "message" not in ready
        assert conditions(p)[gate] == "True"


async def test_kubelet_status_writes_keep_conditions_set_by_others() -> None:
    async with kubelet() as env:
        # A crash-looping container: the kubelet writes the status again and again.
        await env.create(pod("busy", container("c", "exit", "1")))
        await env.wait("busy", lambda p: "terminated" in state(p, "c").get("lastState", {})
                       or "terminated" in state(p, "c").get("state", {}))
        await env.client.patch(PODS, "busy", {"status": {"conditions": [
            {"type": "example.com/other", "status": "True", "reason": "Set"}]}}, "strategic", "default",
            subresource="status")
        before = state(await env.get("busy"), "c")["restartCount"]
        p = await env.wait("busy", lambda p: state(p, "c")["restartCount"] >= before + 2)
        other = next(c for c in p["status"]["conditions"] if c["type"] == "example.com/other")
        assert (other["status"], other["reason"]) == ("True", "Set")


async def test_sidecars_stop_after_main_containers_in_reverse_order() -> None:
    async with kubelet() as env:
        sidecars = [container("s1", restartPolicy="Always"), container("s2", restartPolicy="Always")]
        await env.create(pod("order", container("main"), initContainers=sidecars,
                             terminationGracePeriodSeconds=5))
        await env.wait("order", lambda p: conditions(p).get("Ready") == "True")
        await env.client.delete(PODS, "order", "default")
        await eventually(lambda: not env.runtime.sandboxes, within=20, what="pod torn down")
        assert [name for name, _ in env.runtime.stops] == ["main", "s2", "s1"]
        assert all(grace > 0 for _, grace in env.runtime.stops)  # each still stopped gracefully


async def test_job_style_pod_completes_and_its_sidecar_is_stopped() -> None:
    async with kubelet() as env:
        side = container("side", restartPolicy="Always")
        await env.create(pod("job", container("main", "exit", "0", "0.1"), restart="OnFailure",
                             initContainers=[side]))
        p = await env.wait("job", lambda p: p["status"].get("phase") == "Succeeded"
                           and "terminated" in state(p, "side", init=True).get("state", {}))
        assert state(p, "main")["state"]["terminated"]["reason"] == "Completed"
        assert [name for name, _ in env.runtime.stops] == ["side"]
        assert conditions(p)["Ready"] == "False" and conditions(p)["PodReadyToStartContainers"] == "False"


async def test_dead_sandbox_is_recreated_and_containers_start_again() -> None:
    async with kubelet() as env:
        await env.create(pod("sbx", container("c"), initContainers=[container("i", "exit", "0")]))
        p = await env.wait("sbx", lambda p: conditions(p).get("Ready") == "True")
        old_ip, old_cid = p["status"]["podIP"], state(p, "c")["containerID"]
        (old_sid,) = env.runtime.sandboxes
        env.runtime.kill_sandbox(old_sid)
        p = await env.wait("sbx", lambda p: p["status"].get("podIP") != old_ip
                           and conditions(p).get("Ready") == "True")
        assert p["status"]["podIPs"] == [{"ip": p["status"]["podIP"]}]
        cs = state(p, "c")
        assert cs["containerID"] != old_cid and cs["restartCount"] == 1
        assert cs["lastState"]["terminated"]["containerID"] == old_cid
        assert env.runtime.started == ["i", "c", "i", "c"]  # initialisation ran again, in the new sandbox
        assert ("Normal", "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.") \
            in await env.events("sbx")
        assert len(env.runtime.sandboxes) == 2 and env.runtime.sandboxes[old_sid].state == "notready"
        await env.client.delete(PODS, "sbx", "default")
        await eventually(lambda: not env.runtime.sandboxes, within=20, what="both sandboxes removed")


async def test_dead_sandbox_of_a_never_pod_that_ran_is_not_recreated() -> None:
    async with kubelet() as env:
        await env.create(pod("once", container("c"), restart="Never"))
        await env.wait("once", running())
        (sid,) = env.runtime.sandboxes
        env.runtime.kill_sandbox(sid)
        p = await env.wait("once", lambda p: p["status"].get("phase") == "Failed")
        assert list(env.runtime.sandboxes) == [sid] and env.runtime.started == ["c"]
        assert state(p, "c")["state"]["terminated"]["exitCode"] == 137
        assert conditions(p)["PodReadyToStartContainers"] == "False"
        assert "SandboxChanged" not in [r for _, r, _ in await env.events("once")]


async def test_sandbox_found_dead_at_start_is_recreated() -> None:
    runtime = FakeRuntime()
    from tests.support.apiserver import api_server
    async with api_server() as srv:
        async with kubelet(runtime, srv) as env:
            await env.create(pod("boot", container("c")))
            await env.wait("boot", running())
        # The node rebooted while the kubelet was away: the sandbox's namespaces and processes are gone.
        (sid,) = runtime.sandboxes
        runtime.kill_sandbox(sid)
        async with kubelet(runtime, srv) as env:
            p = await env.wait("boot", lambda p: state(p, "c").get("restartCount") == 1
                               and "running" in state(p, "c")["state"])
            assert len(runtime.sandboxes) == 2
            assert ("Normal", "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.") \
                in await env.events("boot")
            assert p["status"]["phase"] == "Running"


async def test_sandbox_gets_the_pod_cgroup_limits_summed_as_kubernetes() -> None:
    def limited(name: str, cpu: str, memory: str, **extra: Any) -> dict[str, Any]:
        return container(name, resources={"limits": {"cpu": cpu, "memory": memory}}, **extra)

    async with kubelet() as env:
        # Containers 0.5 + 0.25 cpu and 64 + 32 Mi, a sidecar 0.25 cpu and 16 Mi beside them; a 2-cpu init
        # container runs alone before them (with the sidecar started before it: 2.25 cpu).
        await env.create(pod("sum", limited("a", "500m", "64Mi"), limited("b", "250m", "32Mi"),
                             initContainers=[limited("side", "250m", "16Mi", restartPolicy="Always"),
                                             limited("init", "2", "8Mi", command=["exit", "0"])]))
        await env.create(pod("partial", limited("a", "500m", "64Mi"), container("b")))
        await env.wait("sum", running("a"))
        await env.wait("partial", running("a"))
        by_name = {c.name: c.resources for c in env.runtime.sandbox_configs.values()}
        full = by_name["sum"]
        assert full is not None
        assert (full.cpu_shares, full.cpu_quota, full.memory_limit) == (2304, 225_000, 112 * 1024 * 1024)
        part = by_name["partial"]
        assert part is not None  # b has no limits: shares from a's request alone, no quota, no memory limit
        assert (part.cpu_shares, part.cpu_quota, part.memory_limit) == (512, 0, 0)


async def test_an_unready_sidecar_keeps_the_pod_unready() -> None:
    async with kubelet() as env:
        probe = {"exec": {"command": ["fail"]}, "periodSeconds": 1}
        side = container("side", restartPolicy="Always", readinessProbe=probe)
        await env.create(pod("sideready", container("main"), initContainers=[side]))
        p = await env.wait("sideready", running("main"))
        p = await env.wait("sideready", lambda p: state(p, "main")["ready"]
                           and state(p, "side", init=True)["started"])
        ready = next(c for c in p["status"]["conditions"] if c["type"] == "ContainersReady")
        assert (ready["status"], ready["message"]) == ("False", "containers with unready status: [side]")
        assert conditions(p)["Ready"] == "False"


async def test_a_pod_marked_not_ready_by_others_is_reported_ready_again() -> None:
    async with kubelet() as env:
        await env.create(pod("web", container("c")))
        p = await env.wait("web", lambda p: conditions(p).get("Ready") == "True")
        ready_at = next(c for c in p["status"]["conditions"] if c["type"] == "Ready")["lastTransitionTime"]
        # As the node lifecycle controller does to the pods of a node that went silent (an old transition
        # time, so the one reported next must be the kubelet's own).
        await env.client.patch(PODS, "web", {"status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": "NodeNotReady",
             "lastTransitionTime": "2000-01-01T00:00:00Z"}]}}, "strategic", "default", subresource="status")
        await env.wait("web", lambda p: conditions(p).get("Ready") == "False")
        p = await env.wait("web", lambda p: conditions(p).get("Ready") == "True")
        ready = next(c for c in p["status"]["conditions"] if c["type"] == "Ready")
        assert "reason" not in ready
        assert ready["lastTransitionTime"] >= ready_at
