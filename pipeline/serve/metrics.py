"""What ``GET /metrics`` says, in Prometheus' text format: requests, errors and latency by route (the
route's template, so ``/similar/{row_id}`` is one series whatever the row), texts waiting for each run's
encoder and texts per forward pass. The registry is the app's own, so two apps in one process (tests)
never share or clash over series."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.serve.service import Service

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PASS_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
UNMATCHED = "unmatched"  # the route label of a path no route has (404s): never the raw path
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """The app's series. ``watch(service)`` ties the queue gauges and pass sizes to its runs."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("method", "route")
        self.requests = Counter(
            "encajes_requests", "HTTP requests answered, by route.", labels, registry=self.registry
        )
        self.errors = Counter(
            "encajes_errors",
            "HTTP requests answered with a 4xx or 5xx, by route and status.",
            (*labels, "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "encajes_request_seconds",
            "Time from a request's arrival to its answer's last byte, by route.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        run_labels = ("model", "pooling")
        self.queued = Gauge(
            "encajes_queued_texts", "Texts waiting for the run's encoder.", run_labels, registry=self.registry
        )
        self.pass_texts = Histogram(
            "encajes_texts_per_pass",
            "Texts in each forward pass of the run's encoder.",
            run_labels,
            buckets=PASS_BUCKETS,
            registry=self.registry,
        )

    def watch(self, service: Service) -> None:
        for run in service.runs:
            batcher = run.batcher
            self.queued.labels(run.model, run.pooling).set_function(lambda b=batcher: b.queued)
            batcher.on_pass = self.pass_texts.labels(run.model, run.pooling).observe

    def text(self) -> bytes:
        return generate_latest(self.registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route).inc()
        if status >= 400:
            self.errors.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)


class Measured:
    """ASGI middleware: count and time every HTTP request under its route's template, status included
    (matched here, so a request refused before routing, a 401 or 413, is counted under its route too)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: list[BaseRoute]) -> None:
        self.app, self.metrics, self.routes = app, metrics, routes

    def route(self, scope: Scope) -> str:
        partial = UNMATCHED  # a route of the path but another method (405)
        for route in self.routes:
            path = getattr(route, "path", None)
            if not isinstance(path, str):  # a router included whole: its own routes are in the list
                continue
            match = route.matches(scope)[0]
            if match is Match.FULL:
                return path
            if match is Match.PARTIAL and partial == UNMATCHED:
                partial = path
        return partial

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status, route = time.perf_counter(), 500, self.route(scope)

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.observe(scope["method"], route, status, time.perf_counter() - started)
