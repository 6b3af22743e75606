"""PodDisruptionBudgets as the disruption controller and the eviction check both read and write them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyk8s.api.errors import StatusError
from pyk8s.api.labels import selector_from_label_selector
from pyk8s.api.meta import now_rfc3339

Obj = dict[str, Any]


def budget_covers(pdb: Obj, labels: Mapping[str, str]) -> bool:
    """Whether the budget covers a pod with these labels, as the PDB lister (GetPodPodDisruptionBudgets)
    answers the eviction check and the disruption controller alike: in policy/v1 an empty selector
    covers the whole namespace; a missing or malformed one covers nothing."""
    try:
        selector = selector_from_label_selector((pdb.get("spec") or {}).get("selector"))
    except StatusError:
        return False
    return selector.matches(labels)


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
