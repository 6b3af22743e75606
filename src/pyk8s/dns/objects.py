"""The `kube-system/kube-dns` Service and its endpoints, pointing at where ClusterDNS listens.

The Service has no selector (the DNS server is not a pod), so its Endpoints and EndpointSlice are
written alongside it, as for any selector-less service; the kubelet reads the Service's clusterIP into
pods' resolv.conf and the proxy maps that IP to the endpoint.
"""

from __future__ import annotations

from typing import Any

__all__ = ["dns_service_objects"]

NAMESPACE = "kube-system"
NAME = "kube-dns"
LABELS = {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "pyk8s-dns"}


def dns_service_objects(*, node_ip: str, port: int = 53,
                        cluster_ip: str = "10.43.0.10") -> list[dict[str, Any]]:
    """[Service, Endpoints, EndpointSlice] for `kube-system/kube-dns`: cluster_ip:53 (UDP `dns`, TCP
    `dns-tcp`, as Kubernetes' own manifest names them) to node_ip:port."""
    family = "IPv6" if ":" in node_ip else "IPv4"
    ports = [("dns", "UDP"), ("dns-tcp", "TCP")]
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": dict(LABELS)},
        "spec": {"clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "ipFamilies": [family],
                 "ports": [{"name": n, "protocol": p, "port": 53, "targetPort": port} for n, p in ports]},
    }
    endpoints = {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": dict(LABELS)},
        "subsets": [{"addresses": [{"ip": node_ip}],
                     "ports": [{"name": n, "protocol": p, "port": port} for n, p in ports]}],
    }
    endpoint_slice = {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": NAME, "namespace": NAMESPACE,
                     "labels": {**LABELS, "kubernetes.io/service-name": NAME,
                                "endpointslice.kubernetes.io/managed-by": "pyk8s-dns"}},
        "addressType": family,
        "endpoints": [{"addresses": [node_ip], "conditions": {"ready": True, "serving": True,
                                                              "terminating": False}}],
        "ports": [{"name": n, "protocol": p, "port": port} for n, p in ports],
    }
    return [service, endpoints, endpoint_slice]
