//! Prometheus metrics, served at `/metrics`: rings, deliveries by platform and outcome, the time
//! from a ring request to the provider request, provider latency, HTTP requests.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of a delivery metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    /// `harmony`, `fcm`, `apns`, `wns`.
    pub platform: String,
    /// `ring`, `cancel`, `missed`.
    pub kind: String,
    /// The outcome class.
    pub outcome: String,
}

/// Labels of a per-platform metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlatformLabels {
    /// The platform.
    pub platform: String,
}

/// Labels of a metric counted by result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// The result: `delivered`, `retry`, `failed` (webhooks); a receipt result code.
    pub result: String,
}

/// Labels of an HTTP metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route pattern, e.g. `/v1/calls/{call_id}`.
    pub route: String,
    /// The status code.
    pub status: u16,
}

/// Every metric of the server.
pub struct Metrics {
    registry: Registry,
    /// Calls rung.
    pub rings: Counter,
    /// Deliveries attempted, by platform, kind and outcome.
    pub deliveries: Family<DeliveryLabels, Counter>,
    /// Seconds from the ring request to each device's first provider request.
    pub ring_to_send: Histogram,
    /// Seconds a provider took to answer, by platform.
    pub provider_latency: Family<PlatformLabels, Histogram>,
    /// Provider configuration errors (bad credentials, wrong topic): each needs an operator.
    pub config_errors: Family<PlatformLabels, Counter>,
    /// Installations pruned because the provider declared their token dead.
    pub pruned: Counter,
    /// Live installations, refreshed by the purge task.
    pub installations: Gauge,
    /// HTTP requests by route and status.
    pub http_requests: Family<HttpLabels, Counter>,
    /// HTTP request duration by route, seconds.
    pub http_seconds: Family<HttpLabels, Histogram>,
    /// Webhooks by result (`delivered`, `retry`, `failed`).
    pub webhooks: Family<ResultLabels, Counter>,
    /// HTTP connections open now.
    pub http_connections: Gauge,
    /// HTTP connections refused because `http.max_connections` were open.
    pub http_refused_connections: Counter,
    /// Long-polls held now.
    pub long_polls: Gauge,
    /// Push Kit delivery receipt requests by result (`accepted`, `unauthorized`, `replayed`,
    /// `invalid`, `failed`).
    pub receipt_requests: Family<ResultLabels, Counter>,
    /// Push Kit delivery receipts by result code (`0`, `2`, `6`, …, `other`, `not_delivery`).
    pub harmony_receipts: Family<ResultLabels, Counter>,
    /// Pushes not sent because a provider's daily quota was used up (Push Kit test messages),
    /// by platform.
    pub quota_refusals: Family<PlatformLabels, Counter>,
}

/// Provider connections replaced (a request on them timed out, or the provider was closing
/// them), by platform. Process-wide: senders are made before, and apart from, a server's
/// [`Metrics`], and every server in the process reports the same counts.
pub fn provider_connections_replaced() -> &'static Family<PlatformLabels, Counter> {
    static REPLACED: std::sync::OnceLock<Family<PlatformLabels, Counter>> = std::sync::OnceLock::new();
    REPLACED.get_or_init(Family::default)
}

fn latency() -> Histogram {
    // 0.25 ms to about 10 s in steps of 1.5×, fine enough to read a 20 ms p99 from.
    Histogram::new(exponential_buckets(0.00025, 1.5, 27))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("callpush");
        let rings = Counter::default();
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        let ring_to_send = latency();
        let provider_latency =
            Family::<PlatformLabels, Histogram>::new_with_constructor(latency as fn() -> Histogram);
        let config_errors = Family::<PlatformLabels, Counter>::default();
        let pruned = Counter::default();
        let installations = Gauge::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_seconds =
            Family::<HttpLabels, Histogram>::new_with_constructor(latency as fn() -> Histogram);
        let webhooks = Family::<ResultLabels, Counter>::default();
        let http_connections = Gauge::default();
        let http_refused_connections = Counter::default();
        let long_polls = Gauge::default();
        let receipt_requests = Family::<ResultLabels, Counter>::default();
        let harmony_receipts = Family::<ResultLabels, Counter>::default();
        let quota_refusals = Family::<PlatformLabels, Counter>::default();
        registry.register("rings", "Calls rung", rings.clone());
        registry.register("deliveries", "Push deliveries attempted", deliveries.clone());
        registry.register("ring_to_send_seconds", "Ring request to provider request", ring_to_send.clone());
        registry.register("provider_latency_seconds", "Provider answer time", provider_latency.clone());
        registry.register("provider_config_errors", "Provider configuration errors", config_errors.clone());
        registry.register("pruned_installations", "Installations pruned for dead tokens", pruned.clone());
        registry.register("installations", "Live installations", installations.clone());
        registry.register("http_requests", "HTTP requests", http_requests.clone());
        registry.register("http_request_seconds", "HTTP request duration", http_seconds.clone());
        registry.register("webhooks", "Webhook deliveries", webhooks.clone());
        registry.register(
            "provider_connections_replaced",
            "Provider connections replaced after a timeout or as the provider closed them",
            provider_connections_replaced().clone(),
        );
        registry.register("http_connections", "Open HTTP connections", http_connections.clone());
        registry.register(
            "http_refused_connections",
            "HTTP connections refused at the connection cap",
            http_refused_connections.clone(),
        );
        registry.register("long_polls", "Long-polls held", long_polls.clone());
        registry.register(
            "harmony_receipt_requests",
            "Push Kit delivery receipt requests by result",
            receipt_requests.clone(),
        );
        registry.register(
            "harmony_receipts",
            "Push Kit delivery receipts by result code",
            harmony_receipts.clone(),
        );
        registry.register(
            "provider_quota_refusals",
            "Pushes not sent because a provider's daily quota was used up",
            quota_refusals.clone(),
        );
        Metrics {
            registry,
            rings,
            deliveries,
            ring_to_send,
            provider_latency,
            config_errors,
            pruned,
            installations,
            http_requests,
            http_seconds,
            webhooks,
            http_connections,
            http_refused_connections,
            long_polls,
            receipt_requests,
            harmony_receipts,
            quota_refusals,
        }
    }
}

impl Metrics {
    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
