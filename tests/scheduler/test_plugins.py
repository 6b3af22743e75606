"""Each plugin's pure functions, table-driven, and the cycle's messages."""

from __future__ import annotations

from typing import Any

import pytest

from pyk8s.scheduler.framework import (
    Code,
    Diagnosis,
    Framework,
    Snapshot,
    fit_error_message,
    num_feasible_nodes_to_find,
)
from pyk8s.scheduler.nodeinfo import NodeInfo, PodInfo
from pyk8s.scheduler.plugins import (
    interpodaffinity,
    nodeaffinity,
    nodename,
    nodeports,
    noderesources,
    nodeunschedulable,
    podtopologyspread,
    tainttoleration,
)
from pyk8s.scheduler.registry import default_plugins
from pyk8s.scheduler.resources import Resource, pod_requests

_uid = iter(range(10**6))


def mkpod(
    name: str = "p",
    ns: str = "default",
    labels: dict[str, str] | None = None,
    containers: list[dict[str, Any]] | None = None,
    **spec: Any,
) -> PodInfo:
    return PodInfo.of(
        {
            "metadata": {"name": name, "namespace": ns, "uid": f"uid-{next(_uid)}", "labels": labels or {}},
            "spec": {"containers": containers or [{"name": "c", "image": "i"}], **spec},
        }
    )


def req(cpu: str | None = None, memory: str | None = None, **more: str) -> dict[str, Any]:
    r = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v} | more
    return {"name": "c", "image": "i", "resources": {"requests": r}}


def mknode(
    name: str = "n",
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: int = 110,
    unschedulable: bool = False,
    *placed: PodInfo,
) -> NodeInfo:
    alloc = {"cpu": cpu, "memory": memory, "pods": str(pods), "ephemeral-storage": "10Gi"}
    ni = NodeInfo(None, name)
    ni.set_node(
        {
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"taints": taints or [], "unschedulable": unschedulable},
            "status": {"allocatable": alloc},
        }
    )
    for p in placed:
        ni.add_pod(p)
    return ni


def test_pod_requests_follow_kubernetes() -> None:
    p = {
        "spec": {
            "containers": [req("100m", "1Gi"), req("200m")],
            "initContainers": [req("1", "100Mi"), {**req("50m"), "restartPolicy": "Always"}, req("400m")],
            "overhead": {"cpu": "10m"},
        }
    }
    r = pod_requests(p)
    # containers 300m + sidecar 50m = 350m; init max(1000m, 400m + 50m sidecar) = 1000m; + 10m overhead
    assert (r.milli_cpu, r.memory) == (1010, 1024**3)


def test_quantities_as_text_and_numbers() -> None:
    """Text quantities are parsed once and remembered; JSON numbers and bad values take the plain path."""
    for _ in range(2):
        r = Resource.from_list({"cpu": "1500m", "memory": "1Gi", "ephemeral-storage": 2, "x.io/y": "bad"})
        assert (r.milli_cpu, r.memory, r.ephemeral, r.scalars) == (1500, 1024**3, 2, {"x.io/y": 0})
    assert Resource.from_list({"cpu": 0.5, "memory": "1k"}).milli_cpu == 500
    assert Resource.from_list({"memory": "1.5"}).memory == 2  # rounded up, as Kubernetes' Value()


@pytest.mark.parametrize(
    ("toleration", "taint", "ok"),
    [
        (
            {"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"},
            {"key": "k", "value": "v", "effect": "NoSchedule"},
            True,
        ),
        ({"key": "k", "value": "other"}, {"key": "k", "value": "v", "effect": "NoSchedule"}, False),
        ({"key": "k", "operator": "Exists"}, {"key": "k", "value": "v", "effect": "NoExecute"}, True),
        ({"operator": "Exists"}, {"key": "any", "effect": "NoSchedule"}, True),
        (
            {"key": "k", "operator": "Exists", "effect": "NoExecute"},
            {"key": "k", "effect": "NoSchedule"},
            False,
        ),
        ({"key": "", "operator": "Equal"}, {"key": "k", "effect": "NoSchedule"}, False),
    ],
)
def test_tolerates(toleration: dict[str, str], taint: dict[str, str], ok: bool) -> None:
    assert tainttoleration.tolerates(toleration, taint) is ok


def test_taint_filter_and_score() -> None:
    taints = [
        {"key": "soft", "value": "x", "effect": "PreferNoSchedule"},
        {"key": "key", "value": "value", "effect": "NoSchedule"},
    ]
    st = tainttoleration.fits(mkpod(), mknode(taints=taints))
    assert st is not None and st.reasons == ("node(s) had untolerated taint {key: value}",)
    assert st.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert (
        tainttoleration.fits(mkpod(tolerations=[{"key": "key", "operator": "Exists"}]), mknode(taints=taints))
        is None
    )
    assert tainttoleration.intolerable_prefer_no_schedule([], mknode(taints=taints)) == 1


def test_node_name_and_unschedulable() -> None:
    assert nodename.fits(mkpod(nodeName="a"), mknode("a"))
    assert not nodename.fits(mkpod(nodeName="a"), mknode("b"))
    assert nodename.fits(mkpod(), mknode("b"))
    assert not nodeunschedulable.fits(mkpod(), mknode(unschedulable=True))
    tol = [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]
    assert nodeunschedulable.fits(mkpod(tolerations=tol), mknode(unschedulable=True))


def _affinity(*terms: dict[str, Any]) -> dict[str, Any]:
    return {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}
    }


@pytest.mark.parametrize(
    ("spec", "labels", "name", "ok"),
    [
        ({"nodeSelector": {"disk": "ssd"}}, {"disk": "ssd"}, "n", True),
        ({"nodeSelector": {"disk": "ssd"}}, {"disk": "hdd"}, "n", False),
        (
            {
                "affinity": _affinity(
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}
                )
            },
            {"zone": "b"},
            "n",
            True,
        ),
        (
            {
                "affinity": _affinity(
                    {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}
                )
            },
            {},
            "n",
            True,
        ),
        (
            {
                "affinity": _affinity(
                    {"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["3"]}]}
                )
            },
            {"gen": "4"},
            "n",
            True,
        ),
        (
            {
                "affinity": _affinity(
                    {"matchExpressions": [{"key": "gen", "operator": "Lt", "values": ["3"]}]}
                )
            },
            {"gen": "4"},
            "n",
            False,
        ),
        (
            {
                "affinity": _affinity(
                    {"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]},
                    {"matchExpressions": [{"key": "y", "operator": "Exists"}]},
                )
            },
            {"x": "1"},
            "n",
            False,
        ),
        (
            {
                "affinity": _affinity(
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n"]}]}
                )
            },
            {},
            "n",
            True,
        ),
        (
            {
                "affinity": _affinity(
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["m"]}]}
                )
            },
            {},
            "n",
            False,
        ),
        ({"affinity": _affinity({})}, {}, "n", False),  # an empty term matches nothing
    ],
)
def test_node_affinity(spec: dict[str, Any], labels: dict[str, str], name: str, ok: bool) -> None:
    assert nodeaffinity.fits({"spec": spec}, labels, name) is ok


def test_node_affinity_preferred_score() -> None:
    terms = [
        {"weight": 5, "preference": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}},
        {"weight": 3, "preference": {"matchExpressions": [{"key": "b", "operator": "Exists"}]}},
    ]
    assert nodeaffinity.preferred_score(terms, {"a": "1", "b": "2"}, "n") == 8
    assert nodeaffinity.preferred_score(terms, {"b": "2"}, "n") == 3


def test_resources_fit() -> None:
    node = mknode(cpu="2", memory="1Gi", pods=2)
    assert noderesources.insufficient(mkpod(containers=[req("1500m")]), node) == []
    node.add_pod(mkpod(containers=[req("1")]))
    assert noderesources.insufficient(mkpod(containers=[req("1500m", "2Gi")]), node) == [
        "Insufficient cpu",
        "Insufficient memory",
    ]
    node.add_pod(mkpod())
    assert noderesources.insufficient(mkpod(), node) == ["Too many pods"]
    gpu = mkpod(containers=[req(**{"nvidia.com/gpu": "1"})])
    assert noderesources.insufficient(gpu, mknode()) == ["Insufficient nvidia.com/gpu"]


def test_least_and_most_allocated() -> None:
    assert noderesources.least_allocated(1, 4) == 75
    assert noderesources.most_allocated(1, 4) == 25
    assert noderesources.least_allocated(5, 4) == 0
    empty, busy = (
        mknode("empty"),
        mknode("busy", None, None, "4", "8Gi", 110, False, mkpod(containers=[req("3")])),
    )
    pod = mkpod(containers=[req("100m", "100Mi")])
    least = noderesources.NodeResourcesFit()
    most = noderesources.NodeResourcesFit("MostAllocated")
    assert least.score({}, pod, empty) > least.score({}, pod, busy)
    assert most.score({}, pod, empty) < most.score({}, pod, busy)


def test_host_ports() -> None:
    web = [{"name": "c", "image": "i", "ports": [{"containerPort": 80, "hostPort": 8080}]}]
    udp = [{"name": "c", "image": "i", "ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}]}]
    ip = [
        {"name": "c", "image": "i", "ports": [{"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.1"}]}
    ]
    node = mknode("n", None, None, "4", "8Gi", 110, False, mkpod(containers=web))
    assert not nodeports.fits(mkpod(containers=web), node)
    assert nodeports.fits(mkpod(containers=udp), node)
    assert not nodeports.fits(mkpod(containers=ip), node)  # 0.0.0.0 conflicts with every address
    other = mknode("n", None, None, "4", "8Gi", 110, False, mkpod(containers=ip))
    ip2 = [
        {"name": "c", "image": "i", "ports": [{"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.2"}]}
    ]
    assert nodeports.fits(mkpod(containers=ip2), other)


def _snap(*nodes: NodeInfo, ns_labels: dict[str, dict[str, str]] | None = None) -> Snapshot:
    return Snapshot(list(nodes), lambda ns: (ns_labels or {}).get(ns))


def _term(key: str, **match: str) -> dict[str, Any]:
    return {"labelSelector": {"matchLabels": match}, "topologyKey": key}


def test_inter_pod_affinity() -> None:
    db = mkpod("db", labels={"app": "db"})
    a = mknode("a", {"zone": "z1"}, None, "4", "8Gi", 110, False, db)
    b = mknode("b", {"zone": "z2"})
    snap = _snap(a, b)
    near = mkpod(
        affinity={
            "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [_term("zone", app="db")]}
        }
    )
    s = interpodaffinity.pre_filter(near, snap)
    assert interpodaffinity.fits(s, a) is None
    st = interpodaffinity.fits(s, b)
    assert st is not None and st.reasons == ("node(s) didn't match pod affinity rules",)
    away = mkpod(
        affinity={
            "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [_term("zone", app="db")]}
        }
    )
    s = interpodaffinity.pre_filter(away, snap)
    st = interpodaffinity.fits(s, a)
    assert st is not None and st.reasons == ("node(s) didn't match pod anti-affinity rules",)
    assert interpodaffinity.fits(s, b) is None
    # Another namespace is not matched unless named or selected.
    other_ns = mkpod(
        ns="other",
        affinity={
            "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [_term("zone", app="db")]}
        },
    )
    assert interpodaffinity.fits(interpodaffinity.pre_filter(other_ns, snap), a) is not None
    sel = mkpod(
        ns="other",
        affinity={
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {**_term("zone", app="db"), "namespaceSelector": {"matchLabels": {"team": "x"}}}
                ]
            }
        },
    )
    snap2 = _snap(a, b, ns_labels={"default": {"team": "x"}})
    assert interpodaffinity.fits(interpodaffinity.pre_filter(sel, snap2), a) is None


def test_existing_anti_affinity_and_self_affinity() -> None:
    guard = mkpod(
        "guard",
        affinity={
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [_term("kubernetes.io/hostname", app="web")]
            }
        },
    )
    a = mknode("a", {"kubernetes.io/hostname": "a"}, None, "4", "8Gi", 110, False, guard)
    b = mknode("b", {"kubernetes.io/hostname": "b"})
    s = interpodaffinity.pre_filter(mkpod(labels={"app": "web"}), _snap(a, b))
    st = interpodaffinity.fits(s, a)
    assert st is not None and st.reasons == ("node(s) didn't satisfy existing pods anti-affinity rules",)
    assert interpodaffinity.fits(s, b) is None
    first = mkpod(
        labels={"app": "x"},
        affinity={
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [_term("kubernetes.io/hostname", app="x")]
            }
        },
    )
    assert interpodaffinity.fits(interpodaffinity.pre_filter(first, _snap(a, b)), b) is None


def test_inter_pod_preferred_scores() -> None:
    db = mkpod("db", labels={"app": "db"})
    a = mknode("a", {"zone": "z1"}, None, "4", "8Gi", 110, False, db)
    b = mknode("b", {"zone": "z2"})
    pod = mkpod(
        affinity={
            "podAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 10, "podAffinityTerm": _term("zone", app="db")}
                ]
            }
        }
    )
    scores = interpodaffinity.topology_scores(pod, _snap(a, b))
    assert interpodaffinity.node_score(scores, a) == 10
    assert interpodaffinity.node_score(scores, b) == 0


def test_topology_spread() -> None:
    tsc = [
        {
            "maxSkew": 1,
            "topologyKey": "zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "s"}},
        }
    ]
    s1, s2 = mkpod(labels={"app": "s"}), mkpod(labels={"app": "s"})
    a = mknode("a", {"zone": "z1"}, None, "4", "8Gi", 110, False, s1, s2)
    b = mknode("b", {"zone": "z2"})
    c = mknode("c", {})
    pod = mkpod(labels={"app": "s"}, topologySpreadConstraints=tsc)
    counts = podtopologyspread.count(pod, _snap(a, b, c), podtopologyspread.constraints(pod, "DoNotSchedule"))
    st = podtopologyspread.fits(counts, pod, a)
    assert st is not None and st.reasons == ("node(s) didn't match pod topology spread constraints",)
    assert podtopologyspread.fits(counts, pod, b) is None
    st = podtopologyspread.fits(counts, pod, c)
    assert st is not None and st.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert st.reasons == ("node(s) didn't match pod topology spread constraints (missing required label)",)
    # minDomains above the number of domains makes the global minimum 0.
    tsc3 = [{**tsc[0], "minDomains": 3, "maxSkew": 2}]
    pod3 = mkpod(labels={"app": "s"}, topologySpreadConstraints=tsc3)
    counts = podtopologyspread.count(pod3, _snap(a, b), podtopologyspread.constraints(pod3, "DoNotSchedule"))
    assert podtopologyspread.fits(counts, pod3, a) is not None  # 2 + 1 - 0 > 2


def test_fit_error_message_format() -> None:
    fw = Framework(default_plugins())
    nodes = [
        mknode("a", taints=[{"key": "key", "value": "value", "effect": "NoSchedule"}]),
        mknode("b", cpu="1"),
        mknode("c", cpu="1"),
    ]
    d = Diagnosis()
    found = fw.find_feasible({}, mkpod(containers=[req("2")]), _snap(*nodes), d)
    assert found is not None and found[0] == []
    assert fit_error_message(3, d) == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {key: value}, 2 Insufficient cpu."
    )


def test_num_feasible_nodes_to_find() -> None:
    assert num_feasible_nodes_to_find(50) == 50
    assert num_feasible_nodes_to_find(1000) == 420  # 50% - 1000/125
    assert num_feasible_nodes_to_find(10000) == 500  # at least 5%
    assert num_feasible_nodes_to_find(200, 10) == 100  # never fewer than 100


def test_nodes_left_out_by_a_pre_filter() -> None:
    fw = Framework(default_plugins())
    only_b = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b"]}]}
                ]
            }
        }
    }
    d = Diagnosis()
    pod = mkpod(containers=[req("8")], affinity=only_b)
    found = fw.find_feasible({}, pod, _snap(mknode("a"), mknode("b"), mknode("c")), d)
    assert found is not None and found[0] == []
    assert fit_error_message(3, d) == (
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) [NodeAffinity]."
    )


def test_fit_filter_until_agrees_with_filter() -> None:
    """The inlined loop of NodeResourcesFit gives the nodes and reasons its per-node filter gives."""
    fit = noderesources.NodeResourcesFit()
    nodes = [mknode(name=f"n{i}", cpu="2", memory="1Gi", pods=3) for i in range(6)]
    for i, n in enumerate(nodes):
        for _ in range(i % 4):
            n.add_pod(mkpod(containers=[req("600m", "300Mi")]))
    overcommitted = mknode(name="over", cpu="1", pods=5)
    overcommitted.add_pod(mkpod(containers=[req("2")]))
    nodes.append(overcommitted)
    for pod in (mkpod(containers=[req("500m", "200Mi")]), mkpod(), mkpod(containers=[req("1")])):
        expected = [n for n in nodes if fit.filter({}, pod, n) is None]
        statuses: dict[str, Any] = {}
        feasible, checked = fit.filter_until({}, pod, nodes, len(nodes), statuses)
        assert feasible == expected and checked == len(nodes)
        assert statuses == {n.name: fit.filter({}, pod, n) for n in nodes if n not in expected}
        few, checked = fit.filter_until({}, pod, nodes, 1, {})
        assert few == expected[:1] and checked == nodes.index(expected[0]) + 1
