"""json_copy: deep, equal copies of JSON documents, and of what JSON cannot hold."""

from __future__ import annotations

from pyk8s.api.jsoncopy import json_copy


def test_a_copy_is_equal_and_shares_nothing() -> None:
    doc = {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "ports": [1, 2]}]},
           "n": None, "f": 1.5, "t": True}
    copied = json_copy(doc)
    assert copied == doc
    copied["spec"]["containers"][0]["ports"].append(3)
    copied["metadata"]["labels"]["a"] = "changed"
    assert doc["spec"]["containers"][0]["ports"] == [1, 2]  # type: ignore[index]
    assert doc["metadata"]["labels"] == {"a": "b"}  # type: ignore[index]


def test_what_json_cannot_hold_is_still_copied() -> None:
    doc = {"big": 2**70, "list": [{"k": 1}]}  # YAML can carry an integer over 64 bits
    copied = json_copy(doc)
    assert copied == doc and copied["list"][0] is not doc["list"][0]
