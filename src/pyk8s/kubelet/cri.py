"""The seam between the kubelet's pod logic and the machinery that runs containers: a small CRI.

Kubernetes' Container Runtime Interface, cut to what pyk8s needs and made async: the kubelet core
(`pyk8s.kubelet.pods`, …) speaks only these types; `pyk8s.kubelet.runtime` implements RuntimeService
over runc/runsc, `pyk8s.kubelet.images` implements ImageService, `pyk8s.kubelet.network` wires sandboxes
through CNI. Ids are opaque strings; times are Unix seconds (0 = never).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

# -- images ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageConfig:
    """What a container inherits from its image (OCI image config)."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()  # "KEY=value"
    working_dir: str = ""
    user: str = ""  # "uid", "uid:gid", "name" …


@dataclass(frozen=True)
class Image:
    id: str  # "sha256:<config digest>"; what containerStatuses[].imageID reports (as docker-pullable ref)
    repo_tags: tuple[str, ...]  # "docker.io/library/busybox:latest"
    repo_digests: tuple[str, ...]  # "docker.io/library/busybox@sha256:<manifest digest>"
    size: int
    config: ImageConfig


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials for one registry, from imagePullSecrets (kubernetes.io/dockerconfigjson)."""

    server: str
    username: str = ""
    password: str = ""
    auth: str = ""  # base64 "user:password"
    identity_token: str = ""


class ImageService(Protocol):
    async def pull_image(self, ref: str, auth: list[RegistryAuth] | None = None) -> Image:
        """Pull `ref` (normalised as docker does: busybox → docker.io/library/busybox:latest).
        Raises ImagePullError with a reason kubectl users know."""
        ...

    async def image_status(self, ref: str) -> Image | None:
        """The image `ref` names in the local store, or None."""
        ...

    async def list_images(self) -> list[Image]: ...

    async def remove_image(self, ref: str) -> None: ...

    def layer_dirs(self, image_id: str) -> list[str]:
        """Extracted layer directories of the image, lowest first: overlayfs lowerdirs."""
        ...


class ImagePullError(Exception):
    """`reason` is what the pod's container status shows: ErrImagePull, ImageInspectError, …"""

    def __init__(self, message: str, reason: str = "ErrImagePull") -> None:
        super().__init__(message)
        self.reason = reason


# -- sandboxes and containers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Mount:
    host_path: str
    container_path: str
    read_only: bool = False
    propagation: str = "private"  # private | rslave | rshared


@dataclass(frozen=True)
class PortMapping:
    container_port: int
    host_port: int
    protocol: str = "TCP"
    host_ip: str = ""


@dataclass(frozen=True)
class DNSConfig:
    servers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


@dataclass
class SandboxConfig:
    pod_uid: str
    namespace: str
    name: str
    hostname: str
    runtime_handler: str = "runc"  # runc | runsc (RuntimeClass handler)
    host_network: bool = False
    dns: DNSConfig | None = None  # None: the host's resolv.conf
    host_aliases: list[tuple[str, list[str]]] = field(default_factory=list)  # /etc/hosts extras
    port_mappings: list[PortMapping] = field(default_factory=list)  # hostPort
    cgroup_parent: str = ""  # the pod's cgroup, relative to each controller's root
    share_process_namespace: bool = False  # one PID namespace for the pod's containers (a pause is PID 1)
    # The pod's cgroup limits (sums over its containers, as Kubernetes' pod cgroup): what a gVisor sandbox,
    # whose containers share one kernel, is held to.
    resources: LinuxResources | None = None
    log_directory: str = ""  # where this pod's container logs go
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass
class SandboxStatus:
    id: str
    pod_uid: str
    namespace: str
    name: str
    state: str  # ready | notready
    ip: str = ""
    created_at: float = 0.0
    runtime_handler: str = "runc"
    netns_path: str = ""
    hosts_path: str = ""  # files the runtime wrote, mounted into every container
    resolv_path: str = ""
    hostname_path: str = ""


@dataclass
class LinuxResources:
    cpu_shares: int = 0  # cgroup v1 cpu.shares (2 = minimum); 0: runtime default
    cpu_quota: int = 0  # microseconds per period; 0: unlimited
    cpu_period: int = 100_000
    memory_limit: int = 0  # bytes; 0: unlimited
    pids_limit: int = 0  # 0: unlimited
    oom_score_adj: int = 0  # the container's /proc/<pid>/oom_score_adj (by QoS class)


@dataclass
class SecurityConfig:
    run_as_user: int | None = None
    run_as_group: int | None = None
    supplemental_groups: tuple[int, ...] = ()
    privileged: bool = False
    capabilities_add: tuple[str, ...] = ()  # "NET_ADMIN" (no CAP_ prefix, as Kubernetes)
    capabilities_drop: tuple[str, ...] = ()  # "ALL" allowed
    read_only_rootfs: bool = False
    no_new_privileges: bool = False
    seccomp: str = "RuntimeDefault"  # RuntimeDefault | Unconfined | Localhost/<path>
    masked_paths_off: bool = False  # procMount Unmasked


@dataclass
class ContainerConfig:
    name: str
    image: str  # an Image.id from the ImageService
    args: list[str]  # the final argv (the kubelet already merged command/args with the image's)
    env: list[tuple[str, str]] = field(default_factory=list)
    working_dir: str = ""
    mounts: list[Mount] = field(default_factory=list)
    resources: LinuxResources = field(default_factory=LinuxResources)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    attempt: int = 0  # restart count
    tty: bool = False
    stdin: bool = False
    stdin_once: bool = False
    log_path: str = ""  # relative to the sandbox's log_directory: "<name>/<attempt>.log"
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass
class ContainerStatus:
    id: str
    sandbox_id: str
    name: str
    attempt: int
    state: str  # created | running | exited | unknown
    image: str = ""
    image_id: str = ""
    created_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    exit_code: int = 0
    reason: str = ""  # OOMKilled | Error | Completed | ContainerCannotRun
    message: str = ""
    log_path: str = ""  # absolute
    pid: int = 0
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


class Stream(Protocol):
    """A running exec or attach session: bytes in, bytes out, a terminal size, an exit code."""

    async def write_stdin(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    def stdout(self) -> AsyncIterator[bytes]: ...

    def stderr(self) -> AsyncIterator[bytes]: ...  # empty with a tty

    async def resize(self, width: int, height: int) -> None: ...

    async def wait(self) -> int: ...

    async def kill(self) -> None: ...


class RuntimeService(Protocol):
    def handlers(self) -> list[str]:
        """Runtime handlers found on this node (runc, runsc): the node registers a RuntimeClass each."""
        ...

    def version(self) -> str:
        """`runc://1.1.5`-style, for nodeInfo.containerRuntimeVersion."""
        ...

    async def run_pod_sandbox(self, config: SandboxConfig) -> str:
        """Namespaces, network (CNI), hostname, /etc/hosts and resolv.conf; returns the sandbox id."""
        ...

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        """Stop every container of it and tear its network down (idempotent)."""
        ...

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        """Remove what is left: state, files, cgroups (idempotent)."""
        ...

    async def pod_sandbox_status(self, sandbox_id: str) -> SandboxStatus: ...

    async def list_pod_sandboxes(self) -> list[SandboxStatus]:
        """Every sandbox this runtime knows, running or not (found again after a kubelet restart)."""
        ...

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str: ...

    async def start_container(self, container_id: str) -> None: ...

    async def stop_container(self, container_id: str, grace_seconds: float) -> None:
        """SIGTERM, then SIGKILL after `grace_seconds` (0: SIGKILL at once)."""
        ...

    async def remove_container(self, container_id: str) -> None: ...

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]: ...

    async def container_status(self, container_id: str) -> ContainerStatus: ...

    async def exec_sync(self, container_id: str, cmd: list[str], timeout_seconds: float) -> ExecResult:
        """Run `cmd` in the container and collect its output; killed after `timeout_seconds`."""
        ...

    async def exec(self, container_id: str, cmd: list[str], *, stdin: bool, tty: bool) -> Stream: ...

    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> Stream: ...

    async def port_forward(self, sandbox_id: str, port: int) -> tuple[Callable[[bytes], Awaitable[None]],
                                                                       AsyncIterator[bytes]]:
        """A TCP connection to `port` inside the sandbox's network namespace: (send, received chunks)."""
        ...
