"""Prometheus metrics exposed at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "zhixing_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "zhixing_http_request_duration_seconds", "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
JOBS = Counter("zhixing_jobs_total", "Background jobs finished", ["kind", "outcome"])
LOGIN_FAILURES = Counter("zhixing_login_failures_total", "Failed logins")
SIGNALS_RECEIVED = Counter(
    "zhixing_signals_received_total", "Commit signals this process received (LISTEN/NOTIFY)",
    ["channel"])
