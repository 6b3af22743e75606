"""The Job controller against a real API server; the test plays the kubelet (pod phases via status)."""

from __future__ import annotations

import asyncio
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pyk8s.api.errors import StatusError
from pyk8s.client.client import Client
from pyk8s.client.events import EVENTS
from pyk8s.client.informer import SharedInformerFactory
from pyk8s.client.transport import HTTPTransport
from pyk8s.controllers.job import COMPLETION_INDEX, JOBS, JobController, format_indexes, parse_indexes
from pyk8s.controllers.manager import ControllerContext, ControllerOptions
from pyk8s.controllers.replicaset import PODS
from tests.controllers._apps import controllers, pods
from tests.controllers._housekeeping import until
from tests.support.apiserver import Server, api_server
from tests.support.kubectl import kubectl as run_kubectl
from tests.support.kubectl import write_kubeconfig

Obj = dict[str, Any]


def fast_job_controller(ctx: ControllerContext) -> JobController:
    return JobController(ctx.client, ctx.informers, ctx.recorder("job-controller"), workers=2,
                         pod_failure_backoff=0.05, max_pod_failure_backoff=0.2)


def job(name: str, **spec: Any) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "default"},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "c", "image": "busybox"}]}}, **spec}}


async def finish(client: Client, pod: Obj, phase: str) -> None:
    m = pod["metadata"]
    await client.patch(PODS, m["name"], {"status": {"phase": phase}}, "merge", m["namespace"],
                       subresource="status")


def conditions(obj: Obj) -> dict[str, Obj]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


async def running(client: Client, name: str) -> list[Obj]:
    return [p for p in await pods(client, f"batch.kubernetes.io/job-name={name}")
            if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]


needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


async def kubectl(server: Server, tmp: Path, *args: str) -> tuple[int, str]:
    """The real kubectl against the test server (shared with the other workload controller tests)."""
    return await run_kubectl(write_kubeconfig(server.url, tmp), *args)


def test_index_sets_round_trip() -> None:
    assert format_indexes({1, 3, 4, 5, 9}) == "1,3-5,9"
    assert parse_indexes("1,3-5,9") == {1, 3, 4, 5, 9}
    assert format_indexes(set()) == "" and parse_indexes("") == set()


async def test_completions_with_parallelism() -> None:
    async with api_server() as srv, controllers(srv, fast_job_controller) as (client, _):
        created = await client.create(JOBS, job("pi", completions=3, parallelism=2))
        first = await until(lambda: _exactly(client, "pi", 2), what="two pods at once")
        pod = first[0]
        assert pod["metadata"]["generateName"] == "pi-"
        assert pod["metadata"]["labels"]["batch.kubernetes.io/controller-uid"] == created["metadata"]["uid"]
        ref = pod["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["name"], ref["controller"], ref["blockOwnerDeletion"]) == (
            "Job", "pi", True, True)
        await finish(client, pod, "Succeeded")
        # one done: two left to run, two allowed at once
        await until(lambda: _succeeded_and_running(client, "pi", 1, 2), what="a replacement for the done pod")
        for p in await running(client, "pi"):
            await finish(client, p, "Succeeded")

        async def complete() -> Obj | None:
            j = await client.get(JOBS, "pi", "default")
            return j if "Complete" in conditions(j) else None

        done = await until(complete, what="the Complete condition")
        conds = conditions(done)
        assert conds["Complete"]["status"] == "True"
        assert conds["Complete"]["reason"] == "CompletionsReached"
        assert conds["SuccessCriteriaMet"]["status"] == "True"
        assert done["status"]["succeeded"] == 3
        assert "active" not in done["status"]
        assert done["status"]["startTime"] and done["status"]["completionTime"]
        all_pods = await pods(client, "batch.kubernetes.io/job-name=pi")
        assert len(all_pods) == 3  # no pod more than needed


async def _exactly(client: Client, name: str, n: int) -> list[Obj] | None:
    got = await running(client, name)
    return got if len(got) == n else None


async def _succeeded_and_running(client: Client, name: str, succeeded: int, active: int) -> bool:
    j = await client.get(JOBS, name, "default")
    count = (j.get("status") or {}).get("succeeded")
    return count == succeeded and len(await running(client, name)) == active


async def test_backoff_limit_fails_the_job() -> None:
    async with api_server() as srv, controllers(srv, fast_job_controller) as (client, _):
        await client.create(JOBS, job("flaky", backoffLimit=1))
        for attempt in range(2):
            [pod] = await until(lambda: _exactly(client, "flaky", 1), what=f"attempt {attempt}")
            await finish(client, pod, "Failed")

        async def failed() -> Obj | None:
            j = await client.get(JOBS, "flaky", "default")
            return j if "Failed" in conditions(j) else None

        done = await until(failed, what="the Failed condition")
        conds = conditions(done)
        assert conds["Failed"]["reason"] == "BackoffLimitExceeded"
        assert conds["Failed"]["message"] == "Job has reached the specified backoff limit"
        assert conds["FailureTarget"]["status"] == "True"
        assert done["status"]["failed"] == 2
        assert "Complete" not in conds
        assert len(await pods(client, "batch.kubernetes.io/job-name=flaky")) == 2  # no third attempt


async def test_indexed_job() -> None:
    async with api_server() as srv, controllers(srv, fast_job_controller) as (client, _):
        await client.create(JOBS, job("idx", completions=3, parallelism=3, completionMode="Indexed"))
        got = await until(lambda: _exactly(client, "idx", 3), what="one pod per index")
        by_index = {p["metadata"]["annotations"][COMPLETION_INDEX]: p for p in got}
        assert set(by_index) == {"0", "1", "2"}
        one = by_index["1"]
        assert one["metadata"]["labels"][COMPLETION_INDEX] == "1"
        assert one["metadata"]["generateName"] == "idx-1-"
        assert one["spec"]["hostname"] == "idx-1"
        env = one["spec"]["containers"][0]["env"]
        assert env[0]["name"] == "JOB_COMPLETION_INDEX"
        await finish(client, one, "Succeeded")

        async def index_one_done() -> bool:
            j = await client.get(JOBS, "idx", "default")
            return bool((j.get("status") or {}).get("completedIndexes") == "1")

        await until(index_one_done, what="completedIndexes 1")
        await finish(client, by_index["0"], "Failed")  # index 0 is run again
        again = await until(lambda: _exactly(client, "idx", 2), what="index 0 recreated")
        assert sorted(p["metadata"]["annotations"][COMPLETION_INDEX] for p in again) == ["0", "2"]
        for p in again:
            await finish(client, p, "Succeeded")

        async def complete() -> Obj | None:
            j = await client.get(JOBS, "idx", "default")
            return j if "Complete" in conditions(j) else None

        done = await until(complete, what="the indexed job complete")
        assert done["status"]["completedIndexes"] == "0-2"
        assert done["status"]["succeeded"] == 3 and done["status"]["failed"] == 1


async def test_active_deadline() -> None:
    """activeDeadlineSeconds: the job fails with DeadlineExceeded no sooner than the deadline after its
    start, and the pods it started are deleted. Asserted on the outcome (status, events, pods), not on
    seeing the pods run meanwhile: a loaded machine can use up a 1 s deadline before a poll sees them."""
    async with api_server() as srv, controllers(srv, fast_job_controller) as (client, _):
        await client.create(JOBS, job("slow", activeDeadlineSeconds=1, parallelism=2, completions=4))

        async def failed() -> Obj | None:
            j = await client.get(JOBS, "slow", "default")
            return j if "Failed" in conditions(j) else None

        done = await until(failed, what="DeadlineExceeded")
        assert conditions(done)["Failed"]["reason"] == "DeadlineExceeded"
        assert conditions(done)["Failed"]["message"] == "Job was active longer than specified deadline"
        assert done["status"]["failed"] == 2  # the two pods it stopped
        # not before the deadline (whole seconds on both sides: a real second apart is one apart at least)
        started = datetime.fromisoformat(done["status"]["startTime"])
        assert datetime.fromisoformat(conditions(done)["FailureTarget"]["lastTransitionTime"]) - started >= \
            timedelta(seconds=1)

        async def stopped() -> bool:  # the active pods are deleted (the API answers as they go)
            return await running(client, "slow") == []

        await until(stopped, what="the active pods stopped")

        async def created_and_deleted() -> set[str] | None:
            said = [(e["reason"], e["message"]) for e in (await client.list(EVENTS, "default"))["items"]
                    if e["involvedObject"]["name"] == "slow"]
            made = {m.removeprefix("Created pod: ") for r, m in said if r == "SuccessfulCreate"}
            gone = {m.removeprefix("Deleted pod: ") for r, m in said if r == "SuccessfulDelete"}
            return made if len(made) == 2 and gone == made else None

        # parallelism 2: two pods started, no replacement after the deadline, and both deleted
        await until(created_and_deleted, what="the two pods created, then deleted")


async def test_suspend_and_resume() -> None:
    async with api_server() as srv, controllers(srv, fast_job_controller) as (client, _):
        await client.create(JOBS, job("later", suspend=True, parallelism=2, completions=2))

        async def suspended() -> Obj | None:
            j = await client.get(JOBS, "later", "default")
            return j if "Suspended" in conditions(j) else None

        j = await until(suspended, what="the Suspended condition")
        assert conditions(j)["Suspended"]["status"] == "True"
        assert conditions(j)["Suspended"]["reason"] == "JobSuspended"
        assert await running(client, "later") == []
        assert "startTime" not in j["status"]
        await client.patch(JOBS, "later", {"spec": {"suspend": False}}, "merge", "default")
        await until(lambda: _exactly(client, "later", 2), what="pods after resume")

        async def resumed() -> Obj | None:  # the status is written after the pods are made (as Kubernetes)
            j = await client.get(JOBS, "later", "default")
            return j if conditions(j)["Suspended"]["status"] == "False" else None

        j = await until(resumed, what="the Suspended condition False")
        assert conditions(j)["Suspended"]["reason"] == "JobResumed"
        await client.patch(JOBS, "later", {"spec": {"suspend": True}}, "merge", "default")

        async def none_running() -> bool:
            return await running(client, "later") == []

        await until(none_running, what="pods deleted on suspend")


@needs_kubectl
async def test_kubectl_wait_for_complete(tmp_path: Path) -> None:
    async with api_server() as srv, controllers(srv, fast_job_controller) as (client, _):
        await client.create(JOBS, job("one"))
        waiter = asyncio.create_task(kubectl(srv, tmp_path, "wait", "--for=condition=complete", "job/one",
                                             "--timeout=20s"))
        [pod] = await until(lambda: _exactly(client, "one", 1), what="the pod")
        await finish(client, pod, "Succeeded")
        code, out = await waiter
        assert code == 0, out
        assert out.strip() == "job.batch/one condition met"
        code, out = await kubectl(srv, tmp_path, "get", "job", "one")
        assert code == 0 and "Complete" in out and "1/1" in out, out


async def test_container_restarts_count_toward_backoff_limit_on_failure() -> None:
    async with api_server() as srv, controllers(srv, fast_job_controller) as (client, _):
        spec = job("restarts", backoffLimit=1)["spec"]
        spec["template"]["spec"]["restartPolicy"] = "OnFailure"
        await client.create(JOBS, {**job("restarts"), "spec": spec})
        [pod] = await until(lambda: _exactly(client, "restarts", 1), what="the pod")
        m = pod["metadata"]
        crashing = {"name": "c", "image": "busybox", "imageID": "", "ready": False, "restartCount": 2,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
        await client.patch(PODS, m["name"], {"status": {"phase": "Running", "containerStatuses": [crashing]}},
                           "merge", "default", subresource="status")

        async def failed() -> Obj | None:
            j = await client.get(JOBS, "restarts", "default")
            return j if "Failed" in conditions(j) else None

        done = await until(failed, what="the Failed condition")
        assert conditions(done)["Failed"]["reason"] == "BackoffLimitExceeded"
        assert await running(client, "restarts") == []  # the crashing pod was stopped


async def test_pod_failure_policy() -> None:
    policy = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
                        {"action": "FailJob", "onExitCodes": {"containerName": "c", "operator": "In",
                                                              "values": [42]}}]}
    async with api_server() as srv, controllers(srv, fast_job_controller) as (client, _):
        await client.create(JOBS, job("policy", backoffLimit=0, podFailurePolicy=policy))
        [pod] = await until(lambda: _exactly(client, "policy", 1), what="the pod")
        m = pod["metadata"]
        evicted = {"phase": "Failed", "conditions": [{"type": "DisruptionTarget", "status": "True",
                                                      "reason": "EvictionByEvictionAPI"}]}
        await client.patch(PODS, m["name"], {"status": evicted}, "merge", "default", subresource="status")
        # ignored: not counted against backoffLimit 0, and replaced
        second = await until(lambda: _other_than(client, "policy", m["name"]), what="a replacement")
        j = await client.get(JOBS, "policy", "default")
        assert "failed" not in j["status"] and not conditions(j).get("Failed")
        exited = {"phase": "Failed", "containerStatuses": [
            {"name": "c", "image": "busybox", "imageID": "", "ready": False, "restartCount": 0,
             "state": {"terminated": {"exitCode": 42, "reason": "Error"}}}]}
        await client.patch(PODS, second["metadata"]["name"], {"status": exited}, "merge", "default",
                           subresource="status")

        async def failed() -> Obj | None:
            j = await client.get(JOBS, "policy", "default")
            return j if "Failed" in conditions(j) else None

        done = await until(failed, what="the job failed by the policy")
        cond = conditions(done)["Failed"]
        assert cond["reason"] == "PodFailurePolicy"
        assert cond["message"] == (f"Container c for pod default/{second['metadata']['name']} failed with "
                                   "exit code 42 matching FailJob rule at index 1")


async def _other_than(client: Client, name: str, pod_name: str) -> Obj | None:
    got = [p for p in await running(client, name) if p["metadata"]["name"] != pod_name]
    return got[0] if len(got) == 1 else None


async def test_a_failure_decided_from_a_running_pod_survives_a_lost_status_write() -> None:
    """The pod's restarts are what fail the job: a pass that decides so from a stale cached job must not
    stop the pod before its status write lands, or, the write conflicting, the reason would go with the
    pod and the job would start a fresh one instead of failing. The passes are run by hand here, so that
    the stale copy is the one the controller reads."""
    async with api_server() as srv:
        client = Client(HTTPTransport(srv.url))
        ctx = ControllerContext(client, SharedInformerFactory(client), ControllerOptions())
        ctrl = fast_job_controller(ctx)
        ctx.informers.start()
        worker: asyncio.Task[None] | None = None
        try:
            async with asyncio.timeout(10):
                await ctx.informers.wait_for_sync()
            spec = job("restarts", backoffLimit=1)["spec"]
            spec["template"]["spec"]["restartPolicy"] = "OnFailure"
            await client.create(JOBS, {**job("restarts"), "spec": spec})

            async def cached_job(started: bool) -> Obj | None:
                j = ctrl.jobs.lister.get("restarts", "default")
                begun = j is not None and bool((j.get("status") or {}).get("startTime"))
                return j if j is not None and begun == started else None

            await until(lambda: cached_job(False), what="the job in the cache")
            await ctrl.reconcile("default/restarts")  # starts it: one pod
            [pod] = await until(lambda: _exactly(client, "restarts", 1), what="the pod")
            stale = await until(lambda: cached_job(True), what="the started job in the cache")
            crashing = {"name": "c", "image": "busybox", "imageID": "", "ready": False, "restartCount": 2,
                        "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            await client.patch(PODS, pod["metadata"]["name"], {"status": {"phase": "Running",
                               "containerStatuses": [crashing]}}, "merge", "default", subresource="status")

            async def crashing_cached() -> bool:
                p = ctrl.pods.lister.get(pod["metadata"]["name"], "default")
                return p is not None and bool((p.get("status") or {}).get("containerStatuses"))

            await until(crashing_cached, what="the restarts in the cache")
            # someone else writes the job meanwhile; the controller's copy stays the older one
            await client.patch(JOBS, "restarts", {"metadata": {"labels": {"seen": "yes"}}}, "merge",
                               "default")

            async def relabelled() -> bool:
                j = ctrl.jobs.lister.get("restarts", "default")
                return j is not None and "seen" in (j["metadata"].get("labels") or {})

            await until(relabelled, what="the write in the cache")
            ctrl.jobs.indexer.put("default/restarts", stale)
            with pytest.raises(StatusError) as conflict:
                await ctrl.reconcile("default/restarts")
            assert conflict.value.code == 409
            assert [p["metadata"]["name"] for p in await running(client, "restarts")] == [
                pod["metadata"]["name"]]  # the pod is still there: nothing was done on the lost decision
            # from the current copy on, the controller finishes the job as it would have
            ctrl.jobs.indexer.put("default/restarts", await client.get(JOBS, "restarts", "default"))
            worker = asyncio.create_task(ctrl.run())
            ctrl.queue.add("default/restarts")

            async def failed() -> Obj | None:
                j = await client.get(JOBS, "restarts", "default")
                return j if "Failed" in conditions(j) else None

            done = await until(failed, what="the Failed condition")
            assert conditions(done)["Failed"]["reason"] == "BackoffLimitExceeded"
            assert await running(client, "restarts") == []
            await ctrl.recorder.flush()
            said = [(e["reason"], e["message"]) for e in (await client.list(EVENTS, "default"))["items"]
                    if e["involvedObject"]["name"] == "restarts"]
            made = [m for r, m in said if r == "SuccessfulCreate"]
            assert made == [f"Created pod: {pod['metadata']['name']}"]  # and no fresh one after it
        finally:
            if worker is not None:
                worker.cancel()
                await asyncio.gather(worker, return_exceptions=True)
            await ctx.informers.stop()
            await ctx.close_recorders()
            await client.close()
