"""The Job controller (Kubernetes' pkg/controller/job): runs pods until enough of them succeed.

completions and parallelism, completionMode NonIndexed or Indexed (each index's pod labelled and
annotated `batch.kubernetes.io/job-completion-index`, hostname `<job>-<index>`), backoffLimit with an
exponential back-off between replacements of failed pods (container restarts count under OnFailure),
podFailurePolicy rules (FailJob, Ignore, Count; FailIndex counts, as backoffLimitPerIndex is not
implemented), activeDeadlineSeconds, suspend, and the
conditions of Kubernetes 1.32: SuccessCriteriaMet then Complete, FailureTarget then Failed — the terminal
condition only once no pod of the job is still running, so `kubectl wait --for=condition=complete` means
what it says.

Counting, simpler than Kubernetes' finalizer tracking and documented as such: `succeeded` and `failed` are
the numbers of the job's pods in those phases, never lower than the counts already in the status (the
controller does not delete finished pods, so they remain to be counted; pods removed by someone else
keep the count they had reached); the running pods a failing job stops count as failed. Indexed jobs
count distinct completed indexes (`status.completedIndexes`). Orphan pods the selector matches are adopted.
"""

from __future__ import annotations

import copy
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyk8s.api.catalog import require
from pyk8s.api.labels import selector_from_label_selector
from pyk8s.api.meta import rfc3339
from pyk8s.api.pods import pod_ready
from pyk8s.client.cache import OWNER_UID_INDEX, DeletedFinalStateUnknown, owner_uid_index, split_key
from pyk8s.client.client import Client, Obj
from pyk8s.client.controller import Controller
from pyk8s.client.events import NORMAL, WARNING, EventRecorder
from pyk8s.client.expectations import ControllerExpectations
from pyk8s.client.informer import SharedInformerFactory
from pyk8s.controllers.history import claim_pods, controller_of, controller_ref
from pyk8s.controllers.manager import ControllerContext
from pyk8s.controllers.pod_expectations import PodControl, handle_owned_pods, run_all

__all__ = ["COMPLETION_INDEX", "JOBS", "PODS", "JobController", "format_indexes", "new_job_controller",
           "parse_indexes"]

log = logging.getLogger(__name__)


JOBS = require("batch", "Job")
PODS = require("", "Pod")

COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
_BACKOFF_MESSAGE = "Job has reached the specified backoff limit"
_DEADLINE_MESSAGE = "Job was active longer than specified deadline"
_COMPLETE_MESSAGE = "Reached expected number of succeeded pods"


def _parse_time(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def parse_indexes(text: str | None) -> set[int]:
    """`1,3-5` → {1, 3, 4, 5} (status.completedIndexes)."""
    out: set[int] = set()
    for part in (text or "").split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def format_indexes(indexes: set[int]) -> str:
    """{1, 3, 4, 5} → `1,3-5`."""
    parts: list[str] = []
    ordered = sorted(indexes)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def _terminating(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp")) and _phase(pod) not in ("Succeeded", "Failed")


def _active(pod: Obj) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and _phase(pod) not in ("Succeeded", "Failed")


def _pod_index(pod: Obj) -> int | None:
    meta = pod["metadata"]
    raw = ((meta.get("annotations") or {}).get(COMPLETION_INDEX)
           or (meta.get("labels") or {}).get(COMPLETION_INDEX))
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def _restarts(spec: Obj, active: list[Obj]) -> int:
    """With restartPolicy OnFailure the kubelet restarts failed containers in place; each restart counts
    toward backoffLimit as a failed pod would (pastBackoffLimitOnFailure)."""
    template_spec = (spec.get("template") or {}).get("spec") or {}
    if template_spec.get("restartPolicy") != "OnFailure":
        return 0
    return sum(int(cs.get("restartCount") or 0) for p in active
               for key in ("initContainerStatuses", "containerStatuses")
               for cs in (p.get("status") or {}).get(key) or [])


def _failure_policy_match(policy: Obj, pod: Obj) -> tuple[str, str] | None:
    """(action, message) of the first podFailurePolicy rule a failed pod matches (matchPodFailurePolicy).
    Exit code 0 never matches; onPodConditions match a condition's type and status (default True)."""
    meta = pod["metadata"]
    pod_status = pod.get("status") or {}
    statuses = (pod_status.get("initContainerStatuses") or []) + (pod_status.get("containerStatuses") or [])
    for index, rule in enumerate(policy.get("rules") or []):
        action = str(rule.get("action") or "")
        on_exit = rule.get("onExitCodes")
        if on_exit:
            values = set(on_exit.get("values") or [])
            for cs in statuses:
                if on_exit.get("containerName") and cs.get("name") != on_exit["containerName"]:
                    continue
                code = ((cs.get("state") or {}).get("terminated") or {}).get("exitCode")
                if not code or (code in values) != (on_exit.get("operator") == "In"):
                    continue
                return action, (f"Container {cs.get('name')} for pod {meta['namespace']}/{meta['name']} "
                                f"failed with exit code {code} matching {action} rule at index {index}")
        for want in rule.get("onPodConditions") or []:
            for cond in pod_status.get("conditions") or []:
                wanted = (want.get("type"), want.get("status", "True"))
                if (cond.get("type"), cond.get("status")) == wanted:
                    return action, (f"Pod {meta['namespace']}/{meta['name']} has condition {cond['type']} "
                                    f"matching {action} rule at index {index}")
    return None


def _condition(status: Obj, type_: str) -> Obj | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def _is_true(status: Obj, type_: str) -> bool:
    cond = _condition(status, type_)
    return cond is not None and cond.get("status") == "True"


def _set_condition(status: Obj, type_: str, value: str, reason: str, message: str, now: str) -> bool:
    """Add or update a condition; the transition time moves only when the status flips. True if changed."""
    conds: list[Obj] = status.setdefault("conditions", [])
    for cond in conds:
        if cond.get("type") == type_:
            if (cond.get("status"), cond.get("reason"), cond.get("message")) == (value, reason, message):
                return False
            if cond.get("status") != value:
                cond["lastTransitionTime"] = now
            cond.update(status=value, reason=reason, message=message, lastProbeTime=now)
            return True
    conds.append({"type": type_, "status": value, "lastProbeTime": now, "lastTransitionTime": now,
                  "reason": reason, "message": message})
    return True


@dataclass
class _Backoff:
    failed: int = 0  # the job's failed and succeeded counts when last seen
    succeeded: int = 0
    failures: int = 0  # pod failures since the last success
    last_failure: float = 0.0


def _delete_order(pod: Obj) -> tuple[int, int, str]:
    """Which active pod goes first when there are too many: unscheduled, then not ready, newest first
    (the order of Kubernetes' ActivePods)."""
    scheduled = 1 if (pod.get("spec") or {}).get("nodeName") else 0
    created = pod["metadata"].get("creationTimestamp") or ""
    return scheduled, 1 if pod_ready(pod) else 0, "".join(chr(0x10FFFF - ord(c)) for c in created)


class JobController(Controller):
    name = "job"

    def __init__(self, client: Client, informers: SharedInformerFactory, recorder: EventRecorder, *,
                 workers: int = 5, pod_failure_backoff: float = 10.0, max_pod_failure_backoff: float = 360.0,
                 wall_clock: Callable[[], float] = time.time) -> None:
        super().__init__(workers=workers)
        self.client = client
        self.recorder = recorder
        self.pod_failure_backoff = pod_failure_backoff
        self.max_pod_failure_backoff = max_pod_failure_backoff
        self.wall_clock = wall_clock
        self.expectations = ControllerExpectations()
        self.pod_control = PodControl(client, PODS, recorder, self.expectations)
        self._backoff: dict[str, _Backoff] = {}
        self.jobs = informers.informer(JOBS)
        self.pods = informers.informer(PODS)
        self.pods.add_index(OWNER_UID_INDEX, owner_uid_index)
        self.jobs.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self._job_deleted)
        handle_owned_pods(self.pods, self._owner_key, self.expectations, self.queue)

    # Event handlers: only keys go on the queue.

    def _job_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self.enqueue(obj)

    def _owner_key(self, pod: Obj) -> str | None:
        ref = controller_of(pod)
        if ref is None or ref.get("kind") != "Job" or not str(ref.get("apiVersion", "")).startswith("batch/"):
            return None
        return f"{pod['metadata']['namespace']}/{ref['name']}"

    # Reconcile.

    async def _job_pods(self, job: Obj) -> list[Obj]:
        selector = selector_from_label_selector((job.get("spec") or {}).get("selector"))
        return await claim_pods(self.client, self.pods.lister, PODS, job, JOBS, selector)

    async def reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        job = self.jobs.lister.get(name, ns)
        if job is None:
            self.expectations.delete_expectations(key)
            self._backoff.pop(key, None)
            return None
        if job["metadata"].get("deletionTimestamp"):
            return None  # being deleted (foreground: the garbage collector removes its pods; never fight it)
        status: Obj = copy.deepcopy(job.get("status") or {})
        if _is_true(status, "Complete") or _is_true(status, "Failed"):
            self._backoff.pop(key, None)
            return None
        if not self.expectations.satisfied(key):
            return None
        spec = job.get("spec") or {}
        pods = await self._job_pods(job)
        active = [p for p in pods if _active(p)]
        terminating = [p for p in pods if _terminating(p)]
        succeeded_pods = [p for p in pods if _phase(p) == "Succeeded"]
        failed_pods = [p for p in pods if _phase(p) == "Failed"]
        now_ts = self.wall_clock()
        now = rfc3339(now_ts)
        indexed = spec.get("completionMode") == "Indexed"
        completions = spec.get("completions")
        parallelism = int(spec.get("parallelism", 1) or 0)

        fail_job: str | None = None
        if spec.get("podFailurePolicy"):
            counted: list[Obj] = []
            for p in failed_pods:
                action, message = _failure_policy_match(spec["podFailurePolicy"], p) or ("Count", "")
                if action == "FailJob" and fail_job is None:
                    fail_job = message
                if action != "Ignore":  # Ignore: the failure does not count toward backoffLimit
                    counted.append(p)
            failed_pods = counted
        failed = max(int(status.get("failed") or 0), len(failed_pods))
        if indexed:
            done = parse_indexes(status.get("completedIndexes"))
            done |= {i for p in succeeded_pods
                     if (i := _pod_index(p)) is not None and i < int(completions or 0)}
            succeeded = len(done)
        else:
            done = set()
            succeeded = max(int(status.get("succeeded") or 0), len(succeeded_pods))
        backoff = self._track_backoff(key, failed, succeeded, now_ts)

        requeue: float | None = None
        suspended = bool(spec.get("suspend"))
        finishing = _condition(status, "FailureTarget") or _condition(status, "SuccessCriteriaMet")
        recorded = finishing is not None  # as the job's stored status has it, not only decided now
        if finishing is None:
            start = _parse_time(status.get("startTime"))
            deadline = spec.get("activeDeadlineSeconds")
            backoff_limit = int(spec.get("backoffLimit", 6) or 0)
            running_for = None if suspended or start is None else now_ts - start
            if fail_job is not None:
                finishing = {"type": "FailureTarget", "reason": "PodFailurePolicy", "message": fail_job}
            elif failed + _restarts(spec, active) > backoff_limit:
                finishing = {"type": "FailureTarget", "reason": "BackoffLimitExceeded",
                             "message": _BACKOFF_MESSAGE}
            elif running_for is not None and deadline is not None and running_for >= int(deadline):
                finishing = {"type": "FailureTarget", "reason": "DeadlineExceeded",
                             "message": _DEADLINE_MESSAGE}
            elif (completions is not None and succeeded >= int(completions)) or (
                    completions is None and succeeded > 0 and not active):
                finishing = {"type": "SuccessCriteriaMet", "reason": "CompletionsReached",
                             "message": _COMPLETE_MESSAGE}
            if finishing is not None:
                _set_condition(status, finishing["type"], "True", finishing["reason"], finishing["message"],
                               now)
                if finishing["type"] == "FailureTarget":
                    self.recorder.record(job, WARNING, finishing["reason"], finishing["message"])
            elif start is not None and deadline is not None and not suspended:
                requeue = max(0.0, start + int(deadline) - now_ts)

        if finishing is not None:
            # No new pods; the running ones are stopped when the job failed (a succeeded job with no
            # completions count lets its last pods finish), and the terminal condition waits for them.
            stopping = bool(active) and (finishing["type"] == "FailureTarget" or completions is not None)
            # A condition decided now is written first and the pods stopped on the next pass (the status
            # write's own event): the pods may be what decided it (restart counts under OnFailure), and
            # stopped before a write that then conflicts, the reason would be lost with them. Kubernetes
            # keeps such pods by their tracking finalizer until the status records them.
            if stopping and recorded:
                await self._delete_pods(job, key, active)
                if finishing["type"] == "FailureTarget":
                    failed += len(active)  # stopped before they succeeded: failed, as Kubernetes counts them
                active = []
            if not stopping and not active and not terminating:
                final = "Failed" if finishing["type"] == "FailureTarget" else "Complete"
                _set_condition(status, final, "True", finishing["reason"], finishing["message"], now)
                if final == "Complete":
                    status["completionTime"] = now
                    self.recorder.record(job, NORMAL, "Completed", "Job completed")
        elif suspended:
            if active:
                await self._delete_pods(job, key, active)
                active = []
            if _set_condition(status, "Suspended", "True", "JobSuspended", "Job suspended", now):
                self.recorder.record(job, NORMAL, "Suspended", "Job suspended")
            status.pop("startTime", None)
        else:
            if _condition(status, "Suspended") is not None and _set_condition(
                    status, "Suspended", "False", "JobResumed", "Job resumed", now):
                self.recorder.record(job, NORMAL, "Resumed", "Job resumed")
            if not status.get("startTime"):
                status["startTime"] = now
                deadline = spec.get("activeDeadlineSeconds")
                if deadline is not None:
                    requeue = float(deadline)
            counted_active = active + (terminating if spec.get("podReplacementPolicy") == "Failed" else [])
            wait = backoff.last_failure + self._delay(backoff) - now_ts if backoff.failures else 0.0
            if indexed:
                active = await self._sync_indexed(job, key, active, counted_active, done, parallelism,
                                                  int(completions or 0), wait)
            else:
                active = await self._sync_non_indexed(job, key, active, counted_active, succeeded,
                                                      completions, parallelism, wait)
            if wait > 0:
                requeue = wait if requeue is None else min(requeue, wait)

        status["active"] = len(active)
        status["ready"] = sum(1 for p in active if pod_ready(p))
        status["terminating"] = len(terminating)
        status["succeeded"] = succeeded
        status["failed"] = failed
        if indexed:
            status["completedIndexes"] = format_indexes(done)
        for field in ("active", "succeeded", "failed"):
            if not status[field]:
                del status[field]
        if status != (job.get("status") or {}):
            # A conflict requeues (as Kubernetes' job controller): this status grew from the cached one.
            updated = copy.deepcopy(job)
            updated["status"] = status
            await self.client.update_status(JOBS, updated)
        return requeue

    def _track_backoff(self, key: str, failed: int, succeeded: int, now: float) -> _Backoff:
        """Failures after the last success set the back-off (Kubernetes' backoffRecord)."""
        rec = self._backoff.get(key)
        if rec is None:
            rec = self._backoff[key] = _Backoff(failed=failed, succeeded=succeeded)
        if succeeded > rec.succeeded:
            rec.failures, rec.succeeded = 0, succeeded
        if failed > rec.failed:
            rec.failures += failed - rec.failed
            rec.failed, rec.last_failure = failed, now
        return rec

    def _delay(self, rec: _Backoff) -> float:
        if rec.failures <= 0:
            return 0.0
        return float(min(self.pod_failure_backoff * 2 ** (rec.failures - 1), self.max_pod_failure_backoff))

    async def _sync_non_indexed(self, job: Obj, key: str, active: list[Obj], counted: list[Obj],
                                succeeded: int, completions: Any, parallelism: int, wait: float) -> list[Obj]:
        if completions is None:
            want = 0 if succeeded > 0 else parallelism
        else:
            want = max(0, min(int(completions) - succeeded, parallelism))
        if len(counted) > want:
            extra = sorted(active, key=_delete_order)[:len(counted) - want]
            await self._delete_pods(job, key, extra)
            return [p for p in active if p not in extra]
        if len(counted) < want and wait <= 0:
            await self._create_pods(job, key, [None] * (want - len(counted)))
        return active

    async def _sync_indexed(self, job: Obj, key: str, active: list[Obj], counted: list[Obj], done: set[int],
                            parallelism: int, completions: int, wait: float) -> list[Obj]:
        seen: set[int] = set()
        extra: list[Obj] = []
        for pod in sorted(active, key=lambda p: p["metadata"].get("creationTimestamp") or ""):
            index = _pod_index(pod)
            if index is None or index >= completions or index in done or index in seen:
                extra.append(pod)
            else:
                seen.add(index)
        if extra:
            await self._delete_pods(job, key, extra)
            active = [p for p in active if p not in extra]
        busy = seen | {i for p in counted if (i := _pod_index(p)) is not None}
        room = parallelism - len([p for p in counted if p not in extra])
        pending = [i for i in range(completions) if i not in done and i not in busy][:max(0, room)]
        if pending and wait <= 0:
            await self._create_pods(job, key, list(pending))
        return active

    def _new_pod(self, job: Obj, index: int | None) -> Obj:
        template = copy.deepcopy((job.get("spec") or {}).get("template") or {})
        tmeta = template.get("metadata") or {}
        name = job["metadata"]["name"]
        meta: Obj = {"generateName": f"{name}-" if index is None else f"{name}-{index}-",
                     "namespace": job["metadata"]["namespace"],
                     "labels": dict(tmeta.get("labels") or {}),
                     "ownerReferences": [controller_ref(job, JOBS)]}
        annotations = dict(tmeta.get("annotations") or {})
        spec: Obj = template.get("spec") or {}
        if index is not None:
            annotations[COMPLETION_INDEX] = str(index)
            meta["labels"][COMPLETION_INDEX] = str(index)
            spec.setdefault("hostname", f"{name}-{index}")
            env = {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
                "fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}}}
            for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
                envs = container.setdefault("env", [])
                if not any(e.get("name") == "JOB_COMPLETION_INDEX" for e in envs):
                    envs.append(env)
        if annotations:
            meta["annotations"] = annotations
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}

    async def _create_pods(self, job: Obj, key: str, indexes: list[int | None]) -> None:
        self.expectations.expect_creations(key, len(indexes))
        await run_all(self.pod_control.create(job, key, functools.partial(self._new_pod, job, i))
                      for i in indexes)

    async def _delete_pods(self, job: Obj, key: str, pods: list[Obj]) -> None:
        if not pods:
            return
        self.expectations.expect_deletions(key, len(pods))
        await run_all(self.pod_control.delete(job, key, p) for p in pods)


def new_job_controller(ctx: ControllerContext) -> JobController:
    return JobController(ctx.client, ctx.informers, ctx.recorder("job-controller"),
                         workers=ctx.options.workers)
