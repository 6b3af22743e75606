"""The StatefulSet controller against a real API server; FakeKubelet plays the kubelet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyk8s.client.client import Client
from pyk8s.client.events import EVENTS
from pyk8s.controllers.history import CONTROLLER_REVISION_HASH_LABEL
from pyk8s.controllers.replicaset import PODS
from pyk8s.controllers.statefulset import (
    POD_INDEX_LABEL,
    POD_NAME_LABEL,
    PVCS,
    STATEFULSETS,
    new_statefulset_controller,
)
from tests.controllers._apps import FakeKubelet, controllers, make_ready, pods
from tests.controllers._housekeeping import until
from tests.controllers.test_job import kubectl, needs_kubectl
from tests.support.apiserver import api_server

Obj = dict[str, Any]
SELECTOR = "app=web"


def statefulset(replicas: int = 3, image: str = "busybox:1", **spec: Any) -> Obj:
    meta = {"name": "web", "namespace": "default"}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta,
            "spec": {"replicas": replicas, "serviceName": "web", "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}, **spec}}


CLAIMS = [{"metadata": {"name": "www"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                  "resources": {"requests": {"storage": "1Gi"}}}}]


async def names(client: Client) -> list[str]:
    return [p["metadata"]["name"] for p in await pods(client, SELECTOR)]


async def status(client: Client) -> Obj:
    return (await client.get(STATEFULSETS, "web", "default")).get("status") or {}


async def test_ordered_creation_identity_and_claims() -> None:
    async with api_server() as srv, controllers(srv, new_statefulset_controller) as (client, _):
        await client.create(STATEFULSETS, statefulset(volumeClaimTemplates=CLAIMS))

        async def first_only() -> bool:
            return await names(client) == ["web-0"] and (await status(client)).get("replicas") == 1

        await until(first_only, what="web-0 alone")
        # OrderedReady: web-1 waits for web-0 to be Running and Ready (the status above was written
        # after the pass that created web-0, so that pass did not create web-1)
        assert await names(client) == ["web-0"]
        [pod] = await pods(client, SELECTOR)
        labels = pod["metadata"]["labels"]
        assert labels[POD_NAME_LABEL] == "web-0" and labels[POD_INDEX_LABEL] == "0"
        assert labels[CONTROLLER_REVISION_HASH_LABEL].startswith("web-")
        assert pod["spec"]["hostname"] == "web-0" and pod["spec"]["subdomain"] == "web"
        assert {"name": "www", "persistentVolumeClaim": {"claimName": "www-web-0"}} in pod["spec"]["volumes"]
        claim = await client.get(PVCS, "www-web-0", "default")
        assert claim["metadata"]["labels"] == {"app": "web"}
        assert not claim["metadata"].get("ownerReferences")  # Retain: the claim outlives the set
        await make_ready(client, pod)

        async def two() -> bool:
            return await names(client) == ["web-0", "web-1"]

        await until(two, what="web-1 after web-0 is ready")
        async with FakeKubelet(client, SELECTOR):
            async def all_ready() -> Obj | None:
                st = await status(client)
                return st if st.get("readyReplicas") == 3 else None

            st = await until(all_ready, what="three ready replicas")
            assert await names(client) == ["web-0", "web-1", "web-2"]
            assert st["replicas"] == 3 and st["currentReplicas"] == 3 and st["updatedReplicas"] == 3
            assert st["currentRevision"] == st["updateRevision"]
            assert st["availableReplicas"] == 3 and st["observedGeneration"] == 1

            await client.patch(STATEFULSETS, "web", {"spec": {"replicas": 1}}, "merge", "default")

            async def scaled_down() -> bool:
                return await names(client) == ["web-0"] and (await status(client)).get("replicas") == 1

            await until(scaled_down, what="scaled down to web-0")
        events = (await client.list(EVENTS, "default"))["items"]
        deletes = [e["message"] for e in events if e["reason"] == "SuccessfulDelete"]
        assert set(deletes) == {"delete Pod web-2 in StatefulSet web successful",
                                "delete Pod web-1 in StatefulSet web successful"}
        for ordinal in range(3):  # claims are kept on scale down
            await client.get(PVCS, f"www-web-{ordinal}", "default")


async def test_rolling_update_with_partition() -> None:
    async with api_server() as srv, controllers(srv, new_statefulset_controller) as (client, _), \
            FakeKubelet(client, SELECTOR):
        await client.create(STATEFULSETS, statefulset(
            updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}))

        async def ready(n: int) -> Obj | None:
            st = await status(client)
            return st if st.get("readyReplicas") == n and st.get("replicas") == n else None

        first = await until(lambda: ready(3), what="three ready")
        await client.patch(STATEFULSETS, "web", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "busybox:2"}]}}}}, "strategic", "default")

        async def images() -> dict[str, str]:
            got = await pods(client, SELECTOR)
            running = [p for p in got if (p.get("status") or {}).get("phase") == "Running"]
            return {p["metadata"]["name"]: p["spec"]["containers"][0]["image"] for p in running}

        async def partitioned() -> Obj | None:
            st = await status(client)
            want = {"web-0": "busybox:1", "web-1": "busybox:2", "web-2": "busybox:2"}
            ok = await images() == want and st.get("updatedReplicas") == 2 and st.get("readyReplicas") == 3
            return st if ok else None

        st = await until(partitioned, within=15, what="ordinals from the partition up updated")
        assert st["currentRevision"] == first["currentRevision"] != st["updateRevision"]
        assert st["currentReplicas"] == 1
        unpartitioned = {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}}
        await client.patch(STATEFULSETS, "web", unpartitioned, "merge", "default")

        async def done() -> Obj | None:
            st = await status(client)
            ok = set((await images()).values()) == {"busybox:2"} and st.get("currentRevision") == st.get(
                "updateRevision") and st.get("updatedReplicas") == 3 and st.get("readyReplicas") == 3
            return st if ok else None

        await until(done, within=15, what="the whole set updated")


async def test_parallel_creates_at_once() -> None:
    async with api_server() as srv, controllers(srv, new_statefulset_controller) as (client, _):
        await client.create(STATEFULSETS, statefulset(replicas=3, podManagementPolicy="Parallel"))

        async def all_three() -> bool:
            return await names(client) == ["web-0", "web-1", "web-2"]

        await until(all_three, what="three pods without waiting for readiness")
        await client.delete(PODS, "web-1", "default")
        await until(all_three, what="web-1 recreated under its name")


@needs_kubectl
async def test_kubectl_rollout_status(tmp_path: Path) -> None:
    async with api_server() as srv, controllers(srv, new_statefulset_controller) as (client, _), \
            FakeKubelet(client, SELECTOR):
        await client.create(STATEFULSETS, statefulset(replicas=2))
        code, out = await kubectl(srv, tmp_path, "rollout", "status", "statefulset/web", "--timeout=20s")
        assert code == 0, out
        # the defaulted partition (0) makes kubectl report a partitioned rollout, as with Kubernetes
        assert "partitioned roll out complete: 2 new pods have been updated" in out
        code, out = await kubectl(srv, tmp_path, "set", "image", "statefulset/web", "c=busybox:2")
        assert code == 0, out
        code, out = await kubectl(srv, tmp_path, "rollout", "status", "statefulset/web", "--timeout=20s")
        assert code == 0, out
        assert "partitioned roll out complete: 2 new pods have been updated" in out
        images = {p["spec"]["containers"][0]["image"] for p in await pods(client, SELECTOR)}
        assert images == {"busybox:2"}
        code, out = await kubectl(srv, tmp_path, "rollout", "undo", "statefulset/web")
        assert code == 0 and "rolled back" in out, out
        code, out = await kubectl(srv, tmp_path, "rollout", "status", "statefulset/web", "--timeout=20s")
        assert code == 0, out

        async def back() -> bool:
            got = await pods(client, SELECTOR)
            return len(got) == 2 and {p["spec"]["containers"][0]["image"] for p in got} == {"busybox:1"}

        await until(back, what="the first template back on both pods")


async def test_adopts_an_orphan_member() -> None:
    async with api_server() as srv, controllers(srv, new_statefulset_controller) as (client, _):
        orphan = {"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": "web-0", "namespace": "default", "labels": {"app": "web"}},
                  "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}
        made = await client.create(PODS, orphan)
        sts = await client.create(STATEFULSETS, statefulset(replicas=1))

        async def adopted() -> Obj | None:
            pod = await client.get(PODS, "web-0", "default")
            refs = pod["metadata"].get("ownerReferences") or []
            return pod if refs and refs[0]["uid"] == sts["metadata"]["uid"] else None

        pod = await until(adopted, what="web-0 adopted")
        assert pod["metadata"]["uid"] == made["metadata"]["uid"]  # the same pod, not a replacement
        assert pod["metadata"]["ownerReferences"][0]["controller"] is True


async def test_claims_of_scaled_down_pods_follow_them_when_asked() -> None:
    async with api_server() as srv, controllers(srv, new_statefulset_controller) as (client, _), \
            FakeKubelet(client, SELECTOR):
        policy = {"whenDeleted": "Retain", "whenScaled": "Delete"}
        await client.create(STATEFULSETS, statefulset(replicas=2, volumeClaimTemplates=CLAIMS,
                                                      persistentVolumeClaimRetentionPolicy=policy))

        async def ready(n: int) -> bool:
            st = await status(client)
            return st.get("readyReplicas") == n and st.get("replicas") == n

        await until(lambda: ready(2), what="two ready")
        web1 = await client.get(PODS, "web-1", "default")
        await client.patch(STATEFULSETS, "web", {"spec": {"replicas": 1}}, "merge", "default")

        async def gone() -> bool:
            return await names(client) == ["web-0"]

        await until(gone, what="web-1 removed")
        claim = await client.get(PVCS, "www-web-1", "default")
        [ref] = claim["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["uid"]) == ("Pod", "web-1", web1["metadata"]["uid"])
        kept = await client.get(PVCS, "www-web-0", "default")
        assert not kept["metadata"].get("ownerReferences")


async def test_on_delete_updates_only_deleted_pods() -> None:
    async with api_server() as srv, controllers(srv, new_statefulset_controller) as (client, _), \
            FakeKubelet(client, SELECTOR):
        await client.create(STATEFULSETS, statefulset(replicas=2, updateStrategy={"type": "OnDelete"}))

        async def ready() -> Obj | None:
            st = await status(client)
            return st if st.get("readyReplicas") == 2 else None

        await until(ready, what="two ready")
        await client.patch(STATEFULSETS, "web", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "busybox:2"}]}}}}, "strategic", "default")

        async def observed() -> Obj | None:
            st = await status(client)
            return st if st.get("observedGeneration") == 2 else None

        st = await until(observed, what="the new template observed")
        assert st["currentRevision"] != st["updateRevision"]
        assert {p["spec"]["containers"][0]["image"] for p in await pods(client, SELECTOR)} == {"busybox:1"}
        await client.delete(PODS, "web-1", "default", grace_period_seconds=0)

        async def web1_updated() -> bool:
            got = {p["metadata"]["name"]: p["spec"]["containers"][0]["image"]
                   for p in await pods(client, SELECTOR)}
            return got == {"web-0": "busybox:1", "web-1": "busybox:2"}

        await until(web1_updated, what="web-1 recreated from the new template")
