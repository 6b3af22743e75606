"""NodeRestriction admission: what a kubelet may write, after the Node authorizer let the request in.

As Kubernetes' plugin of that name, for users `system:node:<name>` in `system:nodes`:
- pods: a node creates only mirror pods (annotation `kubernetes.io/config.mirror`) bound to itself and
  using no secrets, configmaps, claims or service account; it updates only the status of pods bound to it
  (never their spec or metadata) and deletes or evicts only pods bound to it;
- nodes: a node creates and changes only its own Node; it may not change its taints once created, nor
  add, change or remove labels under `node-restriction.kubernetes.io/`;
- leases: only its own, in `kube-node-lease`.
The hollow agent's one identity speaks for its hollow nodes `<prefix>-N` (see `auth/node.py`); a Node it
creates under such a name must carry the hollow label."""

from __future__ import annotations

from typing import Any

from pyk8s.api import errors
from pyk8s.apiserver.auth.node import (
    HOLLOW_LABEL,
    NODE_LEASE_NAMESPACE,
    NodeFacts,
    NodeScope,
    node_identity,
    references,
)
from pyk8s.apiserver.auth.resources import GetObject
from pyk8s.apiserver.interfaces import AdmissionRequest, Obj

__all__ = ["RESTRICTED_LABEL_PREFIX", "NodeRestriction"]

RESTRICTED_LABEL_PREFIX = "node-restriction.kubernetes.io/"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


def _forbidden(identity: str, message: str) -> errors.StatusError:
    return errors.forbidden(f'node "{identity}" {message}')


def _restricted(labels: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in labels.items() if k.startswith(RESTRICTED_LABEL_PREFIX)
            or k.split("/", 1)[0].endswith("." + RESTRICTED_LABEL_PREFIX.rstrip("/"))}


class NodeRestriction:
    name = "NodeRestriction"

    def __init__(self, get_object: GetObject, facts: NodeFacts | None = None) -> None:
        """`facts`: the Node authorizer's, so a node checked there is not decoded again here."""
        self.scope = NodeScope(get_object, facts)

    async def admit(self, request: AdmissionRequest) -> None:
        return None

    async def validate(self, request: AdmissionRequest) -> None:
        identity = node_identity(request.user)
        if identity is None:
            return
        group, plural = request.resource.group, request.resource.plural
        if group == "" and plural == "pods":
            await self._pod(identity, request)
        elif group == "" and plural == "nodes":
            await self._node(identity, request)
        elif group == "coordination.k8s.io" and plural == "leases":
            name = request.name or ((request.obj or {}).get("metadata") or {}).get("name", "")
            if request.namespace != NODE_LEASE_NAMESPACE or not await self.scope.speaks_for(identity, name):
                raise _forbidden(identity, f"can only access its own lease in {NODE_LEASE_NAMESPACE}")

    async def _bound(self, identity: str, pod: Obj | None) -> bool:
        node_name = (pod.get("spec") or {}).get("nodeName") or "" if pod is not None else ""
        return await self.scope.speaks_for(identity, node_name)

    async def _pod(self, identity: str, r: AdmissionRequest) -> None:
        op, sub = r.operation, r.subresource
        if op == "CREATE" and not sub:
            pod = r.obj or {}
            if MIRROR_ANNOTATION not in ((pod.get("metadata") or {}).get("annotations") or {}):
                raise _forbidden(identity, "can only create mirror pods")
            if not await self._bound(identity, pod):
                raise _forbidden(identity, "can only create pods bound to itself")
            spec = pod.get("spec") or {}
            if spec.get("serviceAccountName") or references(pod):
                raise _forbidden(identity, "can not create pods that reference secrets, configmaps, "
                                           "persistentvolumeclaims or service accounts")
        elif op == "CREATE" and sub == "eviction":  # admission sees the Eviction, not the pod
            node_name = await self.scope.facts.pod_node(r.namespace, r.name) or ""
            if not await self.scope.speaks_for(identity, node_name):
                raise _forbidden(identity, "can only evict pods bound to itself")
        elif op == "UPDATE" and sub == "status":
            if not await self._bound(identity, r.old):
                raise _forbidden(identity, "can only update the status of pods bound to itself")
        elif op == "UPDATE":
            raise _forbidden(identity, "can only update pod status")
        elif op == "DELETE" and not await self._bound(identity, r.old):
            raise _forbidden(identity, "can only delete pods bound to itself")

    async def _node(self, identity: str, r: AdmissionRequest) -> None:
        node = r.obj if r.obj is not None else r.old
        name = r.name or ((node or {}).get("metadata") or {}).get("name", "")
        if not await self.scope.speaks_for(identity, name):
            raise _forbidden(identity, f"is not allowed to modify node \"{name}\"")
        labels = ((r.obj or {}).get("metadata") or {}).get("labels") or {}
        if r.operation == "CREATE":
            if name != identity and labels.get(HOLLOW_LABEL[0]) != HOLLOW_LABEL[1]:
                raise _forbidden(identity, f"may only create node \"{name}\" as a hollow node")
            if _restricted(labels):
                raise _forbidden(identity, f"is not allowed to set the labels {sorted(_restricted(labels))}")
        elif r.operation == "UPDATE" and r.obj is not None and r.old is not None:
            old_labels = (r.old.get("metadata") or {}).get("labels") or {}
            if _restricted(labels) != _restricted(old_labels):
                raise _forbidden(identity, f"is not allowed to modify labels under {RESTRICTED_LABEL_PREFIX}")
            if not r.subresource and (r.obj.get("spec") or {}).get("taints") \
                    != (r.old.get("spec") or {}).get("taints"):
                raise _forbidden(identity, "is not allowed to modify taints")
