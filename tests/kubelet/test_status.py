"""Pod status pieces: QoS classes and cgroup parents, container limits, security config, phases,
conditions and container states."""

from __future__ import annotations

from typing import Any

from pyk8s.kubelet import cri
from pyk8s.kubelet.qos import container_resources, pod_cgroup_parent, qos_class
from pyk8s.kubelet.security import security_config, verify_run_as_non_root
from pyk8s.kubelet.status import ContainerView, container_status, merge_conditions, pod_phase


def pod_with(*resources: dict[str, Any], init: dict[str, Any] | None = None) -> dict[str, Any]:
    containers = [{"name": f"c{i}", "resources": r} for i, r in enumerate(resources)]
    spec: dict[str, Any] = {"containers": containers}
    if init is not None:
        spec["initContainers"] = [{"name": "i", "resources": init}]
    return {"metadata": {"uid": "u1", "name": "p", "namespace": "ns"}, "spec": spec}


def test_qos_classes_and_cgroup_parents() -> None:
    g = pod_with({"limits": {"cpu": "1", "memory": "1Gi"}}, {"limits": {"cpu": "500m", "memory": "64Mi"},
                                                             "requests": {"cpu": "500m", "memory": "64Mi"}})
    b = pod_with({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "100m"}})
    b2 = pod_with({"limits": {"cpu": "1", "memory": "1Gi"}}, {})
    be = pod_with({}, {})
    assert [qos_class(p) for p in (g, b, b2, be)] == ["Guaranteed", "Burstable", "Burstable", "BestEffort"]
    assert qos_class(pod_with({}, init={"requests": {"memory": "1Mi"}})) == "Burstable"
    assert pod_cgroup_parent(g) == "/kubepods/podu1"
    assert pod_cgroup_parent(b) == "/kubepods/burstable/podu1"
    assert pod_cgroup_parent(be) == "/kubepods/besteffort/podu1"


def test_container_resources_as_cgroup_v1_limits() -> None:
    r = container_resources({"resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "1500m",
                                                                                  "memory": "128Mi"}}})
    assert (r.cpu_shares, r.cpu_quota, r.cpu_period, r.memory_limit) == (256, 150_000, 100_000, 128 << 20)
    r = container_resources({})
    assert (r.cpu_shares, r.cpu_quota, r.memory_limit) == (2, 0, 0)
    # The kernel's minimum quota; a request defaults to the limit.
    assert container_resources({"resources": {"limits": {"cpu": "1m"}}}).cpu_quota == 1000
    assert container_resources({"resources": {"limits": {"cpu": "2"}}}).cpu_shares == 2048


def test_security_context_over_pod_context() -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
           "spec": {"securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000,
                                        "supplementalGroups": [4000]}}}
    c = {"name": "c", "securityContext": {"runAsUser": 1001, "readOnlyRootFilesystem": True,
                                          "allowPrivilegeEscalation": False,
                                          "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}}
    s = security_config(pod, c)
    assert (s.run_as_user, s.run_as_group, s.supplemental_groups) == (1001, 3000, (4000, 2000))
    assert s.read_only_rootfs and s.no_new_privileges and s.seccomp == "RuntimeDefault"
    assert (s.capabilities_add, s.capabilities_drop) == (("NET_ADMIN",), ("ALL",))
    privileged = {"name": "p", "securityContext": {"privileged": True}}
    assert security_config(pod, privileged).seccomp == "Unconfined"


def test_run_as_non_root_check() -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {}}
    c = {"name": "c", "securityContext": {"runAsNonRoot": True}}
    assert verify_run_as_non_root(pod, c, "") == \
        'container has runAsNonRoot and image will run as root (pod: "p_ns(u)", container: c)'
    assert "non-numeric user (nobody)" in (verify_run_as_non_root(pod, c, "nobody") or "")
    assert verify_run_as_non_root(pod, c, "1000:1000") is None
    as_five = {"name": "c", "securityContext": {"runAsNonRoot": True, "runAsUser": 5}}
    assert verify_run_as_non_root(pod, as_five, "") is None
    assert verify_run_as_non_root(pod, {"name": "c"}, "") is None


def _inc(cid: str, attempt: int, state: str, code: int = 0, reason: str = "") -> cri.ContainerStatus:
    return cri.ContainerStatus(id=cid, sandbox_id="s", name="c", attempt=attempt, state=state, exit_code=code,
                               reason=reason, started_at=100.0 + attempt, finished_at=110.0 + attempt
                               if state == "exited" else 0.0)


def test_container_states_with_last_state_and_restart_count() -> None:
    spec = {"name": "c", "image": "busybox"}
    incs = [_inc("a", 0, "exited", 1, "Error"), _inc("b", 1, "running")]
    running = container_status(ContainerView(spec, incs, ready=True, started=True, image_id="img"))
    assert running["restartCount"] == 1 and running["containerID"] == "runc://b"
    assert "running" in running["state"] and running["lastState"]["terminated"]["exitCode"] == 1
    back_off = container_status(ContainerView(spec, [_inc("a", 0, "exited", 1)],
                                              waiting_reason="CrashLoopBackOff",
                                              waiting_message="back-off 10s"))
    assert back_off["state"] == {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}}
    assert back_off["lastState"]["terminated"]["reason"] == "Error"
    done = container_status(ContainerView(spec, [_inc("a", 0, "exited", 0)]))
    assert done["state"]["terminated"]["reason"] == "Completed" and done["lastState"] == {}
    new = container_status(ContainerView(spec, []))
    assert new["state"] == {"waiting": {"reason": "ContainerCreating"}} and "containerID" not in new


def _s(state: dict[str, Any], last: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"state": state, "lastState": last or {}}


def test_pod_phase_as_get_phase() -> None:
    run, ok = _s({"running": {}}), _s({"terminated": {"exitCode": 0}})
    bad = _s({"terminated": {"exitCode": 1}})
    crash = _s({"waiting": {"reason": "CrashLoopBackOff"}}, {"terminated": {"exitCode": 1}})
    creating = _s({"waiting": {"reason": "ContainerCreating"}})
    assert pod_phase("Always", True, [creating]) == "Pending"
    assert pod_phase("Never", False, [run, ok]) == "Running"
    assert pod_phase("Never", False, [ok, ok]) == "Succeeded"
    assert pod_phase("Never", False, [ok, bad]) == "Failed"
    assert pod_phase("OnFailure", False, [ok, bad]) == "Running"
    assert pod_phase("Always", False, [ok]) == "Running"
    assert pod_phase("Always", False, [crash]) == "Running"
    assert pod_phase("Always", False, [creating, run]) == "Pending"
    assert pod_phase("Never", True, [creating], init_failed=True) == "Failed"


def test_conditions_keep_others_and_transition_times() -> None:
    existing = [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "t0"},
                {"type": "Ready", "status": "False", "lastTransitionTime": "t0"}]
    wanted = {"Ready": ("False", "ContainersNotReady", "m"), "Initialized": ("True", "", "")}
    out = merge_conditions(existing, wanted, "t1")
    by = {c["type"]: c for c in out}
    assert by["PodScheduled"] == existing[0]
    assert by["Ready"]["lastTransitionTime"] == "t0" and by["Ready"]["reason"] == "ContainersNotReady"
    assert by["Initialized"]["lastTransitionTime"] == "t1"
    out = merge_conditions(out, {"Ready": ("True", "", "")}, "t2")
    assert {c["type"]: c for c in out}["Ready"]["lastTransitionTime"] == "t2"
