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
another real node."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

import orjson

from pyk8s.api import catalog
from pyk8s.api.resource import ResourceInfo
from pyk8s.apiserver.auth.resources import GetObject, fetch
from pyk8s.apiserver.interfaces import Attributes, Authorizer, Decision, Obj, ObjectLister, UserInfo

__all__ = ["HOLLOW_LABEL", "NODE_LEASE_NAMESPACE", "NodeAuthorizer", "NodeScope", "node_identity"]

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


class NodeScope:
    """Which nodes an identity speaks for (see the module doc on hollow nodes)."""

    def __init__(self, get_object: GetObject) -> None:
        self.get_object = get_object

    def may_be_hollow(self, identity: str, node_name: str) -> bool:
        return re.fullmatch(re.escape(identity) + r"-\d+", node_name) is not None

    async def speaks_for(self, identity: str, node_name: str) -> bool:
        if not node_name:
            return False
        if node_name == identity:
            return True
        if not self.may_be_hollow(identity, node_name):
            return False
        node = await fetch(self.get_object, _info("", "nodes"), "", node_name)
        return node is None or (node.get("metadata", {}).get("labels") or {}).get(HOLLOW_LABEL[0]) \
            == HOLLOW_LABEL[1]


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


class NodeAuthorizer:
    """Chained before RBAC: `NodeAuthorizer(rbac, get_object, lister)` is the whole authorizer.

    `raw_pods`, when given, reads the cached pods still encoded: each pod is decoded and summarised once
    per change instead of on every kubelet request (a TokenRequest or a configMap read of each pod
    otherwise decoded every pod of the cluster: quadratic in a burst)."""

    def __init__(self, delegate: Authorizer, get_object: GetObject, lister: ObjectLister,
                 raw_pods: RawPods | None = None) -> None:
        self.delegate = delegate
        self.get_object = get_object
        self.lister = lister
        self.raw_pods = raw_pods
        self.scope = NodeScope(get_object)
        self._summaries: dict[str, tuple[bytes, PodSummary]] = {}

    async def authorize(self, attributes: Attributes) -> Decision:
        identity = node_identity(attributes.user)
        if identity is not None and attributes.is_resource_request:
            refusal = await self._refusal(identity, attributes)
            if refusal:
                return Decision(False, f'node "{identity}" {refusal}', denied=True)
        return await self.delegate.authorize(attributes)

    def _all_pods(self) -> Iterable[PodSummary]:
        raw = self.raw_pods() if self.raw_pods is not None else None
        if raw is None:
            return [summarize(p) for p in self.lister(_info("", "pods"))]
        known, fresh = self._summaries, {}
        for key, data in raw.items():
            seen = known.get(key)
            if seen is None or seen[0] is not data:
                seen = (data, summarize(orjson.loads(data)))
            fresh[key] = seen
        self._summaries = fresh  # deleted pods drop out
        return [summary for _, summary in fresh.values()]

    async def _pods_of(self, identity: str) -> list[PodSummary]:
        """Pods bound to the nodes this identity speaks for."""
        out, verdicts = [], {identity: True}
        for pod in self._all_pods():
            node_name = pod.node_name
            if node_name not in verdicts:
                verdicts[node_name] = self.scope.may_be_hollow(identity, node_name) \
                    and await self.scope.speaks_for(identity, node_name)
            if verdicts[node_name]:
                out.append(pod)
        return out

    async def _referenced(self, identity: str, namespace: str, resource: str, name: str) -> bool:
        return any(p.namespace == namespace and (resource, name) in p.references
                   for p in await self._pods_of(identity))

    async def _bound_pod(self, identity: str, namespace: str, name: str) -> bool:
        pod = await fetch(self.get_object, _info("", "pods"), namespace, name)
        node_name = (pod.get("spec") or {}).get("nodeName", "") if pod is not None else ""
        return await self.scope.speaks_for(identity, node_name)

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
