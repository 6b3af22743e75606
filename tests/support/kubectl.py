"""The real kubectl against an in-process test server: its output and exit code, stderr merged."""

from __future__ import annotations

import asyncio
from pathlib import Path


def write_kubeconfig(url: str, directory: Path) -> Path:
    """An anonymous kubeconfig for `url` (namespace default) as `directory`/kubeconfig."""
    path = directory / "kubeconfig"
    path.write_text(f"""\
apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "{url}"}}}}]
users: [{{name: u, user: {{}}}}]
contexts: [{{name: c, context: {{cluster: c, user: u, namespace: default}}}}]
current-context: c
""")
    return path


async def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> tuple[int, str]:
    """Run kubectl with HOME beside the kubeconfig (its cache stays in the test's directory)."""
    proc = await asyncio.create_subprocess_exec(
        "kubectl", "--kubeconfig", str(kubeconfig), *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(kubeconfig.parent)})
    out, _ = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else None), 60)
    return proc.returncode or 0, out.decode()
