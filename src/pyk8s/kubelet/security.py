"""A container's securityContext (over the pod's) as a `cri.SecurityConfig`, and the runAsNonRoot check."""

from __future__ import annotations

from typing import Any

from pyk8s.kubelet import cri

__all__ = ["security_config", "verify_run_as_non_root"]

Obj = dict[str, Any]


def _effective(pod: Obj, container: Obj, field: str) -> Any:
    csc = container.get("securityContext") or {}
    if field in csc and csc[field] is not None:
        return csc[field]
    return ((pod.get("spec") or {}).get("securityContext") or {}).get(field)


def security_config(pod: Obj, container: Obj) -> cri.SecurityConfig:
    psc = (pod.get("spec") or {}).get("securityContext") or {}
    csc = container.get("securityContext") or {}
    caps = csc.get("capabilities") or {}
    groups = [int(g) for g in psc.get("supplementalGroups") or []]
    if psc.get("fsGroup") is not None:
        groups.append(int(psc["fsGroup"]))
    seccomp = _effective(pod, container, "seccompProfile") or {}
    profile = seccomp.get("type", "RuntimeDefault")
    if profile == "Localhost":
        profile = f"Localhost/{seccomp.get('localhostProfile', '')}"
    privileged = bool(csc.get("privileged"))
    ape = csc.get("allowPrivilegeEscalation")
    user = _effective(pod, container, "runAsUser")
    group = _effective(pod, container, "runAsGroup")
    return cri.SecurityConfig(
        run_as_user=None if user is None else int(user),
        run_as_group=None if group is None else int(group),
        supplemental_groups=tuple(dict.fromkeys(groups)),
        privileged=privileged,
        capabilities_add=tuple(caps.get("add") or ()),
        capabilities_drop=tuple(caps.get("drop") or ()),
        read_only_rootfs=bool(csc.get("readOnlyRootFilesystem")),
        # Kubernetes: escalation is allowed unless set false (and always for privileged containers).
        no_new_privileges=ape is False and not privileged,
        seccomp="Unconfined" if privileged and profile == "RuntimeDefault" and not seccomp else profile,
        masked_paths_off=csc.get("procMount") == "Unmasked",
    )


def verify_run_as_non_root(pod: Obj, container: Obj, image_user: str) -> str | None:
    """The kubelet's verifyRunAsNonRoot: an error message, or None when the container may start."""
    if not _effective(pod, container, "runAsNonRoot"):
        return None
    meta = pod.get("metadata") or {}
    pod_ref = f'{meta.get("name")}_{meta.get("namespace")}({meta.get("uid")})'
    where = f'(pod: "{pod_ref}", container: {container["name"]})'
    user = _effective(pod, container, "runAsUser")
    if user is not None:
        if int(user) == 0:
            return f"container's runAsUser breaks non-root policy {where}"
        return None
    name = image_user.partition(":")[0]
    if not name:
        return f"container has runAsNonRoot and image will run as root {where}"
    if not name.isdigit():
        return (f"container has runAsNonRoot and image has non-numeric user ({name}), "
                f"cannot verify user is non-root {where}")
    if int(name) == 0:
        return f"container has runAsNonRoot and image will run as root {where}"
    return None
