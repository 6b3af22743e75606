"""Store benchmark: the sqlite and etcd drivers side by side, measured in the same run.

For each driver: creates by 16 concurrent writers (rate), point reads by 16 concurrent readers (rate),
one list of 10,000 keys (time), and watch delivery latency (from the start of a write to the watcher
receiving its event, one write at a time). etcd runs on loopback from tests/support/etcd.py, with
fsync on; both keep their data in one temporary directory. Repeated figures are medians.
Prints a table; the last line is one JSON object.

    .venv/bin/python bench/store.py [--creates 2000] [--repeats 5] [--list-keys 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stats import pct
from pyk8s.store.etcd import EtcdStore
from pyk8s.store.protocol import Event, Store
from pyk8s.store.sqlite import SqliteStore
from tests.support.etcd import EtcdProcess

WRITERS = 16
READERS = 16
VALUE = b'{"kind":"Pod","apiVersion":"v1"}' + b"x" * 990  # about a small pod's size: 1 KiB


async def concurrently(workers: int, count: int, op: Callable[[int], Awaitable[Any]]) -> float:
    """Run op(0..count-1) on `workers` tasks; returns the elapsed seconds."""
    queue = iter(range(count))

    async def worker() -> None:
        for i in queue:
            await op(i)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return time.perf_counter() - started


async def bench_creates(store: Store, prefix: str, count: int) -> float:
    elapsed = await concurrently(WRITERS, count, lambda i: store.create(f"{prefix}{i:08}", VALUE))
    return count / elapsed


async def bench_reads(store: Store, prefix: str, keys: int, count: int) -> float:
    rng = random.Random(1)
    picks = [f"{prefix}{rng.randrange(keys):08}" for _ in range(count)]
    elapsed = await concurrently(READERS, count, lambda i: store.get(picks[i]))
    return count / elapsed


async def bench_list(store: Store, prefix: str, keys: int) -> float:
    started = time.perf_counter()
    result = await store.list(prefix)
    elapsed = time.perf_counter() - started
    assert len(result.items) == keys, f"listed {len(result.items)} of {keys} keys"
    return elapsed * 1000


async def bench_watch(store: Store, prefix: str, samples: int) -> list[float]:
    """Latency in ms from starting a write to its event reaching a watcher."""
    arrived: dict[int, float] = {}
    got = asyncio.Event()
    watch = store.watch(prefix, await store.current_revision())

    async def consume() -> None:
        event: Event
        async for event in watch:
            arrived[event.revision] = time.perf_counter()
            got.set()

    consumer = asyncio.create_task(consume())
    latencies = []
    try:
        for i in range(samples):
            got.clear()
            started = time.perf_counter()
            kv = await store.create(f"{prefix}{i:08}", VALUE)
            while kv.mod_revision not in arrived:
                await asyncio.wait_for(got.wait(), 10)
                got.clear()
            latencies.append((arrived[kv.mod_revision] - started) * 1000)
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        await watch.aclose()  # type: ignore[attr-defined]
    return latencies


async def run_driver(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    creates = [await bench_creates(store, f"/bench/creates-{r}/", args.creates) for r in range(args.repeats)]
    # Point reads of the keys of the first create round.
    reads = [
        await bench_reads(store, "/bench/creates-0/", args.creates, args.reads) for _ in range(args.repeats)
    ]
    await concurrently(WRITERS, args.list_keys, lambda i: store.create(f"/bench/list/{i:08}", VALUE))
    lists = [await bench_list(store, "/bench/list/", args.list_keys) for _ in range(args.repeats)]
    watch = await bench_watch(store, "/bench/watch/", args.watch_samples)
    return {
        "creates_per_s": statistics.median(creates),
        "creates_per_s_runs": [round(x) for x in creates],
        "reads_per_s": statistics.median(reads),
        "list_ms": statistics.median(lists),
        "watch_p50_ms": pct(watch, 0.5),
        "watch_p99_ms": pct(watch, 0.99),
    }


async def main(args: argparse.Namespace) -> None:
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="pyk8s-bench-store-") as tmp:
        sqlite = await SqliteStore.open(str(Path(tmp) / "store.db"))
        try:
            results["sqlite"] = await run_driver(sqlite, args)
        finally:
            await sqlite.close()
        member = EtcdProcess.start(Path(tmp) / "etcd")
        try:
            etcd = await EtcdStore.open([member.endpoint])
            try:
                results["etcd"] = await run_driver(etcd, args)
            finally:
                await etcd.close()
        finally:
            member.stop()

    s, e = results["sqlite"], results["etcd"]
    print(
        f"store benchmark: {WRITERS} writers, {READERS} readers, {len(VALUE)}-byte values, "
        f"medians of {args.repeats} (sqlite WAL synchronous=NORMAL; etcd fsyncs each batch)"
    )
    rows = [
        ("creates/s", "creates_per_s", "{:,.0f}"),
        ("point reads/s", "reads_per_s", "{:,.0f}"),
        (f"list {args.list_keys:,} keys (ms)", "list_ms", "{:,.1f}"),
        ("watch write→event p50 (ms)", "watch_p50_ms", "{:,.2f}"),
        ("watch write→event p99 (ms)", "watch_p99_ms", "{:,.2f}"),
    ]
    print(f"{'':30} {'sqlite':>12} {'etcd':>12}")
    for label, field, fmt in rows:
        print(f"{label:30} {fmt.format(s[field]):>12} {fmt.format(e[field]):>12}")
    print(f"{'sqlite ÷ etcd creates':30} {s['creates_per_s'] / e['creates_per_s']:>12.2f}")
    figures: dict[str, Any] = {
        "sqlite_creates_per_s": round(s["creates_per_s"]),
        "etcd_creates_per_s": round(e["creates_per_s"]),
        "ratio": round(s["creates_per_s"] / e["creates_per_s"], 2),
        "sqlite_watch_p99_ms": round(s["watch_p99_ms"], 2),
        "etcd_watch_p99_ms": round(e["watch_p99_ms"], 2),
        "sqlite_watch_p50_ms": round(s["watch_p50_ms"], 2),
        "etcd_watch_p50_ms": round(e["watch_p50_ms"], 2),
        "sqlite_reads_per_s": round(s["reads_per_s"]),
        "etcd_reads_per_s": round(e["reads_per_s"]),
        "sqlite_list_ms": round(s["list_ms"], 1),
        "etcd_list_ms": round(e["list_ms"], 1),
        "list_keys": args.list_keys,
        "sqlite_creates_per_s_runs": s["creates_per_s_runs"],
        "etcd_creates_per_s_runs": e["creates_per_s_runs"],
        "writers": WRITERS,
        "creates_per_run": args.creates,
        "repeats": args.repeats,
        "value_bytes": len(VALUE),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=2000, help="creates per round")
    parser.add_argument("--reads", type=int, default=5000, help="point reads per round")
    parser.add_argument("--list-keys", type=int, default=10_000)
    parser.add_argument("--watch-samples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
