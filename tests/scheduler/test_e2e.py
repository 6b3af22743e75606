"""The scheduler against a real API server, with Node objects made by the test (no kubelet)."""

from __future__ import annotations

from typing import Any

from pyk8s.client.client import Client
from pyk8s.client.informer import SharedInformerFactory
from pyk8s.scheduler.scheduler import Scheduler
from tests.scheduler.conftest import EVENTS, NODES, PODS, eventually_async, node, pod, running_scheduler
from tests.support.apiserver import NAMESPACES, info
from tests.support.poll import eventually


def bound(s: Scheduler, name: str) -> str | None:
    p = s.pods.lister.get(name, "default")
    return None if p is None else p["spec"].get("nodeName")


async def events_for(client: Client, name: str) -> list[dict[str, Any]]:
    items = (await client.list(EVENTS, "default"))["items"]
    return [e for e in items if e["involvedObject"]["name"] == name]


async def test_binds_and_records_scheduled(client: Client, scheduler: Scheduler) -> None:
    await client.create(NODES, node("node-1"))
    await client.create(PODS, pod("web"))
    await eventually(lambda: bound(scheduler, "web") == "node-1", what="web bound")
    await scheduler.recorder.flush()
    evs = await events_for(client, "web")
    assert [(e["reason"], e["message"]) for e in evs] == [
        ("Scheduled", "Successfully assigned default/web to node-1")
    ]


async def test_a_shared_factory_s_other_informers_do_not_hold_the_scheduler_back(client: Client) -> None:
    """In the components process the scheduler shares its factory with the controller manager: an informer
    of the manager's that cannot list (here a malformed selector, 400 on every try) must not keep the
    scheduler from scheduling."""
    factory = SharedInformerFactory(client)
    stuck = factory.informer(info("", "configmaps"), label_selector="app in (")
    async with running_scheduler(client, factory) as s:
        await client.create(NODES, node("node-1"))
        await client.create(PODS, pod("web"))
        await eventually(lambda: bound(s, "web") == "node-1", what="web bound")
        assert not stuck.has_synced()


async def test_taints_selector_and_resources(client: Client, scheduler: Scheduler) -> None:
    await client.create(
        NODES, node("tainted", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    )
    await client.create(NODES, node("small", cpu="1"))
    await client.create(NODES, node("ssd", labels={"disk": "ssd"}))
    await client.create(
        PODS,
        pod(
            "tolerant",
            nodeSelector={"disk": "none"},
            tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
        ),
    )
    await client.create(PODS, pod("wants-ssd", nodeSelector={"disk": "ssd"}))
    await client.create(PODS, pod("big", cpu="2"))
    await eventually(lambda: bound(scheduler, "wants-ssd") == "ssd", what="wants-ssd on ssd")
    await eventually(
        lambda: bound(scheduler, "big") == "ssd", what="big on the only node with room untainted"
    )
    # Its nodeSelector matches nothing: unschedulable, with Kubernetes' message.
    await eventually(
        lambda: (scheduler.pods.lister.get("tolerant", "default") or {}).get("status", {}).get("conditions"),
        what="PodScheduled condition",
    )
    p = scheduler.pods.lister.get("tolerant", "default")
    assert p is not None
    cond = p["status"]["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"]) == ("PodScheduled", "False", "Unschedulable")
    assert cond["message"] == (
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )
    # A matching node appears: the parked pod is scheduled there.
    await client.create(NODES, node("none", labels={"disk": "none"}))
    await eventually(lambda: bound(scheduler, "tolerant") == "none", what="tolerant on the new node")


async def test_failed_scheduling_text_and_node_added(client: Client, scheduler: Scheduler) -> None:
    await client.create(NODES, node("a", taints=[{"key": "key", "value": "value", "effect": "NoSchedule"}]))
    await client.create(NODES, node("b", cpu="1"))
    await client.create(NODES, node("c", cpu="1"))
    await client.create(PODS, pod("hungry", cpu="2"))
    want = (
        "0/3 nodes are available: 1 node(s) had untolerated taint {key: value}, 2 Insufficient cpu. "
        "preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, "
        "2 No preemption victims found for incoming pod."
    )

    async def has_event() -> bool:
        await scheduler.recorder.flush()
        return any(
            e["reason"] == "FailedScheduling" and e["message"] == want
            for e in await events_for(client, "hungry")
        )

    await eventually_async(has_event, what="FailedScheduling event with Kubernetes' text")
    await client.create(NODES, node("d", cpu="8"))
    await eventually(lambda: bound(scheduler, "hungry") == "d", what="hungry on the new node")


def zone_nodes(n: int) -> list[dict[str, Any]]:
    return [node(f"n{i}", labels={"zone": f"z{i % 2}"}) for i in range(n)]


async def test_pod_affinity_and_anti_affinity(client: Client, scheduler: Scheduler) -> None:
    for n in zone_nodes(4):
        await client.create(NODES, n)
    await client.create(PODS, pod("db", labels={"app": "db"}))
    await eventually(lambda: bound(scheduler, "db") is not None, what="db bound")
    db_node = scheduler.pods.lister.get("db", "default")["spec"]["nodeName"]  # type: ignore[index]
    db_zone = scheduler.cache.node(db_node).labels["zone"]  # type: ignore[union-attr]
    near = {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}
            ]
        }
    }
    await client.create(PODS, pod("cache", affinity=near))
    await eventually(lambda: bound(scheduler, "cache") is not None, what="cache bound")
    cache_node = bound(scheduler, "cache")
    assert scheduler.cache.node(cache_node).labels["zone"] == db_zone  # type: ignore[arg-type, union-attr]
    # One web per node: anti-affinity to itself by hostname.
    spread = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }
    for i in range(5):
        await client.create(PODS, pod(f"web-{i}", labels={"app": "web"}, affinity=spread))
    await eventually(
        lambda: sum(bound(scheduler, f"web-{i}") is not None for i in range(5)) == 4, what="four webs bound"
    )
    nodes = [bound(scheduler, f"web-{i}") for i in range(5)]
    placed = [n for n in nodes if n]
    assert len(set(placed)) == 4
    late = next(f"web-{i}" for i, n in enumerate(nodes) if n is None)
    await eventually(
        lambda: scheduler.queue.where(f"default/{late}") in ("unschedulable", "backoff"),
        what="the fifth web parked",
    )
    await client.create(NODES, node("n4", labels={"zone": "z0"}))
    await eventually(lambda: bound(scheduler, late) == "n4", what="fifth web on the new node")


async def test_topology_spread(client: Client, scheduler: Scheduler) -> None:
    for n in zone_nodes(4):
        await client.create(NODES, n)
    tsc = [
        {
            "maxSkew": 1,
            "topologyKey": "zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "s"}},
        }
    ]
    for i in range(6):
        await client.create(PODS, pod(f"s-{i}", labels={"app": "s"}, topologySpreadConstraints=tsc))
    await eventually(lambda: all(bound(scheduler, f"s-{i}") for i in range(6)), what="all spread pods bound")
    zones = [
        scheduler.cache.node(bound(scheduler, f"s-{i}")).labels["zone"]  # type: ignore[arg-type, union-attr]
        for i in range(6)
    ]
    assert zones.count("z0") == zones.count("z1") == 3


async def test_resources_fill_nodes(client: Client, scheduler: Scheduler) -> None:
    await client.create(NODES, node("x", cpu="2", pods=3))
    await client.create(NODES, node("y", cpu="2", pods=3))
    for i in range(4):
        await client.create(PODS, pod(f"r-{i}", cpu="1"))
    await eventually(lambda: all(bound(scheduler, f"r-{i}") for i in range(4)), what="four pods bound")
    nodes = [bound(scheduler, f"r-{i}") for i in range(4)]
    assert nodes.count("x") == nodes.count("y") == 2
    await client.create(PODS, pod("r-extra", cpu="1"))
    await eventually(
        lambda: (
            "Insufficient cpu"
            in str(
                (scheduler.pods.lister.get("r-extra", "default") or {}).get("status", {}).get("conditions")
            )
        ),
        what="r-extra reported Insufficient cpu",
    )
    await client.delete(PODS, "r-0", "default", grace_period_seconds=0)
    await eventually(lambda: bound(scheduler, "r-extra") == nodes[0], what="r-extra takes the freed room")


async def test_preemption_evicts_lower_priority(client: Client, scheduler: Scheduler) -> None:
    await client.create(NODES, node("only", cpu="2"))
    await client.create(PODS, pod("low", cpu="2", priority=10))
    await eventually(lambda: bound(scheduler, "low") == "only", what="low bound")
    await client.create(PODS, pod("high", cpu="2", priority=1000))
    await eventually(
        lambda: (
            (scheduler.pods.lister.get("high", "default") or {}).get("status", {}).get("nominatedNodeName")
            == "only"
        ),
        what="high nominated",
    )
    # The victim is marked with DisruptionTarget and deleted gracefully; no kubelet here, so the test
    # finishes the deletion as a kubelet would.
    await eventually(
        lambda: (
            (scheduler.pods.lister.get("low", "default") or {}).get("metadata", {}).get("deletionTimestamp")
        ),
        what="low being deleted",
    )
    low = scheduler.pods.lister.get("low", "default")
    assert low is not None
    cond = next(c for c in low["status"]["conditions"] if c["type"] == "DisruptionTarget")
    assert (cond["status"], cond["reason"]) == ("True", "PreemptionByScheduler")
    assert bound(scheduler, "high") is None  # the terminating victim still holds its cpu
    await client.delete(PODS, "low", "default", grace_period_seconds=0)
    await eventually(lambda: bound(scheduler, "high") == "only", what="high bound after preemption")

    async def preempted() -> bool:
        await scheduler.recorder.flush()
        return any(e["reason"] == "Preempted" for e in await events_for(client, "low"))

    await eventually_async(preempted, what="Preempted event on the victim")


async def test_other_scheduler_and_bound_pods_ignored(client: Client, scheduler: Scheduler) -> None:
    await client.create(NODES, node("n"))
    await client.create(PODS, pod("mine"))
    await client.create(PODS, pod("theirs", schedulerName="other-scheduler"))
    await eventually(lambda: bound(scheduler, "mine") == "n", what="mine bound")
    assert bound(scheduler, "theirs") is None
    assert scheduler.queue.where("default/theirs") is None


async def test_leader_election_lease(client: Client) -> None:
    await client.create(NAMESPACES, {"metadata": {"name": "kube-system"}})
    async with running_scheduler(client, leader_election=True, identity="sched-1") as s:
        await client.create(NODES, node("n"))
        await client.create(PODS, pod("led"))
        await eventually(lambda: bound(s, "led") == "n", what="pod bound by the leader")
        lease = await client.get(info("coordination.k8s.io", "leases"), "kube-scheduler", "kube-system")
        assert lease["spec"]["holderIdentity"] == "sched-1"
