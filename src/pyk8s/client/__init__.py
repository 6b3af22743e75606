"""The client machinery every component is built on; components meet only through the API.

- `transport`: the `Transport` protocol (request, stream, close) and `HTTPTransport` (aiohttp, TLS,
  kubeconfig). The in-process transport of `pyk8s.server` implements the same protocol.
- `client`: `Client`, the REST verbs over `ResourceInfo`, errors raised as `StatusError`.
- `informer`, `cache`: shared informers (list, watch, relist on 410) with an indexed cache and listers.
- `workqueue`, `ratelimit`: client-go's rate-limited work queue.
- `controller`, `expectations`: the base of a controller and ControllerExpectations.
- `leader`: leader election on Lease objects.
"""
