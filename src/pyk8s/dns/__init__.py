"""Cluster DNS: Kubernetes' DNS names for services and pods, other names forwarded upstream.

- `server`: `ClusterDNS` (UDP and TCP, informers on Services and EndpointSlices).
- `zone`: the authoritative answers for the cluster domain; `records`: the in-memory indexes behind them.
- `forward`: forwarding to the node's resolvers, with a small cache.
- `objects`: `dns_service_objects`, the `kube-system/kube-dns` Service and endpoints.

`ClusterDNS` loads on first use: the API server needs only `dns_service_objects`, not the server and dnslib.
"""

from typing import TYPE_CHECKING, Any

from pyk8s.dns.objects import dns_service_objects

if TYPE_CHECKING:
    from pyk8s.dns.server import ClusterDNS

__all__ = ["ClusterDNS", "dns_service_objects"]


def __getattr__(name: str) -> Any:
    if name == "ClusterDNS":
        from pyk8s.dns.server import ClusterDNS

        return ClusterDNS
    raise AttributeError(f"module 'pyk8s.dns' has no attribute {name!r}")
