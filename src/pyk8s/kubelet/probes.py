"""Container probes (liveness, readiness, startup) as the kubelet's prober: exec through the runtime,
httpGet and tcpSocket to the pod IP; thresholds, periods and delays; a result handed to the pod worker
when it changes, and an `Unhealthy` event for each failure."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from pyk8s.kubelet import cri
from pyk8s.util.tasks import cancel_and_wait

__all__ = ["ProbeResult", "Prober", "resolve_port", "run_check"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]

LIVENESS = "Liveness"
READINESS = "Readiness"
STARTUP = "Startup"


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    output: str = ""


def resolve_port(container: Obj, port: int | str) -> int:
    """A probe or hook port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    if port.isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"couldn't find port: {port} in {container.get('name')}")


async def run_check(handler: Obj, *, runtime: cri.RuntimeService, container_id: str, container: Obj,
                    pod_ip: str, seconds: float) -> ProbeResult:
    """One exec, httpGet, tcpSocket (or hook sleep) action; never raises for the action's own failure."""
    try:
        if "exec" in handler:
            cmd = list((handler["exec"] or {}).get("command") or [])
            try:
                res = await asyncio.wait_for(runtime.exec_sync(container_id, cmd, seconds), seconds + 1)
            except TimeoutError:
                return ProbeResult(False, f"command {cmd!r} timed out")
            out = (res.stdout + res.stderr).decode("utf-8", "replace")
            if res.exit_code != 0 and not out:
                out = f"command {cmd!r} exited with {res.exit_code}"
            return ProbeResult(res.exit_code == 0, out)
        if "httpGet" in handler:
            return await _http(handler["httpGet"], container, pod_ip, seconds)
        if "tcpSocket" in handler:
            tcp = handler["tcpSocket"]
            host = tcp.get("host") or pod_ip
            port = resolve_port(container, tcp["port"])
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), seconds)
            except (OSError, TimeoutError) as e:
                return ProbeResult(False, f"dial tcp {host}:{port}: {e or 'i/o timeout'}")
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return ProbeResult(True)
        if "sleep" in handler:
            await asyncio.sleep(float((handler["sleep"] or {}).get("seconds", 0)))
            return ProbeResult(True)
    except Exception as e:  # a malformed handler is a failed check, as the kubelet reports it
        return ProbeResult(False, str(e))
    return ProbeResult(False, "missing probe handler")


async def _http(get: Obj, container: Obj, pod_ip: str, seconds: float) -> ProbeResult:
    host = get.get("host") or pod_ip
    port = resolve_port(container, get.get("port", 80))
    scheme = (get.get("scheme") or "HTTP").lower()
    path = get.get("path") or "/"
    if not path.startswith("/"):
        path = "/" + path
    url = f"{scheme}://{host}:{port}{path}"
    headers = {"User-Agent": "kube-probe/1.32", "Accept": "*/*"}
    for h in get.get("httpHeaders") or []:
        headers[h["name"]] = h.get("value", "")
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=seconds)) as session, \
                session.get(url, headers=headers, allow_redirects=False, ssl=False) as resp:
            body = (await resp.content.read(10 * 1024)).decode("utf-8", "replace")
            if 200 <= resp.status < 400:
                return ProbeResult(True, body)
            return ProbeResult(False, f"HTTP probe failed with statuscode: {resp.status}")
    except TimeoutError:
        return ProbeResult(False, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while '
                                  "awaiting headers)")
    except aiohttp.ClientError as e:
        return ProbeResult(False, f'Get "{url}": {e}')


# (probe kind, result) → the pod worker
OnResult = Callable[[str, bool], None]
OnFailure = Callable[[str, str], None]  # (probe kind, output): an Unhealthy event


class Prober:
    """The probes of one running container: a task each, stopped when the container stops."""

    def __init__(self, *, runtime: cri.RuntimeService, container: Obj, container_id: str, pod_ip: str,
                 on_result: OnResult, on_failure: OnFailure, time_scale: float = 1.0) -> None:
        self.runtime = runtime
        self.container = container
        self.container_id = container_id
        self.pod_ip = pod_ip
        self.on_result = on_result
        self.on_failure = on_failure
        self.time_scale = time_scale  # < 1 in tests: periods and delays shrink (the API wants whole seconds)
        self.started = "startupProbe" not in container
        self.ready = "readinessProbe" not in container
        self.alive = True
        self._started_event = asyncio.Event()
        if self.started:
            self._started_event.set()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        kinds = ((STARTUP, "startupProbe"), (LIVENESS, "livenessProbe"), (READINESS, "readinessProbe"))
        for kind, key in kinds:
            spec = self.container.get(key)
            if spec:
                self._tasks.append(asyncio.create_task(self._loop(kind, spec),
                                                       name=f"probe {kind} {self.container['name']}"))

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks.clear()

    async def _loop(self, kind: str, spec: Obj) -> None:
        if kind != STARTUP:
            await self._started_event.wait()  # liveness and readiness wait for the startup probe
        await asyncio.sleep(float(spec.get("initialDelaySeconds") or 0) * self.time_scale)
        period = float(spec.get("periodSeconds") or 10) * self.time_scale
        timeout = float(spec.get("timeoutSeconds") or 1)
        success_threshold = int(spec.get("successThreshold") or 1)
        failure_threshold = int(spec.get("failureThreshold") or 3)
        successes = failures = 0
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            result = await run_check(spec, runtime=self.runtime, container_id=self.container_id,
                                     container=self.container, pod_ip=self.pod_ip, seconds=timeout)
            if result.ok:
                successes, failures = successes + 1, 0
                if successes >= success_threshold:
                    self._set(kind, True)
                    if kind == STARTUP:
                        return  # a startup probe stops once it succeeded
            else:
                successes, failures = 0, failures + 1
                self.on_failure(kind, result.output)
                if failures >= failure_threshold:
                    self._set(kind, False)
                    if kind in (LIVENESS, STARTUP):
                        return  # the container is restarted; its new incarnation gets a new prober
            await asyncio.sleep(max(0.0, period - (loop.time() - began)))

    def _set(self, kind: str, ok: bool) -> None:
        if kind == STARTUP:
            changed, self.started = self.started != ok, ok
            if ok:
                self._started_event.set()
        elif kind == READINESS:
            changed, self.ready = self.ready != ok, ok
        else:
            changed, self.alive = self.alive != ok, ok
        if changed or (kind != READINESS and not ok):
            self.on_result(kind, ok)
