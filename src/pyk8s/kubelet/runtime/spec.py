"""The OCI runtime spec (config.json) of a container, from a CRI ContainerConfig."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from pyk8s.kubelet import cri
from pyk8s.kubelet.runtime.seccomp import runtime_default

# Kubernetes' (containerd's) default capability set.
DEFAULT_CAPS = ("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
                "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE")
MASKED_PATHS = ("/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                "/sys/firmware")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def all_capabilities() -> list[str]:
    """Every capability this kernel knows (privileged containers get them all)."""
    names = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
             "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
             "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
             "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
             "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
             "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE"]
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
        names = names[: last + 1]
    except (OSError, ValueError):
        pass
    return ["CAP_" + n for n in names]


def current_capabilities() -> list[str]:
    """The capabilities this process may hand on (its bounding set), in kernel bit order: what a
    privileged container gets (containerd: cap.Current()); more would make runc fail."""
    bounding = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                bounding = int(line.split()[1], 16)
    return [name for bit, name in enumerate(all_capabilities()) if bounding >> bit & 1]


def capabilities(sec: cri.SecurityConfig) -> list[str]:
    if sec.privileged:
        return current_capabilities()
    known = set(all_capabilities())
    caps = {"CAP_" + c for c in DEFAULT_CAPS}
    drops = {c.upper().removeprefix("CAP_") for c in sec.capabilities_drop}
    adds = {c.upper().removeprefix("CAP_") for c in sec.capabilities_add}
    if "ALL" in drops:
        caps = set()
    caps -= {"CAP_" + c for c in drops}
    caps |= known if "ALL" in adds else {"CAP_" + c for c in adds if "CAP_" + c in known}
    return sorted(caps)


@dataclass
class SandboxPaths:
    """What a container takes from its sandbox."""

    hostname: str
    netns: str  # "" : the host's network
    ipc_ns: str  # "" : the host's (hostIPC) or none
    uts_ns: str
    hosts_path: str
    resolv_path: str
    hostname_path: str
    host_network: bool
    pid_ns: str = ""  # the pod's shared PID namespace (shareProcessNamespace); "": one of its own


def host_devices() -> list[dict[str, Any]]:
    """The host's device nodes, for privileged containers (as containerd's WithHostDevices)."""
    import stat

    devices = []
    for root, dirs, files in os.walk("/dev"):
        dirs[:] = [d for d in dirs if d not in ("pts", "shm", "mqueue", "fd")]
        for name in files:
            path = os.path.join(root, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                if path in ("/dev/console", "/dev/ptmx") or path.startswith("/dev/tty"):
                    continue  # the container's own terminal devices stay
                devices.append({"path": path, "type": "c" if stat.S_ISCHR(st.st_mode) else "b",
                                "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                                "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid})
    return devices


def _nofile() -> int:
    """containerd's 1048576 open files, or our own hard limit if lower (raising it may be refused)."""
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 1048576 if hard == resource.RLIM_INFINITY else min(1048576, hard)


def _resolve_user(rootfs: str, user: str) -> tuple[int, int]:
    """The image's USER ("uid", "uid:gid", "name", "name:group") against the rootfs' passwd/group."""
    name, _, group = user.partition(":")

    def lookup(file: str, key: str, field: int) -> int | None:
        if key.isdigit():
            return int(key)
        try:
            with open(os.path.join(rootfs, "etc", file)) as f:
                for line in f:
                    parts = line.strip().split(":")
                    if len(parts) > field and parts[0] == key:
                        return int(parts[2]) if field == 2 else int(parts[3])
        except (OSError, ValueError):
            pass
        return None

    uid = lookup("passwd", name, 2) if name else 0
    gid = lookup("group", group, 2) if group else (lookup("passwd", name, 3) if name and not name.isdigit()
                                                   else 0)
    return uid or 0, gid or 0


def linux_resources(res: cri.LinuxResources) -> dict[str, Any]:
    """The cgroup limits of an OCI spec's linux.resources (cpu, memory, pids)."""
    out: dict[str, Any] = {}
    cpu: dict[str, Any] = {}
    if res.cpu_shares:
        cpu["shares"] = res.cpu_shares
    if res.cpu_quota:
        cpu["quota"] = res.cpu_quota
        cpu["period"] = res.cpu_period or 100_000
    if cpu:
        out["cpu"] = cpu
    if res.memory_limit:
        # Swap equal to the limit: no swap, as Kubernetes configures it.
        out["memory"] = {"limit": res.memory_limit, "swap": res.memory_limit}
    if res.pids_limit:
        out["pids"] = {"limit": res.pids_limit}
    return out


def build(config: cri.ContainerConfig, *, rootfs: str, sandbox: SandboxPaths, cgroups_path: str,
          image_config: cri.ImageConfig | None, gvisor: bool, annotations: dict[str, str]) -> dict[str, Any]:
    sec = config.security
    image_user = image_config.user if image_config else ""
    uid, gid = _resolve_user(rootfs, image_user) if image_user else (0, 0)
    if sec.run_as_user is not None:
        uid = sec.run_as_user
        if sec.run_as_group is None and not image_user.partition(":")[2]:
            gid = 0
    if sec.run_as_group is not None:
        gid = sec.run_as_group
    env = [f"{k}={v}" for k, v in config.env]
    names = {e.partition("=")[0] for e in env}
    if "PATH" not in names:
        env.insert(0, f"PATH={DEFAULT_PATH}")
    if "HOSTNAME" not in names:
        env.append(f"HOSTNAME={sandbox.hostname}")
    caps = capabilities(sec)
    process: dict[str, Any] = {
        "terminal": config.tty,
        "user": {"uid": uid, "gid": gid, "additionalGids": list(sec.supplemental_groups)},
        "args": config.args,
        "env": env,
        "cwd": config.working_dir or "/",
        "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": _nofile(), "soft": _nofile()}],
        "noNewPrivileges": sec.no_new_privileges,
        "oomScoreAdj": config.resources.oom_score_adj,
    }
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "rw" if sec.privileged else "ro"]},
    ]
    if not gvisor:
        mounts.append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                       "options": ["nosuid", "noexec", "nodev", "relatime",
                                   "rw" if sec.privileged else "ro"]})
    taken = {m.container_path for m in config.mounts}
    for path, dest in ((sandbox.hosts_path, "/etc/hosts"), (sandbox.resolv_path, "/etc/resolv.conf"),
                       (sandbox.hostname_path, "/etc/hostname")):
        if path and dest not in taken:
            mounts.append({"destination": dest, "type": "bind", "source": path,
                           "options": ["rbind", "rprivate", "ro" if sec.read_only_rootfs else "rw"]})
    for m in config.mounts:
        opts = ["rbind", m.propagation if m.propagation in ("rslave", "rshared") else "rprivate"]
        opts.append("ro" if m.read_only else "rw")
        mounts.append({"destination": m.container_path, "type": "bind", "source": m.host_path,
                       "options": opts})

    pid = {"type": "pid", "path": sandbox.pid_ns} if sandbox.pid_ns and not gvisor else {"type": "pid"}
    namespaces: list[dict[str, str]] = [pid, {"type": "mount"}]
    if gvisor:
        # gVisor's sandbox has its own IPC and UTS. Its network: runsc is started inside the pod's
        # network namespace with --network=host (see service.py), so no namespace entry here.
        namespaces += [{"type": "ipc"}, {"type": "uts"}]
    else:
        namespaces.append({"type": "ipc", "path": sandbox.ipc_ns} if sandbox.ipc_ns else {"type": "ipc"})
        if sandbox.uts_ns:
            namespaces.append({"type": "uts", "path": sandbox.uts_ns})
        if not sandbox.host_network:
            namespaces.append({"type": "network", "path": sandbox.netns})

    resources: dict[str, Any] = {
        "devices": [{"allow": bool(sec.privileged), "access": "rwm"}],
        **linux_resources(config.resources),
    }

    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": cgroups_path,
    }
    if sec.privileged:
        linux["devices"] = host_devices()
    else:
        if not sec.masked_paths_off:
            linux["maskedPaths"] = list(MASKED_PATHS)
            linux["readonlyPaths"] = list(READONLY_PATHS)
        if sec.seccomp == "RuntimeDefault" or sec.seccomp == "":
            linux["seccomp"] = runtime_default(set(caps))
        elif sec.seccomp.startswith("Localhost/"):
            with open(sec.seccomp.removeprefix("Localhost/")) as f:
                linux["seccomp"] = json.load(f)
    spec: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": rootfs, "readonly": sec.read_only_rootfs},
        "hostname": sandbox.hostname,
        "mounts": mounts,
        "linux": linux,
        "annotations": annotations,
    }
    if sandbox.host_network and not sandbox.uts_ns and not gvisor:
        del spec["hostname"]  # the host's UTS namespace: leave its name alone
    return spec
