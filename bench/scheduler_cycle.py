"""Micro-benchmark of one scheduling cycle (filter + score + select) as bench/scheduler.py drives it: 1,000
nodes shaped like hollow ones (32 cpu, 256Gi, 110 pods), 10,000 pods of 100m/128Mi scheduled one after
another, each assumed on its node as the scheduler does, then 1,000 pods that request only cpu (the
Deployment's). No API server: only the cycle's CPU is measured (process time, not wall time), with what
schedule_one does around it (the pod's PodInfo, the snapshot, the assume).

The default framework (memoised, fused) runs beside `Framework(memo=False)` (every plugin on every node)
in the same run, from the same seed; both must place every pod on the same node. Prints one line per run
and the medians; the last line is one JSON object.

    .venv/bin/python bench/scheduler_cycle.py [--nodes 1000] [--pods 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from pyk8s.scheduler.cache import Cache
from pyk8s.scheduler.framework import Framework
from pyk8s.scheduler.nodeinfo import PodInfo
from pyk8s.scheduler.registry import default_plugins


def node(name: str) -> dict[str, Any]:
    alloc = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    return {"metadata": {"name": name, "labels": {"type": "hollow", "kubernetes.io/hostname": name}},
            "spec": {}, "status": {"capacity": alloc, "allocatable": dict(alloc)}}


def pod(i: int, requests: dict[str, str]) -> dict[str, Any]:
    meta = {"name": f"p{i}", "namespace": "bench", "uid": f"uid-{i}", "labels": {"app": "bench"}}
    return {"metadata": meta,
            "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"requests": requests}}]}}


def run(nodes: int, pods: int, fused: bool, seed: int) -> tuple[float, list[str]]:
    """CPU seconds per cycle over all pods, and where each pod went (to compare the two paths)."""
    cache = Cache()
    for i in range(nodes):
        cache.add_node(node(f"bench-{i}"))
    fw = Framework(default_plugins(), rng=random.Random(seed), memo=fused)
    objs = [pod(i, {"cpu": "100m", "memory": "128Mi"}) for i in range(pods)]
    objs += [pod(pods + i, {"cpu": "100m"}) for i in range(pods // 10)]
    placed: list[str] = []
    cpu = 0.0
    for obj in objs:
        t0 = time.process_time()
        pi = PodInfo.of(obj)  # as schedule_one: the pod's info, the snapshot, the cycle, the assume
        result, _ = fw.schedule(pi, cache.snapshot())
        assumed = {**obj, "spec": {**obj["spec"], "nodeName": result.node}}
        cache.assume(pi.with_object(assumed), result.node)
        cpu += time.process_time() - t0
        placed.append(result.node)
    return cpu / len(objs), placed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    fused_us: list[float] = []
    plain_us: list[float] = []
    for r in range(args.runs):
        f, fp = run(args.nodes, args.pods, True, r)
        p, pp = run(args.nodes, args.pods, False, r)
        if fp != pp:  # the same seed must place every pod on the same node either way
            raise SystemExit(f"run {r}: the fused path placed pods differently from the per-plugin path")
        fused_us.append(f * 1e6)
        plain_us.append(p * 1e6)
        print(f"run {r}: fused {f * 1e6:8.1f} µs/cycle   per-plugin {p * 1e6:8.1f} µs/cycle", flush=True)
    with open("/proc/loadavg") as fh:
        load = float(fh.read().split()[0])
    out = {
        "nodes": args.nodes,
        "pods": args.pods + args.pods // 10,
        "runs": args.runs,
        "fused_us_per_cycle": round(statistics.median(fused_us), 1),
        "per_plugin_us_per_cycle": round(statistics.median(plain_us), 1),
        "loadavg_1m": load,
    }
    print(f"median: fused {out['fused_us_per_cycle']} µs/cycle, per-plugin {out['per_plugin_us_per_cycle']} "
          f"µs/cycle (CPU time; 1-minute load average {load})")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
