"""Pod status as the kubelet reports it: container states from the runtime's incarnations, the phase
(Kubernetes' getPhase), the kubelet's conditions, and the merge with what the API server holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyk8s.api import meta
from pyk8s.kubelet import cri

__all__ = [
    "KUBELET_CONDITIONS",
    "ContainerView",
    "container_status",
    "merge_conditions",
    "pod_phase",
    "rfc3339",
]

Obj = dict[str, Any]

KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready")


def rfc3339(t: float) -> str | None:
    """A runtime time (0: not yet) on the wire."""
    return meta.rfc3339(t) if t else None


@dataclass
class ContainerView:
    """What the worker knows of one container of the spec: its incarnations, newest last, and why it
    waits when it is not running."""

    spec: Obj
    incarnations: list[cri.ContainerStatus]
    waiting_reason: str = ""
    waiting_message: str = ""
    ready: bool = False
    started: bool = False
    image_id: str = ""
    scheme: str = "runc"

    @property
    def latest(self) -> cri.ContainerStatus | None:
        return self.incarnations[-1] if self.incarnations else None

    @property
    def restart_count(self) -> int:
        latest = self.latest
        return latest.attempt if latest else 0


def _terminated(c: cri.ContainerStatus, scheme: str) -> Obj:
    out: Obj = {"exitCode": c.exit_code, "reason": c.reason or ("Completed" if c.exit_code == 0 else "Error"),
                "startedAt": rfc3339(c.started_at), "finishedAt": rfc3339(c.finished_at),
                "containerID": f"{scheme}://{c.id}"}
    if c.message:
        out["message"] = c.message
    return out


def container_status(view: ContainerView) -> Obj:
    spec = view.spec
    latest = view.latest
    previous = [c for c in view.incarnations if c.state == "exited"]
    state: Obj
    last: Obj = {}
    if view.waiting_reason:
        state = {"waiting": {"reason": view.waiting_reason}}
        if view.waiting_message:
            state["waiting"]["message"] = view.waiting_message
        if previous:
            last = {"terminated": _terminated(previous[-1], view.scheme)}
    elif latest is not None and latest.state == "running":
        state = {"running": {"startedAt": rfc3339(latest.started_at or latest.created_at)}}
        if len(previous) >= 1:
            last = {"terminated": _terminated(previous[-1], view.scheme)}
    elif latest is not None and latest.state == "exited":
        state = {"terminated": _terminated(latest, view.scheme)}
        if len(previous) >= 2:
            last = {"terminated": _terminated(previous[-2], view.scheme)}
    else:
        state = {"waiting": {"reason": "ContainerCreating"}}
        if previous:
            last = {"terminated": _terminated(previous[-1], view.scheme)}
    out: Obj = {"name": spec["name"], "image": spec.get("image", ""), "imageID": view.image_id,
                "ready": view.ready, "restartCount": view.restart_count, "started": view.started,
                "state": state, "lastState": last}
    if latest is not None:
        out["containerID"] = f"{view.scheme}://{latest.id}"
    return out


def pod_phase(restart_policy: str, init_pending: bool, statuses: list[Obj], init_failed: bool = False) -> str:
    """Kubernetes' getPhase over the regular containers' statuses."""
    if init_failed:
        return "Failed"
    if init_pending:
        return "Pending"
    waiting = running = stopped = succeeded = 0
    for cs in statuses:
        state = cs["state"]
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            if state["terminated"]["exitCode"] == 0:
                succeeded += 1
        elif "waiting" in state:
            if cs.get("lastState", {}).get("terminated"):
                stopped += 1
            else:
                waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped and not running:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def merge_conditions(existing: list[Obj], wanted: dict[str, tuple[str, str, str]], now: str) -> list[Obj]:
    """The pod's conditions with the kubelet's types set to (status, reason, message); a condition whose
    status changes gets `now` as its transition time; others (PodScheduled, readiness gates) are kept."""
    out: list[Obj] = []
    seen: set[str] = set()
    for c in existing:
        ctype = c.get("type", "")
        if ctype in wanted:
            out.append(_condition(c, ctype, wanted[ctype], now))
            seen.add(ctype)
        else:
            out.append(c)
    missing = [t for t in KUBELET_CONDITIONS if t in wanted and t not in seen]
    out.extend(_condition(None, t, wanted[t], now) for t in missing)
    return out


def _condition(old: Obj | None, ctype: str, value: tuple[str, str, str], now: str) -> Obj:
    status, reason, message = value
    changed = old is None or old.get("status") != status
    c: Obj = {"type": ctype, "status": status, "lastProbeTime": None,
              "lastTransitionTime": now if changed else (old or {}).get("lastTransitionTime", now)}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c
