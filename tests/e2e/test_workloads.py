"""The control plane converges, checked as a user would: the real kubectl against `pyk8s server` with
hollow nodes (`pyk8s agent --hollow`) playing the pods (issue: scheduler and controllers)."""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import Agent, Cluster, start_agent, start_cluster, wait_for

GRACE = 5  # --node-monitor-grace-period for this module's cluster, so a dead node shows quickly
# The agents renew their Leases every second (a quarter of this): well inside the grace period, so a live
# node never looks silent.
LEASE = ("--node-lease-duration-seconds", "4")


@pytest.fixture(scope="module")
def hollow() -> Iterator[Cluster]:
    """A cluster of its own with three hollow nodes hollow-0..2."""
    c = start_cluster(["--node-monitor-grace-period", str(GRACE)])
    agents_dir = Path(tempfile.mkdtemp(prefix="pyk8s-e2e-agent-"))
    agent = start_agent(c, agents_dir / "hollow", "--hollow", "3", *LEASE)
    try:
        wait_for(lambda: ready_nodes(c) >= {"hollow-0", "hollow-1", "hollow-2"}, 60, "3 Ready hollow nodes")
        yield c
    finally:
        agent.stop()
        c.stop()
        shutil.rmtree(c.data_dir, ignore_errors=True)
        shutil.rmtree(agents_dir, ignore_errors=True)


def get(c: Cluster, *args: str) -> Any:
    return json.loads(c.kubectl("get", *args, "-o", "json").stdout)


def ready_nodes(c: Cluster) -> set[str]:
    out = set()
    for node in get(c, "nodes")["items"]:
        for cond in node.get("status", {}).get("conditions", []):
            if cond["type"] == "Ready" and cond["status"] == "True":
                out.add(node["metadata"]["name"])
    return out


def pods(c: Cluster, ns: str, selector: str) -> list[dict[str, Any]]:
    return get(c, "pods", "-n", ns, "-l", selector)["items"]  # type: ignore[no-any-return]


def running(c: Cluster, ns: str, selector: str) -> list[dict[str, Any]]:
    return [p for p in pods(c, ns, selector)
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]


@pytest.fixture
def ns(hollow: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = request.node.name.replace("_", "-")[5:40].strip("-")
    hollow.kubectl("create", "namespace", name)
    yield name
    hollow.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_deployment_scale_rollout_history_undo(hollow: Cluster, ns: str) -> None:
    k = hollow.kubectl
    k("create", "deployment", "web", "-n", ns, "--image=busybox:1.35", "--replicas=3")
    k("rollout", "status", "-n", ns, "deployment/web", "--timeout=60s")
    assert len(running(hollow, ns, "app=web")) == 3
    k("scale", "-n", ns, "deployment/web", "--replicas=5")
    wait_for(lambda: len(running(hollow, ns, "app=web")) == 5, 30, "5 running replicas")
    k("scale", "-n", ns, "deployment/web", "--replicas=2")
    wait_for(lambda: len(pods(hollow, ns, "app=web")) == 2, 30, "scale down to 2")

    k("set", "image", "-n", ns, "deployment/web", "busybox=busybox:1.36")
    out = k("rollout", "status", "-n", ns, "deployment/web", "--timeout=60s").stdout
    assert "successfully rolled out" in out
    images = {p["spec"]["containers"][0]["image"] for p in running(hollow, ns, "app=web")}
    assert images == {"busybox:1.36"}
    history = k("rollout", "history", "-n", ns, "deployment/web").stdout
    revisions = [line.split()[0] for line in history.splitlines()[2:] if line.strip()]
    assert revisions == ["1", "2"]

    k("rollout", "undo", "-n", ns, "deployment/web")
    k("rollout", "status", "-n", ns, "deployment/web", "--timeout=60s")
    dep = get(hollow, "-n", ns, "deployment", "web")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.35"
    wait_for(lambda: {p["spec"]["containers"][0]["image"] for p in pods(hollow, ns, "app=web")}
             == {"busybox:1.35"}, 30, "old pods gone after undo")


JOB = """
apiVersion: batch/v1
kind: Job
metadata: {name: count}
spec:
  completions: 3
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox, command: ["true"]}]
"""


def test_job_runs_to_completion(hollow: Cluster, ns: str) -> None:
    hollow.kubectl("apply", "-n", ns, "-f", "-", input=JOB)
    hollow.kubectl("wait", "-n", ns, "--for=condition=complete", "job/count", "--timeout=60s")
    job = get(hollow, "-n", ns, "job", "count")
    assert job["status"]["succeeded"] == 3
    assert job["status"].get("failed", 0) == 0


DAEMONSET = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: c, image: busybox}]
"""


def test_daemonset_follows_a_new_node(hollow: Cluster, ns: str, tmp_path: Path) -> None:
    hollow.kubectl("apply", "-n", ns, "-f", "-", input=DAEMONSET)
    wait_for(lambda: {p["spec"].get("nodeName") for p in running(hollow, ns, "app=agent")}
             >= {"hollow-0", "hollow-1", "hollow-2"}, 30, "a daemon pod on each node")
    extra = start_agent(hollow, tmp_path / "extra", "--hollow", "1", "--node-name", "extra", *LEASE)
    try:
        wait_for(lambda: "extra-0" in {p["spec"].get("nodeName") for p in running(hollow, ns, "app=agent")},
                 60, "a daemon pod on the new node")
        hollow.kubectl("rollout", "status", "-n", ns, "daemonset/agent", "--timeout=60s")
    finally:
        extra.stop()
        hollow.kubectl("delete", "node", "extra-0", "--wait=false", check=False)


STATEFULSET = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 3
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: c, image: busybox}]
"""


def test_statefulset_ordinals(hollow: Cluster, ns: str) -> None:
    hollow.kubectl("apply", "-n", ns, "-f", "-", input=STATEFULSET)
    hollow.kubectl("rollout", "status", "-n", ns, "statefulset/db", "--timeout=60s")
    created = sorted(pods(hollow, ns, "app=db"), key=lambda p: p["metadata"]["creationTimestamp"])
    assert [p["metadata"]["name"] for p in created] == ["db-0", "db-1", "db-2"]
    assert all(p["spec"]["hostname"] == p["metadata"]["name"] for p in created)
    hollow.kubectl("scale", "-n", ns, "statefulset/db", "--replicas=1")
    wait_for(lambda: [p["metadata"]["name"] for p in pods(hollow, ns, "app=db")] == ["db-0"], 30,
             "scale down from the highest ordinal")


def test_taints_tolerations_selectors_and_anti_affinity(hollow: Cluster, ns: str) -> None:
    k = hollow.kubectl
    k("taint", "nodes", "hollow-0", "dedicated=db:NoSchedule")
    try:
        pinned = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pinned"},
                  "spec": {"nodeSelector": {"kubernetes.io/hostname": "hollow-0"},
                           "containers": [{"name": "c", "image": "busybox"}]}}
        k("apply", "-n", ns, "-f", "-", input=json.dumps(pinned))

        def failed_scheduling() -> str:
            out = k("describe", "-n", ns, "pod", "pinned").stdout
            return out if "FailedScheduling" in out else ""

        described = wait_for(failed_scheduling, 30, "a FailedScheduling event")
        assert "0/3 nodes are available" in described
        assert "untolerated taint" in described and "dedicated: db" in described
        assert get(hollow, "-n", ns, "pod", "pinned")["status"]["phase"] == "Pending"

        pinned["metadata"]["name"] = "tolerant"
        pinned["spec"]["tolerations"] = [{"key": "dedicated", "operator": "Equal", "value": "db",
                                          "effect": "NoSchedule"}]
        k("apply", "-n", ns, "-f", "-", input=json.dumps(pinned))
        wait_for(lambda: get(hollow, "-n", ns, "pod", "tolerant")["spec"].get("nodeName") == "hollow-0",
                 30, "the tolerating pod on the tainted node")
    finally:
        k("taint", "nodes", "hollow-0", "dedicated=db:NoSchedule-")

    spread = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "spread"},
              "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "spread"}},
                       "template": {"metadata": {"labels": {"app": "spread"}}, "spec": {
                           "affinity": {"podAntiAffinity": {
                               "requiredDuringSchedulingIgnoredDuringExecution": [
                               {"labelSelector": {"matchLabels": {"app": "spread"}},
                                "topologyKey": "kubernetes.io/hostname"}]}},
                           "containers": [{"name": "c", "image": "busybox"}]}}}}
    k("apply", "-n", ns, "-f", "-", input=json.dumps(spread))
    k("rollout", "status", "-n", ns, "deployment/spread", "--timeout=60s")
    assert {p["spec"]["nodeName"] for p in running(hollow, ns, "app=spread")} == {
        "hollow-0", "hollow-1", "hollow-2"}


def test_drain_respects_a_disruption_budget(hollow: Cluster, ns: str) -> None:
    k = hollow.kubectl
    k("create", "deployment", "web", "-n", ns, "--image=busybox", "--replicas=2")
    k("rollout", "status", "-n", ns, "deployment/web", "--timeout=60s")
    k("create", "poddisruptionbudget", "web", "-n", ns, "--selector=app=web", "--min-available=2")
    wait_for(lambda: get(hollow, "pdb", "-n", ns, "web").get("status", {}).get("expectedPods") == 2, 30,
             "the budget's status")
    assert get(hollow, "pdb", "-n", ns, "web")["status"]["disruptionsAllowed"] == 0
    node = running(hollow, ns, "app=web")[0]["spec"]["nodeName"]
    try:
        drain = ("drain", node, "--pod-selector=app=web", "--delete-emptydir-data")
        refused = k(*drain, "--timeout=4s", check=False)
        assert refused.returncode != 0
        assert "Cannot evict pod as it would violate the pod's disruption budget." in refused.stderr
        assert {p["spec"]["nodeName"] for p in running(hollow, ns, "app=web")} >= {node}

        # One disruption allowed: drain evicts the node's pods one at a time, each replaced elsewhere.
        k("patch", "pdb", "web", "-n", ns, "--type=merge", "-p", '{"spec":{"minAvailable":1}}')
        k(*drain, "--timeout=60s", timeout=90)
        wait_for(lambda: len(running(hollow, ns, "app=web")) == 2, 30, "2 running replicas again")
        assert node not in {p["spec"]["nodeName"] for p in running(hollow, ns, "app=web")}
    finally:
        k("uncordon", node)


def test_cascading_and_orphaning_deletes(hollow: Cluster, ns: str) -> None:
    k = hollow.kubectl
    k("create", "deployment", "kept", "-n", ns, "--image=busybox", "--replicas=2")
    k("rollout", "status", "-n", ns, "deployment/kept", "--timeout=60s")
    k("delete", "-n", ns, "deployment", "kept", "--cascade=orphan")
    rs = wait_for(lambda: [r for r in get(hollow, "-n", ns, "rs", "-l", "app=kept")["items"]
                           if not r["metadata"].get("ownerReferences")], 30, "an orphaned ReplicaSet")
    assert len(rs) == 1 and len(running(hollow, ns, "app=kept")) == 2

    k("create", "deployment", "gone", "-n", ns, "--image=busybox", "--replicas=2")
    k("rollout", "status", "-n", ns, "deployment/gone", "--timeout=60s")
    k("delete", "-n", ns, "deployment", "gone", "--cascade=foreground", "--timeout=60s")
    assert get(hollow, "-n", ns, "rs", "-l", "app=gone")["items"] == []
    wait_for(lambda: not pods(hollow, ns, "app=gone"), 30, "pods of the deleted deployment gone")


def test_namespace_deleted_with_everything_in_it(hollow: Cluster) -> None:
    k = hollow.kubectl
    k("create", "namespace", "doomed-ns")
    k("create", "deployment", "app", "-n", "doomed-ns", "--image=busybox", "--replicas=2")
    k("create", "configmap", "cfg", "-n", "doomed-ns", "--from-literal=a=b")
    k("rollout", "status", "-n", "doomed-ns", "deployment/app", "--timeout=60s")
    k("delete", "namespace", "doomed-ns", "--timeout=90s", timeout=120)
    assert k("get", "namespace", "doomed-ns", check=False).returncode != 0
    assert get(hollow, "pods", "-A", "--field-selector", "metadata.namespace=doomed-ns")["items"] == []


def test_dead_node_is_tainted_and_its_pods_replaced(hollow: Cluster, ns: str, tmp_path: Path) -> None:
    k = hollow.kubectl
    doomed: Agent = start_agent(hollow, tmp_path / "doomed", "--hollow", "1", "--node-name", "doomed", *LEASE)
    healthy = ("hollow-0", "hollow-1", "hollow-2")
    try:
        wait_for(lambda: "doomed-0" in ready_nodes(hollow), 60, "the doomed node Ready")
        # Only the doomed node takes the first pods.
        for node in healthy:
            k("cordon", node)
        dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "mover"},
               "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "mover"}},
                        "template": {"metadata": {"labels": {"app": "mover"}}, "spec": {
                            "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                             "effect": "NoExecute", "tolerationSeconds": 2}],
                            "containers": [{"name": "c", "image": "busybox"}]}}}}
        k("apply", "-n", ns, "-f", "-", input=json.dumps(dep))
        k("rollout", "status", "-n", ns, "deployment/mover", "--timeout=60s")
        first = running(hollow, ns, "app=mover")
        assert {p["spec"]["nodeName"] for p in first} == {"doomed-0"}
        for node in healthy:
            k("uncordon", node)

        doomed.stop(signal.SIGKILL)

        def tainted() -> bool:
            node = get(hollow, "node", "doomed-0")
            taints = {t["key"] for t in node["spec"].get("taints", [])}
            ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
            return "node.kubernetes.io/unreachable" in taints and ready["status"] == "Unknown"

        wait_for(tainted, GRACE + 30, "the dead node NotReady with the unreachable taint")
        assert "NotReady" in k("get", "node", "doomed-0").stdout

        def replaced() -> bool:
            now = running(hollow, ns, "app=mover")
            return len(now) == 2 and {p["spec"]["nodeName"] for p in now} <= set(healthy)

        wait_for(replaced, 60, "the evicted pods replaced on healthy nodes")
        old = {p["metadata"]["name"] for p in first}
        assert not old & {p["metadata"]["name"] for p in running(hollow, ns, "app=mover")}
    finally:
        for node in healthy:
            k("uncordon", node, check=False)
        doomed.stop()
        k("delete", "node", "doomed-0", "--wait=false", check=False)
