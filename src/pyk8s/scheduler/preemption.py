"""DefaultPreemption (Kubernetes' plugins/defaultpreemption and framework/preemption): when no node fits,
find nodes where evicting lower-priority pods makes room, keep the fewest victims on each (reprieving as
many as still fit, PDB-protected ones first), and pick one node as Kubernetes orders candidates."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyk8s.api.errors import StatusError
from pyk8s.api.labels import selector_from_label_selector
from pyk8s.scheduler.framework import (
    Code,
    Diagnosis,
    Framework,
    Snapshot,
    Status,
    fit_error_message,
    unschedulable,
)
from pyk8s.scheduler.nodeinfo import NodeInfo, PodInfo

NAME = "DefaultPreemption"
NO_VICTIMS = "No preemption victims found for incoming pod"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
MIN_CANDIDATE_NODES_PERCENTAGE = 10
MIN_CANDIDATE_NODES_ABSOLUTE = 100
_INT32 = 2**31  # priorities are shifted by MaxInt32+1 before summing, so negatives do not help a node


@dataclass
class Candidate:
    node: str
    victims: list[PodInfo]
    pdb_violations: int


def _importance(p: PodInfo) -> tuple[int, str]:
    """MoreImportantPod sorts by priority (higher first), then earlier start."""
    return (-p.priority, p.start_time)


def eligible(pod: PodInfo, snap: Snapshot) -> str | None:
    """Why the pod may not preempt, or None (PodEligibleToPreemptOthers)."""
    spec = pod.pod.get("spec") or {}
    if spec.get("preemptionPolicy") == "Never":
        return "not eligible due to preemptionPolicy=Never."
    nominated = (pod.pod.get("status") or {}).get("nominatedNodeName")
    node = snap.by_name.get(nominated) if nominated else None
    if node is not None:  # noqa: SIM102
        if any(p.terminating and p.priority < pod.priority for p in node.pods.values()):
            return "not eligible due to a terminating pod on the nominated node."
    return None


class _Budgets:
    """PodDisruptionBudgets with the disruptions they still allow, decremented as victims are counted."""

    def __init__(self, pdbs: Sequence[Mapping[str, Any]]) -> None:
        self.items: list[tuple[str, Any, dict[str, Any], int]] = []
        for pdb in pdbs:
            try:
                sel = selector_from_label_selector((pdb.get("spec") or {}).get("selector"))
            except StatusError:
                continue
            status = pdb.get("status") or {}
            self.items.append(
                (
                    pdb["metadata"].get("namespace", ""),
                    sel,
                    status.get("disruptedPods") or {},
                    int(status.get("disruptionsAllowed") or 0),
                )
            )

    def split(self, pods: list[PodInfo]) -> tuple[list[PodInfo], list[PodInfo]]:
        """filterPodsWithPDBViolation: (violating, non-violating), each keeping the given order."""
        allowed = [item[3] for item in self.items]
        violating: list[PodInfo] = []
        fine: list[PodInfo] = []
        for p in pods:
            hit = False
            name = (p.pod.get("metadata") or {}).get("name", "")
            for i, (ns, sel, disrupted, _) in enumerate(self.items):
                if ns != p.namespace or sel.empty or not sel.matches(p.labels) or name in disrupted:
                    continue
                allowed[i] -= 1
                if allowed[i] < 0:
                    hit = True
            (violating if hit else fine).append(p)
        return violating, fine


def _fits(fw: Framework, pod: PodInfo, snap: Snapshot, node: NodeInfo) -> Status | None:
    state: dict[str, Any] = {}
    d = Diagnosis()
    pre = fw.run_pre_filter(state, pod, snap.replace(node), d)
    if pre is None:
        return d.node_status.get(node.name) or unschedulable(NAME, d.pre_filter_msg)
    active, allowed = pre
    if allowed is not None and node.name not in allowed:
        return unschedulable(NAME, "node(s) didn't match Pod's node affinity/selector", resolvable=False)
    return fw.run_filters(active, state, pod, node)


def select_victims(
    fw: Framework, pod: PodInfo, snap: Snapshot, node: NodeInfo, budgets: _Budgets
) -> tuple[Candidate | None, Status | None]:
    clone = node.clone()
    lower = sorted((p for p in clone.pods.values() if p.priority < pod.priority), key=_importance)
    if not lower:
        return None, unschedulable(NAME, NO_VICTIMS, resolvable=False)
    for p in lower:
        clone.remove_pod(p.uid)
    if (st := _fits(fw, pod, snap, clone)) is not None:
        return None, st
    victims: list[PodInfo] = []
    violations = 0
    violating, fine = budgets.split(lower)
    for group, violates in ((violating, True), (fine, False)):
        for p in group:
            clone.add_pod(p)
            if _fits(fw, pod, snap, clone) is not None:
                clone.remove_pod(p.uid)
                victims.append(p)
                violations += violates
    return Candidate(node.name, victims, violations), None


def pick(candidates: list[Candidate]) -> Candidate:
    """pickOneNodeForPreemption: fewest PDB violations, lowest top victim priority, smallest priority sum,
    fewest victims, latest start of the top-priority victims, then the first."""

    def key(c: Candidate) -> tuple[Any, ...]:
        top = max((v.priority for v in c.victims), default=-_INT32)
        total = sum(v.priority + _INT32 for v in c.victims)
        earliest = min((v.start_time for v in c.victims if v.priority == top), default="")
        return (c.pdb_violations, top, total, len(c.victims), _Reverse(earliest))

    return min(candidates, key=key)


@dataclass(frozen=True)
class _Reverse:
    s: str

    def __lt__(self, other: _Reverse) -> bool:
        return self.s > other.s


def preempt(
    fw: Framework,
    pod: PodInfo,
    snap: Snapshot,
    diagnosis: Diagnosis,
    pdbs: Sequence[Mapping[str, Any]] = (),
    rng: random.Random | None = None,
) -> tuple[Candidate | None, str]:
    """The chosen candidate, or None and the message FailedScheduling appends ("preemption: ...")."""
    if (why := eligible(pod, snap)) is not None:
        return None, f"preemption: {why}"
    statuses: dict[str, Status] = {}
    potential: list[NodeInfo] = []
    for n in snap.nodes:
        st = diagnosis.node_status.get(n.name)
        if st is not None and st.code == Code.UNSCHEDULABLE:
            potential.append(n)
        else:
            statuses[n.name] = unschedulable(NAME, NOT_HELPFUL, resolvable=False)
    candidates: list[Candidate] = []
    if potential:
        want = max(len(potential) * MIN_CANDIDATE_NODES_PERCENTAGE // 100, MIN_CANDIDATE_NODES_ABSOLUTE)
        offset = (rng or random).randrange(len(potential))
        budgets = _Budgets(pdbs)
        for i in range(len(potential)):
            node = potential[(offset + i) % len(potential)]
            cand, st = select_victims(fw, pod, snap, node, budgets)
            if cand is not None:
                candidates.append(cand)
                if len(candidates) >= want:
                    break
            elif st is not None:
                statuses[node.name] = st
    if not candidates:
        return None, "preemption: " + fit_error_message(len(snap.nodes), Diagnosis(statuses))
    return pick(candidates), ""


Nominated = Callable[[NodeInfo], NodeInfo]
