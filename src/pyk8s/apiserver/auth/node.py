"""The Node authorizer: what a kubelet (`system:node:<name>` in `system:nodes`) may touch.

As Kubernetes' node authorizer, a node reaches only its own things:
- its Node (by name; creating one is left to NodeRestriction admission, which checks the name) and its
  Lease in `kube-node-lease`;
- secrets, configmaps and persistentvolumeclaims — get, or list/watch of one object by name — only when a
  pod bound to the node references them (volumes, projected sources, env, envFrom, imagePullSecrets), and
  persistentvolumes bound to such a claim;
- service account tokens only for service accounts of pods bound to it;
- pods it changes (delete, status, eviction) only when bound to it. Reading pods stays open: Kubernetes
  lets a node list and watch pods with a spec.nodeName field selector, which the attributes do not carry.
Everything else falls through to RBAC (which grants the `system:node` role to the group). A node request
this authorizer refuses is an explicit deny, so RBAC's group binding cannot grant it back.

Hollow nodes: `pyk8s agent --hollow` holds one certificate, `system:node:<prefix>`, for the nodes
`<prefix>-0 …`. An identity `system:node:P` therefore also speaks for a node named `P-<digits>` whose
Node object carries the hollow label `type=hollow` (or that does not exist yet: NodeRestriction then
requires the new Node to carry that label). A real node's identity is its exact name, so it never reaches
another real node.

Both checks run on every kubelet write (a hollow agent's pod status patch asks whose pod it is and
whether its node is hollow, in the authorizer and again in NodeRestriction). `NodeFacts` answers them from
the watch cache's encoded objects, decoding each object once per version instead of once per question."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Generic, NamedTuple, TypeVar

import orjson

from pyk8s.api import catalog
from pyk8s.api.resource import ResourceInfo
from pyk8s.apiserver.auth.resources import GetObject, fetch
from pyk8s.apiserver.interfaces import Attributes, Authorizer, Decision, Obj, ObjectLister, UserInfo

__all__ = ["HOLLOW_LABEL", "NODE_LEASE_NAMESPACE", "NodeAuthorizer", "NodeFacts", "NodeScope", "RawObject",
           "node_identity"]

NODE_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
NODE_LEASE_NAMESPACE = "kube-node-lease"
HOLLOW_LABEL = ("type", "hollow")
_READ_ONE = frozenset({"get", "list", "watch"})


def node_identity(user: UserInfo) -> str | None:
    """The node a user is, or None for anyone else."""
    if user.name.startswith(NODE_PREFIX) and NODES_GROUP in user.groups:
        return user.name[len(NODE_PREFIX):] or None
    return None


def _info(group: str, plural: str) -> ResourceInfo:
    info = catalog.lookup(group, "v1", plural)
    assert info is not None, plural
    return info


T = TypeVar("T")

# The watch cache's encoded object, by (the resource's storage prefix, the object's storage key); None
# when the cache does not hold it. A changed object is a new bytes object, so the identity of the bytes
# tells one version from another.
RawObject = Callable[[str, str], "bytes | None"]

NODE_MEMO_LIMIT = 16384  # every node of a large cluster: a node's verdict is asked of again and again
POD_MEMO_LIMIT = 1024  # pods change on most writes: this only spares a second decode of one version


class _Memo(Generic[T]):
    """storage key → (the bytes a value was derived from, the value), at most `limit` keys, the least
    recently derived dropped first. It holds the bytes it saw, so a stale entry is never mistaken for the
    current version (ids of freed objects are reused; the bytes kept here are not freed)."""

    __slots__ = ("entries", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.entries: dict[str, tuple[bytes, T]] = {}

    def get(self, key: str, raw: bytes, derive: Callable[[Obj], T]) -> T:
        seen = self.entries.get(key)
        if seen is not None and seen[0] is raw:
            return seen[1]
        value = derive(orjson.loads(raw))
        entries = self.entries
        entries.pop(key, None)
        if len(entries) >= self.limit:
            del entries[next(iter(entries))]
        entries[key] = (raw, value)
        return value


def _pod_node(pod: Obj) -> str:
    return (pod.get("spec") or {}).get("nodeName") or ""


def _is_hollow(node: Obj) -> bool:
    labels = (node.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(HOLLOW_LABEL[0]) == HOLLOW_LABEL[1])


class NodeFacts:
    """What the node checks need of a pod (its node) and of a node (is it hollow), derived once per
    cached version; an object the cache does not hold (not yet caught up, or no cache) is read with
    `get_object` and not remembered. One instance is shared by the authorizer and NodeRestriction."""

    def __init__(self, get_object: GetObject, raw_object: RawObject | None = None, *,
                 node_limit: int = NODE_MEMO_LIMIT, pod_limit: int = POD_MEMO_LIMIT) -> None:
        self.get_object = get_object
        self.raw_object = raw_object
        self._nodes: _Memo[bool] = _Memo(node_limit)
        self._pods: _Memo[str] = _Memo(pod_limit)
        self._node_info, self._pod_info = _info("", "nodes"), _info("", "pods")
        self._node_prefix = self._node_info.storage_prefix()
        self._pod_prefix = self._pod_info.storage_prefix()

    async def _derived(self, memo: _Memo[T], info: ResourceInfo, prefix: str, namespace: str, name: str,
                       derive: Callable[[Obj], T]) -> T | None:
        if self.raw_object is not None:
            key = info.storage_key(namespace if info.namespaced else None, name)
            raw = self.raw_object(prefix, key)
            if raw is not None:
                return memo.get(key, raw, derive)
        obj = await fetch(self.get_object, info, namespace, name)
        return None if obj is None else derive(obj)

    async def pod_node(self, namespace: str, name: str) -> str | None:
        """The node a pod is bound to ("" when unbound), None when there is no such pod."""
        return await self._derived(self._pods, self._pod_info, self._pod_prefix, namespace, name, _pod_node)

    async def node_hollow(self, name: str) -> bool | None:
        """Whether a Node carries the hollow label, None when there is no such Node."""
        return await self._derived(self._nodes, self._node_info, self._node_prefix, "", name, _is_hollow)


class NodeScope:
    """Which nodes an identity speaks for (see the module doc on hollow nodes)."""

    def __init__(self, get_object: GetObject, facts: NodeFacts | None = None) -> None:
        self.get_object = get_object
        self.facts = facts if facts is not None else NodeFacts(get_object)

    def may_be_hollow(self, identity: str, node_name: str) -> bool:
        """`<identity>-<digits>` (as the pattern `-\\d+`: isdecimal is Unicode's Nd, as `\\d` is)."""
        prefix = identity + "-"
        return node_name.startswith(prefix) and node_name[len(prefix):].isdecimal()

    async def speaks_for(self, identity: str, node_name: str) -> bool:
        if not node_name:
            return False
        if node_name == identity:
            return True
        if not self.may_be_hollow(identity, node_name):
            return False
        return await self.facts.node_hollow(node_name) is not False  # a Node not there yet: see the doc


def _containers(spec: Obj) -> Iterable[Obj]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(key) or []


def references(pod: Obj) -> set[tuple[str, str]]:
    """(resource, name) of every secret, configmap and claim a pod uses, as the node graph records."""
    spec = pod.get("spec") or {}
    out: set[tuple[str, str]] = set()

    def add(resource: str, name: object) -> None:
        if isinstance(name, str) and name:
            out.add((resource, name))

    for s in spec.get("imagePullSecrets") or []:
        add("secrets", s.get("name"))
    for v in spec.get("volumes") or []:
        add("secrets", (v.get("secret") or {}).get("secretName"))
        add("configmaps", (v.get("configMap") or {}).get("name"))
        add("persistentvolumeclaims", (v.get("persistentVolumeClaim") or {}).get("claimName"))
        for src in (v.get("projected") or {}).get("sources") or []:
            add("secrets", (src.get("secret") or {}).get("name"))
            add("configmaps", (src.get("configMap") or {}).get("name"))
        for key in ("cephfs", "cinder", "flexVolume", "iscsi", "rbd", "scaleIO", "storageos", "csi"):
            ref = (v.get(key) or {}).get("secretRef") or (v.get(key) or {}).get("nodePublishSecretRef")
            add("secrets", (ref or {}).get("name"))
        add("secrets", (v.get("azureFile") or {}).get("secretName"))
    for c in _containers(spec):
        for env in c.get("env") or []:
            source = env.get("valueFrom") or {}
            add("secrets", (source.get("secretKeyRef") or {}).get("name"))
            add("configmaps", (source.get("configMapKeyRef") or {}).get("name"))
        for env_from in c.get("envFrom") or []:
            add("secrets", (env_from.get("secretRef") or {}).get("name"))
            add("configmaps", (env_from.get("configMapRef") or {}).get("name"))
    return out


class PodSummary(NamedTuple):
    """What the authorizer needs of a pod: the node graph's edges from it."""

    node_name: str
    namespace: str
    service_account: str
    references: frozenset[tuple[str, str]]


def summarize(pod: Obj) -> PodSummary:
    spec = pod.get("spec") or {}
    return PodSummary(spec.get("nodeName") or "", (pod.get("metadata") or {}).get("namespace") or "",
                      spec.get("serviceAccountName") or "default", frozenset(references(pod)))


# The pods of the watch cache as stored (key → encoded JSON); a changed pod is a new bytes object.
RawPods = Callable[[], Mapping[str, bytes] | None]
# The cached pods' changes after a revision: called with the revision last seen (None at first), it gives
# (the revision now, [(key, bytes, or None when deleted)…] in order), with None for the changes when
# they are no longer all known (read all of `RawPods` then); None when there is no pods cache.
PodChanges = Callable[[int | None], "tuple[int, list[tuple[str, bytes | None]] | None] | None"]


class NodeAuthorizer:
    """Chained before RBAC: `NodeAuthorizer(rbac, get_object, lister)` is the whole authorizer.

    `raw_pods`, when given, reads the cached pods still encoded: each pod is decoded and summarised once
    per change instead of on every kubelet request (a TokenRequest or a configMap read of each pod
    otherwise decoded every pod of the cluster: quadratic in a burst). The summaries are indexed by node,
    so a request looks at the pods of its own nodes only. With `pod_changes` as well, a request applies
    the pods changed since the last one instead of comparing every cached pod (as Kubernetes' node graph
    follows pod events). `facts` (shared with NodeRestriction) answers whose a pod is and whether a node
    is hollow."""

    def __init__(self, delegate: Authorizer, get_object: GetObject, lister: ObjectLister,
                 raw_pods: RawPods | None = None, facts: NodeFacts | None = None,
                 pod_changes: PodChanges | None = None) -> None:
        self.delegate = delegate
        self.get_object = get_object
        self.lister = lister
        self.raw_pods = raw_pods
        self.pod_changes = pod_changes
        self.facts = facts if facts is not None else NodeFacts(get_object)
        self.scope = NodeScope(get_object, self.facts)
        self._summaries: dict[str, tuple[bytes, PodSummary]] = {}
        self._by_node: dict[str, dict[str, PodSummary]] = {}  # node name → key → summary, of _summaries
        self._synced: int | None = None  # the pod_changes revision _summaries is at

    async def authorize(self, attributes: Attributes) -> Decision:
        identity = node_identity(attributes.user)
        if identity is not None and attributes.is_resource_request:
            refusal = await self._refusal(identity, attributes)
            if refusal:
                return Decision(False, f'node "{identity}" {refusal}', denied=True)
        return await self.delegate.authorize(attributes)

    def _pods_by_node(self) -> Mapping[str, Mapping[str, PodSummary]]:
        """Every pod's summary by node name ("" for unbound pods)."""
        delta = self.pod_changes(self._synced) if self.pod_changes is not None else None
        if delta is not None and delta[1] is not None:
            for key, data in delta[1]:
                self._put(key, data)
            self._synced = delta[0]
            return self._by_node
        raw = self.raw_pods() if self.raw_pods is not None else None
        if raw is None:
            index: dict[str, dict[str, PodSummary]] = {}
            for i, pod in enumerate(self.lister(_info("", "pods"))):
                summary = summarize(pod)
                index.setdefault(summary.node_name, {})[str(i)] = summary
            return index
        known, before, kept = self._summaries, len(self._summaries), 0
        for key, data in raw.items():
            kept += key in known
            self._put(key, data)
        if kept < before:  # some known pods are gone from the cache
            for key in known.keys() - raw.keys():
                self._put(key, None)
        self._synced = delta[0] if delta is not None else None
        return self._by_node

    def _put(self, key: str, data: bytes | None) -> None:
        """Index a pod's current bytes (None: deleted); unchanged bytes are not decoded again."""
        seen = self._summaries.get(key)
        if seen is not None:
            if seen[0] is data:
                return
            self._unindex(key, seen[1])
            del self._summaries[key]
        if data is not None:
            summary = summarize(orjson.loads(data))
            self._summaries[key] = (data, summary)
            self._by_node.setdefault(summary.node_name, {})[key] = summary

    def _unindex(self, key: str, summary: PodSummary) -> None:
        pods = self._by_node.get(summary.node_name)
        if pods is not None:
            pods.pop(key, None)
            if not pods:
                del self._by_node[summary.node_name]

    async def _pods_of(self, identity: str) -> list[PodSummary]:
        """Pods bound to the nodes this identity speaks for."""
        index = self._pods_by_node()
        out = list((index.get(identity) or {}).values())
        # A snapshot: speaks_for may wait on the store while another request updates the index.
        for node_name, pods in list(index.items()):
            if node_name != identity and self.scope.may_be_hollow(identity, node_name) \
                    and await self.scope.speaks_for(identity, node_name):
                out.extend(list(pods.values()))
        return out

    async def _referenced(self, identity: str, namespace: str, resource: str, name: str) -> bool:
        return any(p.namespace == namespace and (resource, name) in p.references
                   for p in await self._pods_of(identity))

    async def _bound_pod(self, identity: str, namespace: str, name: str) -> bool:
        return await self.scope.speaks_for(identity, await self.facts.pod_node(namespace, name) or "")

    async def _refusal(self, identity: str, a: Attributes) -> str:
        """Why this node may not do it, "" when it may (as far as this authorizer cares)."""
        group, resource, sub, verb, name = a.api_group, a.resource, a.subresource, a.verb, a.name
        if group == "" and resource in ("secrets", "configmaps", "persistentvolumeclaims") and not sub:
            if verb not in _READ_ONE or not name:
                return f"may only get a {resource[:-1]} by name"
            if not await self._referenced(identity, a.namespace, resource, name):
                return f"has no relationship with {resource[:-1]} {a.namespace}/{name}"
            return ""
        if group == "" and resource == "persistentvolumes" and not sub:
            if verb not in _READ_ONE or not name:
                return "may only get a persistentvolume by name"
            for pod in await self._pods_of(identity):
                for kind, claim in pod.references:
                    if kind != "persistentvolumeclaims":
                        continue
                    pvc = await fetch(self.get_object, _info("", "persistentvolumeclaims"), pod.namespace,
                                      claim)
                    if pvc is not None and (pvc.get("spec") or {}).get("volumeName") == name:
                        return ""
            return f"has no relationship with persistentvolume {name}"
        if group == "" and resource == "serviceaccounts" and sub == "token":
            used = any(p.namespace == a.namespace and p.service_account == name
                       for p in await self._pods_of(identity))
            return "" if used else f"has no pod using service account {a.namespace}/{name}"
        if group == "coordination.k8s.io" and resource == "leases":
            if a.namespace != NODE_LEASE_NAMESPACE:
                return f"may only use leases in {NODE_LEASE_NAMESPACE}"
            if name and not await self.scope.speaks_for(identity, name):
                return f"may only use its own lease, not {name}"
            if not name and verb not in ("create",):
                return "may only use its own lease"
            return ""
        if group == "" and resource == "nodes":
            if name and not await self.scope.speaks_for(identity, name):
                return f"may not {verb} node {name}"
            if not name and verb not in ("create", "list", "watch"):
                return f"may not {verb} all nodes"
            return ""
        changes_pod = sub in ("status", "eviction") or verb in ("update", "patch", "delete")
        if group == "" and resource == "pods" and name and changes_pod \
                and not await self._bound_pod(identity, a.namespace, name):
            return f"may only change pods bound to it, not {a.namespace}/{name}"
        return ""
