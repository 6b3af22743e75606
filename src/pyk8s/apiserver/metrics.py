"""Prometheus metrics of the API server (names as Kubernetes' apiserver exports them)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)


class Metrics:
    """One registry per app, so several servers (tests) in one process do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "apiserver_request",
            "Requests by verb, resource and HTTP code.",
            ["verb", "group", "resource", "subresource", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "apiserver_request_duration_seconds",
            "Request latency by verb and resource.",
            ["verb", "group", "resource", "subresource"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0),
        )
        self.watches = Gauge(
            "apiserver_registered_watchers",
            "Open watches by resource.",
            ["group", "resource"],
            registry=self.registry,
        )
        # labels() validates and locks on every call: one request's two lookups were ~1 % of a busy
        # server's CPU. The children of a label set never change, so they are looked up once.
        self._children: dict[tuple[str, ...], tuple[Any, Any]] = {}

    def record(self, verb: str, group: str, resource: str, subresource: str, code: str,
               seconds: float | None) -> None:
        """Count a request; `seconds` (None for watches, as Kubernetes) goes to the latency histogram."""
        key = (verb, group, resource, subresource, code)
        children = self._children.get(key)
        if children is None:
            histogram = None if seconds is None else self.latency.labels(verb, group, resource, subresource)
            children = self._children[key] = (self.requests.labels(*key), histogram)
        counter, latency = children
        counter.inc()
        if seconds is not None and latency is not None:  # a key's verb decides: never one without the other
            latency.observe(seconds)

    async def handle(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )
