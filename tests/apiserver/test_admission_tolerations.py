from __future__ import annotations

from typing import Any

from pyk8s.api import catalog
from pyk8s.apiserver.admission_tolerations import DefaultTolerationSeconds
from pyk8s.apiserver.interfaces import AdmissionPlugin, AdmissionRequest, UserInfo

PODS = catalog.lookup("", "v1", "pods")
CMS = catalog.lookup("", "v1", "configmaps")
assert PODS is not None and CMS is not None


def _request(obj: dict[str, Any], operation: str = "CREATE", subresource: str = "",
             resource: Any = PODS) -> AdmissionRequest:
    return AdmissionRequest(operation, resource, subresource, "default", "p", obj, None,
                            UserInfo("someone"), False)


def _pod(*tolerations: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if tolerations:
        spec["tolerations"] = list(tolerations)
    return {"metadata": {"name": "p"}, "spec": spec}


async def test_adds_both_tolerations_with_default_seconds() -> None:
    plugin: AdmissionPlugin = DefaultTolerationSeconds()
    pod = _pod()
    await plugin.admit(_request(pod))
    assert pod["spec"]["tolerations"] == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300},
    ]


async def test_configured_seconds_and_existing_tolerations_respected() -> None:
    plugin = DefaultTolerationSeconds(not_ready_seconds=5, unreachable_seconds=7)
    own = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
           "tolerationSeconds": 1}
    pod = _pod(own)
    await plugin.admit(_request(pod))
    assert pod["spec"]["tolerations"] == [own, {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                                "effect": "NoExecute", "tolerationSeconds": 5}]
    # A toleration of every taint (empty key, no effect) covers both: nothing added.
    everything = _pod({"operator": "Exists"})
    await plugin.admit(_request(everything))
    assert everything["spec"]["tolerations"] == [{"operator": "Exists"}]
    # A NoSchedule toleration of not-ready does not cover the NoExecute taint.
    no_schedule = _pod({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoSchedule"})
    await plugin.admit(_request(no_schedule))
    assert len(no_schedule["spec"]["tolerations"]) == 3


async def test_only_pod_creation_is_touched() -> None:
    plugin = DefaultTolerationSeconds()
    for req in (_request(_pod(), "UPDATE"), _request(_pod(), subresource="status"),
                _request({"metadata": {"name": "c"}}, resource=CMS)):
        await plugin.admit(req)
        assert req.obj is not None and "tolerations" not in (req.obj.get("spec") or {})
        await plugin.validate(req)
