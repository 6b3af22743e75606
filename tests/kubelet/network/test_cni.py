"""The CNI invoker against recording plugins: what the spec says a runtime passes, and error parsing."""

from __future__ import annotations

import os
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
