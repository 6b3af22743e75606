"""The service proxy: ClusterIPs and NodePorts to ready endpoints, in nftables mode (DNAT in one pyk8s-owned
table) or userspace mode (asyncio round-robin forwarding behind nft redirects). Entry: `ServiceProxy`."""

from pyk8s.proxy.proxy import ServiceProxy

__all__ = ["ServiceProxy"]
