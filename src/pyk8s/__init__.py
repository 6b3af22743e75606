"""pyk8s: a Kubernetes-compatible cluster manager written in Python."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pyk8s")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
