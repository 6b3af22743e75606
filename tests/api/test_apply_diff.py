"""managedFields' comparison descends only where objects differ: it must find exactly what comparing the two
objects' whole field sets finds (SMD's Compare, the straightforward computation kept here as reference)."""

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyk8s.api import apply
from pyk8s.api.apply import _NODE, _compare, _differs, _paths, track_update
from pyk8s.api.catalog import by_kind
from pyk8s.api.defaults import apply_defaults
from pyk8s.api.patch.meta import definition_for

POD = by_kind("", "Pod")
DEPLOYMENT = by_kind("apps", "Deployment")
DEFINITIONS = [definition_for("", "Pod"), definition_for("apps", "Deployment"),
               definition_for("", "ConfigMap"), None]


def reference(old, new, definition):
    after = _paths(new, definition, True)
    before = _paths(old, definition, True) if old else {}
    added = {p for p in after if p not in before}
    removed = {p for p in before if p not in after}
    modified = {p for p, v in after.items() if p in before and v is not _NODE and _differs(v, before[p])}
    return added, modified, removed


def pod():
    p = {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "a"}, "finalizers": ["x"],
                      "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {}}}]},
         "spec": {"containers": [{"name": "c", "image": "busybox", "ports": [
                      {"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
                                  "env": [{"name": "A", "value": "1"}],
                                  "resources": {"requests": {"cpu": "1"}}}],
                  "nodeSelector": {"disk": "ssd"}}}
    apply_defaults(POD, p)
    p["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "c", "ready": True, "restartCount": 0}]}
    return p


def deployment():
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "w"}},
                  "template": {"metadata": {"labels": {"app": "w"}},
                               "spec": {"containers": [{"name": "w", "image": "nginx"}]}}}}
    apply_defaults(DEPLOYMENT, d)
    return d


NAMES = ["metadata", "spec", "status", "labels", "annotations", "containers", "name", "image", "ports",
         "containerPort", "protocol", "env", "value", "selector", "matchLabels", "matchExpressions",
         "finalizers", "nodeName", "template", "conditions", "type", "managedFields", "uid", "data",
         "replicas", "resources", "requests"]
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-1, 2), st.sampled_from([0.0, -0.0, 1.0, 0.5]),
                   st.sampled_from(["", "a", "b", "TCP", "UDP"]))


def _extend(children):
    named = st.fixed_dictionaries({"name": st.sampled_from(["a", "b", "c"])},
                                  optional={"image": children, "value": children, "ports": children})
    port = st.fixed_dictionaries({"containerPort": st.sampled_from([53, 80, 80.0])},
                                 optional={"protocol": st.sampled_from(["TCP", "UDP"])})
    return st.one_of(st.lists(children, max_size=3),
                     st.dictionaries(st.sampled_from(NAMES), children, max_size=4),
                     st.lists(named, max_size=3), st.lists(port, max_size=3))


VALUES = st.recursive(LEAVES, _extend, max_leaves=12)
OBJECTS = st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=5)
PORT = st.fixed_dictionaries({"containerPort": st.sampled_from([53, 80])},
                             optional={"protocol": st.sampled_from(["TCP", "UDP"]), "name": LEAVES})
PORTS = st.lists(PORT, max_size=3, unique_by=lambda p: (p["containerPort"], p.get("protocol", "TCP")))
CONTAINER = st.fixed_dictionaries(
    {"name": st.sampled_from(["a", "b", "c"])},
    optional={"image": LEAVES, "ports": PORTS,
              "env": st.lists(st.fixed_dictionaries({"name": st.sampled_from(["A", "B"])},
                                                    optional={"value": LEAVES}), max_size=3),
              "resources": st.dictionaries(st.sampled_from(["requests", "limits"]),
                                           st.dictionaries(st.sampled_from(["cpu", "memory"]), LEAVES))})
# Pods whose lists are associative (containers by name, ports by port and protocol, conditions by type).
CONDITION = st.fixed_dictionaries({"type": st.sampled_from(["Ready", "PodScheduled"])},
                                  optional={"status": LEAVES})
CONTAINERS = st.lists(CONTAINER, min_size=1, max_size=3, unique_by=lambda c: c["name"])
CONDITIONS = st.lists(CONDITION, min_size=1, max_size=2, unique_by=lambda c: c["type"])
PODS = st.fixed_dictionaries({"spec": st.fixed_dictionaries({"containers": CONTAINERS}),
                              "status": st.fixed_dictionaries({"conditions": CONDITIONS})})


def mutate(data, value):
    """A copy of `value` with random subtrees kept, dropped, replaced or changed further."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            choice = data.draw(st.integers(0, 5))
            if choice == 0:
                continue
            if choice == 1:
                out[k] = data.draw(VALUES)
            else:
                out[k] = mutate(data, v) if choice == 2 else copy.deepcopy(v)
        if data.draw(st.booleans()):
            out[data.draw(st.sampled_from(NAMES))] = data.draw(VALUES)
        return out
    if isinstance(value, list):
        out = [mutate(data, v) if data.draw(st.integers(0, 3)) == 0 else copy.deepcopy(v) for v in value]
        if out and data.draw(st.integers(0, 4)) == 0:
            out.reverse()
        return out
    return data.draw(VALUES) if data.draw(st.integers(0, 4)) == 0 else value


def point(data, value):
    """`value` with one subtree, somewhere deep, dropped, replaced or given one more field (shared with
    `value` elsewhere, as an update's unchanged parts may be)."""
    if isinstance(value, dict) and value and data.draw(st.integers(0, 4)):
        name = data.draw(st.sampled_from(sorted(value)))
        return {**value, name: point(data, value[name])}
    if isinstance(value, list) and value and data.draw(st.integers(0, 4)):
        i = data.draw(st.integers(0, len(value) - 1))
        return [*value[:i], point(data, value[i]), *value[i + 1:]]
    choice = data.draw(st.integers(0, 2))
    if choice == 0 and isinstance(value, dict):
        return {**value, data.draw(st.sampled_from(NAMES)): data.draw(VALUES)}
    if choice == 0 and isinstance(value, list):
        return [e for e in value if data.draw(st.booleans())]
    return None if choice == 1 else data.draw(VALUES)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_comparison_finds_what_comparing_whole_field_sets_finds(data):
    base = data.draw(st.sampled_from(["pod", "deployment", "random", "lists", "lists"]))
    old = pod() if base == "pod" else deployment() if base == "deployment" else \
        data.draw(PODS) if base == "lists" else data.draw(OBJECTS)
    if data.draw(st.booleans()):
        new = mutate(data, old)
    else:
        new = old
        for _ in range(data.draw(st.integers(1, 3))):
            new = point(data, new)
        if data.draw(st.booleans()):
            new = copy.deepcopy(new)
        if not isinstance(new, dict):  # objects are objects
            new = {}
    definition = DEFINITIONS[0] if base == "lists" else data.draw(st.sampled_from(DEFINITIONS))
    assert _compare(old, new, definition) == reference(old, new, definition)
    assert _compare(new, old, definition) == reference(new, old, definition)
    for _ in range(2):  # a create, and one whose subtrees' paths are remembered
        assert _compare({}, new, definition) == reference({}, new, definition)


def test_an_update_of_one_field_moves_only_that_field():
    old = pod()
    del old["metadata"]["managedFields"]
    track_update(POD, None, old, "creator")
    new = copy.deepcopy(old)
    new["spec"]["nodeName"] = "n1"
    track_update(POD, old, new, "scheduler")
    entries = {e["manager"]: e["fieldsV1"] for e in new["metadata"]["managedFields"]}
    assert entries["scheduler"] == {"f:spec": {"f:nodeName": {}}}
    before = {e["manager"]: e["fieldsV1"] for e in old["metadata"]["managedFields"]}
    assert entries["creator"] == before["creator"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.data())
def test_track_update_writes_what_the_whole_set_comparison_writes(monkeypatch, data):
    """A create and a chain of updates by several managers (status ones too): managedFields as written with
    the reference comparison and without the decode and encode caches' help."""
    monkeypatch.setattr(apply, "now_rfc3339", lambda: "2026-01-01T00:00:00Z")
    old = pod() if data.draw(st.booleans()) else {"apiVersion": "v1", "kind": "Pod", **data.draw(PODS)}
    old["metadata"] = {"name": "p"}
    writes = [(copy.deepcopy(old), "creator", "")]
    current = old
    for _ in range(data.draw(st.integers(1, 4))):
        new = current
        for _ in range(data.draw(st.integers(1, 2))):
            new = point(data, new)
        if not isinstance(new, dict):
            new = {}
        writes.append((new, data.draw(st.sampled_from(["a", "b", "kubelet"])),
                       data.draw(st.sampled_from(["", "status"]))))
        current = new

    def run(compare):
        monkeypatch.setattr(apply, "_compare", compare)
        out, live = [], None
        for after, manager, subresource in writes:
            obj = copy.deepcopy(after)
            if live is not None:
                obj.setdefault("metadata", {})
                if isinstance(obj["metadata"], dict):
                    obj["metadata"]["managedFields"] = copy.deepcopy(_managed(live))
            track_update(POD, live, obj, manager, subresource=subresource)
            out.append(copy.deepcopy(_managed(obj)))
            live = obj
        return out

    optimised = run(apply._compare)
    for cache in ("_DECODED", "_ENCODED", "_SUBTREES"):
        monkeypatch.setattr(apply, cache, _Forgetful())
    assert run(reference) == optimised


class _Forgetful(dict):
    def __setitem__(self, key, value):
        pass


def _managed(obj):
    meta = obj.get("metadata")
    return meta.get("managedFields") if isinstance(meta, dict) else None


def test_a_large_subtree_is_walked_not_kept(monkeypatch):
    monkeypatch.setattr(apply, "_SUBTREES", {})
    definition = definition_for("", "ConfigMap")
    small = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"}}
    large = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "x" * (apply._SUBTREE_MAX_BYTES + 1)}}
    for obj in (small, large):
        assert _compare({}, obj, definition) == reference({}, obj, definition)
    assert [(key[1], key[2]) for key in apply._SUBTREES] == [("data", b'{"a":"1"}')]
