"""Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection package.

Candidates race to write their identity into the Lease; the write is conditional on the resourceVersion
they read, so of two concurrent writers one gets 409 Conflict and loses. The leader renews every
`retry_period`; if it cannot renew within `renew_deadline` it stops leading (its work is cancelled).
Another candidate takes over once it has seen the same Lease record unchanged for `lease_duration`,
measured on its own monotonic clock (so clock skew between machines does not matter), which is why
lease_duration must exceed renew_deadline: the old leader has stopped before anyone else may start.
On a clean stop the leader releases the Lease (empty holder) so a successor need not wait.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pyk8s.api.catalog import lookup
from pyk8s.api.errors import StatusError
from pyk8s.api.meta import rfc3339_micro
from pyk8s.client.client import Client, Obj
from pyk8s.util.clock import MONOTONIC, Clock
from pyk8s.util.tasks import cancel_and_wait

__all__ = ["LEASES", "LeaderElectionConfig", "LeaderElector"]

log = logging.getLogger(__name__)

_leases = lookup("coordination.k8s.io", "v1", "leases")
assert _leases is not None
LEASES = _leases


def _default_identity() -> str:
    return f"{socket.gethostname()}_{uuid.uuid4()}"


@dataclass
class LeaderElectionConfig:
    name: str
    namespace: str = "kube-system"
    identity: str = field(default_factory=_default_identity)
    lease_duration: float = 15.0  # how long others wait after the last renewal they saw
    renew_deadline: float = 10.0  # how long the leader keeps trying to renew before it gives up
    retry_period: float = 2.0  # between attempts to acquire or renew
    release_on_cancel: bool = True

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            raise ValueError("leader election needs lease_duration > renew_deadline > retry_period > 0")


class LeaderElector:
    """`await elector.run()` campaigns until it leads, runs `on_started_leading()` as a task while it
    leads, and returns once leadership is lost (after cancelling that task and calling
    `on_stopped_leading`). Cancelling `run` releases the Lease. Like client-go, one `run` is one term:
    call it again to campaign again."""

    def __init__(self, client: Client, config: LeaderElectionConfig, *,
                 on_started_leading: Callable[[], Awaitable[Any]],
                 on_stopped_leading: Callable[[], Awaitable[None] | None] | None = None,
                 on_new_leader: Callable[[str], None] | None = None, clock: Clock = MONOTONIC) -> None:
        self.client = client
        self.config = config
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.on_new_leader = on_new_leader
        self._clock = clock
        self._lease: Obj | None = None  # the Lease as last read or written
        self._observed_spec: dict[str, Any] | None = None
        self._observed_time = 0.0
        self._reported_leader: str | None = None
        self._leading = False

    @property
    def identity(self) -> str:
        return self.config.identity

    def is_leader(self) -> bool:
        return self._leading

    @property
    def leader(self) -> str:
        """The holder this candidate last observed ("" when none)."""
        return str((self._observed_spec or {}).get("holderIdentity") or "")

    async def run(self) -> None:
        work: asyncio.Task[Any] | None = None
        try:
            await self._acquire()
            work = asyncio.create_task(self._lead(), name=f"leading {self.config.name}")
            await self._renew()
            log.info("leader election %s: %s lost the lease", self.config.name, self.identity)
        finally:
            self._leading = False
            if work is not None:
                await cancel_and_wait([work])
            if self.config.release_on_cancel:
                await self._release()
            if work is not None and self.on_stopped_leading is not None:
                result = self.on_stopped_leading()
                if inspect.isawaitable(result):
                    await result

    async def _lead(self) -> None:
        try:
            await self.on_started_leading()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("leader election %s: on_started_leading failed", self.config.name)

    async def _acquire(self) -> None:
        # Polling is the protocol: the Lease is the only shared state between candidates.
        while True:
            if await self._try_acquire_or_renew():
                break
            await asyncio.sleep(self.config.retry_period)
        log.info("leader election %s: %s acquired the lease", self.config.name, self.identity)

    async def _renew(self) -> None:
        """Returns when a renewal window of renew_deadline passed without one successful renewal."""
        cfg = self.config
        while True:
            await asyncio.sleep(cfg.retry_period)
            try:
                async with asyncio.timeout(cfg.renew_deadline):
                    while True:
                        if await self._try_acquire_or_renew():
                            break
                        await asyncio.sleep(cfg.retry_period)
            except TimeoutError:
                return

    async def _try_acquire_or_renew(self) -> bool:
        cfg = self.config
        now = rfc3339_micro(time.time())
        spec: dict[str, Any] = {
            "holderIdentity": cfg.identity,
            "leaseDurationSeconds": max(1, math.ceil(cfg.lease_duration)),
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": 0,
        }
        try:
            lease = await self.client.get(LEASES, cfg.name, cfg.namespace)
        except StatusError as e:
            if e.code != 404:
                log.warning("leader election %s: reading the lease failed: %s", cfg.name, e)
                return False
            return await self._write(self.client.create(LEASES, {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": cfg.name, "namespace": cfg.namespace}, "spec": spec}, cfg.namespace))
        except Exception as e:  # the connection failed
            log.warning("leader election %s: reading the lease failed: %s", cfg.name, e)
            return False

        self._lease = lease
        old = lease.get("spec") or {}
        self._observe(old)
        holder = old.get("holderIdentity") or ""
        duration = old.get("leaseDurationSeconds") or cfg.lease_duration
        if holder and holder != cfg.identity and self._observed_time + duration > self._clock.now():
            self._leading = False
            return False  # someone else holds an unexpired lease
        transitions = int(old.get("leaseTransitions") or 0)
        if holder == cfg.identity:
            spec["acquireTime"] = old.get("acquireTime") or spec["acquireTime"]
            spec["leaseTransitions"] = transitions
        else:
            spec["leaseTransitions"] = transitions + 1
        return await self._write(self.client.update(LEASES, {**lease, "spec": spec}, cfg.namespace))

    async def _write(self, request: Awaitable[Obj]) -> bool:
        """Create or conditionally update the lease; a conflict means another candidate was faster."""
        try:
            lease = await request
        except StatusError as e:
            if e.code not in (409,):
                log.warning("leader election %s: writing the lease failed: %s", self.config.name, e)
            self._leading = False
            return False
        except Exception as e:  # the connection failed
            log.warning("leader election %s: writing the lease failed: %s", self.config.name, e)
            return False
        self._lease = lease
        self._observe(lease.get("spec") or {})
        self._leading = True
        return True

    def _observe(self, spec: dict[str, Any]) -> None:
        if spec != self._observed_spec:
            self._observed_spec = dict(spec)
            self._observed_time = self._clock.now()
        holder = str(spec.get("holderIdentity") or "")
        if holder != self._reported_leader:
            self._reported_leader = holder
            if self.on_new_leader is not None and holder:
                try:
                    self.on_new_leader(holder)
                except Exception:
                    log.exception("leader election %s: on_new_leader failed", self.config.name)

    async def _release(self) -> None:
        """Give the lease up (empty holder, 1 s duration) if this candidate holds it."""
        lease = self._lease
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
            return
        now = rfc3339_micro(time.time())
        spec = {"leaseDurationSeconds": 1, "acquireTime": now, "renewTime": now,
                "leaseTransitions": (lease.get("spec") or {}).get("leaseTransitions") or 0}
        try:
            self._lease = await self.client.update(LEASES, {**lease, "spec": spec}, self.config.namespace)
        except Exception as e:
            log.warning("leader election %s: releasing the lease failed: %s", self.config.name, e)
