"""The CronJob controller (Kubernetes' pkg/controller/cronjob, the v2 controller): Jobs on a schedule.

Schedules are standard five-field cron lines or macros (@hourly, @daily …), read by `croniter`, in
`spec.timeZone` (or a `CRON_TZ=`/`TZ=` prefix) through zoneinfo, else UTC. Each sync finds the most recent
scheduled time not yet run: one older than `startingDeadlineSeconds` is skipped (MissSchedule); more
than 100 missed since the last run (or the deadline window) is reported (TooManyMissedTimes) and the most
recent is still run, as Kubernetes does. Jobs are named `<cronjob>-<scheduled time in minutes since the
epoch>`, so a time is never run twice; a job of the due time that exists already (made by a pass whose
status write was lost) is recorded in `active` then, as Kubernetes does on AlreadyExists. concurrencyPolicy
Allow, Forbid (skip while one runs) and Replace (delete the running ones first); suspend; finished jobs
beyond successfulJobsHistoryLimit and failedJobsHistoryLimit are deleted, oldest first. The controller's
wall clock is injectable so tests need not wait minutes: after moving it, enqueue the CronJob's key.
"""

from __future__ import annotations

import copy
import logging
import time
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from pyk8s.api.catalog import require
from pyk8s.api.errors import StatusError
from pyk8s.api.meta import rfc3339
from pyk8s.client.cache import OWNER_UID_INDEX, DeletedFinalStateUnknown, owner_uid_index, split_key
from pyk8s.client.client import Client, Obj
from pyk8s.client.controller import Controller
from pyk8s.client.events import NORMAL, WARNING, EventRecorder
from pyk8s.client.informer import SharedInformerFactory
from pyk8s.controllers.history import controller_of, controller_ref
from pyk8s.controllers.manager import ControllerContext
from pyk8s.util.clock import Clock

__all__ = ["CRONJOBS", "SCHEDULED_TIMESTAMP", "CronJobController", "WallClock", "job_name",
           "most_recent_schedule", "new_cronjob_controller", "parse_schedule"]

log = logging.getLogger(__name__)


CRONJOBS = require("batch", "CronJob")
JOBS = require("batch", "Job")
SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MAX_MISSED = 100


class WallClock:
    """Seconds since the epoch (a `Clock` whose scale is wall time, as schedules need)."""

    def now(self) -> float:
        return time.time()


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def parse_schedule(schedule: str, time_zone: str | None) -> tuple[str, tzinfo]:
    """(cron expression, zone); raises ValueError with a message for an event."""
    expr = schedule.strip()
    zone_name = time_zone
    for prefix in ("CRON_TZ=", "TZ="):
        if expr.startswith(prefix):
            zone_name, _, expr = expr[len(prefix):].partition(" ")
            expr = expr.strip()
    zone: tzinfo = UTC
    if zone_name:
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise LookupError(zone_name) from None
    if not croniter.is_valid(expr):
        raise ValueError(f"unparseable schedule: {schedule!r}")
    return expr, zone


def most_recent_schedule(expr: str, earliest: datetime, now: datetime) -> tuple[datetime | None, int]:
    """(the latest scheduled time in (earliest, now], how many there are — counted up to MAX_MISSED+1)."""
    it = croniter(expr, earliest)
    missed = 0
    while missed <= MAX_MISSED:
        t: datetime = it.get_next(datetime)
        if t > now:
            break
        missed += 1
    if missed == 0:
        return None, 0
    # get_prev answers the time strictly before `now`; `now` itself counts when it is a scheduled time.
    # (Not get_prev from a second later: within the last second of a minute that answers the next one.)
    latest: datetime = croniter(expr, now).get_prev(datetime)
    on_time: datetime = croniter(expr, latest).get_next(datetime)
    if on_time <= now:
        latest = on_time
    return (latest if latest > earliest else None), missed


def job_name(cronjob: str, scheduled: datetime) -> str:
    return f"{cronjob}-{int(scheduled.timestamp()) // 60}"


def _started(job: Obj) -> tuple[str, str]:
    return str((job.get("status") or {}).get("startTime") or ""), str(job["metadata"]["name"])


def _finished(job: Obj) -> str | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return str(cond["type"])
    return None


class CronJobController(Controller):
    name = "cronjob"

    def __init__(self, client: Client, informers: SharedInformerFactory, recorder: EventRecorder, *,
                 workers: int = 2, clock: Clock | None = None) -> None:
        super().__init__(workers=workers)
        self.client = client
        self.recorder = recorder
        self.clock: Clock = clock or WallClock()
        self.cronjobs = informers.informer(CRONJOBS)
        self.jobs = informers.informer(JOBS)
        self.jobs.add_index(OWNER_UID_INDEX, owner_uid_index)
        self.cronjobs.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self.enqueue)
        self.jobs.add_handler(self._job_event, lambda old, new: self._job_event(new), self._job_event)

    def _job_event(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        job = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        ref = controller_of(job)
        if ref is not None and ref.get("kind") == "CronJob":
            self.queue.add(f"{job['metadata']['namespace']}/{ref['name']}")

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), UTC)

    async def reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        cj = self.cronjobs.lister.get(name, ns)
        if cj is None or cj["metadata"].get("deletionTimestamp"):
            return None
        uid = cj["metadata"]["uid"]
        jobs = [j for j in self.jobs.lister.by_index(OWNER_UID_INDEX, uid)
                if (controller_of(j) or {}).get("uid") == uid]
        cj = await self._latest_if_unexpected(cj, jobs)
        status: Obj = copy.deepcopy(cj.get("status") or {})
        await self._track_jobs(cj, status, jobs)
        requeue = await self._schedule(cj, status, jobs)
        await self._cleanup(cj, jobs)
        if not status.get("active"):
            status.pop("active", None)
        if status != (cj.get("status") or {}):
            # Not retried over a conflict: this status grew from a copy that was then stale. The requeue
            # starts over from the jobs, which say what was done (a job made here is adopted then).
            updated = copy.deepcopy(cj)
            updated["status"] = status
            await self.client.update_status(CRONJOBS, updated)
        return requeue

    async def _latest_if_unexpected(self, cj: Obj, jobs: list[Obj]) -> Obj:
        """The CronJob as the API server has it, when the cache's copy misses a running job in `active`.

        The job informer can be ahead of the CronJob informer: a job created and recorded in `active` by
        the last pass shows up before that status write does. As Kubernetes (syncCronJob), ask for the
        latest copy rather than report the job as unexpected and build on a stale status.
        """
        active = {ref.get("uid") for ref in (cj.get("status") or {}).get("active") or []}
        if all(j["metadata"]["uid"] in active or _finished(j) for j in jobs):
            return cj
        try:
            latest: Obj = await self.client.get(CRONJOBS, cj["metadata"]["name"], cj["metadata"]["namespace"])
        except StatusError as e:
            if e.code != 404:
                raise
            return cj  # deleted meanwhile: the informer will tell
        return latest if latest["metadata"].get("uid") == cj["metadata"]["uid"] else cj

    async def _track_jobs(self, cj: Obj, status: Obj, jobs: list[Obj]) -> None:
        """Bring `active` and `lastSuccessfulTime` up to date with the jobs."""
        active: list[Obj] = status.get("active") or []
        active_uids = {ref.get("uid") for ref in active}
        children = {j["metadata"]["uid"] for j in jobs}
        for job in jobs:
            finished = _finished(job)
            jname = job["metadata"]["name"]
            if job["metadata"]["uid"] in active_uids and finished:
                active = [r for r in active if r.get("uid") != job["metadata"]["uid"]]
                self.recorder.record(cj, NORMAL, "SawCompletedJob",
                                     f"Saw completed job: {jname}, condition: {finished}")
            elif job["metadata"]["uid"] not in active_uids and not finished:
                self.recorder.record(cj, WARNING, "UnexpectedJob",
                                     f"Saw a job that the controller did not create or forgot: {jname}")
            if finished == "Complete":
                done = (job.get("status") or {}).get("completionTime")
                last = status.get("lastSuccessfulTime")
                if done and (not last or done > last):  # both RFC 3339 UTC: text order is time order
                    status["lastSuccessfulTime"] = done
        for ref in list(active):
            if ref.get("uid") in children:
                continue
            # Asked of the API server: a job we just made may not have reached the cache yet.
            try:
                found = await self.client.get(JOBS, str(ref.get("name")), cj["metadata"]["namespace"])
            except StatusError as e:
                if e.code != 404:
                    raise
                found = None
            if found is None or found["metadata"].get("uid") != ref.get("uid"):
                self.recorder.record(cj, NORMAL, "MissingJob", f"Active job went missing: {ref.get('name')}")
                active.remove(ref)
        status["active"] = active

    async def _schedule(self, cj: Obj, status: Obj, jobs: list[Obj]) -> float | None:
        """Start the job of the most recent unmet schedule time; returns when to look again."""
        spec = cj.get("spec") or {}
        try:
            expr, zone = parse_schedule(str(spec.get("schedule") or ""), spec.get("timeZone"))
        except LookupError as e:
            self.recorder.record(cj, WARNING, "UnknownTimeZone", f"invalid timeZone: {e.args[0]!r}")
            return None
        except ValueError as e:
            self.recorder.record(cj, WARNING, "UnparseableSchedule", str(e))
            return None
        now = self._now().astimezone(zone)
        next_at: datetime = croniter(expr, now).get_next(datetime)
        requeue = max(0.0, (next_at - now).total_seconds()) + 0.1
        if spec.get("suspend"):
            return None
        created = _parse_time(cj["metadata"].get("creationTimestamp")) or now
        earliest = _parse_time(status.get("lastScheduleTime")) or created
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None:
            earliest = max(earliest, now - timedelta(seconds=int(deadline)))
        scheduled, missed = most_recent_schedule(expr, earliest.astimezone(zone), now)
        if missed > MAX_MISSED:
            self.recorder.record(cj, WARNING, "TooManyMissedTimes",
                                 "too many missed start times. Set or decrease .spec.startingDeadlineSeconds "
                                 "or check clock skew")
        if scheduled is None:
            return requeue
        if deadline is not None and scheduled + timedelta(seconds=int(deadline)) < now:
            self.recorder.record(cj, WARNING, "MissSchedule", "Missed scheduled time to start a job: "
                                 + scheduled.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000"))
            return requeue
        name = job_name(cj["metadata"]["name"], scheduled)
        if any(r.get("name") == name for r in status["active"]):
            return requeue
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and status["active"]:
            self.recorder.record(cj, NORMAL, "JobAlreadyActive",
                                 "Not starting job because prior execution is running and concurrency policy "
                                 "is Forbid")
            return requeue
        if policy == "Replace":
            for ref in list(status["active"]):
                await self._delete_job(cj, str(ref.get("name")))
                status["active"].remove(ref)
        # A job of this time that exists already was made by a pass whose status write was lost (a conflict
        # with a stale copy, a crash): it is recorded now, as Kubernetes does on AlreadyExists.
        job = next((j for j in jobs if j["metadata"]["name"] == name), None)
        if job is None:
            job = await self._create_job(cj, name, scheduled)
            if job is None:
                return requeue  # someone else's job holds the name
        if not any(r.get("uid") == job["metadata"]["uid"] for r in status["active"]):
            status["active"].append({"apiVersion": "batch/v1", "kind": "Job", "name": job["metadata"]["name"],
                                     "namespace": job["metadata"]["namespace"], "uid": job["metadata"]["uid"],
                                     "resourceVersion": job["metadata"].get("resourceVersion")})
        status["lastScheduleTime"] = rfc3339(scheduled.timestamp())
        return requeue

    async def _create_job(self, cj: Obj, name: str, scheduled: datetime) -> Obj | None:
        template = copy.deepcopy((cj.get("spec") or {}).get("jobTemplate") or {})
        tmeta = template.get("metadata") or {}
        annotations = dict(tmeta.get("annotations") or {})
        annotations[SCHEDULED_TIMESTAMP] = scheduled.isoformat().replace("+00:00", "Z")  # Go's RFC 3339
        meta: Obj = {"name": name, "namespace": cj["metadata"]["namespace"], "annotations": annotations,
                     "ownerReferences": [controller_ref(cj, CRONJOBS)]}
        if tmeta.get("labels"):
            meta["labels"] = dict(tmeta["labels"])
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": template.get("spec") or {}}
        try:
            created: Obj = await self.client.create(JOBS, job)
        except StatusError as e:
            if e.code != 409:
                self.recorder.record(cj, WARNING, "FailedCreate", f"Error creating job: {e.message}")
                raise
            # Made by an earlier pass and not in the cache yet, or by someone else (then not ours to track).
            existing: Obj = await self.client.get(JOBS, name, cj["metadata"]["namespace"])
            mine = (controller_of(existing) or {}).get("uid") == cj["metadata"]["uid"]
            return existing if mine else None
        self.recorder.record(cj, NORMAL, "SuccessfulCreate", f"Created job {name}")
        return created

    async def _delete_job(self, cj: Obj, name: str) -> None:
        try:
            await self.client.delete(JOBS, name, cj["metadata"]["namespace"], propagation_policy="Background")
        except StatusError as e:
            if e.code != 404:
                self.recorder.record(cj, WARNING, "FailedDelete", f"Deleted job: {e.message}")
                raise
            return
        self.recorder.record(cj, NORMAL, "SuccessfulDelete", f"Deleted job {name}")

    async def _cleanup(self, cj: Obj, jobs: list[Obj]) -> None:
        """Finished jobs beyond the history limits go, oldest start first (cleanupFinishedJobs)."""
        spec = cj.get("spec") or {}
        for kind, limit in (("Complete", spec.get("successfulJobsHistoryLimit")),
                            ("Failed", spec.get("failedJobsHistoryLimit"))):
            if limit is None:
                continue
            done = sorted((j for j in jobs if _finished(j) == kind
                           and not j["metadata"].get("deletionTimestamp")), key=_started)
            for job in done[:max(0, len(done) - int(limit))]:
                await self._delete_job(cj, job["metadata"]["name"])


def new_cronjob_controller(ctx: ControllerContext) -> CronJobController:
    return CronJobController(ctx.client, ctx.informers, ctx.recorder("cronjob-controller"),
                             workers=ctx.options.workers)
