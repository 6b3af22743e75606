"""DefaultPreemption on snapshots: victims, reprieves, PDBs, candidate order and messages."""

from __future__ import annotations

from pyk8s.scheduler.framework import Diagnosis, FitError, Framework, Snapshot
from pyk8s.scheduler.preemption import Candidate, pick, preempt
from pyk8s.scheduler.registry import default_plugins
from tests.scheduler.test_plugins import mknode, mkpod, req


def _fail(fw: Framework, pod: object, snap: Snapshot) -> Diagnosis:
    try:
        fw.schedule(pod, snap)  # type: ignore[arg-type]
    except FitError as err:
        return err.diagnosis
    raise AssertionError("the pod fitted")


def test_fewest_and_least_important_victims() -> None:
    fw = Framework(default_plugins())
    small = [mkpod(f"s{i}", containers=[req("1")], priority=1) for i in range(4)]
    big = mkpod("big", containers=[req("2")], priority=5)
    a = mknode("a", None, None, "4", "8Gi", 110, False, *small)
    b = mknode("b", None, None, "4", "8Gi", 110, False, big, mkpod("x", containers=[req("2")], priority=100))
    snap = Snapshot([a, b])
    pod = mkpod("p", containers=[req("2")], priority=10)
    cand, msg = preempt(fw, pod, snap, _fail(fw, pod, snap))
    assert msg == ""
    assert cand is not None
    # On a, two priority-1 pods; on b one priority-5 pod: the lower top victim priority wins.
    assert cand.node == "a" and len(cand.victims) == 2 and {v.priority for v in cand.victims} == {1}


def test_pdb_protected_pods_are_reprieved_first() -> None:
    fw = Framework(default_plugins())
    guarded = mkpod("g", labels={"app": "db"}, containers=[req("1")], priority=1)
    free = mkpod("f", containers=[req("1")], priority=1)
    a = mknode("a", None, None, "2", "8Gi", 110, False, guarded, free)
    snap = Snapshot([a])
    pod = mkpod("p", containers=[req("1")], priority=10)
    pdb = {
        "metadata": {"name": "db", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "db"}}},
        "status": {"disruptionsAllowed": 0},
    }
    cand, _ = preempt(fw, pod, snap, _fail(fw, pod, snap), [pdb])
    assert cand is not None and [v.pod["metadata"]["name"] for v in cand.victims] == ["f"]
    assert cand.pdb_violations == 0


def test_no_victims_message_and_policy_never() -> None:
    fw = Framework(default_plugins())
    a = mknode("a", taints=[{"key": "key", "value": "value", "effect": "NoSchedule"}])
    b = mknode("b", None, None, "1", "8Gi", 110, False, mkpod("hi", containers=[req("1")], priority=100))
    c = mknode("c", cpu="1")
    snap = Snapshot([a, b, c])
    pod = mkpod("p", containers=[req("2")], priority=10)
    cand, msg = preempt(fw, pod, snap, _fail(fw, pod, snap))
    assert cand is None
    assert msg == (
        "preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, "
        "2 No preemption victims found for incoming pod."
    )
    never = mkpod("n", containers=[req("2")], priority=10, preemptionPolicy="Never")
    assert preempt(fw, never, snap, _fail(fw, never, snap)) == (
        None,
        "preemption: not eligible due to preemptionPolicy=Never.",
    )


def test_pick_order() -> None:
    lo, mid = mkpod("lo", priority=1), mkpod("mid", priority=5)
    assert pick([Candidate("a", [mid], 0), Candidate("b", [lo, lo], 0)]).node == "b"  # lower top priority
    assert pick([Candidate("a", [lo], 1), Candidate("b", [mid], 0)]).node == "b"  # fewer PDB violations
    assert pick([Candidate("a", [lo, lo], 0), Candidate("b", [lo], 0)]).node == "b"  # smaller sum
