"""One call that wires the auth pieces together for `create_app`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from pyk8s.apiserver.admission_noderestriction import NodeRestriction
from pyk8s.apiserver.auth import resources
from pyk8s.apiserver.auth.escalation import RBACEscalationCheck
from pyk8s.apiserver.auth.impersonation import ImpersonatingAuthenticator
from pyk8s.apiserver.auth.loopback import LoopbackAuthenticator
from pyk8s.apiserver.auth.node import NodeAuthorizer, NodeFacts, PodChanges, RawObject, RawPods
from pyk8s.apiserver.auth.rbac import RBACAuthorizer
from pyk8s.apiserver.auth.resources import GetObject
from pyk8s.apiserver.auth.reviews import AuthReviews
from pyk8s.apiserver.auth.tokens import DEFAULT_ISSUER, BootstrapTokenAuthenticator, ServiceAccountTokens
from pyk8s.apiserver.auth.union import UnionAuthenticator
from pyk8s.apiserver.auth.x509 import X509Authenticator
from pyk8s.apiserver.interfaces import ObjectLister, VirtualCreate
from pyk8s.apiserver.watch_cache import WatchCacheSet


@dataclass(frozen=True)
class AuthStack:
    authenticator: ImpersonatingAuthenticator  # the union of authenticators, then `kubectl --as`
    escalation: RBACEscalationCheck  # the admission plugin that stops RBAC privilege escalation
    authorizer: NodeAuthorizer  # the Node authorizer, then RBAC (`authorizer.delegate`)
    tokens: ServiceAccountTokens
    bootstrap: BootstrapTokenAuthenticator
    virtual_creates: dict[tuple[str, str, str], VirtualCreate]
    node_restriction: NodeRestriction  # the admission plugin that keeps each node to its own objects


def build_auth_stack(
    *,
    sa_private_key: bytes,
    sa_public_key: bytes,
    get_object: GetObject,
    lister: ObjectLister,
    rbac_revision: Callable[[], object] | None = None,
    raw_pods: RawPods | None = None,
    raw_object: RawObject | None = None,
    pod_changes: PodChanges | None = None,
    issuer: str = DEFAULT_ISSUER,
    api_audiences: Sequence[str] | None = None,
    anonymous_paths: Iterable[str] = (),
) -> AuthStack:
    """loopback socket → x509 → service-account token → bootstrap token authentication, then
    impersonation; the Node authorizer chained before RBAC (with system:masters) and RBAC's escalation
    check; the review and TokenRequest handlers keyed as `create_app` expects. `raw_pods`, `pod_changes`
    and `raw_object` (the watch cache's encoded pods, their changes since a revision, one encoded object)
    let the node checks decode each object once per version."""
    tokens = ServiceAccountTokens(
        sa_private_key, sa_public_key, get_object, issuer=issuer, api_audiences=api_audiences
    )
    bootstrap = BootstrapTokenAuthenticator(get_object)
    union = UnionAuthenticator(
        [LoopbackAuthenticator(), X509Authenticator(), tokens, bootstrap], anonymous_paths=anonymous_paths
    )
    rbac = RBACAuthorizer(lister, revision=rbac_revision)
    facts = NodeFacts(get_object, raw_object)  # one memo for the Node authorizer and NodeRestriction
    authorizer = NodeAuthorizer(rbac, get_object, lister, raw_pods, facts, pod_changes)
    authenticator = ImpersonatingAuthenticator(union, authorizer)
    reviews = AuthReviews(
        tokens=tokens, bootstrap=bootstrap, authorizer=authorizer, rbac=rbac, get_object=get_object
    )
    escalation = RBACEscalationCheck(rbac)
    return AuthStack(authenticator, escalation, authorizer, tokens, bootstrap, reviews.handlers(),
                     NodeRestriction(get_object, facts))


def watch_cache_revision(caches: WatchCacheSet) -> Callable[[], object]:
    """A cheap RBAC revision for RBACAuthorizer: changes whenever the watch cache applies an event to, or
    relists, any of the four RBAC resources — and not when other resources change."""
    prefixes = tuple(
        info.storage_prefix()
        for info in (
            resources.cluster_roles(),
            resources.roles(),
            resources.cluster_role_bindings(),
            resources.role_bindings(),
        )
    )

    def revision() -> object:
        out: list[object] = []
        for prefix in prefixes:
            cache = caches.caches.get(prefix)
            if cache is None:
                out.append(None)
            else:
                # A relist replaces the objects dict; every applied event lands at the end of the ring.
                out.append((id(cache.objects), cache.ring[-1].revision if cache.ring else cache.ring_start))
        return tuple(out)

    return revision


def watch_cache_pods(caches: WatchCacheSet) -> Mapping[str, bytes] | None:
    """The watch cache's pods as stored (key → encoded JSON), for the Node authorizer; None without a
    pods cache."""
    cache = caches.caches.get(resources.pods().storage_prefix())
    return cache.objects.raw if cache is not None else None


def watch_cache_pod_changes(
    caches: WatchCacheSet, since: int | None
) -> tuple[int, list[tuple[str, bytes | None]] | None] | None:
    """The watch cache's pod changes after revision `since`, for the Node authorizer (see `PodChanges`):
    read from the pods cache's ring of recent events. The changes are None when `since` is None or the ring
    no longer reaches back to it; a relist empties the ring and moves its start past `since`, unless
    nothing changed since."""
    cache = caches.caches.get(resources.pods().storage_prefix())
    if cache is None:
        return None
    ring = cache.ring
    now = ring[-1].revision if ring else cache.ring_start
    if since is None or since < cache.ring_start:
        return now, None
    changes: list[tuple[str, bytes | None]] = []
    for event in reversed(ring):
        if event.revision <= since:
            break
        changes.append((event.key, None if event.type == "DELETED" else event.raw))
    changes.reverse()
    return now, changes


def watch_cache_object(caches: WatchCacheSet, prefix: str, key: str) -> bytes | None:
    """One object of the watch cache as stored (encoded JSON), by its resource's storage prefix and its
    key, for the node checks; None when the cache does not hold it."""
    cache = caches.caches.get(prefix)
    return cache.objects.raw.get(key) if cache is not None else None
