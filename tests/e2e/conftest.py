from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import Cluster, start_cluster


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """One real server for the e2e session, with an audit log; tests work in namespaces of their own."""
    data_dir = Path(tempfile.mkdtemp(prefix="pyk8s-e2e-"))
    c = start_cluster(["--audit-log", str(data_dir / "audit.log")], data_dir=data_dir)
    try:
        yield c
    finally:
        code = c.stop()
        shutil.rmtree(c.data_dir, ignore_errors=True)
        assert code == 0, "pyk8s server did not stop cleanly on SIGTERM:\n" + "".join(c.output[-40:])


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = "e2e-" + request.node.name.replace("_", "-").lower()[:50].strip("-")
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
