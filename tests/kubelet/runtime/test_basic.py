from __future__ import annotations

from pathlib import Path

from pyk8s.kubelet.runtime import RuncRuntime
from tests.kubelet.runtime.conftest import container_config, needs_root, sandbox_config, wait_for

pytestmark = needs_root


async def test_exit_codes_and_reasons(runtime: RuncRuntime, cgroup_parent: str, tmp_path: Path) -> None:
    sid = await runtime.run_pod_sandbox(sandbox_config(cgroup_parent, tmp_path))
    ok = await runtime.create_container(sid, container_config(["sh", "-c", "echo hi; hostname"]))
    await runtime.start_container(ok)

    async def exited(cid: str) -> bool:
        return (await runtime.container_status(cid)).state == "exited"

    await wait_for(lambda: exited(ok))
    st = await runtime.container_status(ok)
    assert (st.exit_code, st.reason) == (0, "Completed")
    print(open(st.log_path).read())
