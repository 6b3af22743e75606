"""`pyk8s agent --hollow` joins a real `pyk8s server` with the token from its data dir: the CA is trusted
by the token's hash, the node certificate comes through an auto-approved CSR, the nodes turn Ready."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import Cluster, start_agent, start_cluster, wait_for


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[Cluster]:
    """A cluster of its own: hollow nodes would otherwise take pods of other tests."""
    c = start_cluster()
    try:
        yield c
    finally:
        c.stop()
        shutil.rmtree(c.data_dir, ignore_errors=True)


def kubectl_json(cluster: Cluster, *args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(cluster.kubectl(*args, "-o", "json").stdout)
    return out


def ready_nodes(cluster: Cluster, prefix: str) -> list[str]:
    names = []
    for node in kubectl_json(cluster, "get", "nodes", "-l", "type=hollow")["items"]:
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        if node["metadata"]["name"].startswith(prefix + "-") and ready and ready[0]["status"] == "True":
            names.append(node["metadata"]["name"])
    return sorted(names)


def test_hollow_agent_joins_with_the_data_dir_token(own_cluster: Cluster, tmp_path: Path) -> None:
    cluster = own_cluster
    agent = start_agent(cluster, tmp_path / "agent", "--hollow", "3", "--node-name", "join")
    try:
        wait_for(lambda: ready_nodes(cluster, "join") == ["join-0", "join-1", "join-2"], what="3 Ready nodes")
        table = cluster.kubectl("get", "nodes").stdout
        assert sum(1 for line in table.splitlines() if line.startswith("join-") and " Ready " in line) == 3

        csrs = kubectl_json(cluster, "get", "csr")["items"]
        bootstrap_id = (cluster.data_dir / "token").read_text().strip().rpartition("::")[2].split(".")[0]
        ours = [c for c in csrs if c["spec"]["username"] == f"system:bootstrap:{bootstrap_id}"]
        assert len(ours) == 1
        csr = ours[0]
        assert csr["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"
        assert {c["type"]: c["status"] for c in csr["status"]["conditions"]} == {"Approved": "True"}
        assert csr["status"]["certificate"]
        row = [line for line in cluster.kubectl("get", "csr").stdout.splitlines()
               if line.startswith(csr["metadata"]["name"])]
        assert row and row[0].split()[-1] == "Approved,Issued"

        # The nodes' leases are renewed by the agent.
        lease = kubectl_json(cluster, "get", "lease", "-n", "kube-node-lease", "join-0")
        assert lease["spec"]["holderIdentity"] == "join-0"
    finally:
        code = agent.stop()
    assert code == 0, agent.log.read_text()

    # Restarted, the agent reuses its certificate: no second request.
    again = start_agent(cluster, tmp_path / "agent", "--hollow", "3", "--node-name", "join")
    try:
        wait_for(lambda: "pyk8s agent: ready" in again.log.read_text() or again.process.poll() is not None,
                 what="the agent ready again")
        assert "reusing the client certificate" in again.log.read_text(), again.log.read_text()
        assert len(kubectl_json(cluster, "get", "csr")["items"]) == len(csrs)
    finally:
        again.stop()


def test_a_token_for_another_ca_is_refused(own_cluster: Cluster, tmp_path: Path) -> None:
    token = (own_cluster.data_dir / "token").read_text().strip().rpartition("::")[2]
    done = subprocess.run(
        [sys.executable, "-m", "pyk8s.cli.main", "agent", "--server", own_cluster.url, "--token",
         "K10" + "0" * 64 + "::" + token, "--data-dir", str(tmp_path), "--hollow", "1"],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "does not match the token's hash" in done.stderr
