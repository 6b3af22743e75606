"""The memoised, fused cycle (memo.py) against the per-plugin computation: the same feasible nodes for the
same start, the same statuses, scores, chosen node and messages, over random clusters and pod sequences."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyk8s.scheduler.framework import Diagnosis, FitError, Framework, Snapshot
from pyk8s.scheduler.memo import MAX_SHAPES, Ties
from pyk8s.scheduler.nodeinfo import NodeInfo, PodInfo
from pyk8s.scheduler.registry import default_plugins

SHAPES: list[dict[str, str]] = [
    {},
    {"cpu": "100m", "memory": "128Mi"},
    {"cpu": "500m"},
    {"memory": "1Gi"},
    {"cpu": "1", "memory": "2Gi"},
    {"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "3Gi"},  # shape 1 with storage
    {"cpu": "100m", "example.com/gpu": "1"},  # extended resources: no memo, the plugins' own path
    {"cpu": "3"},
]
TAINTS: dict[str, list[dict[str, str]]] = {
    "": [],
    "hard": [{"key": "k", "value": "v", "effect": "NoSchedule"}],
    "soft": [{"key": "s", "value": "v", "effect": "PreferNoSchedule"}],
}
_uids = iter(range(10**9))


def node_obj(name: str, cpu: str, memory: str, pods: int, taint: str) -> dict[str, Any]:
    alloc = {"cpu": cpu, "memory": memory, "pods": str(pods), "ephemeral-storage": "4Gi"}
    alloc["example.com/gpu"] = "1"
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"taints": TAINTS[taint]},
        "status": {"allocatable": alloc},
    }


def pod_info(shape: int, tolerate: bool = False) -> PodInfo:
    container = {"name": "c", "image": "i", "resources": {"requests": SHAPES[shape]}}
    spec: dict[str, Any] = {"containers": [container]}
    if tolerate:
        spec["tolerations"] = [{"key": "k", "operator": "Exists"}]
    n = next(_uids)
    return PodInfo.of({"metadata": {"name": f"p{n}", "namespace": "default", "uid": f"u{n}"}, "spec": spec})


node_specs = st.tuples(
    st.sampled_from(["0", "1", "2", "4"]),
    st.sampled_from(["0", "1Gi", "4Gi", "8Gi"]),
    st.integers(1, 6),
    st.sampled_from(["", "", "", "hard", "soft"]),
)
ops = st.one_of(
    st.tuples(st.just("pod"), st.integers(0, len(SHAPES) - 1), st.booleans(), st.booleans()),
    st.tuples(st.just("remove"), st.integers(0, 10**6)),
    st.tuples(st.just("resize"), st.integers(0, 10**6), st.sampled_from(["1", "2", "8"])),
    st.tuples(st.just("overcommit"), st.integers(0, 10**6)),
)


class Cluster:
    """One node set and a framework over it."""

    def __init__(self, specs: list[tuple[str, str, int, str]], memo: bool, seed: int) -> None:
        self.nodes = []
        for i, spec in enumerate(specs):
            ni = NodeInfo(None, f"n{i}")
            ni.set_node(node_obj(f"n{i}", *spec))
            self.nodes.append(ni)
        self.snap = Snapshot(self.nodes)
        self.fw = Framework(default_plugins(), rng=random.Random(seed), memo=memo)
        self.placed: list[tuple[str, PodInfo]] = []

    def extra(self, pod: PodInfo) -> Any:
        """A nominated pod waiting for every third node, as the scheduler's view of them."""

        def view(node: NodeInfo) -> NodeInfo:
            if int(node.name[1:]) % 3:
                return node
            clone = node.clone()
            clone.add_pod(pod)
            return clone

        return view


def check_cycle(ref: Cluster, memo: Cluster, pod: PodInfo, with_extra: bool) -> None:
    """The feasible nodes, statuses and scores of one cycle, then the whole cycle's outcome."""
    start = ref.fw.next_start
    assert memo.fw.next_start == start
    assert memo.fw.memo is not None and ref.fw.memo is None
    table = memo.fw.memo.table(pod, memo.snap)
    d_ref, d_memo = Diagnosis(), Diagnosis()
    x_ref = ref.extra(waiting) if with_extra else None
    x_memo = memo.extra(waiting) if with_extra else None
    f_ref = ref.fw._feasible({}, pod, ref.snap, d_ref, x_ref, None)
    f_memo = memo.fw._feasible({}, pod, memo.snap, d_memo, x_memo, table)
    assert (f_ref is None) == (f_memo is None)
    if f_ref is not None and f_memo is not None:
        assert [n.name for n in f_ref.nodes] == [n.name for n in f_memo.nodes]
        assert memo.fw.next_start == ref.fw.next_start
        if f_ref.nodes:
            totals = ref.fw.prioritize({}, pod, f_ref.nodes, ref.snap)
            assert totals is not None
            if table is not None:
                # The separable sum from the memo is the per-plugin sum of Fit and BalancedAllocation.
                sep = [p for p in ref.fw.score_plugins if p.separable]
                expect = [sum(p.score({}, pod, n) * p.weight for p in sep) for n in f_ref.nodes]
                assert memo.fw.memo.scores(table, {}, pod, f_memo.nodes) == expect
                got = memo.fw.prioritize({}, pod, f_memo.nodes, memo.snap, table)
                assert got == totals
            if f_memo.best is not None:  # the fused loop's highest, in order
                best = [i for i, s in enumerate(totals) if s == max(totals)]
                assert list(f_memo.best) == best and len(f_memo.best) == len(best)
                assert [f_memo.best[k] for k in range(len(best))] == best  # as random.choice reads it
    assert d_ref.node_status == d_memo.node_status
    ref.fw.next_start = memo.fw.next_start = start

    outcomes = []
    for c, x in ((ref, x_ref), (memo, x_memo)):
        try:
            result, _ = c.fw.schedule(pod, c.snap, x)
            outcomes.append((result.node, result.evaluated, result.feasible))
        except FitError as err:
            outcomes.append((str(err), err.diagnosis.node_status))
    assert outcomes[0] == outcomes[1]


waiting = pod_info(1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    # Small clusters, and ones above 100 nodes where the search stops after the first 100 that fit.
    specs=st.one_of(
        st.lists(node_specs, min_size=1, max_size=20), st.lists(node_specs, min_size=101, max_size=130)
    ),
    steps=st.lists(ops, min_size=5, max_size=50),
    seed=st.integers(0, 2**32),
    tainted=st.booleans(),
)
def test_memo_cycle_matches_per_plugin(
    specs: list[tuple[str, str, int, str]], steps: list[Any], seed: int, tainted: bool
) -> None:
    if not tainted:  # no taints: NodeResourcesFit is the only filter with work, the fused loop's case
        specs = [(cpu, memory, pods, "") for cpu, memory, pods, _ in specs]
    ref, memo = Cluster(specs, False, seed), Cluster(specs, True, seed)
    for op in steps:
        if op[0] == "pod":
            _, shape, tolerate, with_extra = op
            pod = pod_info(shape, tolerate)
            check_cycle(ref, memo, pod, with_extra)
            try:
                result, _ = ref.fw.schedule(pod, ref.snap)
            except FitError:
                continue
            memo.fw.schedule(pod, memo.snap)  # keeps both frameworks' start and rng in step
            for c in (ref, memo):
                ni = c.snap.by_name[result.node]
                ni.add_pod(pod)
                c.placed.append((ni.name, pod))
        elif op[0] == "remove" and ref.placed:
            i = op[1] % len(ref.placed)
            for c in (ref, memo):
                name, pod = c.placed.pop(i)
                c.snap.by_name[name].remove_pod(pod.uid)
        elif op[0] == "resize":
            i = op[1] % len(specs)
            _, memory, pods, taint = specs[i]
            for c in (ref, memo):
                c.nodes[i].set_node(node_obj(f"n{i}", op[2], memory, pods, taint))
        elif op[0] == "overcommit":  # a pod the node cannot hold (as after a resize), so nothing fits it
            i = op[1] % len(specs)
            big = pod_info(7)
            for c in (ref, memo):
                c.nodes[i].add_pod(big)
                c.placed.append((c.nodes[i].name, big))


def test_generation_names_one_state() -> None:
    ni = NodeInfo(None, "a")
    ni.set_node(node_obj("a", "2", "1Gi", 5, ""))
    clone = ni.clone()
    assert clone.generation == ni.generation
    ni.add_pod(pod_info(1))
    clone.add_pod(pod_info(2))  # the same count of changes, a different state: a different generation
    assert len({ni.generation, clone.generation}) == 2
    before = ni.generation
    ni.remove_pod(next(iter(ni.pods)))
    assert ni.generation > before


def test_tables_are_bounded() -> None:
    nodes = []
    for i in range(3):
        ni = NodeInfo(None, f"n{i}")
        ni.set_node(node_obj(f"n{i}", "4", "8Gi", 10, ""))
        nodes.append(ni)
    fw = Framework(default_plugins())
    assert fw.memo is not None
    for cpu in range(1, MAX_SHAPES + 5):  # more request shapes than are kept
        container = {"name": "c", "resources": {"requests": {"cpu": f"{cpu}m"}}}
        pod = PodInfo.of({"metadata": {"uid": f"s{cpu}"}, "spec": {"containers": [container]}})
        fw.schedule(pod, Snapshot(nodes))
    assert len(fw.memo._tables) == MAX_SHAPES
    # A table follows the snapshot's nodes: results of nodes gone are dropped with their names.
    pod = PodInfo.of({"metadata": {"uid": "x"}, "spec": {"containers": [{"name": "c"}]}})
    fw.schedule(pod, Snapshot(nodes))
    table = fw.memo.table(pod, Snapshot(nodes[1:]))
    assert table is not None and set(table.index) == {"n1", "n2"} and len(table.gens) == 2


def test_shapes_that_differ_only_in_storage_do_not_share_results() -> None:
    """A node that fits 100m/128Mi still fits it after a pod took 3Gi of its 4Gi storage; the same pod
    with 3Gi of storage does not."""
    ni = NodeInfo(None, "n0")
    ni.set_node(node_obj("n0", "4", "8Gi", 10, ""))
    snap = Snapshot([ni])
    fw = Framework(default_plugins(), rng=random.Random(0))
    ni.add_pod(pod_info(5))
    assert fw.schedule(pod_info(1), snap)[0].node == "n0"  # leaves the 100m/128Mi result for n0
    try:
        fw.schedule(pod_info(5), snap)
    except FitError as err:
        assert str(err) == "0/1 nodes are available: 1 Insufficient ephemeral-storage."
    else:
        raise AssertionError("a pod asking for more storage than is left was placed")


@given(st.lists(st.integers(0, 3), min_size=1, max_size=300))
def test_ties_index_as_the_list_of_them(scores: list[int]) -> None:
    top = max(scores)
    want = [i for i, s in enumerate(scores) if s == top]
    ties = Ties(scores, top, len(want))
    assert len(ties) == len(want) and list(ties) == want
    assert [ties[k] for k in range(len(want))] == want and ties[-1] == want[-1]
    with pytest.raises(IndexError):
        ties[len(want)]
    assert random.Random(7).choice(ties) == random.Random(7).choice(want)
