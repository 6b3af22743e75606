"""The CNI invoker against recording plugins: what the spec says a runtime passes, and error parsing."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import orjson
import pytest

from pyk8s.kubelet.network import cni

RECORDER = """#!/bin/sh
# Records what the runtime passed; ADD answers with a result naming this plugin.
n=$(basename "$0")
cat > "{rec}/$n.$CNI_COMMAND.json"
env | grep '^CNI_' | sort > "{rec}/$n.$CNI_COMMAND.env"
echo "$n $CNI_COMMAND" >> "{rec}/order"
if [ "$CNI_COMMAND" = ADD ]; then
  printf '{{"cniVersion":"1.0.0","ips":[{{"address":"10.1.2.3/24"}}],"dns":{{"domain":"%s"}}}}' "$n"
fi
"""
FAILER = """#!/bin/sh
echo '{"cniVersion":"1.0.0","code":7,"msg":"bad things","details":"in detail"}'
exit 1
"""
CRASHER = """#!/bin/sh
echo 'panic: oops' >&2
exit 2
"""


@pytest.fixture
def plugins(tmp_path: Path) -> tuple[str, Path]:
    bins, rec = tmp_path / "bin", tmp_path / "rec"
    bins.mkdir()
    rec.mkdir()
    for name, text in (("one", RECORDER.format(rec=rec)), ("two", RECORDER.format(rec=rec)),
                       ("failer", FAILER), ("crasher", CRASHER)):
        (bins / name).write_text(text)
        os.chmod(bins / name, 0o755)
    return str(bins), rec


def conflist(*types: str) -> cni.JSON:
    return {"cniVersion": "1.0.0", "name": "net1",
            "plugins": [{"type": t, "capabilities": {"portMappings": t == "two"}} for t in types]}


def recorded(rec: Path, name: str) -> tuple[dict[str, str], cni.JSON]:
    env = dict(line.split("=", 1) for line in (rec / f"{name}.env").read_text().splitlines())
    return env, orjson.loads((rec / f"{name}.json").read_bytes())


async def test_add_chains_results_and_passes_the_spec_environment(plugins: tuple[str, Path]) -> None:
    bins, rec = plugins
    runtime = {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}
    result = await cni.add_network_list([bins], conflist("one", "two"), "ctr1", "/run/netns/x", "eth0",
                                        runtime)
    assert result["dns"] == {"domain": "two"}  # the last plugin's result is the list's
    env, conf = recorded(rec, "one.ADD")
    assert env == {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "ctr1", "CNI_NETNS": "/run/netns/x",
                   "CNI_IFNAME": "eth0", "CNI_PATH": bins, "CNI_ARGS": ""}
    assert conf["name"] == "net1" and conf["cniVersion"] == "1.0.0" and conf["type"] == "one"
    assert "prevResult" not in conf and "runtimeConfig" not in conf  # one has no portMappings capability
    _, conf = recorded(rec, "two.ADD")
    assert conf["prevResult"]["dns"] == {"domain": "one"}
    assert conf["runtimeConfig"] == runtime


async def test_del_runs_in_reverse_with_the_cached_result_and_check_in_order(
    plugins: tuple[str, Path]
) -> None:
    bins, rec = plugins
    cached = {"cniVersion": "1.0.0", "ips": [{"address": "10.9.9.9/24"}]}
    await cni.del_network_list([bins], conflist("one", "two"), "ctr1", "", "eth0", {}, cached)
    await cni.check_network_list([bins], conflist("one", "two"), "ctr1", "/n", "eth0", {}, cached)
    assert (rec / "order").read_text().split("\n")[:4] == ["two DEL", "one DEL", "one CHECK", "two CHECK"]
    env, conf = recorded(rec, "one.DEL")
    assert env["CNI_NETNS"] == "" and conf["prevResult"] == cached


async def test_a_plugin_error_is_parsed_and_del_still_runs_every_plugin(plugins: tuple[str, Path]) -> None:
    bins, rec = plugins
    with pytest.raises(cni.CNIError) as info:
        await cni.add_network_list([bins], conflist("failer", "one"), "c", "/n", "eth0", {})
    e = info.value
    assert (e.plugin, e.command, e.code, e.msg, e.details) == ("failer", "ADD", 7, "bad things", "in detail")
    assert not (rec / "order").exists()  # the list stops at the first failure

    with pytest.raises(cni.CNIError) as info:
        await cni.del_network_list([bins], conflist("one", "crasher"), "c", "/n", "eth0", {}, None)
    assert info.value.plugin == "crasher" and "panic: oops" in str(info.value)
    assert (rec / "order").read_text().split() == ["one", "DEL"]  # ran despite the crasher before it


async def test_a_missing_plugin_is_a_clear_error(plugins: tuple[str, Path]) -> None:
    bins, _ = plugins
    with pytest.raises(cni.CNIError, match="plugin not found"):
        await cni.add_network_list([bins], conflist("nonesuch"), "c", "/n", "eth0", {})
    with pytest.raises(cni.CNIError, match="invalid plugin name"):
        await cni.add_network_list([bins], conflist("../one"), "c", "/n", "eth0", {})


async def test_go_plugins_run_with_one_p_and_no_gc_unless_the_environment_says(
    plugins: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    bins, rec = plugins
    script = f'#!/bin/sh\nenv | grep -E "^GO(GC|MAXPROCS)=" | sort > "{rec}/goenv"\n'
    (Path(bins) / "goenv").write_text(script)
    os.chmod(Path(bins) / "goenv", 0o755)
    await cni.del_network_list([bins], conflist("goenv"), "c", "", "eth0", {}, None)
    assert (rec / "goenv").read_text().split() == ["GOGC=off", "GOMAXPROCS=1"]
    monkeypatch.setattr(cni, "_GO_RUNTIME", {})  # as when the agent's environment sets them itself
    monkeypatch.setenv("GOGC", "200")
    await cni.del_network_list([bins], conflist("goenv"), "c", "", "eth0", {}, None)
    assert (rec / "goenv").read_text().split() == ["GOGC=200"]


async def test_a_cancelled_add_kills_its_plugin_and_runs_no_further_plugin(plugins: tuple[str, Path]) -> None:
    bins, rec = plugins
    (Path(bins) / "sleeper").write_text(f'#!/bin/sh\necho $$ > "{rec}/sleeper.pid"\nexec sleep 30\n')
    os.chmod(Path(bins) / "sleeper", 0o755)
    task = asyncio.ensure_future(cni.add_network_list([bins], conflist("sleeper", "one"), "c", "/n", "eth0",
                                                      {}))
    deadline = time.monotonic() + 10
    while not (rec / "sleeper.pid").exists() or not (rec / "sleeper.pid").read_text().strip():
        assert time.monotonic() < deadline, "the plugin never started"
        await asyncio.sleep(0.01)
    pid = int((rec / "sleeper.pid").read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task  # returns once the plugin is gone, not after its 30 s
    with pytest.raises(ProcessLookupError):  # killed and reaped (a zombie would still answer)
        os.kill(pid, 0)
    assert not (rec / "order").exists()  # "one" never ran


async def test_a_config_larger_than_a_pipe_reaches_the_plugin_whole(plugins: tuple[str, Path]) -> None:
    bins, rec = plugins
    big = conflist("one")
    big["plugins"][0]["padding"] = "x" * 300_000  # a pipe holds 64 KiB: the rest is written as it drains
    await cni.add_network_list([bins], big, "c", "/n", "eth0", {})
    _, conf = recorded(rec, "one.ADD")
    assert conf["padding"] == "x" * 300_000
    (Path(bins) / "deaf").write_text("#!/bin/sh\nexit 0\n")  # exits without reading its stdin
    os.chmod(Path(bins) / "deaf", 0o755)
    big["plugins"] = [{"type": "deaf", "padding": "x" * 300_000}]
    await cni.del_network_list([bins], big, "c", "", "eth0", {}, None)


async def test_a_plugin_past_its_time_is_killed(plugins: tuple[str, Path],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    bins, rec = plugins
    (Path(bins) / "sleeper").write_text(f'#!/bin/sh\necho $$ > "{rec}/sleeper.pid"\nexec sleep 30\n')
    os.chmod(Path(bins) / "sleeper", 0o755)
    monkeypatch.setattr(cni, "PLUGIN_TIMEOUT", 1.0)
    with pytest.raises(TimeoutError, match="sleeper ADD did not finish"):
        await cni.add_network_list([bins], conflist("sleeper"), "c", "/n", "eth0", {})  # not after 30 s
    pid = (rec / "sleeper.pid").read_text().strip() if (rec / "sleeper.pid").exists() else ""
    if pid:  # killed and reaped, if it got as far as its echo
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)
