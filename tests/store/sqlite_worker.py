"""A second process for the sqlite driver's tests: `python -m tests.store.sqlite_worker MODE PATH ...`.

Every line it prints is a fact the parent may rely on, printed only after it became true:
- `storm PATH`: 16 writers create and update keys under /storm/ for ever; prints `ack REV KEY VALUE` after
  each acknowledged write, and `seen REV` for every event its own watcher received.
- `write PATH PREFIX COUNT`: creates COUNT keys under PREFIX with 8 writers; prints `ack REV KEY` each.
- `watch PATH PREFIX FROM COUNT`: prints `ready`, then `event REV TYPE KEY` for COUNT events after FROM.
"""

from __future__ import annotations

import asyncio
import sys

from pyk8s.store.sqlite import SqliteStore

WRITERS = 16


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def storm(path: str) -> None:
    store = await SqliteStore.open(path)
    start = await store.current_revision()

    async def watcher() -> None:
        async for event in store.watch("/storm/", start):
            say(f"seen {event.revision}")

    async def writer(n: int) -> None:
        i = revision = 0
        while True:
            key = f"/storm/w{n:02}/k{i // 4:06}"
            value = f"{n}-{i}"
            if i % 4 == 0:
                kv = await store.create(key, value.encode())
            else:
                kv = await store.update(key, value.encode(), revision)
            revision = kv.mod_revision
            say(f"ack {kv.mod_revision} {key} {value}")
            i += 1

    await asyncio.gather(watcher(), *(writer(n) for n in range(WRITERS)))


async def write(path: str, prefix: str, count: int) -> None:
    store = await SqliteStore.open(path)
    keys = iter(range(count))

    async def writer() -> None:
        for i in keys:
            kv = await store.create(f"{prefix}{i:05}", b"v")
            say(f"ack {kv.mod_revision} {kv.key}")

    await asyncio.gather(*(writer() for _ in range(8)))
    await store.close()


async def watch(path: str, prefix: str, from_revision: int, count: int) -> None:
    store = await SqliteStore.open(path)
    say("ready")
    seen = 0
    async for event in store.watch(prefix, from_revision):
        say(f"event {event.revision} {event.type.value} {event.kv.key}")
        seen += 1
        if seen == count:
            break
    await store.close()


def main(argv: list[str]) -> None:
    mode, path, *rest = argv
    if mode == "storm":
        asyncio.run(storm(path))
    elif mode == "write":
        asyncio.run(write(path, rest[0], int(rest[1])))
    elif mode == "watch":
        asyncio.run(watch(path, rest[0], int(rest[1]), int(rest[2])))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
