//! Prometheus metrics, served at `/metrics`: rings, deliveries by platform and outcome, the time
//! from a ring request to the provider request, provider latency, HTTP requests and long-polls,
//! the build and (on Linux) the process.
//!
//! One exposition format: Prometheus' text format 0.0.4 ([`CONTENT_TYPE`]), which every
//! Prometheus and every scraper reads. A counter family is named with its `_total` suffix and
//! typed `counter`; histograms carry every `_bucket` (up to `+Inf`), `_sum` and `_count`. The
//! metrics are kept with `prometheus-client`, which writes OpenMetrics; [`Metrics::encode`]
//! rewrites that as the text format (see [`prometheus_text`]).

use std::fmt::Write as _;
use std::sync::OnceLock;

use callpush_proto::model::Platform;

use crate::domain::PushKind;
use crate::senders::SendOutcome;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::encode`]: Prometheus' text exposition format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

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

/// Labels of a metric counted by HTTP status alone.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    /// The status code.
    pub status: u16,
}

/// Labels of `callpush_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    /// The version of callpush-server, as in its `Cargo.toml`.
    version: String,
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
    /// HTTP request duration by route and status, seconds; long-polls are not in it.
    pub http_seconds: Family<HttpLabels, Histogram>,
    /// Long-poll duration (`GET /v1/calls/{call_id}?wait=` with a wait above 0) by status,
    /// seconds: they last up to the wait by design, so they are kept apart from other requests.
    pub long_poll_seconds: Family<StatusLabels, Histogram>,
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
    /// Handles of the per-push series, made on first use (so the exposition lists only series
    /// that were counted, as `get_or_create` does) and then reused: no label strings, no map
    /// lookup per push.
    handles: Handles,
}

/// How many outcome classes [`SendOutcome::class`] names.
const OUTCOME_CLASSES: usize = 7;
/// How many push kinds there are.
const KINDS: usize = 3;

/// Per-push metric handles, one per label set, made when first used.
#[derive(Default)]
struct Handles {
    /// `deliveries`, by platform × kind × outcome class.
    deliveries: [[[OnceLock<Counter>; OUTCOME_CLASSES]; KINDS]; Platform::ALL.len()],
    /// `provider_latency`, by platform.
    provider_latency: [OnceLock<Histogram>; Platform::ALL.len()],
    /// `config_errors`, by platform.
    config_errors: [OnceLock<Counter>; Platform::ALL.len()],
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

fn long_poll() -> Histogram {
    // A long-poll ends when its call changes or its wait (at most 60 s) is up.
    Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0])
}

impl Default for Metrics {
    fn default() -> Self {
        let mut root = Registry::default();
        // `process_*`, unprefixed as every Prometheus client names them; read at each scrape.
        #[cfg(target_os = "linux")]
        root.register_collector(Box::new(process::ProcessCollector));
        let registry = root.sub_registry_with_prefix("callpush");
        registry.register(
            "build",
            "The running callpush-server (labels: its version); always 1",
            Info::new(BuildLabels { version: env!("CARGO_PKG_VERSION").to_owned() }),
        );
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
        let long_poll_seconds =
            Family::<StatusLabels, Histogram>::new_with_constructor(long_poll as fn() -> Histogram);
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
        registry.register(
            "http_request_seconds",
            "HTTP request duration, long-polls excepted",
            http_seconds.clone(),
        );
        registry.register(
            "http_long_poll_seconds",
            "Long-poll duration (GET /v1/calls/{call_id} with wait above 0)",
            long_poll_seconds.clone(),
        );
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
            registry: root,
            rings,
            deliveries,
            ring_to_send,
            provider_latency,
            config_errors,
            pruned,
            installations,
            http_requests,
            http_seconds,
            long_poll_seconds,
            webhooks,
            http_connections,
            http_refused_connections,
            long_polls,
            receipt_requests,
            harmony_receipts,
            quota_refusals,
            handles: Handles::default(),
        }
    }
}

impl Metrics {
    /// The `deliveries` counter of `platform`, push `kind` and `outcome`'s class: the series
    /// `deliveries.get_or_create` gives, its handle kept.
    pub fn delivery(&self, platform: Platform, kind: PushKind, outcome: &SendOutcome) -> &Counter {
        let k = match kind {
            PushKind::Ring => 0,
            PushKind::Cancel => 1,
            PushKind::Missed => 2,
        };
        let o = match outcome {
            SendOutcome::Delivered { .. } => 0,
            SendOutcome::InvalidToken { .. } => 1,
            SendOutcome::RateLimited { .. } => 2,
            SendOutcome::Transient { .. } => 3,
            SendOutcome::BadRequest { .. } => 4,
            SendOutcome::ConfigError { .. } => 5,
            SendOutcome::QuotaExhausted { .. } => 6,
        };
        self.handles.deliveries[platform.index()][k][o].get_or_init(|| {
            let labels = DeliveryLabels {
                platform: platform.as_str().to_owned(),
                kind: kind.as_str().to_owned(),
                outcome: outcome.class().to_owned(),
            };
            self.deliveries.get_or_create(&labels).clone()
        })
    }

    /// The `provider_latency` histogram of `platform`.
    pub fn provider_latency(&self, platform: Platform) -> &Histogram {
        self.handles.provider_latency[platform.index()].get_or_init(|| {
            self.provider_latency
                .get_or_create(&PlatformLabels { platform: platform.as_str().to_owned() })
                .clone()
        })
    }

    /// The `config_errors` counter of `platform`.
    pub fn config_errors(&self, platform: Platform) -> &Counter {
        self.handles.config_errors[platform.index()].get_or_init(|| {
            self.config_errors
                .get_or_create(&PlatformLabels { platform: platform.as_str().to_owned() })
                .clone()
        })
    }

    /// Every metric in Prometheus' text exposition format 0.0.4, served as [`CONTENT_TYPE`].
    pub fn encode(&self) -> String {
        let mut openmetrics = String::new();
        // Writing to a `String` cannot fail, and neither can any metric registered here.
        let _ = prometheus_client::encoding::text::encode_registry(&mut openmetrics, &self.registry);
        prometheus_text(&openmetrics)
    }
}

/// `openmetrics`, as `prometheus-client` writes it, in Prometheus' text format 0.0.4: the sample
/// lines are the same in both, the family names and types are not. A counter family `x` (samples
/// `x_total`) becomes the family `x_total`, typed `counter`; an info family `x` (sample `x_info`)
/// the gauge `x_info`; `# UNIT` and `# EOF`, which the text format lacks, are left out, and so is
/// any family type the text format has no word for (typed `untyped`).
fn prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // `# HELP` comes right before the `# TYPE` of its family, whose name it must take.
    let mut help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest.split_once(' ').unwrap_or((rest, "")));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (family, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (name, kind) = match kind {
                "counter" => (format!("{family}_total"), "counter"),
                "info" => (format!("{family}_info"), "gauge"),
                "gauge" | "histogram" | "summary" => (family.to_owned(), kind),
                _ => (family.to_owned(), "untyped"),
            };
            if let Some((_, text)) = help.take().filter(|(of, _)| *of == family) {
                let _ = writeln!(out, "# HELP {name} {text}");
            }
            let _ = writeln!(out, "# TYPE {name} {kind}");
        } else if !line.starts_with('#') && !line.is_empty() {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The process metrics every Prometheus client exports, read from `/proc` at each scrape: CPU
/// time, memory, open files, start time. One that cannot be read is left out of that scrape.
#[cfg(target_os = "linux")]
mod process {
    use prometheus_client::collector::Collector;
    use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
    use prometheus_client::metrics::counter::ConstCounter;
    use prometheus_client::metrics::gauge::ConstGauge;

    /// Clock ticks per second in `/proc` times: `USER_HZ`, 100 on every Linux architecture
    /// Prometheus' own `procfs` reads (it takes 100 as well).
    const USER_HZ: f64 = 100.0;

    /// Collects `process_*` from `/proc/self`.
    #[derive(Debug)]
    pub struct ProcessCollector;

    /// What `/proc/self/stat` says, in the units the metrics use.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub(super) struct Stat {
        /// User and system CPU time, seconds.
        pub cpu_seconds: f64,
        /// Since boot, seconds.
        pub started_after_boot: f64,
        /// Virtual memory size, bytes.
        pub virtual_bytes: u64,
    }

    /// Reads the fields of a `/proc/<pid>/stat` line; `None` if it is not one.
    pub(super) fn parse_stat(stat: &str) -> Option<Stat> {
        // The command name, in parentheses, may hold spaces and parentheses: fields count from
        // the last `)`, the first after it being field 3 (`state`) of proc(5).
        let fields: Vec<&str> = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        Some(Stat {
            cpu_seconds: (field(14)? + field(15)?) as f64 / USER_HZ,
            started_after_boot: field(22)? as f64 / USER_HZ,
            virtual_bytes: field(23)?,
        })
    }

    /// The value of `key:` in a `/proc` file of `key: value` lines (`/proc/self/status`,
    /// `/proc/stat` with a space), as its first number.
    pub(super) fn field_of(text: &str, key: &str) -> Option<u64> {
        text.lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    }

    fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> std::fmt::Result {
        let metric = ConstCounter::new(value);
        metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
    }

    fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> std::fmt::Result {
        let metric = ConstGauge::new(value);
        metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
    }

    impl Collector for ProcessCollector {
        fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
            let stat = std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| parse_stat(&s));
            if let Some(stat) = stat {
                counter(
                    &mut encoder,
                    "process_cpu_seconds",
                    "User and system CPU time spent, seconds.",
                    stat.cpu_seconds,
                )?;
                gauge(
                    &mut encoder,
                    "process_virtual_memory_bytes",
                    "Virtual memory size, bytes.",
                    stat.virtual_bytes as f64,
                )?;
                let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| field_of(&s, "btime "));
                if let Some(boot) = boot {
                    gauge(
                        &mut encoder,
                        "process_start_time_seconds",
                        "Start time of the process since the Unix epoch, seconds.",
                        boot as f64 + stat.started_after_boot,
                    )?;
                }
            }
            let status = std::fs::read_to_string("/proc/self/status").ok();
            if let Some(rss_kib) = status.as_deref().and_then(|s| field_of(s, "VmRSS:")) {
                gauge(
                    &mut encoder,
                    "process_resident_memory_bytes",
                    "Resident memory size, bytes.",
                    (rss_kib * 1024) as f64,
                )?;
            }
            if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
                gauge(&mut encoder, "process_open_fds", "Open file descriptors.", fds.count() as f64)?;
            }
            if let Some(max) = rustix::process::getrlimit(rustix::process::Resource::Nofile).current {
                gauge(&mut encoder, "process_max_fds", "Most open file descriptors allowed.", max as f64)?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks `text` is Prometheus text as its parsers read it: every family typed `counter`,
    /// `gauge` or `histogram`, counters named `_total`, every sample in its family; returns the
    /// families, name and type.
    fn families(text: &str) -> Vec<(String, String)> {
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"), "OpenMetrics lines:\n{text}");
        let mut families: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(matches!(kind, "counter" | "gauge" | "histogram"), "{line}");
                assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
                families.push((name.to_owned(), kind.to_owned()));
            } else if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, _) = rest.split_once(' ').unwrap();
                assert!(text.contains(&format!("# TYPE {name} ")), "HELP of an untyped family: {line}");
            } else {
                let (family, kind) =
                    families.last().unwrap_or_else(|| panic!("a sample before any TYPE: {line}"));
                let sample = line.split(['{', ' ']).next().unwrap();
                let suffixes: &[&str] =
                    if kind == "histogram" { &["_bucket", "_sum", "_count"] } else { &[""] };
                assert!(
                    suffixes.iter().any(|s| sample == format!("{family}{s}")),
                    "{sample} is not a sample of {family} ({kind})"
                );
            }
        }
        families
    }

    #[test]
    fn the_exposition_is_prometheus_text_with_every_family_typed() {
        let metrics = Metrics::default();
        metrics.rings.inc();
        let delivery =
            DeliveryLabels { platform: "fcm".into(), kind: "ring".into(), outcome: "delivered".into() };
        metrics.deliveries.get_or_create(&delivery).inc();
        let http = HttpLabels { route: "/v1/calls".into(), status: 202 };
        metrics.http_requests.get_or_create(&http).inc();
        metrics.http_seconds.get_or_create(&http).observe(0.004);
        metrics.long_poll_seconds.get_or_create(&StatusLabels { status: 200 }).observe(3.0);
        let text = metrics.encode();
        let families = families(&text);
        for (name, kind) in [
            ("callpush_rings_total", "counter"),
            ("callpush_deliveries_total", "counter"),
            ("callpush_http_request_seconds", "histogram"),
            ("callpush_http_long_poll_seconds", "histogram"),
            ("callpush_installations", "gauge"),
            ("callpush_build_info", "gauge"),
        ] {
            assert!(families.contains(&(name.into(), kind.into())), "{name} {kind}:\n{text}");
        }
        assert!(text.contains("callpush_rings_total 1\n"), "{text}");
        assert!(
            text.contains(r#"callpush_deliveries_total{platform="fcm",kind="ring",outcome="delivered"} 1"#),
            "{text}"
        );
        let version = env!("CARGO_PKG_VERSION");
        assert!(text.contains(&format!("callpush_build_info{{version=\"{version}\"}} 1\n")), "{text}");
        assert!(
            text.contains("callpush_http_long_poll_seconds_bucket{le=\"5.0\",status=\"200\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("callpush_http_long_poll_seconds_bucket{le=\"+Inf\",status=\"200\"} 1\n"),
            "{text}"
        );
        #[cfg(target_os = "linux")]
        for (name, kind) in [
            ("process_cpu_seconds_total", "counter"),
            ("process_resident_memory_bytes", "gauge"),
            ("process_virtual_memory_bytes", "gauge"),
            ("process_open_fds", "gauge"),
            ("process_start_time_seconds", "gauge"),
        ] {
            assert!(families.contains(&(name.into(), kind.into())), "{name} {kind}:\n{text}");
        }
    }

    #[test]
    fn openmetrics_families_are_renamed_and_retyped_for_the_text_format() {
        let openmetrics =
            "# HELP a_requests Requests.\n# TYPE a_requests counter\n# UNIT a_requests requests\n\
                           a_requests_total{x=\"1\"} 3\n# HELP a_build Build.\n# TYPE a_build info\n\
                           a_build_info{version=\"1\"} 1\n# TYPE a_odd stateset\na_odd 1\n# EOF\n";
        assert_eq!(
            prometheus_text(openmetrics),
            "# HELP a_requests_total Requests.\n# TYPE a_requests_total counter\na_requests_total{x=\"1\"} 3\n\
             # HELP a_build_info Build.\n# TYPE a_build_info gauge\na_build_info{version=\"1\"} 1\n\
             # TYPE a_odd untyped\na_odd 1\n"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn process_figures_are_read_from_proc() {
        // A command name with a space and a parenthesis; utime 250, stime 50, starttime 1000
        // ticks, vsize 4096 bytes.
        let stat = "1234 (a (b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 1000 4096 \
                    300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let parsed = process::parse_stat(stat).unwrap();
        assert_eq!(parsed, process::Stat { cpu_seconds: 3.0, started_after_boot: 10.0, virtual_bytes: 4096 });
        assert_eq!(process::parse_stat("not a stat line"), None);
        assert_eq!(process::field_of("Name:\tcallpush\nVmRSS:\t  2048 kB\n", "VmRSS:"), Some(2048));
        assert_eq!(process::field_of("cpu  1 2 3\nbtime 1767225600\n", "btime "), Some(1_767_225_600));
        let live = process::parse_stat(&std::fs::read_to_string("/proc/self/stat").unwrap()).unwrap();
        assert!(live.started_after_boot > 0.0 && live.virtual_bytes > 0, "{live:?}");
    }
}
