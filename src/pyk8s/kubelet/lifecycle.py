"""postStart and preStop hooks (exec, httpGet, sleep), as the kubelet's handlerRunner."""

from __future__ import annotations

from typing import Any

from pyk8s.kubelet import cri
from pyk8s.kubelet.probes import run_check

__all__ = ["run_hook"]

Obj = dict[str, Any]


async def run_hook(hook: str, *, runtime: cri.RuntimeService, container: Obj, container_id: str, pod_ip: str,
                   seconds: float) -> str | None:
    """Run the container's `postStart` or `preStop` handler; an error message, or None on success."""
    handler = (container.get("lifecycle") or {}).get(hook)
    if not handler:
        return None
    result = await run_check(handler, runtime=runtime, container_id=container_id, container=container,
                             pod_ip=pod_ip, seconds=seconds)
    if result.ok:
        return None
    if "exec" in handler:
        cmd = (handler["exec"] or {}).get("command") or []
        return (f"Exec lifecycle hook ({cmd}) for Container \"{container['name']}\" failed - error: "
                f"{result.output}")
    if "httpGet" in handler:
        return f"HTTP lifecycle hook ({(handler['httpGet'] or {}).get('path', '')}) for Container " \
               f"\"{container['name']}\" failed - error: {result.output}"
    return result.output
