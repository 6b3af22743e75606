"""Pod networking through the reference CNI plugins (bridge, host-local, portmap, loopback)."""

from pyk8s.kubelet.network.cni import CNIError
from pyk8s.kubelet.network.pod_network import PodNetwork

__all__ = ["CNIError", "PodNetwork"]
