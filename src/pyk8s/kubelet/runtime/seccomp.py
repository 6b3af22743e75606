"""The RuntimeDefault seccomp profile: allow by default, deny (EPERM) the system calls Docker's and
containerd's default profiles keep from containers. Syscalls gated by a capability stay allowed when the
container holds that capability, as in those profiles."""

from __future__ import annotations

from typing import Any

# Always denied: kernel modules, kexec, keyrings, clock and time setting, swap, reboot, accounting,
# obsolete or information-leaking calls, cross-process memory access and BPF.
_DENIED = (
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module", "delete_module",
    "finit_module", "get_kernel_syms", "get_mempolicy", "init_module", "ioperm", "iopl", "kcmp",
    "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind", "move_pages",
    "nfsservctl", "open_by_handle_at", "perf_event_open", "query_module", "quotactl", "reboot",
    "request_key", "set_mempolicy", "settimeofday", "stime", "swapoff", "swapon", "sysfs",
    "_sysctl", "uselib", "userfaultfd", "ustat", "vm86", "vm86old", "fsopen", "fsconfig", "fsmount",
    "fspick", "move_mount", "open_tree",
)
# Denied unless the container has the capability.
_BY_CAPABILITY = {
    "SYS_ADMIN": ("mount", "umount", "umount2", "unshare", "setns", "pivot_root", "name_to_handle_at",
                  "setdomainname", "sethostname", "syslog", "lookup_dcookie"),
    "SYS_PTRACE": ("ptrace", "process_vm_readv", "process_vm_writev"),
    "SYS_MODULE": (),
}


def runtime_default(capabilities: set[str]) -> dict[str, Any]:
    denied = set(_DENIED)
    for cap, calls in _BY_CAPABILITY.items():
        if f"CAP_{cap}" not in capabilities:
            denied.update(calls)
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"],
        "syscalls": [{"names": sorted(denied), "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }
