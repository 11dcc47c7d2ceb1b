"""Prometheus metrics, on an optional endpoint (`metrics.bind`), from a registry of our own."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

# prometheus_client is imported where a Metrics is made: most bots run without `metrics.bind`, and
# its import is not worth paying before the first answer.

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
REPORT_BUCKETS = (0.5, 1, 2, 3, 5, 10, 30, 60, 300)


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.commands = Counter("synapse_admin_bot_commands", "Commands handled", ["group", "verb", "result"],
                                registry=self.registry)
        self.command_seconds = Histogram("synapse_admin_bot_command_seconds", "Time from a command to its reply",
                                         ["group", "verb"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.admin_api = Counter("synapse_admin_bot_admin_api_requests", "Admin API requests by answer",
                                 ["method", "status"], registry=self.registry)
        self.admin_api_seconds = Histogram("synapse_admin_bot_admin_api_seconds", "Admin API request time",
                                           ["method"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.report_latency = Histogram("synapse_admin_bot_report_notice_latency_seconds",
                                        "Time from a report being filed to its notice", buckets=REPORT_BUCKETS,
                                        registry=self.registry)
        self.pending_confirmations = Gauge("synapse_admin_bot_pending_confirmations",
                                           "Commands waiting for confirmation", registry=self.registry)
        self.running_jobs = Gauge("synapse_admin_bot_running_jobs", "Long operations running", registry=self.registry)
        self.sync_age = Gauge("synapse_admin_bot_seconds_since_last_sync",
                              "Seconds since the last successful sync (-1 before the first)", registry=self.registry)
        self.sync_failures = Gauge("synapse_admin_bot_sync_failures", "Failed syncs since start", registry=self.registry)
        self._server: Any = None

    def observe_command(self, command: str, result: str, seconds: float) -> None:
        group, _, verb = command.partition(" ")
        verb = verb or group
        self.commands.labels(group, verb, result.split(" ")[0]).inc()
        self.command_seconds.labels(group, verb).observe(seconds)

    def observe_admin_api(self, method: str, url: str, status: int, seconds: float) -> None:
        # By method and status only: URLs carry user and room IDs (unbounded label values).
        self.admin_api.labels(method, str(status) if status else "no answer").inc()
        self.admin_api_seconds.labels(method).observe(seconds)

    def observe_report_latency(self, seconds: float) -> None:
        self.report_latency.observe(seconds)

    def watch(self, *, running_jobs: Callable[[], int], last_sync_ok: Callable[[], float | None],
              sync_failures: Callable[[], int]) -> None:
        """Gauges read at scrape time."""
        self.running_jobs.set_function(lambda: float(running_jobs()))
        self.sync_age.set_function(lambda: -1.0 if last_sync_ok() is None else time.time() - (last_sync_ok() or 0))
        self.sync_failures.set_function(lambda: float(sync_failures()))

    def serve(self, host: str, port: int) -> None:
        from prometheus_client import start_http_server

        self._server, _ = start_http_server(port, addr=host, registry=self.registry)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
