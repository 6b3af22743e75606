"""Container runtime: cri.RuntimeService over runc and runsc (gVisor)."""

from pyk8s.kubelet.runtime.service import ContainerStartError, NotFoundError, PodNetwork, RuncRuntime

__all__ = ["ContainerStartError", "NotFoundError", "PodNetwork", "RuncRuntime"]
