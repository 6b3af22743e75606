"""PodDisruptionBudget status, as the disruption controller and the eviction check both write it."""

from __future__ import annotations

from typing import Any

from pyk8s.api.meta import now_rfc3339

Obj = dict[str, Any]


def set_disruption_allowed(status: Obj, allowed: bool, reason: str, message: str = "") -> None:
    """The DisruptionAllowed condition (reason SufficientPods, InsufficientPods or SyncFailed); its
    transition time moves only when its status changes."""
    value = "True" if allowed else "False"
    old = next((c for c in status.get("conditions") or [] if c.get("type") == "DisruptionAllowed"), None)
    since = old.get("lastTransitionTime") if old is not None and old.get("status") == value else None
    others = [c for c in status.get("conditions") or [] if c.get("type") != "DisruptionAllowed"]
    status["conditions"] = [*others, {
        "type": "DisruptionAllowed", "status": value, "reason": reason, "message": message,
        "lastTransitionTime": since or now_rfc3339(),
        "observedGeneration": status.get("observedGeneration", 0)}]
