"""metav1.Time strings as the controllers read them: None for a missing or unreadable one."""

from __future__ import annotations

from datetime import datetime


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def epoch(value: str | None) -> float | None:
    """The time in seconds since the epoch."""
    parsed = parse_time(value)
    return None if parsed is None else parsed.timestamp()
