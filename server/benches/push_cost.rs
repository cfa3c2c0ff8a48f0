//! The cost of one push: where a delivered push's CPU time and instructions go, and
//! how fast a lone ring reaches its provider. Figures and how to read them: docs/performance.md,
//! "The cost of one push".
//!
//! Everything runs as its own process, as in production: the four provider emulators over TLS
//! (`callpush-dev emulate --tls`: APNs and FCM on HTTP/2, Push Kit and WNS on HTTP/1.1, every
//! token the bench registers online) and the release `callpush serve` under measure, on SQLite
//! and, when `CALLPUSH_BENCH_POSTGRES_URL` names a server, on PostgreSQL. For each size (1,000
//! and 10,000 devices, round-robin over the four platforms, ten callees with a tenth each):
//!
//! 1. every device is registered through the API; the server stops and its database is copied
//!    twice, so that both measured runs start from the same state;
//! 2. native run: a warm-up ring of up to 1,000 other devices (every connection pool open, every
//!    provider token cached), then one ring of the ten callees, `CALLPUSH_BENCH_REPEATS` times.
//!    A window runs from sending `POST /v1/calls` until the database says every delivery of the
//!    call is `delivered` (polled by the bench, so the server does nothing extra). CPU per push:
//!    the server's utime + stime (/proc/<pid>/stat) over the windows, over the pushes;
//! 3. callgrind run: the same server under `valgrind --tool=callgrind --instr-atstart=no`,
//!    instrumented for one window only (`callgrind_control -i on` / `-i off`, then `--dump`):
//!    instructions per push, split into phases by [`PHASES`], and the functions that cost most.
//!
//! Then, on the smallest size's native server: `CALLPUSH_BENCH_RINGS` sequential rings of one
//! device on each platform, each timed from sending `POST /v1/calls` to the arrival stamp of its
//! provider request in the emulator's request log (`received_at_us`: same machine, same clock),
//! p50 and p99, [`RING_GAP`] apart, the log read only once the push has arrived. Beside them, in
//! the same run and with the same gaps: the floor (one commit of a one-row write as the server
//! commits — SQLite with the server's pragmas, PostgreSQL an autocommit insert — plus one request
//! to the same emulator on a warm connection, to its arrival stamp), and the least server
//! ([`LeastServer`]: this bench run as a server that reads the `POST`, makes that commit,
//! answers and sends that request), rung as the server is.
//!
//! Run: `server/bench-push-cost.sh [--postgres]`, which builds what is needed and sets:
//! - `CALLPUSH_BENCH_BIN` (required): the `callpush` binary to measure, built with line tables
//!   (`CARGO_PROFILE_RELEASE_DEBUG=line-tables-only`); `CALLPUSH_BENCH_LABEL`: what it is;
//! - `CALLPUSH_BENCH_EMULATE` (required): the `callpush-dev` binary that runs the emulators;
//! - `CALLPUSH_BENCH_POSTGRES_URL`: a PostgreSQL server the bench may create databases on;
//! - `CALLPUSH_BENCH_DEVICES` (default `1000,10000`), `CALLPUSH_BENCH_REPEATS` (3),
//!   `CALLPUSH_BENCH_CALLGRIND` (`0` skips valgrind), `CALLPUSH_BENCH_RINGS` (1000; `0` skips
//!   the single rings), `CALLPUSH_BENCH_SQLITE` (`0` skips SQLite), `CALLPUSH_BENCH_OUT` (where
//!   server logs and callgrind files are kept; default a directory under the system's temp);
//! - `CALLPUSH_BENCH_WIRE` (`v1`): `v2` registers every device with a device key, so every push
//!   is sealed to it (wire v2) as it is for devices running the current SDK.
//!
//! `CALLPUSH_BENCH_READ=<callgrind.out.1>:<pushes>` only reads a kept dump and prints its table.
//!
//! Benchmarks never gate CI: nothing here asserts a time.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use callpush_emulators::device::token_for;
use callpush_proto::model::Platform;
use callpush_server::auth::mint_device_token;
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};
use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;

const API_KEY: &str = "bench-api-key-0123456789";
const SECRET: &str = "bench-device-token-secret-0123456789abcdef";
/// Callees of the measured ring; each has a tenth of the devices.
const CALLEES: usize = 10;
/// Devices of the warm-up ring (at most; never more than the measured ring).
const WARM_DEVICES: usize = 1_000;
/// Registrations in flight.
const CONCURRENCY: usize = 64;
/// Ring time of every call, s: the most the server allows (`ring.max_ring_seconds` ≤ 120), so
/// that nothing expires within a window, even under valgrind, and no follow-up push (a timeout's
/// cancel or missed-call notification) is sent while a size is measured.
const RING_SECONDS: u32 = 120;
/// The pause between two single rings, so each finds the server idle (its previous result
/// written), as a lone ring does.
const RING_GAP: Duration = Duration::from_millis(5);

// ---------------------------------------------------------------------------------------------
// The phases

/// Where an instruction's time goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Phase {
    Request,
    Storage,
    Signing,
    Envelope,
    ProviderHttp,
    Tracing,
    Metrics,
    Allocation,
    Runtime,
    Orchestration,
    Other,
}

impl Phase {
    const ALL: [Phase; 11] = [
        Phase::Request,
        Phase::Storage,
        Phase::Signing,
        Phase::Envelope,
        Phase::ProviderHttp,
        Phase::Tracing,
        Phase::Metrics,
        Phase::Allocation,
        Phase::Runtime,
        Phase::Orchestration,
        Phase::Other,
    ];

    fn label(self) -> &'static str {
        match self {
            Phase::Request => "request handling",
            Phase::Storage => "storage (ring writes and result writes)",
            Phase::Signing => "invite signing",
            Phase::Envelope => "envelope and body building",
            Phase::ProviderHttp => "HTTP/2, HTTP/1.1 + TLS to providers",
            Phase::Tracing => "tracing",
            Phase::Metrics => "metrics",
            Phase::Allocation => "allocation and copying",
            Phase::Runtime => "runtime, locks, syscall wrappers",
            Phase::Orchestration => "callpush dispatch, rings, gate",
            Phase::Other => "other",
        }
    }
}

/// How instructions are split into phases, first matching row wins.
///
/// Each instruction is attributed by the source file of its line (after inlining: a serde_json
/// call inlined into a sender counts as serde_json), which names a crate (`…/<crate>-<version>/`
/// in the cargo registry) or a file of this workspace (`server/src/<module>`,
/// `core/proto/src/…`); a `crate:` row matches the crate, a `src:` row a workspace path, and
/// `path:` any part of the file's path. Lines of the standard library count for the file of the
/// function they were inlined into. Functions of neither (the C library, the standard library's
/// own functions) go by their symbol: `sym:` rows match the start of the function's name, `sym~`
/// any part of it.
///
/// Result writing (`store::deliveries` finishing a batch) is not separable from the ring's own
/// writes: SQLite runs every statement on sqlx's worker threads, under no callpush frame. Both
/// are "storage". Kernel time (syscalls, fsync) is outside valgrind's count: see CPU time.
const PHASES: &[(&str, Phase)] = &[
    // Request handling: the one `POST /v1/calls` of a window, and the server side of HTTP.
    ("src:server/src/api", Phase::Request),
    ("src:server/src/http_server", Phase::Request),
    ("src:server/src/auth", Phase::Request),
    ("crate:axum", Phase::Request),
    ("crate:axum-core", Phase::Request),
    ("crate:matchit", Phase::Request),
    ("crate:serde_path_to_error", Phase::Request),
    ("crate:serde_urlencoded", Phase::Request),
    ("crate:utoipa", Phase::Request),
    ("path:/hyper-1.", Phase::Request), // narrowed below: only hyper's server half reaches here
    // Tracing and metrics before anything that could claim their files.
    ("crate:tracing", Phase::Tracing),
    ("crate:tracing-core", Phase::Tracing),
    ("crate:tracing-subscriber", Phase::Tracing),
    ("crate:tracing-log", Phase::Tracing),
    ("crate:sharded-slab", Phase::Tracing),
    ("crate:thread_local", Phase::Tracing),
    ("crate:matchers", Phase::Tracing),
    ("crate:regex-automata", Phase::Tracing),
    ("crate:nu-ansi-term", Phase::Tracing),
    ("path:/tower-http-0.6.", Phase::Tracing), // narrowed below: `trace` only
    ("crate:prometheus-client", Phase::Metrics),
    ("crate:dtoa", Phase::Metrics),
    ("src:server/src/metrics", Phase::Metrics),
    // Storage.
    ("src:server/src/store", Phase::Storage),
    ("crate:sqlx-core", Phase::Storage),
    ("crate:sqlx-sqlite", Phase::Storage),
    ("crate:sqlx-postgres", Phase::Storage),
    ("crate:sqlx", Phase::Storage),
    ("crate:libsqlite3-sys", Phase::Storage),
    ("crate:flume", Phase::Storage),
    ("crate:futures-intrusive", Phase::Storage),
    ("crate:crossbeam-queue", Phase::Storage),
    ("crate:hashlink", Phase::Storage),
    ("crate:atoi", Phase::Storage),
    ("crate:md-5", Phase::Storage),
    ("crate:stringprep", Phase::Storage),
    ("sym:sqlite3", Phase::Storage),
    // Invite signing: the Ed25519 signature of each push's JWS.
    ("crate:ed25519-dalek", Phase::Signing),
    ("crate:curve25519-dalek", Phase::Signing),
    ("crate:ed25519", Phase::Signing),
    ("crate:sha2", Phase::Signing),
    ("crate:digest", Phase::Signing),
    ("crate:block-buffer", Phase::Signing),
    ("crate:signature", Phase::Signing),
    ("crate:subtle", Phase::Signing),
    // Envelope and body building: the invite, its JWS, the provider's wrapping, each sender's
    // request body and headers and its reading of the answer.
    ("src:server/src/senders/http", Phase::ProviderHttp),
    ("src:server/src/senders", Phase::Envelope),
    ("src:server/src/call_push", Phase::Envelope),
    ("src:core/proto/src", Phase::Envelope),
    ("crate:serde_json", Phase::Envelope),
    ("crate:serde", Phase::Envelope),
    ("crate:serde_core", Phase::Envelope),
    ("crate:base64", Phase::Envelope),
    ("crate:itoa", Phase::Envelope),
    ("crate:ryu", Phase::Envelope),
    ("crate:jsonwebtoken", Phase::Envelope),
    ("crate:httpdate", Phase::Envelope),
    // HTTP/2, HTTP/1.1 and TLS of the provider requests.
    ("crate:h2", Phase::ProviderHttp),
    ("crate:hyper-util", Phase::ProviderHttp), // its `server` half is request handling, below
    ("crate:reqwest", Phase::ProviderHttp),
    ("crate:rustls", Phase::ProviderHttp),
    ("crate:rustls-webpki", Phase::ProviderHttp),
    ("crate:rustls-pki-types", Phase::ProviderHttp),
    ("crate:tokio-rustls", Phase::ProviderHttp),
    ("crate:hyper-rustls", Phase::ProviderHttp),
    ("crate:ring", Phase::ProviderHttp),
    ("crate:untrusted", Phase::ProviderHttp),
    ("crate:http", Phase::ProviderHttp),
    ("crate:http-body", Phase::ProviderHttp),
    ("crate:http-body-util", Phase::ProviderHttp),
    ("crate:httparse", Phase::ProviderHttp),
    ("crate:bytes", Phase::ProviderHttp),
    ("crate:url", Phase::ProviderHttp),
    ("crate:idna", Phase::ProviderHttp),
    ("crate:form_urlencoded", Phase::ProviderHttp),
    ("crate:percent-encoding", Phase::ProviderHttp),
    ("crate:indexmap", Phase::ProviderHttp),
    ("crate:slab", Phase::ProviderHttp),
    ("crate:fnv", Phase::ProviderHttp),
    ("crate:want", Phase::ProviderHttp),
    ("crate:try-lock", Phase::ProviderHttp),
    ("crate:atomic-waker", Phase::ProviderHttp),
    ("crate:sync_wrapper", Phase::ProviderHttp),
    ("crate:ipnet", Phase::ProviderHttp),
    ("crate:tower", Phase::ProviderHttp),
    ("crate:tower-layer", Phase::ProviderHttp),
    ("crate:tower-service", Phase::ProviderHttp),
    ("sym:ring_core_", Phase::ProviderHttp),
    ("sym~aes_", Phase::ProviderHttp),
    ("sym~gcm_", Phase::ProviderHttp),
    ("sym~chacha20_", Phase::ProviderHttp),
    ("sym~ChaCha20", Phase::ProviderHttp),
    ("sym~poly1305", Phase::ProviderHttp),
    ("sym~sha256_block", Phase::ProviderHttp),
    ("sym~sha512_block", Phase::ProviderHttp),
    ("sym~x25519", Phase::ProviderHttp),
    ("sym~nistz256", Phase::ProviderHttp),
    ("sym:bn_", Phase::ProviderHttp),
    // Allocation and copying.
    ("sym:malloc", Phase::Allocation),
    ("sym:free", Phase::Allocation),
    ("sym:calloc", Phase::Allocation),
    ("sym:realloc", Phase::Allocation),
    ("sym:cfree", Phase::Allocation),
    ("sym:_int_", Phase::Allocation),
    ("sym:malloc_consolidate", Phase::Allocation),
    ("sym:unlink_chunk", Phase::Allocation),
    ("sym:tcache", Phase::Allocation),
    ("sym:arena_", Phase::Allocation),
    ("sym:sysmalloc", Phase::Allocation),
    ("sym:__libc_malloc", Phase::Allocation),
    ("sym:__libc_free", Phase::Allocation),
    ("sym:__libc_calloc", Phase::Allocation),
    ("sym:__libc_realloc", Phase::Allocation),
    ("sym:__rust_alloc", Phase::Allocation),
    ("sym:__rust_dealloc", Phase::Allocation),
    ("sym:__rust_realloc", Phase::Allocation),
    ("sym:__rdl_", Phase::Allocation),
    ("sym:__rustc::__rdl_", Phase::Allocation),
    ("sym:__rustc::__rust_", Phase::Allocation),
    ("sym:alloc::", Phase::Allocation),
    ("sym:<alloc::", Phase::Allocation),
    ("sym:mem", Phase::Allocation),
    ("sym:__mem", Phase::Allocation),
    ("sym:bcmp", Phase::Allocation),
    // The runtime.
    ("crate:tokio", Phase::Runtime),
    ("crate:tokio-util", Phase::Runtime),
    ("crate:mio", Phase::Runtime),
    ("crate:parking_lot", Phase::Runtime),
    ("crate:parking_lot_core", Phase::Runtime),
    ("crate:lock_api", Phase::Runtime),
    ("crate:futures-util", Phase::Runtime),
    ("crate:futures-core", Phase::Runtime),
    ("crate:futures-channel", Phase::Runtime),
    ("crate:futures-task", Phase::Runtime),
    ("crate:futures-executor", Phase::Runtime),
    ("crate:pin-project-lite", Phase::Runtime),
    ("crate:socket2", Phase::Runtime),
    ("crate:crossbeam-utils", Phase::Runtime),
    ("crate:event-listener", Phase::Runtime),
    ("sym:std::sys", Phase::Runtime),
    ("sym:std::thread", Phase::Runtime),
    ("sym:std::sync", Phase::Runtime),
    ("sym:<std::sync", Phase::Runtime),
    ("sym:std::time", Phase::Runtime),
    ("sym:std::io", Phase::Runtime),
    ("sym:<std::io", Phase::Runtime),
    ("sym:<std::net", Phase::Runtime),
    ("sym:epoll", Phase::Runtime),
    ("sym:__GI_", Phase::Runtime),
    ("sym:__libc_", Phase::Runtime),
    ("sym:pthread_", Phase::Runtime),
    ("sym:__pthread", Phase::Runtime),
    ("sym:__lll_", Phase::Runtime),
    ("sym:futex", Phase::Runtime),
    ("sym:syscall", Phase::Runtime),
    ("sym:clock_gettime", Phase::Runtime),
    ("sym:__clock_gettime", Phase::Runtime),
    ("sym:__vdso", Phase::Runtime),
    ("sym:sched_yield", Phase::Runtime),
    ("sym:send", Phase::Runtime),
    ("sym:recv", Phase::Runtime),
    ("sym:read", Phase::Runtime),
    ("sym:write", Phase::Runtime),
    ("sym:__send", Phase::Runtime),
    ("sym:__recv", Phase::Runtime),
    ("sym:__read", Phase::Runtime),
    ("sym:__write", Phase::Runtime),
    ("sym:fdatasync", Phase::Runtime),
    ("sym:fsync", Phase::Runtime),
    ("sym:pwrite", Phase::Runtime),
    ("sym:pread", Phase::Runtime),
    ("sym:__pwrite", Phase::Runtime),
    ("sym:__pread", Phase::Runtime),
    // The rest of callpush: the workers, ring orchestration, the gate, the policy.
    ("src:server/src", Phase::Orchestration),
];

/// Where a source file comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source<'a> {
    /// A crate from the cargo registry: `…/registry/src/<index>/<crate>-<version>/…`.
    Crate(&'a str),
    /// This workspace: `server/src/…`, `core/proto/src/…`.
    Workspace,
    /// The standard library, the C library, or nothing known.
    Elsewhere,
}

fn source_of(file: &str) -> Source<'_> {
    if let Some(rest) = file.split("/registry/src/").nth(1) {
        if let Some(dir) = rest.split('/').nth(1) {
            // `<crate>-<version>`: the version starts at the last `-` followed by a digit.
            let cut = dir
                .char_indices()
                .rev()
                .find(|(i, c)| *c == '-' && dir[i + 1..].starts_with(|d: char| d.is_ascii_digit()))
                .map(|(i, _)| i);
            if let Some(cut) = cut {
                return Source::Crate(&dir[..cut]);
            }
        }
    }
    if ["/server/src/", "/core/proto/src/", "/core/client/src/"].iter().any(|w| file.contains(w)) {
        return Source::Workspace;
    }
    Source::Elsewhere
}

/// The phase of an instruction whose line is in `file`, in function `function` (whose own file
/// is `function_file`).
fn classify(file: &str, function_file: &str, function: &str) -> Phase {
    let file = [file, function_file].into_iter().find(|f| source_of(f) != Source::Elsewhere).unwrap_or("");
    let source = source_of(file);
    for (rule, phase) in PHASES {
        let hit = if let Some(name) = rule.strip_prefix("crate:") {
            source == Source::Crate(name)
        } else if let Some(path) = rule.strip_prefix("src:") {
            source == Source::Workspace && file.contains(&format!("/{path}"))
        } else if let Some(part) = rule.strip_prefix("path:") {
            file.contains(part)
        } else if let Some(start) = rule.strip_prefix("sym:") {
            file.is_empty() && function.starts_with(start)
        } else if let Some(part) = rule.strip_prefix("sym~") {
            file.is_empty() && function.contains(part)
        } else {
            false
        };
        if hit {
            return narrow(*phase, file);
        }
    }
    Phase::Other
}

/// The `path:` rows name a whole crate; the half of it that is not theirs goes elsewhere: hyper
/// serves the API (its `server` module) and sends to providers (the rest: the client, and the
/// protocol code both share, which in a window is almost all the providers'); tower-http's
/// `trace` module is tracing, its other layers request handling.
fn narrow(phase: Phase, file: &str) -> Phase {
    if file.contains("/hyper-1.") {
        return if file.contains("/src/server/") { Phase::Request } else { Phase::ProviderHttp };
    }
    if file.contains("/hyper-util-") && file.contains("/src/server/") {
        return Phase::Request;
    }
    if file.contains("/tower-http-") {
        return if file.contains("/src/trace/") { Phase::Tracing } else { Phase::Request };
    }
    phase
}

// ---------------------------------------------------------------------------------------------
// Reading callgrind's output

/// Self instructions per function and per phase of one callgrind dump.
#[derive(Default)]
struct Profile {
    total: u64,
    by_phase: HashMap<Phase, u64>,
    by_function: HashMap<String, (u64, HashMap<Phase, u64>)>,
}

/// Reads a callgrind output file (format: valgrind's "Callgrind Format Specification"): every
/// cost line's first event (Ir) is the function's own cost, except the line after `calls=`,
/// which is a call's inclusive cost and is skipped. Names may be compressed (`fn=(id) name`,
/// later `fn=(id)`); `fl=` is the function's file, `fi=`/`fe=` the file of inlined lines.
fn read_callgrind(text: &str) -> Profile {
    let mut files: HashMap<String, String> = HashMap::new();
    let mut functions: HashMap<String, String> = HashMap::new();
    let mut profile = Profile::default();
    let (mut function, mut function_file, mut line_file) = (String::new(), String::new(), String::new());
    let mut positions = 1;
    let mut skip_next = false;
    let mut cache: HashMap<(String, String), Phase> = HashMap::new();
    let name = |table: &mut HashMap<String, String>, value: &str| -> String {
        let value = value.trim();
        if let Some(rest) = value.strip_prefix('(') {
            if let Some((id, name)) = rest.split_once(')') {
                let name = name.trim();
                if name.is_empty() {
                    return table.get(id).cloned().unwrap_or_default();
                }
                table.insert(id.to_owned(), name.to_owned());
                return name.to_owned();
            }
        }
        value.to_owned()
    };
    for line in text.lines() {
        let Some(first) = line.chars().next() else { continue };
        if first.is_ascii_digit() || first == '+' || first == '-' || first == '*' {
            if std::mem::take(&mut skip_next) {
                continue;
            }
            let ir: u64 = line.split_whitespace().nth(positions).and_then(|v| v.parse().ok()).unwrap_or(0);
            if ir == 0 {
                continue;
            }
            let key = (function.clone(), line_file.clone());
            let phase = *cache.entry(key).or_insert_with(|| classify(&line_file, &function_file, &function));
            profile.total += ir;
            *profile.by_phase.entry(phase).or_default() += ir;
            let entry = profile.by_function.entry(function.clone()).or_default();
            entry.0 += ir;
            *entry.1.entry(phase).or_default() += ir;
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            if let Some(p) = line.strip_prefix("positions:") {
                positions = p.split_whitespace().count().max(1);
            }
            continue;
        };
        match key {
            "fl" => {
                function_file = name(&mut files, value);
                line_file = function_file.clone();
            }
            "fi" | "fe" => line_file = name(&mut files, value),
            "fn" => {
                function = name(&mut functions, value);
                line_file = function_file.clone();
            }
            "cfn" => {
                name(&mut functions, value);
            }
            "cfi" | "cfl" => {
                name(&mut files, value);
            }
            "calls" => skip_next = true,
            _ => {}
        }
    }
    profile
}

// ---------------------------------------------------------------------------------------------
// Processes

/// How the bench was set up.
struct Settings {
    binary: PathBuf,
    label: String,
    emulate: PathBuf,
    postgres: Option<String>,
    sqlite: bool,
    devices: Vec<usize>,
    repeats: usize,
    callgrind: bool,
    rings: usize,
    out: PathBuf,
}

impl Settings {
    fn from_env() -> Settings {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let number = |name: &str, default: usize| var(name).and_then(|v| v.parse().ok()).unwrap_or(default);
        let binary = var("CALLPUSH_BENCH_BIN")
            .expect("CALLPUSH_BENCH_BIN: the callpush binary to measure (server/bench-push-cost.sh sets it)");
        let emulate = var("CALLPUSH_BENCH_EMULATE").expect(
            "CALLPUSH_BENCH_EMULATE: the callpush-dev binary that runs the emulators (server/bench-push-cost.sh sets it)",
        );
        let devices = var("CALLPUSH_BENCH_DEVICES")
            .unwrap_or_else(|| "1000,10000".into())
            .split(',')
            .map(|n| n.trim().parse().expect("CALLPUSH_BENCH_DEVICES: numbers, comma-separated"))
            .collect::<Vec<usize>>();
        for n in &devices {
            assert!(
                *n >= 40 && n % 40 == 0,
                "device counts must be multiples of 40 (ten callees, four platforms)"
            );
        }
        let out = var("CALLPUSH_BENCH_OUT").map(PathBuf::from).unwrap_or_else(|| {
            std::env::temp_dir().join(format!("callpush-push-cost-{}", std::process::id()))
        });
        Settings {
            label: var("CALLPUSH_BENCH_LABEL").unwrap_or_else(|| binary.clone()),
            binary: PathBuf::from(binary),
            emulate: PathBuf::from(emulate),
            postgres: var("CALLPUSH_BENCH_POSTGRES_URL"),
            sqlite: var("CALLPUSH_BENCH_SQLITE").as_deref() != Some("0"),
            devices,
            repeats: number("CALLPUSH_BENCH_REPEATS", 3).max(1),
            callgrind: var("CALLPUSH_BENCH_CALLGRIND").as_deref() != Some("0"),
            rings: number("CALLPUSH_BENCH_RINGS", 1000),
            out,
        }
    }
}

/// A child process, killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The emulators' process and what the server and the bench need of it.
struct Emulators {
    _process: Process,
    /// The `[providers]` TOML that sends to them.
    providers: String,
    /// Where each platform's requests are logged (`GET …/_emulator/requests`), by platform name.
    log_urls: BTreeMap<&'static str, String>,
    /// Their CA, PEM.
    ca_file: PathBuf,
    /// A client trusting it.
    http: reqwest::Client,
}

impl Emulators {
    /// `callpush-dev emulate --tls` with `online` tokens of each platform online.
    async fn start(settings: &Settings, online: usize) -> Emulators {
        let dir = settings.out.join("emulators");
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("providers.toml");
        let _ = std::fs::remove_file(&config);
        let log = std::fs::File::create(settings.out.join("emulators.log")).unwrap();
        let child = Command::new(&settings.emulate)
            .args(["emulate", "--tls", "--online", &online.to_string(), "--dir"])
            .arg(&dir)
            .arg("--config-out")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start callpush-dev emulate");
        let process = Process(child);
        let started = Instant::now();
        while !config.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the emulators did not start (see emulators.log)"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let providers = std::fs::read_to_string(&config).unwrap();
        let parsed: toml::Value = toml::from_str(&providers).expect("the emulators' providers configuration");
        let p = &parsed["providers"];
        let url = |table: &str, key: &str| p[table][key].as_str().unwrap().trim_end_matches('/').to_owned();
        let log_urls = BTreeMap::from([
            (Platform::Harmony.as_str(), url("harmony", "base_url")),
            (Platform::Fcm.as_str(), url("fcm", "base_url")),
            (Platform::Apns.as_str(), url("apns", "production_url")),
            (Platform::Wns.as_str(), url("wns", "endpoint_override")),
        ]);
        let ca_file = PathBuf::from(p["ca_file"].as_str().unwrap());
        let http = emulator_client(&ca_file);
        Emulators { _process: process, providers, log_urls, ca_file, http }
    }

    /// Where the floor's requests to `platform` go: refused for want of credentials, as the
    /// server's would be without them, but read and stamped as theirs are.
    fn floor_url(&self, platform: Platform) -> String {
        let base = &self.log_urls[platform.as_str()];
        match platform {
            Platform::Harmony => format!("{base}/v3/push-cost-floor/messages:send"),
            Platform::Fcm => format!("{base}/v1/projects/push-cost-floor/messages:send"),
            Platform::Apns => format!("{base}/3/device/{}", token_for(Platform::Apns, 0)),
            Platform::Wns => format!("{base}/w/?token=push-cost-floor"),
        }
    }

    /// The arrival stamps (µs) of the `count` requests `platform`'s emulator logged after its
    /// first `since`.
    async fn arrivals(&self, platform: Platform, since: usize, count: usize) -> Vec<u64> {
        let mut log = Vec::new();
        while log.len() < count {
            let more = self.log(platform, since + log.len(), Duration::from_secs(5)).await;
            assert!(!more.is_empty(), "{platform}: the floor's requests were not all logged");
            log.extend(more);
        }
        log.iter().take(count).map(|r| r["received_at_us"].as_u64().unwrap_or(0)).collect()
    }

    /// `platform`'s emulator's log after its first `since` entries, waiting up to `wait` for one.
    async fn log(&self, platform: Platform, since: usize, wait: Duration) -> Vec<Value> {
        let url = format!(
            "{}/_emulator/requests?since={since}&wait_ms={}",
            self.log_urls[platform.as_str()],
            wait.as_millis()
        );
        let response = self.http.get(url).send().await.expect("read the emulator's request log");
        response.json().await.expect("the emulator's request log")
    }

    /// How many requests `platform`'s emulator has logged.
    async fn logged(&self, platform: Platform) -> usize {
        let url = format!("{}/_emulator/requests", self.log_urls[platform.as_str()]);
        let log: Vec<Value> = self.http.get(url).send().await.unwrap().json().await.unwrap();
        log.len()
    }
}

/// A client of the emulators, trusting their CA (`ca_file`), keeping its connections warm.
fn emulator_client(ca_file: &Path) -> reqwest::Client {
    let ca = std::fs::read(ca_file).unwrap();
    reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .pool_idle_timeout(Duration::from_secs(3600))
        .build()
        .unwrap()
}

/// The body of a floor request: the size of a ring push.
fn floor_body() -> String {
    json!({"callpush": "x".repeat(900)}).to_string()
}

/// A `callpush serve` process.
struct Server {
    process: Process,
    pid: u32,
    base: String,
    http: reqwest::Client,
}

impl Server {
    /// Starts the binary under measure on `config`, under callgrind when `callgrind` names its
    /// output file. Its log goes to `log`.
    fn start(settings: &Settings, config: &Path, log: &Path, callgrind: Option<&Path>) -> Server {
        let mut command = match callgrind {
            None => Command::new(&settings.binary),
            Some(out) => {
                let mut valgrind = Command::new("valgrind");
                valgrind
                    .args(["--tool=callgrind", "--instr-atstart=no"])
                    .arg(format!("--callgrind-out-file={}", out.display()))
                    .arg(&settings.binary);
                valgrind
            }
        };
        let port = free_port();
        let text = std::fs::read_to_string(config).unwrap().replace("{port}", &port.to_string());
        let config = config.with_extension(format!("{port}.toml"));
        std::fs::write(&config, text).unwrap();
        // The server's default log filter, as an operator runs it.
        let child = command
            .args(["serve", "--config"])
            .arg(&config)
            .env_remove("CALLPUSH_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("start the server");
        let pid = child.id();
        Server {
            process: Process(child),
            pid,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build().unwrap(),
        }
    }

    async fn wait_healthy(&mut self, within: Duration) {
        let started = Instant::now();
        loop {
            let health = self.http.get(format!("{}/healthz", self.base)).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            if let Ok(Some(status)) = self.process.0.try_wait() {
                panic!("the server exited: {status}");
            }
            assert!(started.elapsed() < within, "the server did not come up within {within:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// User + system CPU time of the server so far, in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
        let field = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        field(11) + field(12)
    }

    /// Resident memory, MiB.
    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        let kib: f64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        kib / 1024.0
    }

    /// SIGTERM, then SIGKILL after `grace`.
    async fn stop(mut self, grace: Duration) {
        let _ = Command::new("kill").args(["-TERM", &self.pid.to_string()]).status();
        let started = Instant::now();
        while started.elapsed() < grace {
            if let Ok(Some(_)) = self.process.0.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!("  (the server did not stop within {grace:?}: killed)");
    }

    /// Rings `callees`; the call's id.
    async fn ring(&self, callees: &[String]) -> String {
        let response = self
            .http
            .post(format!("{}/v1/calls", self.base))
            .bearer_auth(API_KEY)
            .json(&json!({"from": {"id": "caller", "name": "Bench"}, "to": callees, "ring_seconds": RING_SECONDS}))
            .send()
            .await
            .expect("POST /v1/calls");
        assert_eq!(response.status().as_u16(), 202, "POST /v1/calls: {:?}", response.text().await);
        let body: Value = response.json().await.unwrap();
        body["call_id"].as_str().unwrap().to_owned()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn clock_ticks_per_second() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().ok();
    out.and_then(|o| String::from_utf8(o.stdout).ok()).and_then(|t| t.trim().parse().ok()).unwrap_or(100.0)
}

fn unix_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

fn callgrind_control(args: &[&str], pid: u32) {
    let status = Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run callgrind_control");
    assert!(status.success(), "callgrind_control {args:?} failed");
}

// ---------------------------------------------------------------------------------------------
// Databases

/// Where the server keeps its state.
enum Database {
    Sqlite { dir: PathBuf },
    Postgres { admin: String, pool: AnyPool },
}

impl Database {
    fn label(&self) -> &'static str {
        match self {
            Database::Sqlite { .. } => "sqlite",
            Database::Postgres { .. } => "postgresql",
        }
    }

    fn url(&self, name: &str) -> String {
        match self {
            Database::Sqlite { dir } => format!("sqlite://{}", dir.join(format!("{name}.db")).display()),
            Database::Postgres { admin, .. } => {
                format!("{}/push_cost_{name}", admin.rsplit_once('/').unwrap().0)
            }
        }
    }

    /// A read-only view (SQLite) or another connection (PostgreSQL) of database `name`.
    async fn watch(&self, name: &str) -> AnyPool {
        let url = match self {
            Database::Sqlite { .. } => format!("{}?mode=ro", self.url(name)),
            Database::Postgres { .. } => self.url(name),
        };
        AnyPoolOptions::new().max_connections(1).connect(&url).await.expect("open the database to watch")
    }

    async fn drop_database(&self, name: &str) {
        match self {
            Database::Sqlite { dir } => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(dir.join(format!("{name}.db{suffix}")));
                }
            }
            Database::Postgres { pool, .. } => {
                let statement = format!("DROP DATABASE IF EXISTS push_cost_{name} WITH (FORCE)");
                sqlx::raw_sql(&statement).execute(pool).await.unwrap();
            }
        }
    }

    async fn create(&self, name: &str) {
        self.drop_database(name).await;
        if let Database::Postgres { pool, .. } = self {
            sqlx::raw_sql(&format!("CREATE DATABASE push_cost_{name}")).execute(pool).await.unwrap();
        }
    }

    /// Copies database `from` (no server on it) to `to`.
    async fn copy(&self, from: &str, to: &str) {
        self.drop_database(to).await;
        match self {
            Database::Sqlite { dir } => {
                for suffix in ["", "-wal", "-shm"] {
                    let source = dir.join(format!("{from}.db{suffix}"));
                    if source.exists() {
                        std::fs::copy(&source, dir.join(format!("{to}.db{suffix}"))).unwrap();
                    }
                }
            }
            Database::Postgres { pool, .. } => {
                let statement = format!("CREATE DATABASE push_cost_{to} TEMPLATE push_cost_{from}");
                sqlx::raw_sql(&statement).execute(pool).await.unwrap();
            }
        }
    }
}

/// How many deliveries of `call` are in each status.
async fn delivery_statuses(watch: &AnyPool, call: &str) -> BTreeMap<String, i64> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM deliveries WHERE call_id = $1 GROUP BY status")
            .bind(call)
            .fetch_all(watch)
            .await
            .unwrap_or_default();
    rows.into_iter().collect()
}

/// Waits until none of `call`'s `expected` deliveries is waiting or being sent (or `within`
/// passes), polling every `every`; the statuses then.
async fn wait_finished(
    watch: &AnyPool,
    call: &str,
    expected: usize,
    every: Duration,
    within: Duration,
) -> BTreeMap<String, i64> {
    let started = Instant::now();
    loop {
        let statuses = delivery_statuses(watch, call).await;
        let finished: i64 = statuses
            .iter()
            .filter(|(s, _)| !matches!(s.as_str(), "pending" | "sending"))
            .map(|(_, n)| n)
            .sum();
        if finished as usize >= expected || started.elapsed() > within {
            return statuses;
        }
        tokio::time::sleep(every).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The devices

/// Who has which device: `n` devices of ten callees, `warm` of the warm-up callee, then one
/// device of each platform, each its own callee. Device `i` is on platform `i mod 4` with token
/// `token_for(platform, i)`.
struct Layout {
    n: usize,
    warm: usize,
}

impl Layout {
    fn total(&self) -> usize {
        self.n + self.warm + Platform::ALL.len()
    }

    fn platform(i: usize) -> Platform {
        Platform::ALL[i % Platform::ALL.len()]
    }

    fn owner(&self, i: usize) -> String {
        if i < self.n {
            format!("fan-{}", i / (self.n / CALLEES))
        } else if i < self.n + self.warm {
            "warm".into()
        } else {
            Self::solo(Self::platform(i))
        }
    }

    fn solo(platform: Platform) -> String {
        format!("solo-{}", platform.as_str())
    }

    fn fan_callees() -> Vec<String> {
        (0..CALLEES).map(|u| format!("fan-{u}")).collect()
    }
}

/// Registers every device of `layout` through the API.
async fn register(server: &Server, layout: &Layout) {
    let failures = stream::iter(0..layout.total())
        .map(|i| {
            let (http, base) = (server.http.clone(), server.base.clone());
            let owner = layout.owner(i);
            async move {
                let platform = Layout::platform(i);
                let mut body = json!({"platform": platform.as_str(), "token": token_for(platform, i as u32)});
                if platform == Platform::Apns {
                    body["apns_environment"] = json!("production");
                }
                if std::env::var("CALLPUSH_BENCH_WIRE").as_deref() == Ok("v2") {
                    let mut seed = [7; 32];
                    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
                    let secret = callpush_proto::wire::DeviceSecret::from_bytes(seed);
                    body["device_key"] = json!(secret.public().jwk());
                }
                let r = http
                    .put(format!("{base}/v1/installations/inst-{i}"))
                    .bearer_auth(mint_device_token(SECRET, &owner, 24 * 3600))
                    .json(&body)
                    .send()
                    .await;
                !r.is_ok_and(|r| r.status().is_success())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .filter(|failed| std::future::ready(*failed))
        .count()
        .await;
    assert_eq!(failures, 0, "registrations failed");
}

/// The server's configuration, `{port}` to be filled in.
fn write_config(dir: &Path, name: &str, database_url: &str, providers: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let mut file = std::fs::File::create(&path).unwrap();
    write!(
        file,
        r#"listen = "127.0.0.1:{{port}}"
database_url = "{database_url}"
data_dir = "{data}"
api_keys = ["{API_KEY}"]

[auth]
hs256_secret = "{SECRET}"

[registrar]
max_installations_per_user = 1000

[ring]
max_ring_seconds = {RING_SECONDS}

{providers}
"#,
        data = dir.display(),
    )
    .unwrap();
    path
}

// ---------------------------------------------------------------------------------------------
// Fan-out: CPU and instructions per delivered push

/// One size on one database: registrations, the native run (and the single rings if asked), the
/// callgrind run.
async fn measure_size(
    settings: &Settings,
    emulators: &Emulators,
    db: &Database,
    n: usize,
    single_rings: bool,
) {
    let layout = Layout { n, warm: WARM_DEVICES.min(n) };
    let dir = settings.out.join(format!("{}-{n}", db.label()));
    std::fs::create_dir_all(&dir).unwrap();
    println!(
        "\n## {} — {n} devices ({} per callee, round-robin over the four platforms)",
        db.label(),
        n / CALLEES
    );

    // Registrations, then two copies of the database.
    let registered = format!("{n}_registered");
    db.create(&registered).await;
    let config = write_config(&dir, "registered", &db.url(&registered), &emulators.providers);
    let mut server = Server::start(settings, &config, &dir.join("registered.log"), None);
    server.wait_healthy(Duration::from_secs(60)).await;
    let started = Instant::now();
    register(&server, &layout).await;
    println!(
        "registered {} devices in {:.1} s; idle RSS {:.1} MiB",
        layout.total(),
        started.elapsed().as_secs_f64(),
        server.rss_mib()
    );
    server.stop(Duration::from_secs(30)).await;
    let (native, profiled) = (format!("{n}_native"), format!("{n}_callgrind"));
    db.copy(&registered, &native).await;
    db.copy(&registered, &profiled).await;

    // Native: CPU time.
    let config = write_config(&dir, "native", &db.url(&native), &emulators.providers);
    let mut server = Server::start(settings, &config, &dir.join("native.log"), None);
    server.wait_healthy(Duration::from_secs(60)).await;
    let watch = db.watch(&native).await;
    let warm = server.ring(&["warm".to_owned()]).await;
    let statuses =
        wait_finished(&watch, &warm, layout.warm, Duration::from_millis(5), Duration::from_secs(120)).await;
    check_delivered("warm-up", &statuses, layout.warm);
    let ticks = clock_ticks_per_second();
    let (mut cpu, mut walls) = (0u64, Vec::new());
    for _ in 0..settings.repeats {
        let (before, started) = (server.cpu_ticks(), Instant::now());
        let call = server.ring(&Layout::fan_callees()).await;
        let statuses =
            wait_finished(&watch, &call, n, Duration::from_millis(5), Duration::from_secs(300)).await;
        walls.push(started.elapsed());
        cpu += server.cpu_ticks() - before;
        check_delivered("fan-out", &statuses, n);
    }
    let pushes = (n * settings.repeats) as f64;
    let cpu_per_push = cpu as f64 / ticks / pushes * 1e6;
    let rates: Vec<f64> = walls.iter().map(|w| n as f64 / w.as_secs_f64()).collect();
    println!(
        "native: CPU {cpu_per_push:.1} µs per delivered push (utime+stime {:.2} s over {} fan-outs, {} ticks/s); \
         {:.0}–{:.0} pushes/s ring → all delivered; RSS after {:.1} MiB",
        cpu as f64 / ticks,
        settings.repeats,
        ticks,
        rates.iter().cloned().fold(f64::INFINITY, f64::min),
        rates.iter().cloned().fold(0.0, f64::max),
        server.rss_mib(),
    );
    if single_rings && settings.rings > 0 {
        single_ring_latency(settings, emulators, db, &server, &dir).await;
    }
    watch.close().await;
    server.stop(Duration::from_secs(30)).await;

    if !settings.callgrind {
        return;
    }
    // Callgrind: instructions of one fan-out window.
    let config = write_config(&dir, "callgrind", &db.url(&profiled), &emulators.providers);
    let out = dir.join("callgrind.out");
    for old in std::fs::read_dir(&dir).unwrap().flatten() {
        if old.file_name().to_string_lossy().starts_with("callgrind.out") {
            let _ = std::fs::remove_file(old.path());
        }
    }
    let run = Instant::now();
    let mut server = Server::start(settings, &config, &dir.join("callgrind.log"), Some(&out));
    server.wait_healthy(Duration::from_secs(900)).await;
    let watch = db.watch(&profiled).await;
    let warm = server.ring(&["warm".to_owned()]).await;
    let statuses =
        wait_finished(&watch, &warm, layout.warm, Duration::from_millis(200), Duration::from_secs(1800))
            .await;
    check_delivered("warm-up under valgrind", &statuses, layout.warm);
    callgrind_control(&["--instr=on"], server.pid);
    let window = Instant::now();
    let call = server.ring(&Layout::fan_callees()).await;
    let statuses =
        wait_finished(&watch, &call, n, Duration::from_millis(200), Duration::from_secs(3600)).await;
    let window = window.elapsed();
    callgrind_control(&["--instr=off"], server.pid);
    callgrind_control(&["--dump=fan-out"], server.pid);
    check_delivered("fan-out under valgrind", &statuses, n);
    watch.close().await;
    server.stop(Duration::from_secs(5)).await;
    let dump = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|f| f.to_string_lossy().starts_with("callgrind.out.")))
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("callgrind wrote no dump");
    let profile = read_callgrind(&std::fs::read_to_string(&dump).unwrap());
    println!(
        "callgrind: {:.0} instructions per delivered push ({:.2} G over {n} pushes; window {:.0} s under valgrind, \
         whole run {:.0} s; {})",
        profile.total as f64 / n as f64,
        profile.total as f64 / 1e9,
        window.as_secs_f64(),
        run.elapsed().as_secs_f64(),
        dump.display(),
    );
    print_profile(&profile, n);
}

fn check_delivered(what: &str, statuses: &BTreeMap<String, i64>, expected: usize) {
    let delivered = statuses.get("delivered").copied().unwrap_or(0) as usize;
    if delivered != expected {
        println!("  !! {what}: {delivered} of {expected} delivered: {statuses:?} (see the server's log)");
    }
}

fn print_profile(profile: &Profile, pushes: usize) {
    let per_push = |ir: u64| ir as f64 / pushes as f64;
    println!("| phase | instructions per push | share |");
    println!("|---|---:|---:|");
    for phase in Phase::ALL {
        let ir = profile.by_phase.get(&phase).copied().unwrap_or(0);
        println!(
            "| {} | {:.0} | {:.1} % |",
            phase.label(),
            per_push(ir),
            100.0 * ir as f64 / profile.total.max(1) as f64
        );
    }
    println!("| **total** | **{:.0}** | 100 % |", per_push(profile.total));
    let mut functions: Vec<_> = profile.by_function.iter().collect();
    functions.sort_by_key(|(_, (ir, _))| std::cmp::Reverse(*ir));
    println!("functions that cost most (own instructions per push, phase of most of them):");
    for (name, (ir, phases)) in functions.into_iter().take(30) {
        let phase = phases.iter().max_by_key(|(_, ir)| **ir).map_or(Phase::Other, |(p, _)| *p);
        let short: String = name.chars().take(110).collect();
        println!("  {:>8.0}  {:<26} {short}", per_push(*ir), phase.label());
    }
}

// ---------------------------------------------------------------------------------------------
// A single ring, and its floor

/// The `cid` of the first call push (a JWS whose claims name one) in a provider request's body.
fn call_id_in(body: &str) -> Option<String> {
    let mut from = 0;
    while let Some(at) = body[from..].find("eyJ") {
        let start = from + at;
        let len = body[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            .unwrap_or(body.len() - start);
        let parts: Vec<&str> = body[start..start + len].split('.').collect();
        if let [_, claims, _] = parts[..] {
            let claims = URL_SAFE_NO_PAD.decode(claims).ok();
            let claims: Option<Value> = claims.and_then(|c| serde_json::from_slice(&c).ok());
            if let Some(cid) = claims.as_ref().and_then(|c| c["cid"].as_str()) {
                return Some(cid.to_owned());
            }
        }
        from = start + len.max(3);
    }
    None
}

/// p50 and p99 of `samples` (µs), as ms.
fn p50_p99(samples: &mut [u64]) -> (f64, f64) {
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i] as f64 / 1000.0
    };
    (at(0.5), at(0.99))
}

/// Sequential rings of one device per platform, the floor, the least server, and their ratios.
async fn single_ring_latency(
    settings: &Settings,
    emulators: &Emulators,
    db: &Database,
    server: &Server,
    dir: &Path,
) {
    let rings = settings.rings;
    println!(
        "single ring: {rings} sequential POST /v1/calls per platform to a callee with one device, from sending \
         the request to the provider request's arrival at the emulator ({} ms apart)",
        RING_GAP.as_millis()
    );
    let floor_commit = commit_floor(db, dir, rings).await;
    println!(
        "floor, one commit ({}): p50 {:.2} ms, p99 {:.2} ms{}",
        floor_commit.what, floor_commit.p50, floor_commit.p99, floor_commit.note
    );
    let (api_p50, api_p99) = api_request(server, rings).await;
    println!(
        "the API request alone (GET of an unknown path on the same connection, sent to answered): p50 {api_p50:.2} ms, \
         p99 {api_p99:.2} ms"
    );
    let least_database = match db {
        Database::Sqlite { dir } => {
            let file = dir.join("least.db");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
            }
            format!("sqlite://{}", file.display())
        }
        Database::Postgres { .. } => {
            db.create("least").await;
            db.url("least")
        }
    };
    let least = LeastServer {
        port: free_port(),
        database: least_database,
        ca_file: emulators.ca_file.clone(),
        urls: Platform::ALL.iter().map(|p| (p.as_str().to_owned(), emulators.floor_url(*p))).collect(),
    };
    let least_base = format!("http://127.0.0.1:{}", least.port);
    let least_process = least.start();
    let least_http = reqwest::Client::new();
    let started = Instant::now();
    while !least_http.get(format!("{least_base}/healthz")).send().await.is_ok_and(|r| r.status().is_success())
    {
        assert!(started.elapsed() < Duration::from_secs(30), "the least server did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "the least server: reads the POST, commits one row as the server does, answers, sends one request on a \
         warm connection (the floor and the request that asks for the ring, over the same path as a ring)"
    );
    println!(
        "| platform | ring p50 | ring p99 | least server p50 | least server p99 | p50 / least | p99 / least \
         | floor p50 (commit + request) | floor p99 | p50 / floor | p99 / floor |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for platform in Platform::ALL {
        let callee = Layout::solo(platform);
        let callees = std::slice::from_ref(&callee);
        let (p50, p99) =
            time_rings(emulators, platform, rings, || async { Some(server.ring(callees).await) }).await;
        let url = format!("{least_base}/ring/{}", platform.as_str());
        let (least50, least99) = time_rings(emulators, platform, rings, || async {
            let answer = least_http.post(&url).send().await.expect("POST to the least server");
            assert_eq!(answer.status().as_u16(), 202, "the least server's ring");
            None
        })
        .await;
        let (request_p50, request_p99) = request_floor(emulators, platform, rings).await;
        let (floor50, floor99) = (floor_commit.p50 + request_p50, floor_commit.p99 + request_p99);
        println!(
            "| {} | {p50:.2} ms | {p99:.2} ms | {least50:.2} ms | {least99:.2} ms | {:.2} | {:.2} | {floor50:.2} ms | \
             {floor99:.2} ms | {:.2} | {:.2} |",
            platform.as_str(),
            p50 / least50,
            p99 / least99,
            p50 / floor50,
            p99 / floor99,
        );
    }
    drop(least_process);
    if let Database::Postgres { .. } = db {
        db.drop_database("least").await;
    }
}

/// `rings` sequential rings by `ring` on `platform` after one that warms up, each timed from
/// sending it to its provider request's arrival stamp: p50, p99 (ms). `ring` gives the call id
/// its push carries, or `None` when the next request the emulator logs is its. The log is read
/// only [`RING_GAP`] after the ring was answered, so reading it never competes with a push in
/// flight, and the next ring waits as long again.
async fn time_rings<F, R>(emulators: &Emulators, platform: Platform, rings: usize, ring: F) -> (f64, f64)
where
    F: Fn() -> R,
    R: std::future::Future<Output = Option<String>>,
{
    let mut since = emulators.logged(platform).await;
    let mut latencies = Vec::with_capacity(rings);
    for k in 0..=rings {
        let sent = unix_micros();
        let call = ring().await;
        tokio::time::sleep(RING_GAP).await;
        let arrived = loop {
            let log = emulators.log(platform, since, Duration::from_secs(5)).await;
            assert!(!log.is_empty(), "{platform}: no provider request for ring {k} ({call:?}) within 5 s");
            let found = log.iter().position(|r| match &call {
                Some(call) => call_id_in(r["body"].as_str().unwrap_or("")).as_deref() == Some(call.as_str()),
                None => true,
            });
            match found {
                Some(i) => {
                    since += i + 1;
                    break log[i]["received_at_us"].as_u64().unwrap();
                }
                None => since += log.len(),
            }
        };
        if k > 0 {
            latencies.push(arrived.saturating_sub(sent));
        }
        tokio::time::sleep(RING_GAP).await;
    }
    p50_p99(&mut latencies)
}

/// The request that asks for a ring, which the floor leaves out: a `GET` of a path the server
/// does not serve, on the client's warm connection, `rings` times, from sending to the answer
/// (a round trip, so at most what that part of a ring costs): p50, p99 (ms).
async fn api_request(server: &Server, rings: usize) -> (f64, f64) {
    let url = format!("{}/v1/push-cost-floor", server.base);
    let _ = server.http.get(&url).send().await; // warm
    let mut samples = Vec::with_capacity(rings);
    for _ in 0..rings {
        let started = Instant::now();
        let answer = server.http.get(&url).send().await.expect("the server answers");
        assert_eq!(answer.status(), reqwest::StatusCode::NOT_FOUND);
        samples.push(started.elapsed().as_micros() as u64);
        tokio::time::sleep(RING_GAP).await;
    }
    p50_p99(&mut samples)
}

/// One request to `platform`'s emulator on a warm connection, as a sender makes it (HTTP/2 to
/// FCM and APNs, HTTP/1.1 to the others, over TLS, a body the size of a ring push, refused for
/// want of credentials), `rings` times, from sending to the arrival stamp: p50, p99 (ms).
async fn request_floor(emulators: &Emulators, platform: Platform, rings: usize) -> (f64, f64) {
    let url = emulators.floor_url(platform);
    let send =
        || emulators.http.post(&url).header("content-type", "application/json").body(floor_body()).send();
    let _ = send().await; // warm
    let since = emulators.logged(platform).await;
    let mut sent = Vec::with_capacity(rings);
    for _ in 0..rings {
        sent.push(unix_micros());
        let _ = send().await.map(|r| r.status());
        tokio::time::sleep(RING_GAP).await;
    }
    let arrived = emulators.arrivals(platform, since, rings).await;
    let mut one_way: Vec<u64> = arrived.iter().zip(&sent).map(|(a, s)| a.saturating_sub(*s)).collect();
    p50_p99(&mut one_way)
}

/// The commit floor's figures.
struct CommitFloor {
    what: &'static str,
    p50: f64,
    p99: f64,
    note: String,
}

/// The table the floor's commits write, shaped like a delivery.
const FLOOR_TABLE: &str = "CREATE TABLE IF NOT EXISTS floor (delivery_id TEXT PRIMARY KEY, call_id TEXT, \
                           installation_id TEXT, user_id TEXT, platform TEXT, token TEXT, kind TEXT, status TEXT, \
                           attempts BIGINT, next_attempt_at BIGINT, created_at BIGINT, updated_at BIGINT)";

/// The row the floor's `k`th commit writes (`{k}` replaced).
const FLOOR_ROW: &str =
    "('d-{k}', 'call-{k}', 'inst-{k}', 'user', 'fcm', 'token-{k}', 'ring', 'delivered', 1, 0, 0, 0)";

/// One commit of the floor's `k`th row, as one statement: SQLite `BEGIN IMMEDIATE` to `COMMIT`
/// (as the server stores a ring), PostgreSQL an autocommit insert.
fn floor_commit(sqlite: bool, k: u64) -> String {
    let row = FLOOR_ROW.replace("{k}", &k.to_string());
    if sqlite {
        format!("BEGIN IMMEDIATE; INSERT INTO floor VALUES {row}; COMMIT")
    } else {
        format!("INSERT INTO floor VALUES {row}")
    }
}

/// A one-connection pool on the SQLite file `file` with the server's pragmas (server/src/store/
/// mod.rs, `Store::connect`), `synchronous` as given.
async fn sqlite_pool(file: &Path, synchronous: &'static str) -> AnyPool {
    AnyPoolOptions::new()
        .max_connections(1)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                for pragma in [
                    "PRAGMA journal_mode = WAL",
                    synchronous,
                    "PRAGMA busy_timeout = 10000",
                    "PRAGMA wal_autocheckpoint = 0",
                    "PRAGMA cache_size = -1024",
                ] {
                    sqlx::query(pragma).execute(&mut *conn).await?;
                }
                Ok(())
            })
        })
        .connect(&format!("sqlite://{}?mode=rwc", file.display()))
        .await
        .unwrap()
}

/// One commit of a one-row write, `rings` times, [`RING_GAP`] apart as the rings are, on the same
/// storage as the server: SQLite in the server's directory with the server's pragmas (WAL,
/// `synchronous = FULL`: one fsync per commit; a `NORMAL` run, no fsync at commit, is printed
/// beside it), or PostgreSQL (fsync as the server's database has it) with an autocommit insert.
/// One statement each, as one round trip.
async fn commit_floor(db: &Database, dir: &Path, rings: usize) -> CommitFloor {
    async fn time_commits(pool: &AnyPool, sqlite: bool, rings: usize) -> (f64, f64) {
        let mut samples = Vec::with_capacity(rings);
        for k in 0..=rings {
            let statement = floor_commit(sqlite, k as u64);
            let started = Instant::now();
            sqlx::raw_sql(&statement).execute(pool).await.expect("the floor's commit");
            if k > 0 {
                samples.push(started.elapsed().as_micros() as u64);
            }
            tokio::time::sleep(RING_GAP).await;
        }
        p50_p99(&mut samples)
    }
    match db {
        Database::Sqlite { .. } => {
            let mut results = Vec::new();
            for synchronous in ["PRAGMA synchronous = FULL", "PRAGMA synchronous = NORMAL"] {
                let file = dir.join(format!("floor-{}.db", synchronous.rsplit(' ').next().unwrap_or("")));
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
                }
                let pool = sqlite_pool(&file, synchronous).await;
                sqlx::raw_sql(FLOOR_TABLE).execute(&pool).await.unwrap();
                results.push(time_commits(&pool, true, rings).await);
                pool.close().await;
            }
            CommitFloor {
                what: "SQLite, the server's pragmas: WAL, synchronous = FULL, an fsync per commit",
                p50: results[0].0,
                p99: results[0].1,
                note: format!(
                    "; with synchronous = NORMAL (no fsync at commit) p50 {:.2} ms, p99 {:.2} ms",
                    results[1].0, results[1].1
                ),
            }
        }
        Database::Postgres { pool: admin, .. } => {
            db.create("floor").await;
            let pool = AnyPoolOptions::new().max_connections(1).connect(&db.url("floor")).await.unwrap();
            sqlx::raw_sql(FLOOR_TABLE).execute(&pool).await.unwrap();
            let fsync: (String,) = sqlx::query_as("SHOW fsync").fetch_one(admin).await.unwrap();
            let (p50, p99) = time_commits(&pool, false, rings).await;
            pool.close().await;
            db.drop_database("floor").await;
            CommitFloor {
                what: "PostgreSQL, an autocommit one-row insert",
                p50,
                p99,
                note: format!("; fsync = {}", fsync.0),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The least server: what no ring can do without

/// Set in the environment of a child of this bench that is to run as the least server: its
/// [`LeastServer`] settings, as JSON.
const LEAST_SERVER: &str = "CALLPUSH_BENCH_LEAST_SERVER";

/// The least a server must do between a ring's `POST` and its provider request: read the request,
/// commit one row as the server commits (the floor's commit), answer, and send one request on a
/// warm connection (the floor's request) — nothing else. Rung over the same path as the server,
/// with the same client, emulator, body size and gaps, it is the floor of the whole interval a
/// ring is timed over, the request that asks for the ring included.
#[derive(serde::Serialize, serde::Deserialize)]
struct LeastServer {
    port: u16,
    /// `sqlite://<file>` (opened with the server's pragmas) or a PostgreSQL URL.
    database: String,
    /// The emulators' CA, PEM.
    ca_file: PathBuf,
    /// Where a push to each platform goes, by platform name.
    urls: BTreeMap<String, String>,
}

/// What the least server's handler shares.
struct LeastState {
    pool: AnyPool,
    sqlite: bool,
    http: reqwest::Client,
    urls: BTreeMap<String, String>,
    rings: std::sync::atomic::AtomicU64,
}

impl LeastServer {
    /// Starts this bench's executable as the least server.
    fn start(&self) -> Process {
        let child = Command::new(std::env::current_exe().unwrap())
            .env(LEAST_SERVER, serde_json::to_string(self).unwrap())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the least server");
        Process(child)
    }

    /// Runs as the least server until killed, on a runtime like the server's.
    fn serve(self) {
        sqlx::any::install_default_drivers();
        tokio::runtime::Runtime::new().unwrap().block_on(async move {
            let sqlite = self.database.starts_with("sqlite://");
            let pool = match self.database.strip_prefix("sqlite://") {
                Some(file) => sqlite_pool(Path::new(file), "PRAGMA synchronous = FULL").await,
                None => AnyPoolOptions::new().max_connections(1).connect(&self.database).await.unwrap(),
            };
            sqlx::raw_sql(FLOOR_TABLE).execute(&pool).await.unwrap();
            let state = std::sync::Arc::new(LeastState {
                pool,
                sqlite,
                http: emulator_client(&self.ca_file),
                urls: self.urls,
                rings: Default::default(),
            });
            let app = axum::Router::new()
                .route("/ring/{platform}", axum::routing::post(least_ring))
                .route("/healthz", axum::routing::get(|| async { "ok" }))
                .with_state(state);
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    }
}

/// The least server's ring: commit, hand the send to a task, answer.
async fn least_ring(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<LeastState>>,
    axum::extract::Path(platform): axum::extract::Path<String>,
) -> axum::http::StatusCode {
    let k = state.rings.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    sqlx::raw_sql(&floor_commit(state.sqlite, k))
        .execute(&state.pool)
        .await
        .expect("the least server's commit");
    let send = state
        .http
        .post(&state.urls[&platform])
        .header("content-type", "application/json")
        .body(floor_body())
        .send();
    tokio::spawn(async move {
        let _ = send.await;
    });
    axum::http::StatusCode::ACCEPTED
}

// ---------------------------------------------------------------------------------------------

fn main() {
    if let Ok(least) = std::env::var(LEAST_SERVER) {
        let least: LeastServer = serde_json::from_str(&least).expect("the least server's settings");
        return least.serve();
    }
    // Re-reading a kept dump: `CALLPUSH_BENCH_READ=<callgrind.out.N>:<pushes>` prints its table.
    if let Ok(read) = std::env::var("CALLPUSH_BENCH_READ") {
        let (file, pushes) = read.rsplit_once(':').expect("CALLPUSH_BENCH_READ=<file>:<pushes>");
        let profile = read_callgrind(&std::fs::read_to_string(file).expect("the callgrind file"));
        print_profile(&profile, pushes.parse().expect("the number of pushes"));
        return;
    }
    let settings = Settings::from_env();
    std::fs::create_dir_all(&settings.out).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        sqlx::any::install_default_drivers();
        let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model =
            cpu.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).unwrap_or("");
        println!("# The cost of one push: {}", settings.label);
        println!(
            "binary {}; {} cores ({}); load average {}; files in {}",
            settings.binary.display(),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            model.trim(),
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
            settings.out.display(),
        );
        let largest = settings.devices.iter().max().copied().unwrap_or(0);
        let online = largest + WARM_DEVICES.min(largest) + Platform::ALL.len();
        let emulators = Emulators::start(&settings, online).await;
        let mut databases = Vec::new();
        if settings.sqlite {
            let dir = settings.out.join("sqlite");
            std::fs::create_dir_all(&dir).unwrap();
            databases.push(Database::Sqlite { dir });
        }
        if let Some(admin) = &settings.postgres {
            let pool =
                AnyPoolOptions::new().max_connections(2).connect(admin).await.expect("connect to PostgreSQL");
            databases.push(Database::Postgres { admin: admin.clone(), pool });
        }
        let started = Instant::now();
        for db in &databases {
            for (k, n) in settings.devices.iter().enumerate() {
                let sized = Instant::now();
                measure_size(&settings, &emulators, db, *n, k == 0).await;
                println!("({} at {n} devices took {:.0} s)", db.label(), sized.elapsed().as_secs_f64());
            }
        }
        println!("\nall done in {:.0} s", started.elapsed().as_secs_f64());
    });
}
