"""Pure helpers of the Deployment controller (Kubernetes' pkg/controller/deployment/util): template hashes,
revisions, surge and unavailability bounds, replica arithmetic over ReplicaSets, conditions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson

from pyk8s.api.meta import now_rfc3339
from pyk8s.controllers.timestamps import parse_time

Obj = dict[str, Any]

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
CHANGE_CAUSE = "kubernetes.io/change-cause"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Deployment annotations never copied onto its ReplicaSets.
SKIPPED_ANNOTATIONS = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS,
                                 "deprecated.deployment.rollback.to"})

# Progressing reasons and the Available ones.
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"
FAILED_CREATE = "FailedRSCreate"

MAX_INT32 = 2**31 - 1
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # no vowels, no look-alikes (rand.SafeEncodeString)


def meta(obj: Obj | None) -> dict[str, Any]:
    m: dict[str, Any] = (obj or {}).get("metadata") or {}
    return m


def spec(obj: Obj | None) -> dict[str, Any]:
    s: dict[str, Any] = (obj or {}).get("spec") or {}
    return s


def status(obj: Obj | None) -> dict[str, Any]:
    s: dict[str, Any] = (obj or {}).get("status") or {}
    return s


def replicas(obj: Obj | None) -> int:
    """spec.replicas (0 for a missing ReplicaSet)."""
    if obj is None:
        return 0
    value = spec(obj).get("replicas")
    return 1 if value is None else int(value)


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def compute_hash(template: Obj, collision_count: int | None = None) -> str:
    """The pod-template-hash: fnv-32a of the template (plus the collision count, which changes the name
    after a collision), written in Kubernetes' vowel-free alphabet."""
    data = orjson.dumps(template_without_hash(template), option=orjson.OPT_SORT_KEYS)
    if collision_count is not None:
        data += str(collision_count).encode()
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in str(fnv32a(data)))


def _drop_nulls(value: Any) -> Any:
    """As a Go struct decodes JSON, null is the same as absent (kubectl sends `creationTimestamp: null`)."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def template_without_hash(template: Obj | None) -> Obj:
    """The template as compared and hashed: without pod-template-hash, nulls dropped."""
    t: Obj = _drop_nulls(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
        if not labels:
            del t["metadata"]["labels"]
    if "metadata" in t and not t["metadata"]:
        del t["metadata"]
    return t


def equal_ignore_hash(a: Obj | None, b: Obj | None) -> bool:
    return template_without_hash(a) == template_without_hash(b)


def revision(obj: Obj | None) -> int:
    try:
        return int((meta(obj).get("annotations") or {}).get(REVISION, 0))
    except ValueError:
        return 0


def max_revision(rss: Iterable[Obj]) -> int:
    return max((revision(rs) for rs in rss), default=0)


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: an int as is, "25%" of total rounded up or down."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%"):
        return int(text)
    pct = int(text[:-1])
    scaled = pct * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)


def is_rolling(d: Obj) -> bool:
    return bool((spec(d).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate")


def fenceposts(d: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) resolved against spec.replicas; both zero becomes one unavailable."""
    rolling = (spec(d).get("strategy") or {}).get("rollingUpdate") or {}
    desired = replicas(d)
    surge = scaled_value(rolling.get("maxSurge", "25%"), desired, True)
    unavailable = scaled_value(rolling.get("maxUnavailable", "25%"), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(d: Obj) -> int:
    return fenceposts(d)[0] if is_rolling(d) else 0


def max_unavailable(d: Obj) -> int:
    if not is_rolling(d) or replicas(d) == 0:
        return 0
    return min(fenceposts(d)[1], replicas(d))


def spec_replicas(rss: Iterable[Obj | None]) -> int:
    return sum(replicas(rs) for rs in rss if rs is not None)


def status_count(rss: Iterable[Obj | None], field: str) -> int:
    return sum(int(status(rs).get(field) or 0) for rs in rss if rs is not None)


def new_rs_replicas(d: Obj, all_rss: list[Obj], new_rs: Obj | None) -> int:
    """NewRSNewReplicas: how big the new ReplicaSet may be now."""
    if not is_rolling(d):
        return replicas(d)
    current = spec_replicas(all_rss)
    max_total = replicas(d) + max_surge(d)
    if current >= max_total:
        return replicas(new_rs)
    scale_up = min(max_total - current, replicas(d) - replicas(new_rs))
    return replicas(new_rs) + scale_up


def created_at(obj: Obj) -> tuple[str, str]:
    return (str(meta(obj).get("creationTimestamp") or ""), str(meta(obj).get("name") or ""))


def replica_set_fraction(rs: Obj, d: Obj) -> int:
    """How much rs should grow (or shrink) when the deployment is scaled, in proportion to the size the
    deployment had when rs was last sized (its max-replicas annotation)."""
    if replicas(d) == 0:
        return -replicas(rs)
    deployment_replicas = replicas(d) + max_surge(d)
    try:
        annotated = int((meta(rs).get("annotations") or {})[MAX_REPLICAS])
    except (KeyError, ValueError):
        annotated = int(status(d).get("replicas") or 0)
    if annotated == 0:
        return 0
    size = replicas(rs) * deployment_replicas / annotated
    return math.floor(size + 0.5) - replicas(rs)  # RoundToInt32: half away from zero


def proportion(rs: Obj | None, d: Obj, to_add: int, added: int) -> int:
    if rs is None or replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = replica_set_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    if rs is None:
        return False
    try:
        desired = int((meta(rs).get("annotations") or {})[DESIRED_REPLICAS])
    except (KeyError, ValueError):
        return False
    return (replicas(rs) == replicas(d) and desired == replicas(d)
            and int(status(rs).get("availableReplicas") or 0) == replicas(d))


def active(rss: Iterable[Obj | None]) -> list[Obj]:
    return [rs for rs in rss if rs is not None and replicas(rs) > 0]


def find_active_or_latest(new_rs: Obj | None, old_rss: list[Obj]) -> Obj | None:
    if new_rs is None and not old_rss:
        return None
    old_sorted = sorted(old_rss, key=created_at, reverse=True)
    live = active([new_rs, *old_sorted])
    if not live:
        return new_rs if new_rs is not None else old_sorted[0]
    return live[0] if len(live) == 1 else None


def deployment_complete(d: Obj, new_status: Obj) -> bool:
    want = replicas(d)
    return (int(new_status.get("updatedReplicas") or 0) == want
            and int(new_status.get("replicas") or 0) == want
            and int(new_status.get("availableReplicas") or 0) == want
            and int(new_status.get("observedGeneration") or 0) >= int(meta(d).get("generation") or 0))


def deployment_progressing(d: Obj, new_status: Obj) -> bool:
    old = status(d)

    def n(s: Obj, f: str) -> int:
        return int(s.get(f) or 0)
    return (n(new_status, "updatedReplicas") > n(old, "updatedReplicas")
            or (n(new_status, "replicas") - n(new_status, "updatedReplicas")
                < n(old, "replicas") - n(old, "updatedReplicas"))
            or n(new_status, "readyReplicas") > n(old, "readyReplicas")
            or n(new_status, "availableReplicas") > n(old, "availableReplicas"))


def has_progress_deadline(d: Obj) -> bool:
    deadline = spec(d).get("progressDeadlineSeconds")
    return deadline is not None and int(deadline) != MAX_INT32


def get_condition(st: Obj, type_: str) -> Obj | None:
    for c in st.get("conditions") or []:
        if c.get("type") == type_:
            return dict(c)
    return None


def new_condition(type_: str, cond_status: str, reason: str, message: str) -> Obj:
    now = now_rfc3339()
    return {"type": type_, "status": cond_status, "lastUpdateTime": now, "lastTransitionTime": now,
            "reason": reason, "message": message}


def set_condition(st: Obj, cond: Obj) -> None:
    """SetDeploymentCondition: unchanged status and reason leave the condition alone; an unchanged status
    keeps its lastTransitionTime."""
    current = get_condition(st, cond["type"])
    if (current is not None and current.get("status") == cond["status"]
            and current.get("reason") == cond["reason"]):
        return
    if current is not None and current.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": current.get("lastTransitionTime")}
    st["conditions"] = [c for c in st.get("conditions") or [] if c.get("type") != cond["type"]] + [cond]


def remove_condition(st: Obj, type_: str) -> None:
    conds = [c for c in st.get("conditions") or [] if c.get("type") != type_]
    if conds:
        st["conditions"] = conds
    else:
        st.pop("conditions", None)


def timed_out(d: Obj, new_status: Obj, now: datetime) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(new_status, "Progressing")
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = parse_time(cond.get("lastUpdateTime"))
    deadline = int(spec(d).get("progressDeadlineSeconds") or 0)
    return since is not None and (now - since).total_seconds() > deadline
