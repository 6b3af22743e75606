"""Raw HTTP upgrades to the kubelet (`Upgrade: SPDY/3.1`, as kubectl before 1.30/1.31 sends for exec,
attach and port-forward): which requests are such upgrades, and the 101 that picks the stream protocol."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from pyk8s.util.rawupgrade import RawConnection, switch_protocols

__all__ = ["RawConnection", "accept_upgrade", "is_spdy_upgrade"]


def is_spdy_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower().startswith("spdy/") \
        and "upgrade" in request.headers.get("Connection", "").lower()


def offered_protocols(request: web.Request) -> list[str]:
    return [p.strip() for v in request.headers.getall("X-Stream-Protocol-Version", []) for p in v.split(",")
            if p.strip()]


async def accept_upgrade(request: web.Request, supported: Iterable[str]) -> tuple[RawConnection, str] | None:
    """Answer 101 with the first protocol the client offers that we support; None, with nothing answered,
    when none matches (the caller answers 403, as the kubelet does)."""
    offered = offered_protocols(request)
    chosen = next((p for p in offered if p in set(supported)), "")
    if offered and not chosen:
        return None
    headers = {"Connection": "Upgrade", "Upgrade": request.headers["Upgrade"]}
    if chosen:
        headers["X-Stream-Protocol-Version"] = chosen
    return await switch_protocols(request, headers), chosen
