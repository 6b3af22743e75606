"""`pyk8s agent --hollow` joins a real `pyk8s server` with the token from its data dir: the CA is trusted
by the token's hash, the node certificate comes through an auto-approved CSR, the nodes turn Ready. The
join token also gets the service proxy a `system:kube-proxy` certificate, and nothing more."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pyk8s.api import catalog
from pyk8s.api.errors import StatusError
from pyk8s.client.client import Client
from pyk8s.client.transport import HTTPTransport
from pyk8s.kubelet.bootstrap import node_client, proxy_credentials
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
        ours = [c for c in csrs if c["spec"]["username"] == f"system:bootstrap:{bootstrap_id}"
                and c["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"]
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

        # Standing for kubelets on other machines, it yields the CPU to the server beside it.
        assert os.getpriority(os.PRIO_PROCESS, agent.process.pid) == min(os.nice(0) + 5, 19)
    finally:
        code = agent.stop()
    assert code == 0, agent.log.read_text()

    # Restarted, the agent reuses its certificate: no second request.
    again = start_agent(cluster, tmp_path / "agent", "--hollow", "3", "--node-name", "join")
    try:
        wait_for(lambda: "pyk8s agent: ready" in again.log.read_text() or again.process.poll() is not None,
                 what="the agent ready again")
        assert "reusing the client certificate" in again.log.read_text(), again.log.read_text()
        assert len(kubectl_json(cluster, "get", "csr")["items"]) == len(csrs)  # nothing else asks meanwhile
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


async def test_the_join_token_gets_the_proxy_a_kube_proxy_certificate_and_no_more(
        own_cluster: Cluster, tmp_path: Path) -> None:
    """The agent's service proxy identity: CN system:kube-proxy through an auto-approved CSR with the join
    token; it may follow Services and EndpointSlices (system:node-proxier) and read no Secret."""
    token = (own_cluster.data_dir / "token").read_text().strip()
    creds = await proxy_credentials(own_cluster.url, token, tmp_path)
    cert = x509.load_pem_x509_certificate(creds.cert_file.read_bytes())
    assert cert.subject == x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "system:kube-proxy")])
    client = node_client(creds)
    try:
        slices = await client.list(catalog.require("discovery.k8s.io", "EndpointSlice"))
        assert "items" in slices
        await client.list(catalog.require("", "Service"))
        with pytest.raises(StatusError) as denied:
            await client.list(catalog.require("", "Secret"))
        assert denied.value.code == 403
        with pytest.raises(StatusError) as denied:
            await client.create(catalog.require("", "Namespace"), {"apiVersion": "v1", "kind": "Namespace",
                                                         "metadata": {"name": "proxy-may-not"}})
        assert denied.value.code == 403
    finally:
        await client.close()
    # Restarted, the proxy reuses its certificate.
    again = await proxy_credentials(own_cluster.url, token, tmp_path)
    assert again.cert_file.read_bytes() == creds.cert_file.read_bytes()


async def test_a_bootstrapper_gets_no_other_client_certificate_approved(own_cluster: Cluster) -> None:
    """Only exactly `CN=system:kube-proxy` is approved for the join token: the same CN with
    O=system:masters stays pending while a well-formed request sent after it is approved."""
    token = (own_cluster.data_dir / "token").read_text().strip().rpartition("::")[2]
    ca = (own_cluster.data_dir / "pki" / "ca.crt").read_bytes()
    client = Client(HTTPTransport(own_cluster.url, ca_data=ca, token=token))
    csr_info = catalog.require("certificates.k8s.io", "CertificateSigningRequest")

    async def request(orgs: tuple[str, ...]) -> str:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([*(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs),
                             x509.NameAttribute(NameOID.COMMON_NAME, "system:kube-proxy")])
        pem = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256()) \
            .public_bytes(serialization.Encoding.PEM)
        created = await client.create(csr_info, {
            "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"generateName": "proxy-"},
            "spec": {"request": base64.b64encode(pem).decode(),
                     "signerName": "kubernetes.io/kube-apiserver-client",
                     "usages": ["digital signature", "client auth"]}})
        return str(created["metadata"]["name"])

    def conditions(name: str) -> set[str]:
        csr = kubectl_json(own_cluster, "get", "csr", name)
        return {c["type"] for c in (csr.get("status") or {}).get("conditions") or []}

    try:
        masters = await request(("system:masters",))
        good = await request(())
    finally:
        await client.close()
    await asyncio.to_thread(wait_for, lambda: "Approved" in conditions(good), what="the good CSR approved")
    assert conditions(masters) == set()
