"""Prometheus metrics, named the Prometheus way, on a registry injected by the caller."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

# Stages range from a millisecond (admission) to seconds (OCR of a dense A4 page).
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
DOSSIER_BUCKETS = (0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120)


class Metrics:
    """Every series the server exports. Labels never carry IDs or personal data."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.stage_duration = Histogram(
            "saoy_stage_duration_seconds",
            "Time spent in one pipeline stage, per page or per dossier.",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "saoy_executor_queue_seconds",
            "Time CPU work waited for a free worker before its stage started.",
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.dossier_duration = Histogram(
            "saoy_dossier_duration_seconds",
            "Time from a Certify stream's End to its terminal event.",
            ["outcome"],
            buckets=DOSSIER_BUCKETS,
            registry=r,
        )
        self.dossiers = Counter(
            "saoy_dossiers_total", "Dossiers decided, by outcome.", ["outcome"], registry=r
        )
        self.pages = Counter(
            "saoy_pages_total", "Pages received, by admission result.", ["result"], registry=r
        )
        self.received_bytes = Counter(
            "saoy_received_bytes_total", "Page bytes received over Certify streams.", registry=r
        )
        self.errors = Counter(
            "saoy_errors_total", "Requests ended by an error, by gRPC status.", ["code"], registry=r
        )
        self.verifications = Counter(
            "saoy_verifications_total",
            "Verifications answered, by verdict.",
            ["verdict"],
            registry=r,
        )
        self.rate_limited = Counter(
            "saoy_rate_limited_total",
            "Requests refused by a rate limit, by surface (authenticate, certify, http_page,"
            " http_upload).",
            ["surface"],
            registry=r,
        )
        self.in_flight = Gauge("saoy_dossiers_in_flight", "Certify streams open now.", registry=r)
        self.build = Info("saoy_build", "Engines and providers in use.", registry=r)
        self.log_size = Gauge("saoy_log_entries", "Entries in the transparency log.", registry=r)
        self.log_unsigned = Gauge(
            "saoy_log_unsigned_entries",
            "Entries not yet covered by a signed checkpoint (the log's integration lag).",
            registry=r,
        )
        self.checkpoint_age = Gauge(
            "saoy_log_checkpoint_age_seconds",
            "Age of the latest signed checkpoint.",
            registry=r,
        )

    def observe_stage(self, stage: str, seconds: float) -> None:
        self.stage_duration.labels(stage=stage).observe(seconds)

    def observe_queue_wait(self, seconds: float) -> None:
        self.queue_wait.observe(seconds)
