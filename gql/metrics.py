"""/metrics in Prometheus' text format (MANDATE_METRICS=1): requests and latency by operation,
logins by outcome, second-factor failures and rate limits, and the accounts under enforcement.

Counters are counted in the process that answered. With several processes (`mandate serve
--workers N`), prometheus-client's multi-process mode adds them up across the processes: each
scrape, whichever process answers it, reports the totals of all of them. The accounts are
counted at scrape time, from the database (models/statistics.py): the same from every process.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from mandate.config import Settings
from mandate.models.errors import INVALID_CODE, RATE_LIMITED
from mandate.models.statistics import account_counts

log = logging.getLogger("mandate.observability")

OK = "ok"

disable_created_metrics()  # no `_created` series beside every counter: Prometheus does without them
REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "mandate_requests", "Requests answered, by operation (root fields) and outcome (ok, or the first error code).",
    ["operation", "outcome"], registry=REGISTRY,
)
LATENCY = Histogram(
    "mandate_request_duration_seconds", "Time from a request's arrival to its answer, by operation.",
    ["operation"], registry=REGISTRY,
)
LOGINS = Counter(
    "mandate_logins", "Documents with a login, by outcome: ok, or the error code (INVALID_CREDENTIALS, RATE_LIMITED...).",
    ["outcome"], registry=REGISTRY,
)
SECOND_FACTOR_FAILURES = Counter(
    "mandate_second_factor_failures", "Second-factor attempts answered INVALID_CODE, by operation.",
    ["operation"], registry=REGISTRY,
)
RATE_LIMITED_ANSWERS = Counter(
    "mandate_rate_limited", "Answers RATE_LIMITED (passwords and second factors), by operation.",
    ["operation"], registry=REGISTRY,
)


def count_request(operation: str, outcome: str, codes: tuple[str, ...], seconds: float) -> None:
    REQUESTS.labels(operation, outcome.split(",", 1)[0]).inc()
    LATENCY.labels(operation).observe(seconds)
    if not codes:
        if "login" in operation.split("+"):
            LOGINS.labels(OK).inc()
        return
    if "login" in operation.split("+"):
        LOGINS.labels(codes[0]).inc()
    for code in codes:
        if code == INVALID_CODE:
            SECOND_FACTOR_FAILURES.labels(operation).inc()
        elif code == RATE_LIMITED:
            RATE_LIMITED_ANSWERS.labels(operation).inc()


class _Families:
    def __init__(self, families: list) -> None:
        self.families = families

    def collect(self):
        return self.families


async def _account_gauges() -> list[GaugeMetricFamily]:
    try:
        counts = await account_counts()
    except Exception:  # noqa: BLE001 - the counters are still worth serving without the database
        log.exception("metrics: the accounts could not be counted")
        return []
    return [
        GaugeMetricFamily("mandate_accounts", "Accounts.", value=counts.accounts),
        GaugeMetricFamily(
            "mandate_accounts_enforced", "Accounts under enforcement: switched on there or on an ancestor.",
            value=counts.enforced,
        ),
        GaugeMetricFamily("mandate_accounts_enforced_here", "Accounts whose own switch is on.", value=counts.enforced_here),
    ]


async def metrics_text(settings: Settings) -> bytes:
    if settings.metrics_folder:
        counted = CollectorRegistry()
        MultiProcessCollector(counted, path=settings.metrics_folder)
    else:
        counted = REGISTRY
    gauges = CollectorRegistry(auto_describe=False)
    gauges.register(_Families(await _account_gauges()))
    return generate_latest(counted) + generate_latest(gauges)


async def serve_metrics(scope, send, settings: Settings) -> None:
    """The answer to a request for /metrics (pure ASGI, from the request log's middleware)."""
    if scope["method"] not in ("GET", "HEAD"):
        status, body, content_type = 405, b"GET only\n", b"text/plain; charset=utf-8"
    else:
        status, body, content_type = 200, await metrics_text(settings), CONTENT_TYPE_LATEST.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
