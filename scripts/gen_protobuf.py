"""Extract Kubernetes' protobuf schemas (generated.proto descriptors) from the kubectl binary.

Go programs built with gogo-protobuf register every generated.proto as a gzipped FileDescriptorProto;
kubectl carries those of k8s.io/api and k8s.io/apimachinery. This writes them as one gzipped
FileDescriptorSet into the package, so the API server can decode the protobuf bodies kubectl sends
(`kubectl create configmap`, `kubectl auth can-i` …) without hand-written field tables.

    .venv/bin/python scripts/gen_protobuf.py [KUBECTL]
"""

from __future__ import annotations

import gzip
import re
import shutil
import sys
import zlib
from pathlib import Path

from google.protobuf import descriptor_pb2

OUT = Path(__file__).resolve().parent.parent / "src/pyk8s/api/protobuf/descriptors.pb.gz"
GZIP_HEADER = re.compile(rb"\x1f\x8b\x08\x00\x00\x00\x00\x00")


def extract(binary: bytes) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    for match in GZIP_HEADER.finditer(binary):
        try:
            window = binary[match.start() : match.start() + (4 << 20)]
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(window)
        except zlib.error:
            continue
        if b"generated.proto" not in raw[:200]:
            continue
        fd = descriptor_pb2.FileDescriptorProto()
        try:
            fd.ParseFromString(raw)
        except Exception:  # a gzip stream that is not a descriptor
            continue
        if fd.name.startswith("k8s.io/") and fd.name.endswith("generated.proto"):
            # gogo.proto only carries code-generation options; no type comes from it.
            kept = [d for d in fd.dependency if not d.startswith("github.com/gogo/")]
            del fd.dependency[:]
            fd.dependency.extend(kept)
            files[fd.name] = fd
    return files


def main() -> None:
    kubectl = sys.argv[1] if len(sys.argv) > 1 else shutil.which("kubectl")
    if not kubectl:
        raise SystemExit("no kubectl on PATH")
    files = extract(Path(kubectl).read_bytes())
    if "k8s.io/api/core/v1/generated.proto" not in files:
        raise SystemExit(f"{kubectl} carries no Kubernetes protobuf descriptors")
    # Dependencies first, so a DescriptorPool can add them in order.
    ordered: list[descriptor_pb2.FileDescriptorProto] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen or name not in files:
            return
        seen.add(name)
        for dep in files[name].dependency:
            visit(dep)
        ordered.append(files[name])

    for name in sorted(files):
        visit(name)
    fds = descriptor_pb2.FileDescriptorSet(file=ordered)
    OUT.write_bytes(gzip.compress(fds.SerializeToString(), mtime=0))
    print(f"wrote {len(ordered)} descriptors ({OUT.stat().st_size} bytes) to {OUT.name}")


if __name__ == "__main__":
    main()
