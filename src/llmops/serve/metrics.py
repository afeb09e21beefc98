"""The live Prometheus counters and histograms of one gateway process (its own registry, so apps don't collide).

The per-version metrics read from the store (what guardrails, monitor and UI use) are models/metrics.py.
"""


from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class GatewayMetrics:
    """Prometheus counters and histograms of one gateway process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("llmops_requests", "Chat completions served.", ["model", "status"],
                                registry=self.registry)
        self.latency = Histogram("llmops_request_latency_seconds", "Chat completion latency.", ["model"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.tokens = Counter("llmops_completion_tokens", "Completion tokens generated.", ["model"],
                              registry=self.registry)
        self.feedback = Counter("llmops_feedback", "Thumbs up/down received.", ["model", "score"],
                                registry=self.registry)
        self.votes = Counter("llmops_arena_votes", "Arena votes recorded.", ["choice"], registry=self.registry)
        self.rejected = Counter("llmops_rejected_requests", "Requests refused with a 4xx.", ["status"],
                                registry=self.registry)

    def observe(self, model: str, ok: bool, latency_s: float, tokens: int) -> None:
        self.requests.labels(model=model, status="ok" if ok else "error").inc()
        self.latency.labels(model=model).observe(latency_s)
        self.tokens.labels(model=model).inc(tokens)

    def render(self) -> bytes:
        return generate_latest(self.registry)
