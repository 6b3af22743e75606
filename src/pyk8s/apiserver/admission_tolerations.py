"""DefaultTolerationSeconds admission: new pods tolerate `not-ready` and `unreachable` nodes for a while.

As Kubernetes' plugin of that name: a pod created without a NoExecute toleration for
`node.kubernetes.io/not-ready` (or `unreachable`) gets one, operator Exists, with
`--default-not-ready-toleration-seconds` (`--default-unreachable-toleration-seconds`), 300 by default —
so its pods are evicted five minutes after their node fails, not at once. A toleration with an empty key,
or with no effect, already covers the taint and is left as it is.
"""

from __future__ import annotations

from pyk8s.apiserver.interfaces import AdmissionRequest, Obj

__all__ = ["NOT_READY_TAINT", "UNREACHABLE_TAINT", "DefaultTolerationSeconds"]

NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"


def _tolerates(tolerations: list[Obj], key: str) -> bool:
    return any(t.get("key", "") in (key, "") and t.get("effect", "") in ("NoExecute", "")
               for t in tolerations)


class DefaultTolerationSeconds:
    name = "DefaultTolerationSeconds"

    def __init__(self, not_ready_seconds: int = 300, unreachable_seconds: int = 300) -> None:
        self.seconds = {NOT_READY_TAINT: not_ready_seconds, UNREACHABLE_TAINT: unreachable_seconds}

    async def admit(self, request: AdmissionRequest) -> None:
        if request.operation != "CREATE" or request.subresource or request.obj is None \
                or request.resource.group != "" or request.resource.plural != "pods":
            return
        spec = request.obj.setdefault("spec", {})
        tolerations: list[Obj] = list(spec.get("tolerations") or [])
        added = [{"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}
                 for key, seconds in self.seconds.items() if not _tolerates(tolerations, key)]
        if added:
            spec["tolerations"] = tolerations + added

    async def validate(self, request: AdmissionRequest) -> None:
        return None
