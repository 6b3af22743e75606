"""The etcd driver: the store protocol on etcd's v3 gRPC API, through aetcd's generated stubs.

Revisions are etcd's own, so a resourceVersion means the same thing to pyk8s and to `etcdctl`. Every
compare-and-swap is one etcd transaction; watches are etcd watches started at from_revision + 1 with
prev_kv. All calls share one gRPC channel (HTTP/2 multiplexes them); several endpoints are handed to
gRPC's pick_first balancer, which moves to the next address when the one in use goes down.

aetcd's high-level Client lacks list limits, read revisions and per-watch streams, so this module
speaks the RPCs directly with the request types aetcd ships.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import socket
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar, cast

from aetcd import rpc

from pyk8s.store.errors import (
    Compacted,
    Conflict,
    InvalidValue,
    KeyExists,
    KeyNotFound,
    StoreClosed,
    StoreError,
    WatchOverflow,
)
from pyk8s.store.protocol import (
    MAX_VALUE_BYTES,
    Event,
    EventType,
    KeyValue,
    ListResult,
    validate_key,
    validate_prefix,
    validate_value,
)
from pyk8s.util.tasks import cancel_and_wait

DEFAULT_WATCH_BUFFER = 4096  # events; the sqlite driver keeps the same
DEFAULT_REQUEST_TIMEOUT_S = 30.0

_T = TypeVar("_T")

_CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    # A watch response may carry a 3 MiB value and its 3 MiB prev_kv; a list may carry many.
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", MAX_VALUE_BYTES + 1024 * 1024),
    # Reconnect (and fail over) within about a second, not gRPC's default two minutes.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # Notice a half-open connection to a vanished member; etcd permits pings every 5 s.
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.lb_policy_name", "pick_first"),
]

_PUT = 0  # mvccpb.Event.EventType
_COMPACTED = "required revision has been compacted"
_FUTURE = "required revision is a future revision"
_NO_LEADER = "etcdserver: no leader"
_DROPPED = "raft proposal dropped"
# etcd's own limit, and gRPC's (etcd's limit plus 512 KiB) for larger requests still.
_TOO_LARGE = ("request is too large", "received message larger than max")
# Ask etcd to refuse at once (and end watches) while the member has no leader, rather than hold the
# call until a timeout; such refusals are safe to retry (clientv3's WithRequireLeader).
_REQUIRE_LEADER = (("hasleader", "true"),)


class EtcdRequestError(StoreError):
    """etcd refused a call for a reason the protocol has no error for."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(f"etcd: {code}: {details}")
        self.code = code
        self.details = details


class EtcdUnavailable(StoreError):
    """No etcd endpoint answered, or the connection broke while a write was in flight (its outcome
    is then unknown, as with etcd's own clients)."""


def _kv(kv: Any) -> KeyValue:
    return KeyValue(
        key=kv.key.decode(),
        value=cast(bytes, kv.value),
        mod_revision=int(kv.mod_revision),
        create_revision=int(kv.create_revision),
    )


def _event(ev: Any) -> Event:
    prev = _kv(ev.prev_kv) if ev.HasField("prev_kv") else None
    if ev.type == _PUT:
        kv = _kv(ev.kv)
        if kv.create_revision == kv.mod_revision:
            return Event(EventType.CREATE, kv, None)
        return Event(EventType.UPDATE, kv, prev)
    # etcd's delete event has only the key and the delete's revision; the protocol wants the deleted
    # value (prev_kv is missing only if its revision was compacted meanwhile).
    kv = KeyValue(
        key=ev.kv.key.decode(),
        value=prev.value if prev else b"",
        mod_revision=int(ev.kv.mod_revision),
        create_revision=prev.create_revision if prev else 0,
    )
    return Event(EventType.DELETE, kv, prev)


def _prefix_end(prefix: bytes) -> bytes:
    """etcd's range_end for "every key starting with prefix" (b"\\0" means "to the end")."""
    end = bytearray(prefix)
    for i in reversed(range(len(end))):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return b"\0"


def _split_endpoint(endpoint: str) -> tuple[str, int]:
    ep = endpoint.strip()
    if ep.startswith("http://"):
        ep = ep[len("http://") :]
    if "://" in ep:
        raise ValueError(f"etcd endpoint {endpoint!r}: only plain host:port (http) is supported")
    host, sep, port = ep.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"etcd endpoint {endpoint!r} is not host:port")
    return host.strip("[]"), int(port)


async def _channel_target(endpoints: list[str]) -> str:
    """A gRPC target naming every endpoint, so pick_first can fail over between them."""
    if not endpoints:
        raise ValueError("no etcd endpoint given")
    hosts = [_split_endpoint(ep) for ep in endpoints]
    if len(hosts) == 1:
        host, port = hosts[0]
        return f"dns:///[{host}]:{port}" if ":" in host else f"dns:///{host}:{port}"
    # gRPC lists several addresses only as literal IPs of one family: resolve names now, and write
    # IPv4 as IPv4-mapped IPv6 when the families are mixed.
    loop = asyncio.get_running_loop()
    addrs: list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]] = []
    for host, port in hosts:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            if not infos:
                raise ValueError(f"etcd endpoint host {host!r} does not resolve") from None
            infos.sort(key=lambda info: info[0] != socket.AF_INET)
            ip = ipaddress.ip_address(infos[0][4][0])
        addrs.append((ip, port))
    if all(ip.version == 4 for ip, _ in addrs):
        return "ipv4:" + ",".join(f"{ip}:{port}" for ip, port in addrs)
    v6 = [ip if ip.version == 6 else ipaddress.IPv6Address(f"::ffff:{ip}") for ip, _ in addrs]
    return "ipv6:" + ",".join(f"[{ip}]:{port}" for ip, (_, port) in zip(v6, addrs, strict=True))


class _WatchBuffer:
    """Events read from etcd and not yet taken by the consumer, bounded by `limit` events.

    Whole watch responses go in at once (etcd never splits a revision across responses), so when the
    buffer overflows every revision up to the last buffered one is complete.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.events: collections.deque[Event] = collections.deque()
        self.end: BaseException | None = None  # raised after the buffered events
        self.finished = False  # ends the iteration after the buffered events
        self.last_revision = 0
        self.ready = asyncio.Event()

    def offer(self, events: list[Event]) -> bool:
        """Buffer `events`; False (and the overflow is recorded) when there is no room."""
        if self.events and len(self.events) + len(events) > self.limit:
            self.fail(WatchOverflow(self.last_revision))
            return False
        self.events.extend(events)
        self.last_revision = events[-1].revision
        self.ready.set()
        return True

    def fail(self, error: BaseException) -> None:
        if self.end is None and not self.finished:
            self.end = error
        self.ready.set()

    def finish(self) -> None:
        self.finished = True
        self.ready.set()


class EtcdStore:
    """pyk8s.store.protocol.Store on an etcd v3 cluster."""

    def __init__(self, channel: Any, *, watch_buffer: int = DEFAULT_WATCH_BUFFER, timeout: float) -> None:
        self._channel = channel
        self._kv_stub = rpc.KVStub(channel)
        self._watch_stub = rpc.WatchStub(channel)
        self._watch_buffer = watch_buffer
        self._timeout = timeout
        self._closed = False
        self._watchers: set[_WatchBuffer] = set()
        self._pumps: set[asyncio.Task[None]] = set()
        # A lower bound of etcd's compaction point; it only ever grows.
        self._compact_floor = 0

    @classmethod
    async def open(
        cls,
        endpoints: list[str],
        *,
        watch_buffer: int = DEFAULT_WATCH_BUFFER,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S,
    ) -> EtcdStore:
        """Connect to the etcd cluster at `endpoints` ("host:port"); waits up to `request_timeout` seconds
        for one of them to answer, else EtcdUnavailable."""
        if watch_buffer < 1:
            raise ValueError("watch_buffer must be at least 1")
        channel = rpc.insecure_channel(await _channel_target(endpoints), options=_CHANNEL_OPTIONS)
        store = cls(channel, watch_buffer=watch_buffer, timeout=request_timeout)
        try:
            await store.current_revision()
        except BaseException:
            await channel.close()
            raise
        return store

    # -- calls -----------------------------------------------------------------------------------

    async def _call(self, fn: Callable[..., Awaitable[_T]], request: Any, *, retry: bool) -> _T:
        """One unary RPC. gRPC waits for a connection (wait_for_ready) rather than failing fast while
        it fails over. A read cut off by a dying member is retried; a write only when etcd refused it
        for want of a leader (it was then never proposed), since otherwise its outcome is unknown."""
        if self._closed:
            raise StoreClosed("the etcd store is closed")
        deadline = time.monotonic() + self._timeout
        delay = 0.01
        while True:
            try:
                return await fn(
                    request,
                    timeout=max(deadline - time.monotonic(), 0.001),
                    metadata=_REQUIRE_LEADER,
                    wait_for_ready=True,
                )
            except rpc.AioRpcError as e:
                code = e.code()
                if code == rpc.StatusCode.CANCELLED and self._closed:
                    raise StoreClosed("the etcd store was closed during the call") from e
                details = e.details() or ""
                refused = _NO_LEADER in details or _DROPPED in details  # never applied
                if code not in (rpc.StatusCode.UNAVAILABLE, rpc.StatusCode.DEADLINE_EXCEEDED) and not refused:
                    if any(text in details for text in _TOO_LARGE):
                        raise InvalidValue(
                            f"etcd refused the request as too large: its --max-request-bytes must exceed "
                            f"{MAX_VALUE_BYTES} bytes"
                        ) from e
                    raise EtcdRequestError(code.name, details) from e
                safe = retry or refused
                if (
                    code == rpc.StatusCode.DEADLINE_EXCEEDED
                    or not safe
                    or time.monotonic() + delay > deadline
                ):
                    raise EtcdUnavailable(f"etcd: {code.name}: {e.details()}") from e
            # Back off: etcd may answer at once while it has no leader.
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def _range(self, request: Any) -> Any:
        return await self._call(self._kv_stub.Range, request, retry=True)

    async def _txn(self, request: Any) -> Any:
        return await self._call(self._kv_stub.Txn, request, retry=False)

    # -- the protocol ----------------------------------------------------------------------------

    async def current_revision(self) -> int:
        # A linearizable read of a key no one may write: its header carries the newest revision.
        resp = await self._range(rpc.RangeRequest(key=b"\0", count_only=True))
        # etcd starts at revision 1, not 0: every write is still exactly one revision.
        return int(resp.header.revision)

    async def compacted_revision(self) -> int:
        """etcd does not publish its compaction point; it is the oldest revision it can still read,
        found by bisection from the known lower bound (one read when it has not moved)."""
        low = max(self._compact_floor, 1)
        if await self._readable(low):
            return self._compact_floor
        high = max(await self.current_revision(), low + 1)  # the newest revision is always readable
        while high - low > 1:
            mid = (low + high) // 2
            if await self._readable(mid):
                high = mid
            else:
                low = mid
        self._compact_floor = max(self._compact_floor, high)
        return high

    async def _readable(self, revision: int) -> bool:
        try:
            await self._range(rpc.RangeRequest(key=b"\0", count_only=True, revision=revision))
        except EtcdRequestError as e:
            if _COMPACTED in e.details:
                return False
            raise
        return True

    async def create(self, key: str, value: bytes) -> KeyValue:
        validate_key(key)
        validate_value(value)
        k = key.encode()
        resp = await self._txn(
            rpc.TxnRequest(
                compare=[rpc.Compare(key=k, target=rpc.Compare.CREATE, result=rpc.Compare.EQUAL)],
                success=[rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=bytes(value)))],
            )
        )
        if not resp.succeeded:
            raise KeyExists(key)
        rev = int(resp.header.revision)
        return KeyValue(key, bytes(value), rev, rev)

    async def get(self, key: str) -> KeyValue:
        validate_key(key)
        resp = await self._range(rpc.RangeRequest(key=key.encode()))
        if not resp.kvs:
            raise KeyNotFound(key)
        return _kv(resp.kvs[0])

    async def list(
        self,
        prefix: str,
        *,
        limit: int = 0,
        continue_after: str | None = None,
        revision: int = 0,
    ) -> ListResult:
        validate_prefix(prefix)
        if limit < 0:
            raise ValueError("limit must not be negative")
        # Every key starts with "/", so the empty prefix is the "/" range.
        start = (prefix or "/").encode()
        end = _prefix_end(start)
        if continue_after is not None:
            start = max(start, continue_after.encode() + b"\0")
        request = rpc.RangeRequest(key=start, range_end=end, limit=limit, revision=revision)
        try:
            resp = await self._range(request)
        except EtcdRequestError as e:
            details = e.details
            if _COMPACTED in details:
                raise Compacted(revision, await self.compacted_revision()) from e
            if _FUTURE not in details:
                raise
            # A revision beyond the newest is clamped to it.
            request.revision = 0
            revision = 0
            resp = await self._range(request)
        # Inline rather than _kv(): this loop is most of the cost of a large list.
        items = [KeyValue(kv.key.decode(), kv.value, kv.mod_revision, kv.create_revision) for kv in resp.kvs]
        return ListResult(items=items, revision=revision or int(resp.header.revision), more=resp.more)

    async def update(self, key: str, value: bytes, expected_revision: int) -> KeyValue:
        validate_key(key)
        validate_value(value)
        k = key.encode()
        resp = await self._txn(
            rpc.TxnRequest(
                compare=[
                    rpc.Compare(
                        key=k,
                        target=rpc.Compare.MOD,
                        result=rpc.Compare.EQUAL,
                        mod_revision=expected_revision,
                    ),
                    # A missing key compares as revision 0: never let an update create it.
                    rpc.Compare(key=k, target=rpc.Compare.CREATE, result=rpc.Compare.GREATER),
                ],
                # Read the create revision (keys only) before writing, so no value travels back.
                success=[
                    rpc.RequestOp(request_range=rpc.RangeRequest(key=k, keys_only=True)),
                    rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=bytes(value))),
                ],
                failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k))],
            )
        )
        if not resp.succeeded:
            self._raise_cas_failure(key, expected_revision, resp)
        before = resp.responses[0].response_range.kvs[0]
        return KeyValue(key, bytes(value), int(resp.header.revision), int(before.create_revision))

    async def delete(self, key: str, expected_revision: int | None = None) -> KeyValue:
        validate_key(key)
        k = key.encode()
        delete_op = rpc.DeleteRangeRequest(key=k, prev_kv=True)
        if expected_revision is None:
            dresp = await self._call(self._kv_stub.DeleteRange, delete_op, retry=False)
            if not dresp.prev_kvs:
                raise KeyNotFound(key)
            prev, rev = dresp.prev_kvs[0], int(dresp.header.revision)
        else:
            resp = await self._txn(
                rpc.TxnRequest(
                    compare=[
                        rpc.Compare(
                            key=k,
                            target=rpc.Compare.MOD,
                            result=rpc.Compare.EQUAL,
                            mod_revision=expected_revision,
                        )
                    ],
                    success=[rpc.RequestOp(request_delete_range=delete_op)],
                    failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k))],
                )
            )
            if not resp.succeeded:
                self._raise_cas_failure(key, expected_revision, resp)
            deleted = resp.responses[0].response_delete_range
            if not deleted.prev_kvs:
                raise KeyNotFound(key)
            prev, rev = deleted.prev_kvs[0], int(resp.header.revision)
        return KeyValue(key, cast(bytes, prev.value), rev, int(prev.create_revision))

    @staticmethod
    def _raise_cas_failure(key: str, expected_revision: int, resp: Any) -> None:
        current = resp.responses[0].response_range.kvs
        if not current:
            raise KeyNotFound(key)
        raise Conflict(key, expected_revision, _kv(current[0]))

    async def compact(self, revision: int) -> None:
        if revision <= self._compact_floor or revision <= 1:
            return
        revision = min(revision, await self.current_revision())
        if revision <= 1:
            return
        try:
            await self._call(self._kv_stub.Compact, rpc.CompactionRequest(revision=revision), retry=False)
        except EtcdRequestError as e:
            # Compacting at or below etcd's compaction point does nothing, as the protocol says.
            if _COMPACTED not in e.details:
                raise
            return
        self._compact_floor = max(self._compact_floor, revision)

    def watch(self, prefix: str, from_revision: int) -> AsyncGenerator[Event, None]:
        validate_prefix(prefix)
        if from_revision < 0:
            raise ValueError("from_revision must not be negative")
        return self._watch(prefix, from_revision)

    async def _watch(self, prefix: str, from_revision: int) -> AsyncGenerator[Event, None]:
        if self._closed:
            raise StoreClosed("the etcd store is closed")
        buf = _WatchBuffer(self._watch_buffer)
        buf.last_revision = from_revision
        pump = asyncio.get_running_loop().create_task(self._pump(buf, prefix))
        self._watchers.add(buf)
        self._pumps.add(pump)
        try:
            while True:
                if buf.events:
                    yield buf.events.popleft()
                    continue
                if buf.end is not None:
                    raise buf.end
                if buf.finished:
                    return
                buf.ready.clear()
                await buf.ready.wait()
        finally:
            await cancel_and_wait([pump])
            self._watchers.discard(buf)
            self._pumps.discard(pump)

    async def _pump(self, buf: _WatchBuffer, prefix: str) -> None:
        """Reads etcd's watch stream into `buf`; if the stream breaks, a new one resumes after the last
        buffered revision (through another endpoint if need be)."""
        start = (prefix or "/").encode()
        create = rpc.WatchCreateRequest(key=start, range_end=_prefix_end(start), prev_kv=True)
        delay = 0.01
        try:
            while not self._closed:
                create.start_revision = buf.last_revision + 1
                call = self._watch_stub.Watch(metadata=_REQUIRE_LEADER, wait_for_ready=True)
                try:
                    await call.write(rpc.WatchRequest(create_request=create))
                    responses = aiter(call)
                    # The stream must come up in time; afterwards it may stay quiet for ever.
                    first = await asyncio.wait_for(anext(responses), self._timeout)
                    delay = 0.01
                    if not await self._read_stream(buf, first, responses):
                        return
                except StopAsyncIteration:
                    pass  # etcd ended the stream before answering: open another
                except rpc.AioRpcError as e:
                    if e.code() != rpc.StatusCode.UNAVAILABLE:
                        raise
                    # The member went away: resume on a new stream (gRPC fails over).
                finally:
                    call.cancel()
                await asyncio.sleep(delay)  # back off while etcd keeps refusing
                delay = min(delay * 2, 0.5)
            buf.finish()
        except TimeoutError:
            buf.fail(EtcdUnavailable(f"etcd did not accept a watch within {self._timeout} s"))
        except rpc.AioRpcError as e:
            if self._closed:
                buf.finish()
            else:
                buf.fail(StoreError(f"etcd watch failed: {e.code().name}: {e.details()}"))
        except Exception as e:
            buf.fail(e)

    async def _read_stream(self, buf: _WatchBuffer, resp: Any, responses: AsyncIterator[Any]) -> bool:
        """Moves responses into `buf` until the stream ends (True: resume) or the watch does."""
        while True:
            if resp.compact_revision:
                buf.fail(Compacted(buf.last_revision, int(resp.compact_revision)))
                return False
            if resp.canceled and _NO_LEADER in resp.cancel_reason:
                return True  # the member lost its leader: resume once there is one
            if resp.canceled:
                buf.fail(StoreError(f"etcd cancelled the watch: {resp.cancel_reason}"))
                return False
            if resp.events and not buf.offer([_event(ev) for ev in resp.events]):
                return False
            try:
                resp = await anext(responses)
            except StopAsyncIteration:
                return True

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for buf in list(self._watchers):
            buf.finish()
        for pump in list(self._pumps):
            pump.cancel()
        await self._channel.close()
