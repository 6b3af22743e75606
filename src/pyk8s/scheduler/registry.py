"""Plugin name → factory: the default profile, in Kubernetes' order (filters run in this order)."""

from __future__ import annotations

from collections.abc import Callable

from pyk8s.scheduler.framework import Plugin
from pyk8s.scheduler.plugins.imagelocality import ImageLocality
from pyk8s.scheduler.plugins.interpodaffinity import InterPodAffinity
from pyk8s.scheduler.plugins.nodeaffinity import NodeAffinity
from pyk8s.scheduler.plugins.nodename import NodeName
from pyk8s.scheduler.plugins.nodeports import NodePorts
from pyk8s.scheduler.plugins.noderesources import NodeResourcesBalancedAllocation, NodeResourcesFit
from pyk8s.scheduler.plugins.nodeunschedulable import NodeUnschedulable
from pyk8s.scheduler.plugins.podtopologyspread import PodTopologySpread
from pyk8s.scheduler.plugins.tainttoleration import TaintToleration

REGISTRY: dict[str, Callable[..., Plugin]] = {
    "NodeUnschedulable": NodeUnschedulable,
    "NodeName": NodeName,
    "TaintToleration": TaintToleration,
    "NodeAffinity": NodeAffinity,
    "NodePorts": NodePorts,
    "NodeResourcesFit": NodeResourcesFit,
    "PodTopologySpread": PodTopologySpread,
    "InterPodAffinity": InterPodAffinity,
    "NodeResourcesBalancedAllocation": NodeResourcesBalancedAllocation,
    "ImageLocality": ImageLocality,
}


def default_plugins(scoring_strategy: str = "LeastAllocated") -> list[Plugin]:
    return [
        REGISTRY[name](scoring_strategy) if name == "NodeResourcesFit" else REGISTRY[name]()
        for name in REGISTRY
    ]
