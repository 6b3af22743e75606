"""pyk8s: a Kubernetes-compatible cluster manager written in Python."""

from typing import Any


def __getattr__(name: str) -> Any:
    """`__version__` on first use: importlib.metadata (~1 MB, a scan of sys.path) would otherwise load in
    every process, the server's children too, which never ask for it."""
    if name != "__version__":
        raise AttributeError(f"module 'pyk8s' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("pyk8s")
    except PackageNotFoundError:  # running from a source tree that was never installed
        found = "0.0.0"
    globals()["__version__"] = found
    return found
