"""The real kubectl against a real `pyk8s server`, as a user drives it (issue: API server)."""

from __future__ import annotations

import json
import subprocess
import time

import yaml

from tests.support.cluster import Cluster, wait_for

MANIFEST = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  color: blue
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: busybox
        command: ["httpd", "-f"]
        ports:
        - containerPort: 80
"""


def get_json(cluster: Cluster, *args: str) -> dict:  # type: ignore[type-arg]
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)  # type: ignore[no-any-return]


def test_version_and_api_resources(cluster: Cluster) -> None:
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["major"] == "1"
    resources = cluster.kubectl("api-resources").stdout
    rows = {line.split()[0]: line for line in resources.splitlines()[1:]}
    for name in ("pods", "deployments", "services", "configmaps", "namespaces", "clusterroles", "leases"):
        assert name in rows, resources
    assert " po " in f" {rows['pods']} " and "true" in rows["pods"]
    assert "deploy" in rows["deployments"] and "apps/v1" in rows["deployments"]
    assert "false" in rows["namespaces"]
    classes = cluster.kubectl("get", "runtimeclasses", "-o", "jsonpath={.items[*].handler}").stdout.split()
    assert sorted(classes) == ["runc", "runsc"]  # registered by the server for the runtimes it has


def test_explain_prints_descriptions(cluster: Cluster) -> None:
    out = cluster.kubectl("explain", "pods.spec.containers.image").stdout
    assert "FIELD: image" in out or "FIELD:    image" in out
    assert "image" in out.lower() and "DESCRIPTION" in out


def test_apply_twice_keeps_out_of_band_labels(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=MANIFEST)
    cluster.kubectl("label", "-n", namespace, "deployment", "web", "owner=ops")
    changed = MANIFEST.replace("replicas: 2", "replicas: 3").replace("color: blue", "color: green")
    out = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=changed).stdout
    assert "deployment.apps/web configured" in out and "configmap/settings configured" in out
    dep = get_json(cluster, "-n", namespace, "deployment", "web")
    assert dep["spec"]["replicas"] == 3
    assert dep["metadata"]["labels"] == {"app": "web", "owner": "ops"}
    assert dep["metadata"]["generation"] == 2
    cm = get_json(cluster, "-n", namespace, "configmap", "settings")
    assert cm["data"] == {"color": "green"}
    # Unchanged: apply reports it so and bumps nothing.
    again = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=changed).stdout
    assert "deployment.apps/web unchanged" in again
    assert get_json(cluster, "-n", namespace, "deployment", "web")["metadata"]["generation"] == 2


def test_get_output_formats(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=MANIFEST)
    as_yaml = yaml.safe_load(cluster.kubectl("get", "-n", namespace, "cm", "settings", "-o", "yaml").stdout)
    assert as_yaml["data"] == {"color": "blue"} and as_yaml["metadata"]["resourceVersion"]
    jp = cluster.kubectl("get", "-n", namespace, "deploy", "web", "-o", "jsonpath={.spec.replicas}").stdout
    assert jp == "2"
    table = cluster.kubectl("get", "-n", namespace, "deployments").stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table[1].split()[0] == "web"
    wide = cluster.kubectl("get", "-n", namespace, "deployments", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[:8] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS",
                                   "IMAGES", "SELECTOR"]
    assert "app=web" in wide[1]
    described = cluster.kubectl("describe", "-n", namespace, "configmap", "settings").stdout
    assert "Name:" in described and "settings" in described and "blue" in described


def test_label_annotate_and_three_patch_kinds(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=MANIFEST)
    cluster.kubectl("label", "-n", namespace, "cm", "settings", "tier=backend")
    cluster.kubectl("annotate", "-n", namespace, "cm", "settings", "note=hello")
    selected = cluster.kubectl("get", "-n", namespace, "cm", "-l", "tier=backend", "-o", "name").stdout
    assert selected.split() == ["configmap/settings"]
    cluster.kubectl("patch", "-n", namespace, "cm", "settings", "--type=merge", "-p", '{"data":{"size":"L"}}')
    cluster.kubectl("patch", "-n", namespace, "cm", "settings", "--type=json",
                    "-p", '[{"op":"replace","path":"/data/color","value":"red"}]')
    cluster.kubectl("patch", "-n", namespace, "deploy", "web", "--type=strategic", "-p",
                    '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"busybox:1.36"}]}}}}')
    cm = get_json(cluster, "-n", namespace, "cm", "settings")
    assert cm["data"] == {"color": "red", "size": "L"}
    assert cm["metadata"]["annotations"]["note"] == "hello"
    containers = get_json(cluster, "-n", namespace, "deploy", "web")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1 and containers[0]["image"] == "busybox:1.36"
    assert containers[0]["command"] == ["httpd", "-f"]  # merged by name, not replaced


def test_server_side_apply_conflict_and_force(cluster: Cluster, namespace: str) -> None:
    manifest = MANIFEST.split("---")[1]
    cluster.kubectl("apply", "--server-side", "--field-manager=alice", "-n", namespace, "-f", "-",
                    input=manifest)
    changed = manifest.replace("replicas: 2", "replicas: 5")
    refused = cluster.kubectl("apply", "--server-side", "--field-manager=bob", "-n", namespace, "-f", "-",
                              input=changed, check=False)
    assert refused.returncode != 0
    assert "conflict" in refused.stderr.lower() and ".spec.replicas" in refused.stderr
    cluster.kubectl("apply", "--server-side", "--field-manager=bob", "--force-conflicts", "-n", namespace,
                    "-f", "-", input=changed)
    dep = get_json(cluster, "-n", namespace, "deploy", "web", "--show-managed-fields")
    assert dep["spec"]["replicas"] == 5
    managers = {m["manager"] for m in dep["metadata"]["managedFields"]}
    assert {"alice", "bob"} <= managers


def test_replace_with_stale_resource_version_conflicts(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("create", "configmap", "-n", namespace, "cfg", "--from-literal=a=1")
    stale = get_json(cluster, "-n", namespace, "cm", "cfg")
    cluster.kubectl("patch", "-n", namespace, "cm", "cfg", "--type=merge", "-p", '{"data":{"a":"2"}}')
    stale["data"]["a"] = "3"
    out = cluster.kubectl("replace", "-f", "-", input=json.dumps(stale), check=False)
    assert out.returncode != 0
    assert "the object has been modified" in out.stderr
    assert get_json(cluster, "-n", namespace, "cm", "cfg")["data"]["a"] == "2"


def test_delete_with_each_cascade_mode(cluster: Cluster, namespace: str) -> None:
    for mode in ("background", "foreground", "orphan"):
        cluster.kubectl("create", "configmap", "-n", namespace, f"cm-{mode}", "--from-literal=a=1")
        cluster.kubectl("delete", "-n", namespace, "configmap", f"cm-{mode}", f"--cascade={mode}",
                        "--timeout=30s")
        gone = cluster.kubectl("get", "-n", namespace, "configmap", f"cm-{mode}", check=False)
        assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_get_watch_streams_changes(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("create", "configmap", "-n", namespace, "w", "--from-literal=a=1")
    env = {"KUBECONFIG": str(cluster.kubeconfig), "PATH": "/usr/bin:/bin"}
    watch = subprocess.Popen(["kubectl", "get", "-n", namespace, "configmaps", "-w", "-o", "name"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert watch.stdout is not None
        listed = {watch.stdout.readline().strip() for _ in range(2)}  # w and the root CA configmap
        assert "configmap/w" in listed
        cluster.kubectl("create", "configmap", "-n", namespace, "w2", "--from-literal=a=1")
        deadline = time.monotonic() + 20
        seen = []
        while time.monotonic() < deadline:
            line = watch.stdout.readline().strip()
            seen.append(line)
            if line == "configmap/w2":
                break
        assert "configmap/w2" in seen
    finally:
        watch.kill()
        watch.wait()


def test_auth_can_i_and_service_account_token(cluster: Cluster, namespace: str) -> None:
    assert cluster.kubectl("auth", "can-i", "create", "pods").stdout.strip() == "yes"
    whoami = cluster.kubectl("auth", "whoami", "-o", "json").stdout
    assert json.loads(whoami)["status"]["userInfo"]["username"] == "system:admin"
    cluster.kubectl("create", "serviceaccount", "-n", namespace, "robot")
    token = cluster.kubectl("create", "token", "-n", namespace, "robot").stdout.strip()
    assert token.count(".") == 2
    # A kubeconfig with the token alone: with the admin certificate beside it, x509 would win.
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    robot = {"apiVersion": "v1", "kind": "Config", "current-context": "robot",
             "clusters": admin["clusters"], "users": [{"name": "robot", "user": {"token": token}}],
             "contexts": [{"name": "robot", "context": {"cluster": admin["clusters"][0]["name"],
                                                       "user": "robot"}}]}
    robot_config = cluster.data_dir / f"robot-{namespace}.yaml"
    robot_config.write_text(yaml.safe_dump(robot))
    as_robot = ["--kubeconfig", str(robot_config)]
    denied = cluster.kubectl("get", "pods", "-n", namespace, *as_robot, check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
    assert f"system:serviceaccount:{namespace}:robot" in denied.stderr
    cluster.kubectl("create", "rolebinding", "-n", namespace, "robot-view", "--clusterrole=view",
                    f"--serviceaccount={namespace}:robot")
    deadline = time.monotonic() + 10
    while True:
        allowed = cluster.kubectl("get", "pods", "-n", namespace, *as_robot, check=False)
        if allowed.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert allowed.returncode == 0, allowed.stderr
    can = cluster.kubectl("auth", "can-i", "delete", "pods", "-n", namespace, *as_robot, check=False)
    assert can.stdout.strip() == "no"


def test_anonymous_request_is_unauthorized(cluster: Cluster) -> None:
    import ssl
    import urllib.error
    import urllib.request

    ctx = ssl.create_default_context(cafile=str(cluster.data_dir / "ca.crt")) \
        if (cluster.data_dir / "ca.crt").exists() else ssl._create_unverified_context()
    try:
        urllib.request.urlopen(f"{cluster.url}/api/v1/namespaces", context=ctx, timeout=10)
        raise AssertionError("anonymous request was served")
    except urllib.error.HTTPError as e:
        assert e.code == 401
        assert json.loads(e.read())["kind"] == "Status"


def test_bad_manifest_gets_clear_error(cluster: Cluster, namespace: str) -> None:
    bad = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: Bad_Name\nspec:\n  containers: []\n"
    out = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=bad, check=False)
    assert out.returncode != 0
    assert "is invalid" in out.stderr and "metadata.name" in out.stderr


def test_audit_log_has_a_line_per_request(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("create", "configmap", "-n", namespace, "audited", "--from-literal=a=1")
    cluster.kubectl("get", "configmap", "-n", namespace, "audited")

    def find() -> list[dict]:  # type: ignore[type-arg]
        lines = (cluster.data_dir / "audit.log").read_text().splitlines()
        events = [json.loads(line) for line in lines]
        return [e for e in events if (e.get("objectRef") or {}).get("namespace") == namespace
                and e["objectRef"].get("resource") == "configmaps"
                and e["user"]["username"] == "system:admin"]  # not the root-CA publisher's writes

    events = wait_for(lambda: len(find()) >= 2 and find(), 10, "audit events of the create and the get")
    assert {e["verb"] for e in events} == {"create", "get"}
    created = next(e for e in events if e["verb"] == "create")
    assert created["kind"] == "Event" and created["apiVersion"] == "audit.k8s.io/v1"
    assert created["responseStatus"]["code"] == 201
    assert created["objectRef"]["namespace"] == namespace and created["objectRef"]["resource"] == "configmaps"


def test_kubernetes_service_points_at_the_api_server(cluster: Cluster) -> None:
    svc = get_json(cluster, "-n", "default", "service", "kubernetes")
    assert svc["spec"]["clusterIP"] == "10.43.0.1"
    assert svc["spec"]["ports"][0]["port"] == 443
    ep = get_json(cluster, "-n", "default", "endpoints", "kubernetes")
    assert ep["subsets"][0]["ports"][0]["port"] == cluster.port
    created = json.loads(cluster.kubectl("create", "service", "clusterip", "e2e-alloc", "--tcp=80:8080",
                                         "-o", "json").stdout)
    try:
        ip = created["spec"]["clusterIP"]
        assert ip.startswith("10.43.") and ip not in ("10.43.0.1", "10.43.0.10")
        clash = cluster.kubectl("create", "service", "clusterip", "e2e-clash", "--tcp=80:8080",
                                f"--clusterip={ip}", check=False)
        assert clash.returncode != 0 and "provided IP is already allocated" in clash.stderr
    finally:
        cluster.kubectl("delete", "service", "e2e-alloc")
