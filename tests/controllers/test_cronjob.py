"""The CronJob controller against a real API server, on a fake wall clock: the test moves time forward and
enqueues the CronJob instead of waiting minutes. No Job controller runs: the test finishes jobs itself."""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pyk8s.client.client import Client
from pyk8s.client.events import EVENTS
from pyk8s.controllers.cronjob import (
    CRONJOBS,
    JOBS,
    SCHEDULED_TIMESTAMP,
    CronJobController,
    job_name,
    most_recent_schedule,
    parse_schedule,
)
from pyk8s.controllers.manager import ControllerContext
from pyk8s.util.clock import FakeClock
from tests.controllers._apps import controllers
from tests.controllers._housekeeping import until
from tests.support.apiserver import api_server

Obj = dict[str, Any]


def cronjob(name: str = "tick", schedule: str = "* * * * *", **spec: Any) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "namespace": "default"},
            "spec": {"schedule": schedule, "jobTemplate": {
                "metadata": {"labels": {"app": name}},
                "spec": {"template": {"spec": {"restartPolicy": "Never",
                                               "containers": [{"name": "c", "image": "busybox"}]}}}}, **spec}}


def test_schedules_and_names() -> None:
    assert parse_schedule("CRON_TZ=Europe/Paris 0 9 * * *", None) == ("0 9 * * *", ZoneInfo("Europe/Paris"))
    assert parse_schedule("@hourly", "Asia/Tokyo")[1] == ZoneInfo("Asia/Tokyo")
    with pytest.raises(LookupError):
        parse_schedule("* * * * *", "Mars/Olympus")
    with pytest.raises(ValueError, match="unparseable schedule"):
        parse_schedule("every minute", None)
    t0 = datetime(2026, 1, 1, 10, 0, 30, tzinfo=UTC)
    latest, missed = most_recent_schedule("*/10 * * * *", t0, datetime(2026, 1, 1, 10, 35, tzinfo=UTC))
    assert (latest, missed) == (datetime(2026, 1, 1, 10, 30, tzinfo=UTC), 3)
    assert most_recent_schedule("@hourly", t0, datetime(2026, 1, 1, 10, 59, tzinfo=UTC)) == (None, 0)
    # never a time after `now`, also within the last second of a minute; `now` itself when on schedule
    for now in (datetime(2026, 1, 1, 10, 5, 59, 500_000, tzinfo=UTC),
                datetime(2026, 1, 1, 10, 5, 59, tzinfo=UTC)):
        assert most_recent_schedule("* * * * *", t0, now) == (datetime(2026, 1, 1, 10, 5, tzinfo=UTC), 5)
    assert most_recent_schedule("* * * * *", t0, datetime(2026, 1, 1, 10, 5, tzinfo=UTC)) == (
        datetime(2026, 1, 1, 10, 5, tzinfo=UTC), 5)
    paris = ZoneInfo("Europe/Paris")  # the same in a zone: 09:00 local, never the next day's
    latest, _ = most_recent_schedule("0 9 * * *", datetime(2026, 1, 1, 8, tzinfo=paris),
                                     datetime(2026, 1, 2, 8, 59, 59, 900_000, tzinfo=paris))
    assert latest == datetime(2026, 1, 1, 9, tzinfo=paris)
    _, many = most_recent_schedule("* * * * *", t0, datetime(2026, 1, 2, tzinfo=UTC))
    assert many == 101  # counting stops past the limit
    assert job_name("tick", datetime(2026, 1, 1, 10, 1, tzinfo=UTC)) == f"tick-{1767261660 // 60}"


class Harness:
    def __init__(self) -> None:
        self.clock = FakeClock(time.time())
        self.ctrl: CronJobController | None = None

    def factory(self, ctx: ControllerContext) -> CronJobController:
        self.ctrl = CronJobController(ctx.client, ctx.informers, ctx.recorder("cronjob-controller"),
                                      workers=1, clock=self.clock)
        return self.ctrl

    async def create(self, client: Client, obj: Obj) -> Obj:
        """Create the CronJob and move the fake clock up to its creationTimestamp (schedules start there),
        then on to 1.5 s before that minute ends if that is still ahead: the first tick of 61 s passes a
        minute boundary after the creation however long the server took to start, none is passed before
        it, and the ticks land in the last second of a minute, the edge where a schedule time once came
        out a minute early."""
        created: Obj = await client.create(CRONJOBS, obj)
        at = datetime.strptime(created["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
        start = max(self.clock.now(), at.replace(tzinfo=UTC).timestamp())
        self.clock.advance(start - self.clock.now() + max(0.0, 58.5 - start % 60))
        return created

    def tick(self, seconds: float, name: str = "tick") -> None:
        self.clock.advance(seconds)
        assert self.ctrl is not None
        self.ctrl.queue.add(f"default/{name}")


async def jobs(client: Client) -> list[Obj]:
    items = (await client.list(JOBS, "default"))["items"]
    return sorted((j for j in items if not j["metadata"].get("deletionTimestamp")),
                  key=lambda j: j["metadata"]["name"])


async def count_jobs(client: Client, n: int) -> list[Obj] | None:
    got = await jobs(client)
    return got if len(got) == n else None


async def finish(client: Client, job: Obj, condition: str = "Complete") -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    target = "SuccessCriteriaMet" if condition == "Complete" else "FailureTarget"
    reason = "CompletionsReached" if condition == "Complete" else "BackoffLimitExceeded"
    conds = [{"type": t, "status": "True", "reason": reason, "message": "done", "lastTransitionTime": now,
              "lastProbeTime": now} for t in (target, condition)]
    status: Obj = {"conditions": conds, "startTime": now}
    if condition == "Complete":
        status.update(completionTime=now, succeeded=1)
    else:
        status["failed"] = 1
    await client.patch(JOBS, job["metadata"]["name"], {"status": status}, "merge", "default",
                       subresource="status")


async def status(client: Client, name: str = "tick") -> Obj:
    return (await client.get(CRONJOBS, name, "default")).get("status") or {}


async def reasons(client: Client) -> list[str]:
    return [e["reason"] for e in (await client.list(EVENTS, "default"))["items"]]


async def test_runs_on_schedule_and_tracks_jobs() -> None:
    h = Harness()
    async with api_server() as srv, controllers(srv, h.factory) as (client, _):
        await h.create(client, cronjob(successfulJobsHistoryLimit=1))
        h.tick(61)
        [job] = await until(lambda: count_jobs(client, 1), what="the first job")
        scheduled = datetime.fromisoformat(job["metadata"]["annotations"][SCHEDULED_TIMESTAMP])
        assert job["metadata"]["name"] == job_name("tick", scheduled)
        assert scheduled.second == 0
        assert job["metadata"]["labels"] == {"app": "tick"}
        ref = job["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["name"], ref["controller"]) == ("CronJob", "tick", True)

        async def active(n: int) -> Obj | None:
            st = await status(client)
            return st if len(st.get("active") or []) == n else None

        st = await until(lambda: active(1), what="the job in status.active")
        assert st["active"][0]["name"] == job["metadata"]["name"]
        assert st["lastScheduleTime"] == scheduled.strftime("%Y-%m-%dT%H:%M:%SZ")
        await finish(client, job)

        async def succeeded() -> Obj | None:
            st = await status(client)
            return st if not st.get("active") and st.get("lastSuccessfulTime") else None

        await until(succeeded, what="lastSuccessfulTime and no active job")
        h.tick(60)
        try:
            two = await until(lambda: count_jobs(client, 2), what="the next minute's job")
        except AssertionError as e:  # say what the controller saw and did (a rare failure seen once)
            names = [j["metadata"]["name"] for j in await jobs(client)]
            raise AssertionError(f"{e}; jobs {names}, status {await status(client)}, "
                                 f"events {await reasons(client)}, fake now {h.clock.now()}") from None
        await finish(client, two[1])
        # the history limit keeps one successful job: the older goes
        remaining = await until(lambda: count_jobs(client, 1), what="the older job deleted")
        assert remaining[0]["metadata"]["name"] == two[1]["metadata"]["name"]
        assert "SawCompletedJob" in await reasons(client)


async def test_forbid_and_replace() -> None:
    h = Harness()
    async with api_server() as srv, controllers(srv, h.factory) as (client, _):
        await h.create(client, cronjob(concurrencyPolicy="Forbid"))
        h.tick(61)
        [first] = await until(lambda: count_jobs(client, 1), what="the first job")
        await until(lambda: _active_is(client, first), what="first job active")
        h.tick(60)

        async def refused() -> bool:
            return "JobAlreadyActive" in await reasons(client)

        await until(refused, what="JobAlreadyActive")
        assert len(await jobs(client)) == 1
        await client.patch(CRONJOBS, "tick", {"spec": {"concurrencyPolicy": "Replace"}}, "merge", "default")
        h.tick(60)

        async def replaced() -> list[Obj] | None:
            got = await jobs(client)
            return got if len(got) == 1 and got[0]["metadata"]["name"] != first["metadata"]["name"] else None

        [second] = await until(replaced, what="the running job replaced")
        await until(lambda: _active_is(client, second), what="the new job active")


async def _cached(ctrl: CronJobController) -> bool:
    return ctrl.cronjobs.lister.get("tick", "default") is not None


async def _active_is(client: Client, job: Obj) -> bool:
    st = await status(client)
    return [r["uid"] for r in st.get("active") or []] == [job["metadata"]["uid"]]


async def test_suspend_deadline_and_missed_schedules() -> None:
    h = Harness()
    async with api_server() as srv, controllers(srv, h.factory) as (client, _):
        await h.create(client, cronjob(suspend=True))
        h.tick(61)
        ctrl = h.ctrl
        assert ctrl is not None
        await until(lambda: _cached(ctrl), what="the cronjob in the cache")
        assert await ctrl.reconcile("default/tick") is None  # suspended: nothing to wait for
        assert await jobs(client) == []  # suspended: nothing ran
        # 200 minutes later with no deadline: too many missed, the most recent still runs
        await client.patch(CRONJOBS, "tick", {"spec": {"suspend": False}}, "merge", "default")
        h.tick(200 * 60)

        async def warned() -> bool:
            return "TooManyMissedTimes" in await reasons(client)

        await until(warned, what="TooManyMissedTimes")
        [job] = await until(lambda: count_jobs(client, 1), what="the most recent missed run")
        scheduled = datetime.fromisoformat(job["metadata"]["annotations"][SCHEDULED_TIMESTAMP])
        assert h.clock.now() - scheduled.timestamp() < 60


def _mine(cj: Obj, name: str, scheduled: datetime) -> Obj:
    """The job the controller makes for `scheduled`, made here as if by a pass that then lost its status."""
    ref = {"apiVersion": "batch/v1", "kind": "CronJob", "name": cj["metadata"]["name"],
           "uid": cj["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {
        "name": name, "namespace": "default", "ownerReferences": [ref],
        "annotations": {SCHEDULED_TIMESTAMP: scheduled.isoformat().replace("+00:00", "Z")}},
        "spec": cj["spec"]["jobTemplate"]["spec"]}


async def test_records_its_job_when_the_status_write_was_lost() -> None:
    """A pass that made the minute's job and then lost its status write (a conflict with a stale copy, a
    crash) left the job out of status.active: the next pass records it there with lastScheduleTime, as
    Kubernetes does when the create answers AlreadyExists, rather than leave the minute unaccounted."""
    h = Harness()
    async with api_server() as srv, controllers(srv, h.factory) as (client, _):
        cj = await h.create(client, cronjob())
        ctrl = h.ctrl
        assert ctrl is not None
        created = datetime.strptime(cj["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
        due = datetime.fromtimestamp(h.clock.now() + 61, UTC)
        scheduled, _ = most_recent_schedule("* * * * *", created.replace(tzinfo=UTC), due)
        assert scheduled is not None
        job = await client.create(JOBS, _mine(cj, job_name("tick", scheduled), scheduled))

        async def cached() -> bool:
            return ctrl.jobs.lister.get(job["metadata"]["name"], "default") is not None

        await until(cached, what="the job in the controller's cache")
        h.tick(61)

        async def recorded() -> Obj | None:
            st = await status(client)
            return st if [r["uid"] for r in st.get("active") or []] == [job["metadata"]["uid"]] else None

        st = await until(recorded, what="the job recorded in status.active")
        assert st["lastScheduleTime"] == scheduled.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert [j["metadata"]["name"] for j in await jobs(client)] == [job["metadata"]["name"]]
        await ctrl.recorder.flush()
        assert "SuccessfulCreate" not in await reasons(client)


async def test_a_stale_cached_cronjob_is_read_again_before_a_job_is_called_unexpected() -> None:
    """The job informer can be ahead of the CronJob informer: a pass that reads a cached CronJob whose
    status does not list a running job yet asks the API server for the latest copy (Kubernetes'
    syncCronJob) instead of reporting UnexpectedJob and building on the stale status."""
    h = Harness()
    async with api_server() as srv, controllers(srv, h.factory) as (client, _):
        await h.create(client, cronjob())
        ctrl = h.ctrl
        assert ctrl is not None
        await until(lambda: _cached(ctrl), what="the cronjob in the cache")
        before = copy.deepcopy(ctrl.cronjobs.lister.get("tick", "default"))
        assert before is not None and not (before.get("status") or {}).get("active")
        h.tick(61)
        [job] = await until(lambda: count_jobs(client, 1), what="the first job")
        await until(lambda: _active_is(client, job), what="the job in status.active")

        async def cached_with_job() -> Obj | None:
            cj = ctrl.cronjobs.lister.get("tick", "default")
            return cj if cj is not None and (cj.get("status") or {}).get("active") else None

        await until(cached_with_job, what="the cache up to date")
        await ctrl.recorder.flush()
        assert "UnexpectedJob" not in await reasons(client)
        # The cache as it was before the status write arrived: the job known, the CronJob's status not.
        ctrl.cronjobs.indexer.put("default/tick", before)
        await ctrl.reconcile("default/tick")
        await ctrl.recorder.flush()
        assert "UnexpectedJob" not in await reasons(client)
        assert await _active_is(client, job)
