"""The node's image store: content-addressed blobs, extracted layers, imports, pulls, the seed image.

`ImageStore` implements `pyk8s.kubelet.cri.ImageService`; `ImageStore.for_data_dir(DIR)` is a node's store
(`DIR/agent/images`, mirrors and credentials in `DIR/agent/registries.yaml`).
"""

from pyk8s.kubelet.images.reference import InvalidReference, Reference, normalize, parse
from pyk8s.kubelet.images.seed import SEED_REF, ensure_seed_image
from pyk8s.kubelet.images.store import ImageNotFound, ImageStore

__all__ = ["SEED_REF", "ImageNotFound", "ImageStore", "InvalidReference", "Reference", "ensure_seed_image",
           "normalize", "parse"]
