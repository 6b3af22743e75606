from __future__ import annotations

from typing import Any

from pyk8s.api.errors import StatusError
from pyk8s.api.meta import now_rfc3339
from pyk8s.client.client import Client
from pyk8s.controllers.garbagecollector import GarbageCollector
from pyk8s.controllers.ttlafterfinished import TTLAfterFinishedController, expire_at
from tests.controllers._housekeeping import running, until
from tests.support.apiserver import api_server, info

JOBS, PODS = info("batch", "jobs"), info("", "pods")


def job(name: str, ttl: int | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": {"spec": {"restartPolicy": "Never",
                                                  "containers": [{"name": "c", "image": "busybox"}]}}}
    if ttl is not None:
        spec["ttlSecondsAfterFinished"] = ttl
    return {"metadata": {"name": name}, "spec": spec}


async def finish(client: Client, name: str, type_: str = "Complete") -> None:
    j = await client.get(JOBS, name, "default")
    now = now_rfc3339()
    conds = [{"type": type_, "status": "True", "lastTransitionTime": now, "lastProbeTime": now}]
    if type_ == "Complete":
        conds.insert(0, {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now,
                         "lastProbeTime": now})
    j["status"] = {"conditions": conds, "startTime": now, **({"completionTime": now, "succeeded": 1}
                                                            if type_ == "Complete" else {"failed": 1})}
    await client.update_status(JOBS, j)


async def _gone(client: Client, name: str) -> bool:
    try:
        await client.get(JOBS, name, "default")
    except StatusError as e:
        return e.code == 404
    return False


def test_expire_at_needs_ttl_and_a_finish() -> None:
    j = job("a", 10)
    assert expire_at(j) is None
    j["status"] = {"conditions": [{"type": "Failed", "status": "True",
                                   "lastTransitionTime": "2024-01-01T00:00:00Z"}]}
    assert expire_at(j) == 1704067200 + 10
    assert expire_at(job("b", None)) is None


async def test_finished_jobs_deleted_after_their_ttl() -> None:
    async with api_server() as srv, running(srv, TTLAfterFinishedController, GarbageCollector) as (client, _):
        for name, ttl in (("now", 0), ("soon", 1), ("keep", None), ("later", 3600), ("running", 0)):
            await client.create(JOBS, job(name, ttl), "default")
        now = await client.get(JOBS, "now", "default")
        await client.create(PODS, {"metadata": {"name": "now-x", "ownerReferences": [{
            "apiVersion": "batch/v1", "kind": "Job", "name": "now", "uid": now["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}]},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}, "default")
        await finish(client, "now")
        await finish(client, "soon", "Failed")
        await finish(client, "keep")
        await finish(client, "later")
        await until(lambda: _gone(client, "now"), what="ttl 0 job deleted")
        await until(lambda: _gone(client, "soon"), within=6, what="ttl 1 failed job deleted")
        # Deleted in the foreground: the garbage collector finishes it; a pod of the Job went first.
        names = {j["metadata"]["name"] for j in (await client.list(JOBS, "default"))["items"]}
        assert names == {"keep", "later", "running"}
        assert (await client.list(PODS, "default"))["items"] == []
