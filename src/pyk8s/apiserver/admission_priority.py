"""The Priority admission plugin (Kubernetes' plugin/pkg/admission/priority): a new pod gets spec.priority
and spec.preemptionPolicy from its priorityClassName, or from the globalDefault class, or 0; and at most
one PriorityClass may be the global default."""

from __future__ import annotations

from typing import Any

from pyk8s.api import errors
from pyk8s.api.catalog import lookup
from pyk8s.apiserver.interfaces import AdmissionRequest, Obj, ObjectLister

PRIORITY_CLASSES = lookup("scheduling.k8s.io", "v1", "priorityclasses")
# The classes every cluster has (the API server creates them at start; used when they are not stored).
SYSTEM_PRIORITY_CLASSES: dict[str, int] = {"system-node-critical": 2000001000,
                                           "system-cluster-critical": 2000000000}
DEFAULT_PRIORITY_WHEN_NO_DEFAULT_CLASS = 0
PREEMPT_LOWER_PRIORITY = "PreemptLowerPriority"


def _subject(resource: str, name: str) -> str:
    return f'{resource} "{name}"' if name else resource


class PriorityAdmission:
    name = "Priority"

    def __init__(self, lister: ObjectLister) -> None:
        self._lister = lister

    def _classes(self) -> list[Obj]:
        assert PRIORITY_CLASSES is not None
        return list(self._lister(PRIORITY_CLASSES))

    def _get(self, name: str) -> Obj | None:
        for pc in self._classes():
            if pc.get("metadata", {}).get("name") == name:
                return pc
        if name in SYSTEM_PRIORITY_CLASSES:
            return {"metadata": {"name": name}, "value": SYSTEM_PRIORITY_CLASSES[name],
                    "preemptionPolicy": PREEMPT_LOWER_PRIORITY}
        return None

    def _default(self) -> Obj | None:
        """The global default class; with several (a race), the one of lowest value, as Kubernetes."""
        defaults = [pc for pc in self._classes() if pc.get("globalDefault") is True]
        return min(defaults, key=lambda pc: int(pc.get("value") or 0), default=None)

    async def admit(self, request: AdmissionRequest) -> None:
        if (request.resource.group, request.resource.plural) != ("", "pods") or request.subresource:
            return
        pod = request.obj
        if pod is None:
            return
        spec: dict[str, Any] = pod.setdefault("spec", {})
        if request.operation == "UPDATE":
            # Set on create; keep it when an update leaves it out (validation forbids changing it).
            old = (request.old or {}).get("spec") or {}
            for key in ("priority", "preemptionPolicy"):
                if spec.get(key) is None and old.get(key) is not None:
                    spec[key] = old[key]
            return
        if request.operation != "CREATE":
            return
        subject = _subject("pods", request.name)
        class_name = spec.get("priorityClassName") or ""
        policy: str | None
        if not class_name:
            pc = self._default()
            if pc is None:
                priority, policy = DEFAULT_PRIORITY_WHEN_NO_DEFAULT_CLASS, PREEMPT_LOWER_PRIORITY
            else:
                spec["priorityClassName"] = pc["metadata"]["name"]
                priority, policy = int(pc.get("value") or 0), pc.get("preemptionPolicy")
        else:
            pc = self._get(class_name)
            if pc is None:
                message = f"{subject} is forbidden: no PriorityClass with name {class_name} was found"
                raise errors.forbidden(message, "pods", request.name)
            priority, policy = int(pc.get("value") or 0), pc.get("preemptionPolicy")
        given = spec.get("priority")
        if given is not None and given != priority:
            raise errors.forbidden(
                f"{subject} is forbidden: the integer value of priority ({given}) must not be provided in "
                f"pod spec; priority admission controller computed {priority} from the given "
                "PriorityClass name",
                "pods", request.name)
        spec["priority"] = priority
        if policy:
            given_policy = spec.get("preemptionPolicy")
            if given_policy is not None and given_policy != policy:
                raise errors.forbidden(
                    f"{subject} is forbidden: the string value of PreemptionPolicy ({given_policy}) must "
                    "not be provided in pod spec; priority admission controller computed "
                    f"{policy} from the given PriorityClass name", "pods", request.name)
            spec["preemptionPolicy"] = policy

    async def validate(self, request: AdmissionRequest) -> None:
        res = request.resource
        if (res.group, res.plural) != ("scheduling.k8s.io", "priorityclasses") or request.subresource:
            return
        pc = request.obj
        if request.operation not in ("CREATE", "UPDATE") or pc is None or pc.get("globalDefault") is not True:
            return
        current = self._default()
        if current is None:
            return
        name = current["metadata"]["name"]
        if request.operation == "CREATE" or name != request.name:
            raise errors.forbidden(
                f'{_subject("priorityclasses.scheduling.k8s.io", request.name)} is forbidden: PriorityClass '
                f"{name} is already marked as default. Only one default can exist",
                "priorityclasses", request.name, "scheduling.k8s.io")
