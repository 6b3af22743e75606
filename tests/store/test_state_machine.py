"""Random operation sequences against every driver, checked against a plain model.

The model is a dict of current values plus the list of every event the store should have produced.
Each step checks the outcome (value or error), the revision (each write adds exactly one), snapshots at
old revisions, and watch streams replayed from any retained revision.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from pyk8s.store.errors import Compacted, Conflict, KeyExists, KeyNotFound
from pyk8s.store.protocol import Event, EventType, KeyValue, Store
from tests.store.conftest import open_driver

T = TypeVar("T")
DEADLINE_S = 10.0
KEYS = st.sampled_from(["a", "b", "c/d", "c/e", "cd"])
VALUES = st.binary(max_size=6)


class StoreMachine(RuleBasedStateMachine):
    driver = "memory"
    path = Path()
    endpoint = ""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.prefix = f"/sm-{uuid.uuid4().hex[:12]}/"
        path = self.path / f"{uuid.uuid4().hex}.db"
        self.store: Store = self.run(open_driver(self.driver, path, self.endpoint))
        self.base = self.run(self.store.current_revision())
        self.revision = self.base
        self.model: dict[str, KeyValue] = {}
        self.events: list[Event] = []
        self.compacted = 0  # the compaction point this run asked for

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(coro, DEADLINE_S))

    def teardown(self) -> None:
        try:
            self.run(self.store.close())
        finally:
            self.loop.close()

    def wrote(self, event: Event) -> None:
        self.revision += 1
        assert event.revision == self.revision
        assert self.run(self.store.current_revision()) == self.revision
        self.events.append(event)
        if event.type is EventType.DELETE:
            del self.model[event.kv.key]
        else:
            self.model[event.kv.key] = event.kv

    def state_at(self, revision: int) -> list[KeyValue]:
        state: dict[str, KeyValue] = {}
        for event in self.events:
            if event.revision > revision:
                break
            if event.type is EventType.DELETE:
                del state[event.kv.key]
            else:
                state[event.kv.key] = event.kv
        return [state[k] for k in sorted(state)]

    # -- writes -------------------------------------------------------------------------------------

    @rule(key=KEYS, value=VALUES)
    def create(self, key: str, value: bytes) -> None:
        key = self.prefix + key
        try:
            kv = self.run(self.store.create(key, value))
        except KeyExists:
            assert key in self.model
            return
        assert key not in self.model
        assert kv == KeyValue(key, value, self.revision + 1, self.revision + 1)
        self.wrote(Event(EventType.CREATE, kv, None))

    @rule(key=KEYS, value=VALUES, stale=st.booleans())
    def update(self, key: str, value: bytes, stale: bool) -> None:
        key = self.prefix + key
        current = self.model.get(key)
        expected = self.revision + 1 if current is None else current.mod_revision - int(stale)
        try:
            kv = self.run(self.store.update(key, value, expected))
        except KeyNotFound:
            assert current is None
            return
        except Conflict as e:
            assert stale and e.current == current
            return
        assert current is not None and not stale
        assert kv == KeyValue(key, value, self.revision + 1, current.create_revision)
        self.wrote(Event(EventType.UPDATE, kv, current))

    @rule(key=KEYS, mode=st.sampled_from(["unconditional", "expected", "stale"]))
    def delete(self, key: str, mode: str) -> None:
        key = self.prefix + key
        current = self.model.get(key)
        expected = None
        if mode != "unconditional":
            expected = (current.mod_revision if current else self.revision) - (mode == "stale")
        try:
            kv = self.run(self.store.delete(key, expected))
        except KeyNotFound:
            assert current is None
            return
        except Conflict as e:
            assert mode == "stale" and e.current == current
            return
        assert current is not None and mode != "stale"
        assert kv == KeyValue(key, current.value, self.revision + 1, current.create_revision)
        self.wrote(Event(EventType.DELETE, kv, current))

    @rule(back=st.integers(0, 6))
    def compact(self, back: int) -> None:
        target = self.revision - back
        if target <= self.base + 1:
            return
        self.run(self.store.compact(target))
        self.compacted = max(self.compacted, target)
        assert self.run(self.store.compacted_revision()) >= self.compacted

    # -- reads --------------------------------------------------------------------------------------

    @invariant()
    def values_match(self) -> None:
        for key in ["a", "c/d"]:
            key = self.prefix + key
            try:
                assert self.run(self.store.get(key)) == self.model[key]
            except KeyNotFound:
                assert key not in self.model

    @rule(limit=st.integers(0, 3), back=st.integers(0, 8))
    def list_pages(self, limit: int, back: int) -> None:
        # At least 1: revision 0 asks for the newest.
        revision = max(self.revision - back, self.base, 1)
        if revision < self.compacted:
            with pytest.raises(Compacted):
                self.run(self.store.list(self.prefix, revision=revision))
            return
        items: list[KeyValue] = []
        after: str | None = None
        at = revision
        while True:
            page = self.run(self.store.list(self.prefix, limit=limit, continue_after=after, revision=at))
            assert page.revision == min(at, self.revision)
            items.extend(page.items)
            if not page.more:
                break
            assert limit and len(page.items) == limit
            after = page.items[-1].key
        assert items == self.state_at(revision)

    @rule(sub=st.sampled_from(["", "c/", "c"]), back=st.integers(0, 12))
    def watch_replays(self, sub: str, back: int) -> None:
        from_revision = max(self.revision - back, self.base)
        if from_revision + 1 < self.compacted:
            with pytest.raises(Compacted):
                self.run(anext(self.store.watch(self.prefix + sub, from_revision)))
            return
        expected = [
            e for e in self.events if e.revision > from_revision and e.kv.key.startswith(self.prefix + sub)
        ]
        watch = self.store.watch(self.prefix + sub, from_revision)
        try:
            got = [self.run(anext(watch)) for _ in expected]
        finally:
            self.run(watch.aclose())
        assert got == expected


@pytest.mark.parametrize("driver", ["memory", "sqlite", pytest.param("etcd", marks=pytest.mark.etcd)])
def test_random_operations_match_the_model(
    driver: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    endpoint = request.getfixturevalue("etcd_endpoint") if driver == "etcd" else ""

    class Machine(StoreMachine):
        pass

    Machine.driver, Machine.path, Machine.endpoint = driver, tmp_path, endpoint
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=20,
            stateful_step_count=30,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
