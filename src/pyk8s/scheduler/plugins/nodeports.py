"""NodePorts: a hostPort may be used once per node, protocol and host IP (0.0.0.0 conflicts with all)."""

from __future__ import annotations

from collections.abc import Mapping

from pyk8s.scheduler.framework import SKIP, CycleState, Plugin, Snapshot, Status, unschedulable
from pyk8s.scheduler.nodeinfo import HostPort, NodeInfo, PodInfo

NAME = "NodePorts"
ERR_REASON = "node(s) didn't have free ports for the requested pod ports"
_ANY = "0.0.0.0"


def conflicts(wanted: list[HostPort], used: Mapping[HostPort, int]) -> bool:
    if not used:
        return False
    for ip, proto, port in wanted:
        for uip, uproto, uport in used:
            if uport == port and uproto == proto and (_ANY in (ip, uip) or ip == uip):
                return True
    return False


def fits(pod: PodInfo, node: NodeInfo) -> bool:
    return not conflicts(pod.ports, node.used_ports)


class NodePorts(Plugin):
    name = NAME
    filters = True

    def pre_filter(self, state: CycleState, pod: PodInfo, snap: Snapshot) -> Status | set[str] | None:
        return None if pod.ports else SKIP

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        return None if fits(pod, node) else unschedulable(NAME, ERR_REASON)
