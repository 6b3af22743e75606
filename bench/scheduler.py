"""Scheduler benchmark: a real `pyk8s server`, a hollow agent with 1,000 nodes, 10,000 pods.

The pods are created from a separate load process (concurrent creates over HTTPS with the admin
certificate); this process watches them and times from the first create until every pod has a node
(`spec.nodeName`). Then a 1,000-replica Deployment is created and timed until it is fully available
(hollow nodes report its pods Running and Ready at once). Prints a table; the last line is one JSON
object. For scale: kube-scheduler's CI floor is 270 pods/s on 5,000 nodes. The hollow agent, standing
for kubelets on other machines, runs at a lower CPU priority than the server (as `pyk8s agent --hollow`
always does), as do the server's controllers and scheduler.

    .venv/bin/python bench/scheduler.py [--nodes 1000] [--pods 10000] [--replicas 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import orjson

from tests.support.cluster import Cluster, client_ssl, start_cluster

NAMESPACE = "bench"


def pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "bench"}},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                                     "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}


def deployment(replicas: int) -> dict[str, Any]:
    labels = {"app": "bench-deploy"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bench-deploy"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "busybox",
                                                           "resources": {"requests": {"cpu": "100m"}}}]}}}}


async def load(url: str, kubeconfig: Path, pods: int, concurrency: int) -> dict[str, Any]:
    """The load generator (its own process): create `pods` pods from `concurrency` clients."""
    conn = aiohttp.TCPConnector(ssl=client_ssl(kubeconfig), limit=0)
    errors = 0
    async with aiohttp.ClientSession(url, connector=conn) as s:
        counter = iter(range(pods))

        async def creator() -> None:
            nonlocal errors
            for i in counter:
                for _ in range(5):  # a 429 or 5xx under load is retried, as client-go would
                    async with s.post(f"/api/v1/namespaces/{NAMESPACE}/pods", json=pod(f"p{i}")) as r:
                        await r.read()
                        if r.status in (201, 409):
                            break
                        errors += 1
                        await asyncio.sleep(0.1)

        started = time.time()
        await asyncio.gather(*(creator() for _ in range(concurrency)))
        ended = time.time()
    return {"started": started, "ended": ended, "errors": errors}


class Bench:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.ssl = client_ssl(cluster.kubeconfig)
        self.session = aiohttp.ClientSession(cluster.url, connector=aiohttp.TCPConnector(ssl=self.ssl))

    async def close(self) -> None:
        await self.session.close()

    async def get(self, path: str, **params: str) -> dict[str, Any]:
        async with self.session.get(path, params=params) as r:
            body: dict[str, Any] = await r.json()
            if r.status != 200:
                raise RuntimeError(f"GET {path}: {r.status} {body.get('message')}")
            return body

    async def post(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        async with self.session.post(path, json=obj) as r:
            body: dict[str, Any] = await r.json()
            if r.status not in (200, 201, 409):
                raise RuntimeError(f"POST {path}: {r.status} {body.get('message')}")
            return body

    async def wait_nodes(self, count: int, within: float) -> float:
        t0 = time.monotonic()
        while True:
            items = (await self.get("/api/v1/nodes", labelSelector="type=hollow"))["items"]
            ready = sum(1 for n in items for c in n["status"].get("conditions") or []
                        if c["type"] == "Ready" and c["status"] == "True")
            if ready >= count:
                return time.monotonic() - t0
            if time.monotonic() - t0 > within:
                raise RuntimeError(f"only {ready} of {count} hollow nodes Ready after {within:.0f}s")
            await asyncio.sleep(0.5)

    async def watch_bound(self, total: int, rv: str, done: asyncio.Event, bound_at: list[float]) -> None:
        """Count pods with spec.nodeName from a watch; the time of the last binding is what counts. The
        watch asks only for bound pods and is decoded by orjson: the measuring client shares the cores
        with the cluster it measures, so it takes as little of them as it can."""
        bound: set[str] = set()
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        while len(bound) < total:
            params = {"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true",
                      "fieldSelector": "spec.nodeName!="}
            async with self.session.get(f"/api/v1/namespaces/{NAMESPACE}/pods", params=params,
                                        timeout=timeout) as r:
                async for line in r.content:
                    event = orjson.loads(line)
                    obj = event["object"]
                    if event["type"] == "ERROR":  # 410: too far behind; relist and go on from there
                        listed = await self.get(f"/api/v1/namespaces/{NAMESPACE}/pods")
                        for p in listed["items"]:
                            if p["spec"].get("nodeName") and p["metadata"]["uid"] not in bound:
                                bound.add(p["metadata"]["uid"])
                                bound_at.append(time.time())
                        rv = listed["metadata"]["resourceVersion"]
                        break
                    rv = obj.get("metadata", {}).get("resourceVersion", rv)
                    if event["type"] in ("ADDED", "MODIFIED") and obj["spec"].get("nodeName") \
                            and obj["metadata"]["uid"] not in bound:
                            bound.add(obj["metadata"]["uid"])
                            bound_at.append(time.time())
                            if len(bound) >= total:
                                break
        done.set()

    async def wait_available(self, name: str, replicas: int, within: float) -> float:
        t0 = time.monotonic()
        while True:
            dep = await self.get(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{name}")
            if (dep.get("status") or {}).get("availableReplicas", 0) >= replicas:
                return time.monotonic() - t0
            if time.monotonic() - t0 > within:
                raise RuntimeError(f"deployment: {dep.get('status')} after {within:.0f}s")
            await asyncio.sleep(0.2)


def start_agent(cluster: Cluster, nodes: int, work: Path) -> subprocess.Popen[bytes]:
    token = (cluster.data_dir / "token").read_text().strip()
    with (work / "agent.log").open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "pyk8s.cli.main", "agent", "--server", cluster.url, "--token", token,
             "--data-dir", str(work / "agent"), "--hollow", str(nodes), "--node-name", "bench"],
            stdout=log, stderr=subprocess.STDOUT)


async def run(cluster: Cluster, args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"nodes": args.nodes, "pods": args.pods}
    bench = Bench(cluster)
    try:
        result["nodes_ready_s"] = await bench.wait_nodes(args.nodes, 300)
        await bench.post("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
        listed = await bench.get(f"/api/v1/namespaces/{NAMESPACE}/pods")
        done, bound_at = asyncio.Event(), list[float]()
        watcher = asyncio.create_task(bench.watch_bound(args.pods, listed["metadata"]["resourceVersion"],
                                                        done, bound_at))
        loader = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--pods", str(args.pods), "--concurrency", str(args.concurrency),
            "--load", cluster.url, str(cluster.kubeconfig), stdout=asyncio.subprocess.PIPE)
        out, _ = await loader.communicate()
        created = json.loads(out.decode().strip().splitlines()[-1])
        try:
            await asyncio.wait_for(done.wait(), args.timeout)
        except TimeoutError:
            watcher.cancel()
            raise RuntimeError(f"only {len(bound_at)} of {args.pods} pods bound after {args.timeout}s") \
                from None
        result["create_s"] = created["ended"] - created["started"]
        result["creates_per_s"] = args.pods / result["create_s"]
        result["create_errors"] = created["errors"]
        result["all_bound_s"] = max(bound_at) - created["started"]
        result["pods_per_s"] = args.pods / result["all_bound_s"]
        # Events are best effort (client-go drops them when its queue is full): say how many were written.
        events = (await bench.get(f"/api/v1/namespaces/{NAMESPACE}/events"))["items"]
        result["scheduled_events"] = sum(1 for e in events if e.get("reason") == "Scheduled")

        t0 = time.monotonic()
        await bench.post(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", deployment(args.replicas))
        await bench.wait_available("bench-deploy", args.replicas, args.timeout)
        result[f"deployment_{args.replicas}_available_s"] = time.monotonic() - t0
    finally:
        await bench.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--replicas", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed for each phase")
    parser.add_argument("--load", nargs=2, metavar=("URL", "KUBECONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:  # the load-generator process
        print(json.dumps(asyncio.run(load(args.load[0], Path(args.load[1]), args.pods, args.concurrency))))
        return

    work = Path(tempfile.mkdtemp(prefix="pyk8s-bench-scheduler-"))
    cluster = start_cluster()
    agent = start_agent(cluster, args.nodes, work)
    try:
        result = asyncio.run(run(cluster, args))
    except Exception:
        print((work / "agent.log").read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        agent.terminate()
        agent.wait(30)
        cluster.stop()
        errors = [i for i, line in enumerate(cluster.output) if " ERROR " in line]
        if errors:  # a component that failed during the run makes its figures suspect: show why
            kinds = Counter(cluster.output[i].split(" ERROR ", 1)[1].strip() for i in errors)
            last = "".join(cluster.output[errors[-1]:errors[-1] + 30])
            print(f"the server logged {len(errors)} errors: {kinds.most_common(5)}; the last:\n{last}",
                  file=sys.stderr)
        shutil.rmtree(cluster.data_dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'measure':<34}{'value':>12}")
    for key, value in result.items():
        print(f"{key:<34}{value:>12.1f}")
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}))


if __name__ == "__main__":
    main()
