"""Pod volumes on a node: emptyDir, hostPath, configMap, secret, downwardAPI, projected (with service
account tokens), persistentVolumeClaim, and subPath mounts safe against symlink escapes."""

from pyk8s.kubelet.volumes.errors import VolumeError
from pyk8s.kubelet.volumes.manager import PodVolumes, VolumeManager

__all__ = ["PodVolumes", "VolumeError", "VolumeManager"]
