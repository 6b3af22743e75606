"""The disruption budget check of pods/eviction (Kubernetes' pkg/registry/core/pod/storage/eviction.go).

A pod that is not running (Pending, Succeeded, Failed) or already being deleted is evicted freely. Otherwise
the PodDisruptionBudget whose selector matches it (more than one is an error) must allow a disruption: its
status, kept by the disruption controller, must be current (observedGeneration) and have disruptionsAllowed
above 0, or the answer is 429 and kubectl drain tries again. An allowed eviction takes one disruption and
records the pod in status.disruptedPods before the pod is deleted, so evictions racing each other cannot
overrun the budget: the budget's write is a compare-and-swap, retried on conflict. A pod that is not Ready
does not count as healthy, so evicting it may skip the budget (unhealthyPodEvictionPolicy).
"""

from __future__ import annotations

from pyk8s.api import errors
from pyk8s.api.catalog import require
from pyk8s.api.disruption import budget_covers, set_disruption_allowed
from pyk8s.api.jsoncopy import json_copy
from pyk8s.api.meta import now_rfc3339
from pyk8s.api.pods import pod_ready
from pyk8s.apiserver.interfaces import Obj
from pyk8s.apiserver.registry import Registry, RequestContext
from pyk8s.apiserver.watch_cache import decode
from pyk8s.store.errors import Conflict
from pyk8s.store.protocol import KeyValue

PDBS = require("policy", "PodDisruptionBudget")
# Evictions the disruption controller has not yet seen the pods of (Kubernetes' MaxDisruptedPodSize).
MAX_DISRUPTED_PODS = 2000
_VIOLATES = "Cannot evict pod as it would violate the pod's disruption budget."


def _ignores_budgets(pod: Obj) -> bool:
    """canIgnorePDB: a pod that is not running, or is going already, disrupts nothing more."""
    return bool((pod.get("metadata") or {}).get("deletionTimestamp")) or \
        (pod.get("status") or {}).get("phase") in ("Pending", "Succeeded", "Failed")


def _budget_error(code: int, message: str, cause: str) -> errors.StatusError:
    reason = "TooManyRequests" if code == 429 else "Forbidden"
    details = {"causes": [{"reason": "DisruptionBudget", "message": cause}]}
    return errors.StatusError(code, reason, message, details)


async def _budget_of(reg: Registry, pod: Obj) -> tuple[Obj, KeyValue] | None:
    """The one budget whose selector matches the pod, decoded and as stored; None when none does."""
    namespace = pod["metadata"].get("namespace", "")
    labels = pod["metadata"].get("labels") or {}
    budgets = [(decode(kv), kv) for kv in (await reg.store.list(PDBS.storage_prefix(namespace))).items]
    found = [(budget, kv) for budget, kv in budgets if budget_covers(budget, labels)]
    if len(found) > 1:
        raise errors.internal("This pod has more than one PodDisruptionBudget, which the eviction "
                              "subresource does not support.")
    return found[0] if found else None


async def allow_eviction(reg: Registry, pod: Obj, ctx: RequestContext) -> None:
    """Raise the 429 (or 403, 500) that refuses evicting `pod`; when a budget allows it, take one of its
    disruptions first (not in a dry run)."""
    if _ignores_budgets(pod):
        return
    while True:
        found = await _budget_of(reg, pod)
        if found is None:
            return
        budget, kv = found
        status = budget.get("status") or {}
        if not pod_ready(pod):
            policy = (budget.get("spec") or {}).get("unhealthyPodEvictionPolicy") or "IfHealthyBudget"
            healthy, desired = int(status.get("currentHealthy") or 0), int(status.get("desiredHealthy") or 0)
            if policy == "AlwaysAllow" or (desired > 0 and healthy >= desired):
                return  # an unhealthy pod goes without touching a budget that is met
        name = budget["metadata"]["name"]
        if int(status.get("observedGeneration") or 0) < int(budget["metadata"].get("generation") or 1):
            raise _budget_error(429, _VIOLATES,
                                f"The disruption budget {name} is still being processed by the server.")
        allowed = int(status.get("disruptionsAllowed") or 0)
        if allowed < 0:
            message = "pdb disruptions allowed is negative"
            raise _budget_error(403, message, message)
        disrupted = dict(status.get("disruptedPods") or {})
        if len(disrupted) > MAX_DISRUPTED_PODS:
            message = "DisruptedPods map too big - too many evictions not confirmed by PDB controller"
            raise _budget_error(403, message, message)
        if allowed == 0:
            raise _budget_error(429, _VIOLATES, f"The disruption budget {name} needs "
                                f"{int(status.get('desiredHealthy') or 0)} healthy pods and has "
                                f"{int(status.get('currentHealthy') or 0)} currently")
        if ctx.dry_run:
            return
        new = json_copy(budget)
        disrupted[pod["metadata"]["name"]] = now_rfc3339()
        new_status = new.setdefault("status", {})
        new_status.update(disruptionsAllowed=allowed - 1, disruptedPods=disrupted)
        if allowed - 1 == 0:
            set_disruption_allowed(new_status, False, "InsufficientPods")
        system = RequestContext(user=ctx.user, field_manager="kube-apiserver", user_agent=ctx.user_agent)
        try:
            # A compare-and-swap on the version listed: changed since, it is decided again from the new one.
            await reg._write_update(PDBS, kv, new, system, "status", None, budget)
        except Conflict:
            continue
        return

