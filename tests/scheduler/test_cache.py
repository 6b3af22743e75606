"""The node cache: assumed pods count at once, are confirmed by the informer or forgotten on failure."""

from __future__ import annotations

import dataclasses
from typing import Any

from pyk8s.scheduler.cache import Cache
from pyk8s.scheduler.nodeinfo import PodInfo


def node(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "status": {"allocatable": {"cpu": "2", "memory": "1Gi", "pods": "10"}},
    }


def pod(name: str, node_name: str = "", cpu: str = "500m", port: int | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"name": "c", "image": "i", "resources": {"requests": {"cpu": cpu}}}
    if port:
        c["ports"] = [{"containerPort": port, "hostPort": port}]
    spec: dict[str, Any] = {"containers": [c]}
    if node_name:
        spec["nodeName"] = node_name
    return {"metadata": {"name": name, "namespace": "default", "uid": name}, "spec": spec}


def test_assume_confirm_and_forget() -> None:
    cache = Cache()
    cache.add_node(node("a"))
    ni = cache.node("a")
    assert ni is not None
    cache.assume(PodInfo.of(pod("p", "a", port=80)), "a")
    assert ni.requested.milli_cpu == 500 and ("0.0.0.0", "TCP", 80) in ni.used_ports
    assert cache.is_assumed("p")
    cache.add_pod(pod("p", "a", port=80))  # the informer saw the binding
    assert not cache.is_assumed("p") and ni.requested.milli_cpu == 500 and len(ni.pods) == 1
    cache.assume(PodInfo.of(pod("q", "a")), "a")
    cache.forget("q")
    assert ni.requested.milli_cpu == 500 and len(ni.pods) == 1
    cache.remove_pod(pod("p", "a"))
    assert ni.requested.milli_cpu == 0 and not ni.used_ports and not ni.pods


def test_pods_before_their_node_and_node_removal() -> None:
    cache = Cache()
    cache.add_pod(pod("early", "later"))
    assert cache.node("later") is None and cache.snapshot().nodes == []
    cache.add_node(node("later"))
    ni = cache.node("later")
    assert ni is not None and ni.requested.milli_cpu == 500
    assert [n.name for n in cache.snapshot().nodes] == ["later"]
    cache.remove_node("later")
    assert cache.snapshot().nodes == []
    cache.remove_pod(pod("early", "later"))
    assert cache.pod_count() == 0


def test_tainted_and_cordoned_nodes_tracked() -> None:
    cache = Cache()
    tainted = node("a")
    tainted["spec"] = {"taints": [{"key": "k", "effect": "NoSchedule"}], "unschedulable": True}
    cache.add_node(tainted)
    cache.add_node(node("b"))
    snap = cache.snapshot()
    assert snap.tainted == {"a"} and snap.cordoned == {"a"}
    cache.update_node(node("a"))  # taint and cordon lifted
    assert not snap.tainted and not snap.cordoned


def test_status_updates_keep_the_accounting_and_spec_changes_redo_it() -> None:
    cache = Cache()
    cache.add_node(node("a"))
    ni = cache.node("a")
    assert ni is not None
    cache.add_pod(pod("p", "a"))
    running = pod("p", "a")
    running["metadata"]["labels"] = {"app": "x"}
    running["status"] = {"phase": "Running"}
    cache.update_pod(running)  # the kubelet's status write (and a label): the same requests
    assert ni.pods["p"].pod is running and ni.pods["p"].labels == {"app": "x"}
    assert ni.requested.milli_cpu == 500 and len(ni.pods) == 1
    cache.update_pod(pod("p", "a", cpu="1"))  # resized: the spec changed, so the requests are recounted
    assert ni.requested.milli_cpu == 1000 and len(ni.pods) == 1


def test_affinity_and_image_counts_let_cycles_skip_node_scans() -> None:
    cache = Cache()
    cache.add_node(node("a"))
    snap = cache.snapshot()
    assert snap.with_affinity() == [] and not snap.any_images(snap.nodes)
    anti = pod("anti", "a")
    anti["spec"]["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "x"}}}]}}
    cache.add_pod(anti)
    assert [n.name for n in snap.with_affinity()] == ["a"]
    assert [n.name for n in snap.with_required_anti_affinity()] == ["a"]
    cache.remove_pod(anti)
    assert snap.with_affinity() == [] and snap.with_required_anti_affinity() == []
    with_image = node("a")
    with_image["status"]["images"] = [{"names": ["busybox"], "sizeBytes": 1}]
    cache.update_node(with_image)
    assert snap.any_images(snap.nodes)
    cache.remove_node("a")
    assert not cache.snapshot().any_images([])
    assert cache.snapshot().counts is not None and cache.snapshot().counts.nodes_with_images == 0


def test_with_object_keeps_every_field_from_the_spec() -> None:
    """with_object is dataclasses.replace of the object and labels, field for field."""
    pi = PodInfo.of(pod("p", cpu="250m", port=8080))
    meta = {**pi.pod["metadata"], "labels": {"a": "b"}}
    newer = {**pi.pod, "metadata": meta, "status": {"phase": "Running"}}
    for labels in (None, {"a": "b"}):
        got = pi.with_object(newer, labels)
        want = dataclasses.replace(pi, pod=newer, labels=pi.labels if labels is None else labels)
        assert got == want and got.pod is newer
