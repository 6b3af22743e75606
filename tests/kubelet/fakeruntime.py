"""An in-memory RuntimeService and ImageService: a test double of the CRI seam for the pod state machine.

A container's argv is its script: `run` runs until stopped; `exit CODE [AFTER]` exits with CODE after AFTER
seconds (default 0); `oom [AFTER]` is OOM-killed. exec_sync runs `ok` (0), `fail` (1), or a callable the
test put into `exec_handlers[name]`.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from pyk8s.kubelet import cri


@dataclass
class FakeContainer:
    status: cri.ContainerStatus
    config: cri.ContainerConfig
    timer: asyncio.TimerHandle | None = None


@dataclass
class FakeRuntime:
    handler_names: list[str] = field(default_factory=lambda: ["runc"])
    sandboxes: dict[str, cri.SandboxStatus] = field(default_factory=dict)
    sandbox_configs: dict[str, cri.SandboxConfig] = field(default_factory=dict)
    containers: dict[str, FakeContainer] = field(default_factory=dict)
    exec_handlers: dict[str, Callable[[list[str]], int]] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)  # container names in start order
    stops: list[tuple[str, float]] = field(default_factory=list)  # (container name, grace)
    removed_sandboxes: list[str] = field(default_factory=list)
    _ip: int = 1

    def handlers(self) -> list[str]:
        return list(self.handler_names)

    def version(self) -> str:
        return "runc://1.1.5"

    async def run_pod_sandbox(self, config: cri.SandboxConfig) -> str:
        sid = secrets.token_hex(8)
        self._ip += 1
        self.sandboxes[sid] = cri.SandboxStatus(
            id=sid, pod_uid=config.pod_uid, namespace=config.namespace, name=config.name, state="ready",
            ip=f"10.88.0.{self._ip}", created_at=time.time(), runtime_handler=config.runtime_handler)
        self.sandbox_configs[sid] = config
        return sid

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        for c in list(self.containers.values()):
            if c.status.sandbox_id == sandbox_id and c.status.state == "running":
                self._exit(c, 137, "Error")
        if sandbox_id in self.sandboxes:
            self.sandboxes[sandbox_id].state = "notready"

    def kill_sandbox(self, sandbox_id: str) -> None:
        """The sandbox dies under the kubelet (gVisor's sandbox killed, namespaces gone): its containers
        are killed with it and it reports notready."""
        for c in list(self.containers.values()):
            if c.status.sandbox_id == sandbox_id:
                self._exit(c, 137, "Error")
        self.sandboxes[sandbox_id].state = "notready"

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        if self.sandboxes.pop(sandbox_id, None) is not None:
            self.removed_sandboxes.append(sandbox_id)
        for cid in [k for k, c in self.containers.items() if c.status.sandbox_id == sandbox_id]:
            del self.containers[cid]

    async def pod_sandbox_status(self, sandbox_id: str) -> cri.SandboxStatus:
        return self.sandboxes[sandbox_id]

    async def list_pod_sandboxes(self) -> list[cri.SandboxStatus]:
        return list(self.sandboxes.values())

    async def create_container(self, sandbox_id: str, config: cri.ContainerConfig) -> str:
        if self.sandboxes[sandbox_id].state != "ready":  # as a real runtime refuses
            raise RuntimeError(f"pod sandbox {sandbox_id} is not ready")
        cid = secrets.token_hex(16)
        self.containers[cid] = FakeContainer(cri.ContainerStatus(
            id=cid, sandbox_id=sandbox_id, name=config.name, attempt=config.attempt, state="created",
            image=config.image, image_id=config.image, created_at=time.time(), labels=dict(config.labels)),
            config)
        return cid

    async def start_container(self, container_id: str) -> None:
        c = self.containers[container_id]
        c.status.state = "running"
        c.status.started_at = time.time()
        self.started.append(c.config.name)
        argv = c.config.args
        loop = asyncio.get_running_loop()
        if argv and argv[0] in ("exit", "oom"):
            code, reason = (int(argv[1]), "") if argv[0] == "exit" else (137, "OOMKilled")
            at = 2 if argv[0] == "exit" else 1
            after = float(argv[at]) if len(argv) > at else 0.0
            c.timer = loop.call_later(after, self._exit, c, code, reason)

    def _exit(self, c: FakeContainer, code: int, reason: str) -> None:
        if c.status.state != "running":
            return
        if c.timer:
            c.timer.cancel()
        c.status.state = "exited"
        c.status.exit_code = code
        c.status.reason = reason or ("Completed" if code == 0 else "Error")
        c.status.finished_at = time.time()

    async def stop_container(self, container_id: str, grace_seconds: float) -> None:
        c = self.containers[container_id]
        self.stops.append((c.config.name, grace_seconds))
        self._exit(c, 137 if grace_seconds == 0 else 143, "Error")

    async def remove_container(self, container_id: str) -> None:
        self.containers.pop(container_id, None)

    async def list_containers(self, sandbox_id: str | None = None) -> list[cri.ContainerStatus]:
        return [c.status for c in self.containers.values() if sandbox_id in (None, c.status.sandbox_id)]

    async def container_status(self, container_id: str) -> cri.ContainerStatus:
        return self.containers[container_id].status

    async def exec_sync(self, container_id: str, cmd: list[str], timeout_seconds: float) -> cri.ExecResult:
        c = self.containers[container_id]
        handler = self.exec_handlers.get(c.config.name)
        if handler is not None:
            return cri.ExecResult(handler(cmd), b"", b"")
        return cri.ExecResult(0 if cmd[:1] == ["ok"] else 1, b"", b"failed\n" if cmd[:1] != ["ok"] else b"")

    async def exec(self, container_id: str, cmd: list[str], *, stdin: bool, tty: bool) -> cri.Stream:
        raise NotImplementedError

    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> cri.Stream:
        raise NotImplementedError

    async def port_forward(self, sandbox_id: str, port: int) -> tuple[Callable[[bytes], Awaitable[None]],
                                                                       AsyncIterator[bytes]]:
        raise NotImplementedError


BUSYBOX = cri.Image(id="sha256:" + "b" * 64, repo_tags=("docker.io/library/busybox:latest",),
                    repo_digests=("docker.io/library/busybox@sha256:" + "d" * 64,), size=1234,
                    config=cri.ImageConfig(cmd=("sh",), env=("PATH=/usr/bin:/bin",)))


@dataclass
class FakeImages:
    present: dict[str, cri.Image] = field(default_factory=lambda: {"busybox": BUSYBOX})
    remote: dict[str, cri.Image] = field(default_factory=dict)
    pulls: list[tuple[str, list[cri.RegistryAuth] | None]] = field(default_factory=list)

    async def pull_image(self, ref: str, auth: list[cri.RegistryAuth] | None = None) -> cri.Image:
        self.pulls.append((ref, auth))
        image = self.remote.get(ref) or self.present.get(ref)
        if image is None:
            raise cri.ImagePullError(f"failed to resolve reference \"{ref}\": not found")
        self.present[ref] = image
        return image

    async def image_status(self, ref: str) -> cri.Image | None:
        return self.present.get(ref)

    async def list_images(self) -> list[cri.Image]:
        return list(self.present.values())

    async def remove_image(self, ref: str) -> None:
        self.present.pop(ref, None)

    def layer_dirs(self, image_id: str) -> list[str]:
        return []
