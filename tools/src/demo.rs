//! `callpush-dev demo`: the whole path of two calls in one process, on every platform, told
//! as it happens.
//!
//! A server on SQLite, the four provider emulators, and four devices of one user — one per
//! platform, each running the real core client over HTTP — then:
//!
//! 1. a video call that rings all four and is answered on the HarmonyOS phone, so the others
//!    stop ringing the way their platform allows (a cancel push on Android and Windows, racing
//!    the client's own long-poll of the server, which is the only way on iOS);
//! 2. a call nobody answers, ending in a missed-call notification on every device.
//!
//! Every event is printed the moment the demo learns of it: a device's own events as they
//! happen, the server's from its call timeline, read while the call runs. Text for people
//! (grouped under each call, times relative to the start), or JSON Lines for machines
//! ([`JSON_HELP`] is the format). A closing summary says what rang, where it was answered,
//! what stopped and how, and what was shown as missed.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use callpush_client::client::{
    CallEvent, CallListener, CallUiError, Client, ClientConfig, IncomingCallError, RegisterPushOptions,
    ReqwestHttpClient, SystemCallUi,
};
use callpush_client::model::{ApnsEnvironment, Call, Platform};
use callpush_client::wire::missed_call_message_id;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::Notify;

use callpush_emulators::credentials::TestCredentials;
use callpush_emulators::device::{alert_token_for, token_for, StaticToken};
use callpush_emulators::hub::{ApnsTokenKind, DevicePush};
use callpush_emulators::Emulators;
use callpush_server::app;
use callpush_server::auth::{mint_device_token, random_token};
use callpush_server::config::{Config, SenderConfig, WnsFlow};

/// The `--json` output format, shown by `callpush-dev demo --help`. Names and fields are stable:
/// new events and fields may be added, none renamed or removed.
pub const JSON_HELP: &str = "\
Output with --json: one JSON object per line (JSON Lines), each written the moment the demo
learns of it. Every line has these fields:

  t_ms      milliseconds since the demo started, when it happened (a server line: when the
            server recorded it; it prints once the demo reads it, so it can print after
            device lines that happened later)
  source    demo | backend | server | device | user (Bob, acting on a device)
  device    the device's name (\"Bob's iPhone (iOS)\"), or null
  platform  harmony | fcm | apns | wns (the device's push provider), or null
  call_id   the call, or null
  event     what happened; the fields after it depend on the event:

  demo_started         server, devices
  call_started         call (1, 2), caller, callee, video, ring_seconds, plan
  call_requested       caller, callee, video, ring_seconds (the app backend's POST /v1/calls)
  call_stored          devices (how many it rings)
  call_ended           state (answered | missed | cancelled | declined), answered_on
  provider_accepted    provider, push (ring | cancel | missed), delivery_id: once per delivery
  provider_refused     provider, push, delivery_id, outcome, detail
  server_note          name, detail (any other timeline entry)
  registered           installation_id, lease_seconds, wire (v2: the server encrypts every
                       push to the device's own key; v1: signed, readable by the provider)
  push_received        outcome (ring | cancel | stale | duplicate | ...), reason; always
                       before what the device did about that push
  call_ui_ringing      caller, video (the system call UI rings)
  call_ui_state        state (answered | active)
  call_ui_ended        reason (hung_up | answered_elsewhere | missed | ...)
  call_ui_report       what (any other report to the system call UI)
  app_incoming_call    caller
  app_stopped_ringing  reason
  app_missed_call      notification_id, replaces_earlier (the app's local notification)
  system_notification  title, body, notification_id, replaces_earlier (a notification the
                       provider delivered; replaces_earlier: one with this id is already
                       shown on the device, so the system shows one, not two)
  app_error            kind, message
  user_answered, user_hung_up
  call_summary         call, video, ring_seconds, rang_on, answered_on, stopped [{device,
                       how (cancel_push | no_push), reason, late_cancel_push}], missed_shown [{device,
                       local_notification, system_notification, notifications_shown}]
  providers_saw        requests (every push request the four providers received), naming_caller,
                       naming_call (how many of them contain the caller's id or name, or a
                       call id, anywhere in their path, headers or body: 0 on wire v2)
  demo_finished        elapsed_ms, next (commands to try next)

Lines from one device come in the order things happened on it, cause first.";

/// Why the demo did not complete.
#[derive(Debug, thiserror::Error)]
#[error("demo: {0}")]
pub struct DemoError(String);

fn fail(what: impl std::fmt::Display) -> DemoError {
    DemoError(what.to_string())
}

/// The devices of the demo's callee: name, platform.
const DEVICES: [(&str, Platform); 4] = [
    ("Bob's Mate 60 (HarmonyOS)", Platform::Harmony),
    ("Bob's Pixel (Android)", Platform::Fcm),
    ("Bob's iPhone (iOS)", Platform::Apns),
    ("Bob's PC (Windows)", Platform::Wns),
];

/// How long the unanswered call rings: the server's minimum, to keep the demo short.
const MISSED_RING_SECONDS: u32 = 5;

/// The longest the demo waits for any one thing to happen before it gives up.
const PATIENCE: Duration = Duration::from_secs(15);

/// How often the server's call timeline is read while a call runs.
const POLL: Duration = Duration::from_millis(40);

// ---------------------------------------------------------------------------------------------
// What is printed

/// Who a line is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The demo itself: headers and the summary.
    Demo,
    /// The app backend, calling the server's API.
    Backend,
    /// The server, from its call timeline.
    Server,
    /// A device: its client, its system call UI, its notifications.
    Device,
    /// Bob, acting on a device.
    User,
}

/// One printed event: who, when, which call, and what.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    /// Milliseconds since the demo started.
    pub t_ms: u64,
    /// Who.
    pub source: Source,
    /// The device concerned, if any.
    pub device: Option<String>,
    /// That device's platform.
    pub platform: Option<&'static str>,
    /// The call concerned, if any.
    pub call_id: Option<String>,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// What happened; `JSON_HELP` documents each variant's fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Event {
    DemoStarted {
        server: String,
        devices: Vec<String>,
    },
    CallStarted {
        call: u32,
        caller: String,
        callee: String,
        video: bool,
        ring_seconds: u32,
        plan: String,
    },
    CallRequested {
        caller: String,
        callee: String,
        video: bool,
        ring_seconds: u32,
    },
    CallStored {
        devices: u64,
    },
    CallEnded {
        state: String,
        answered_on: Option<String>,
    },
    ProviderAccepted {
        provider: String,
        push: String,
        delivery_id: String,
    },
    ProviderRefused {
        provider: String,
        push: String,
        delivery_id: String,
        outcome: String,
        detail: Option<String>,
    },
    ServerNote {
        name: String,
        detail: Option<String>,
    },
    Registered {
        installation_id: String,
        lease_seconds: i64,
        wire: &'static str,
    },
    PushReceived {
        outcome: String,
        reason: Option<String>,
    },
    CallUiRinging {
        caller: String,
        video: bool,
    },
    CallUiState {
        state: String,
    },
    CallUiEnded {
        reason: String,
    },
    CallUiReport {
        what: String,
    },
    AppIncomingCall {
        caller: String,
    },
    AppStoppedRinging {
        reason: String,
    },
    AppMissedCall {
        notification_id: String,
        replaces_earlier: bool,
    },
    SystemNotification {
        title: String,
        body: String,
        notification_id: Option<String>,
        replaces_earlier: bool,
    },
    AppError {
        kind: String,
        message: String,
    },
    UserAnswered,
    UserHungUp,
    CallSummary(Box<CallSummary>),
    ProvidersSaw {
        requests: usize,
        naming_caller: usize,
        naming_call: usize,
    },
    DemoFinished {
        elapsed_ms: u64,
        next: Vec<String>,
    },
}

/// What one call came to, from the events seen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallSummary {
    /// 1 or 2.
    pub call: u32,
    /// Video offered.
    pub video: bool,
    /// How long it could ring.
    pub ring_seconds: u32,
    /// The devices whose system call UI rang.
    pub rang_on: Vec<String>,
    /// Where it was answered.
    pub answered_on: Option<String>,
    /// The devices that stopped ringing without being answered there, and how.
    pub stopped: Vec<Stopped>,
    /// The devices that showed the call as missed, and with what.
    pub missed_shown: Vec<MissedShown>,
}

/// A device that stopped ringing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stopped {
    /// The device.
    pub device: String,
    /// `cancel_push` (a push told it) or `no_push` (the client found out itself: its
    /// long-poll, or the ring deadline).
    pub how: &'static str,
    /// Why, as the system call UI was told.
    pub reason: String,
    /// A cancel push came after it had stopped: it changed nothing.
    pub late_cancel_push: bool,
}

/// A device that showed a missed call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MissedShown {
    /// The device.
    pub device: String,
    /// The id of the app's local missed-call notification, if it showed one.
    pub local_notification: Option<String>,
    /// The id of the provider's system notification, if one came.
    pub system_notification: Option<String>,
    /// How many notifications the user sees: notifications with one id collapse into one.
    pub notifications_shown: usize,
}

impl Line {
    fn new(t_ms: u64, source: Source, event: Event) -> Line {
        Line { t_ms, source, device: None, platform: None, call_id: None, event }
    }

    fn on(mut self, device: &str, platform: Platform) -> Line {
        self.device = Some(device.to_owned());
        self.platform = Some(platform.as_str());
        self
    }

    fn call(mut self, call_id: Option<String>) -> Line {
        self.call_id = call_id;
        self
    }

    fn is_call(&self, call_id: &str) -> bool {
        self.call_id.as_deref() == Some(call_id)
    }

    fn is_device(&self, device: &str) -> bool {
        self.device.as_deref() == Some(device)
    }
}

// ---------------------------------------------------------------------------------------------
// Policies: pure functions of what was seen

/// Colour only for a terminal, and never when `NO_COLOR` is set to something (no-color.org).
pub fn use_color(is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// `+0.42 s`: a time since the start, as people read it.
pub fn relative_time(t_ms: u64) -> String {
    format!("+{}.{:02} s", t_ms / 1000, (t_ms % 1000) / 10)
}

/// Whether a notification `id` replaces one already on the device: the system keeps one
/// notification per id (HarmonyOS `appMessageId`, iOS request identifier / `apns-collapse-id`).
pub fn replaces_earlier(shown: &[String], id: &str) -> bool {
    shown.iter().any(|s| s == id)
}

/// Where `device` sorts: the order of [`DEVICES`], so summaries read the same every run.
fn device_rank(device: &str) -> usize {
    DEVICES.iter().position(|(name, _)| *name == device).unwrap_or(DEVICES.len())
}

/// The lines of `device` among `lines`.
fn of_device<'a>(lines: &'a [&'a Line], device: &'a str) -> impl Iterator<Item = &'a Line> + 'a {
    lines.iter().copied().filter(move |l| l.is_device(device))
}

/// What call `call_id` came to, from every line so far; `None` if it never started.
pub fn summarize(lines: &[Line], call_id: &str) -> Option<CallSummary> {
    let (call, video, ring_seconds) = lines.iter().find_map(|l| match &l.event {
        Event::CallStarted { call, video, ring_seconds, .. } if l.is_call(call_id) => {
            Some((*call, *video, *ring_seconds))
        }
        _ => None,
    })?;
    let ours: Vec<&Line> = lines.iter().filter(|l| l.is_call(call_id) && l.device.is_some()).collect();
    let mut devices: Vec<String> = Vec::new();
    for line in &ours {
        let device = line.device.clone().unwrap_or_default();
        if !devices.contains(&device) {
            devices.push(device);
        }
    }
    devices.sort_by_key(|d| device_rank(d));
    let rang_on: Vec<String> = devices
        .iter()
        .filter(|d| of_device(&ours, d).any(|l| matches!(l.event, Event::CallUiRinging { .. })))
        .cloned()
        .collect();
    let answered_on = devices
        .iter()
        .find(|d| {
            of_device(&ours, d)
                .any(|l| matches!(&l.event, Event::CallUiState { state } if state == "answered"))
        })
        .cloned();
    let stopped = rang_on
        .iter()
        .filter(|d| Some(*d) != answered_on.as_ref())
        .filter_map(|d| {
            // A device prints a push before what the client did with it, so a cancel push that
            // ended the ringing is the line just before the end.
            let mine: Vec<&Line> = of_device(&ours, d).collect();
            let end = mine.iter().position(|l| matches!(l.event, Event::CallUiEnded { .. }))?;
            let Event::CallUiEnded { reason } = &mine[end].event else { return None };
            let by_push = end > 0
                && matches!(&mine[end - 1].event, Event::PushReceived { outcome, .. } if outcome == "cancel");
            let late = mine[end + 1..]
                .iter()
                .any(|l| matches!(&l.event, Event::PushReceived { outcome, .. } if outcome == "cancel"));
            Some(Stopped {
                device: d.clone(),
                how: if by_push { "cancel_push" } else { "no_push" },
                reason: reason.clone(),
                late_cancel_push: late,
            })
        })
        .collect();
    let missed_shown = devices
        .iter()
        .filter_map(|d| {
            let local = of_device(&ours, d).find_map(|l| match &l.event {
                Event::AppMissedCall { notification_id, .. } => Some(notification_id.clone()),
                _ => None,
            });
            let system = of_device(&ours, d).find_map(|l| match &l.event {
                Event::SystemNotification { notification_id, .. } => {
                    Some(notification_id.clone().unwrap_or_default())
                }
                _ => None,
            });
            let mut ids: Vec<&String> = local.iter().chain(system.iter()).collect();
            ids.dedup();
            (!ids.is_empty()).then(|| MissedShown {
                device: d.clone(),
                notifications_shown: ids.len(),
                local_notification: local.clone(),
                system_notification: system.clone(),
            })
        })
        .collect();
    Some(CallSummary { call, video, ring_seconds, rang_on, answered_on, stopped, missed_shown })
}

/// Whether every push a provider accepted for call `call_id` has reached its device (the device
/// printed it). Until then a summary would miss what the device did with it.
pub fn pushes_arrived(lines: &[Line], call_id: &str) -> bool {
    let mut accepted: HashMap<&str, usize> = HashMap::new();
    let mut arrived: HashMap<&str, usize> = HashMap::new();
    for line in lines.iter().filter(|l| l.is_call(call_id)) {
        let Some(device) = line.device.as_deref() else { continue };
        match (&line.source, &line.event) {
            (Source::Server, Event::ProviderAccepted { .. }) => *accepted.entry(device).or_default() += 1,
            (Source::Device, Event::PushReceived { .. } | Event::SystemNotification { .. }) => {
                *arrived.entry(device).or_default() += 1
            }
            _ => {}
        }
    }
    accepted.iter().all(|(device, n)| arrived.get(device).copied().unwrap_or(0) >= *n)
}

/// The device name and platform of each installation id.
type Directory = Vec<(String, &'static str, Platform)>;

/// The people's name of a provider.
fn provider_name(platform: &str) -> &'static str {
    match platform {
        "harmony" => "Push Kit",
        "fcm" => "FCM",
        "apns" => "APNs",
        _ => "WNS",
    }
}

/// The lines in a server call detail (`GET /v1/calls/{id}`) not printed yet, oldest first, and
/// whether the call is settled: no longer ringing and no delivery still to send. `printed`
/// counts the entries already printed by content, since a delivered push joins the timeline at
/// its own time, possibly before entries already printed.
pub fn server_lines(
    detail: &Value,
    call_id: &str,
    directory: &Directory,
    started_unix_ms: i64,
    printed: &mut HashMap<String, usize>,
) -> (Vec<Line>, bool) {
    let deliveries = detail["deliveries"].as_array().cloned().unwrap_or_default();
    let device_of = |installation: &Value| {
        directory.iter().find(|(id, _, _)| installation == id.as_str()).map(|(_, name, p)| (*name, *p))
    };
    let mut seen_now: HashMap<String, usize> = HashMap::new();
    let mut lines = Vec::new();
    for entry in detail["timeline"].as_array().cloned().unwrap_or_default() {
        let key = entry.to_string();
        let n = seen_now.entry(key.clone()).or_default();
        *n += 1;
        if *n <= printed.get(&key).copied().unwrap_or(0) {
            continue;
        }
        printed.insert(key, *n);
        let at = entry["at_ms"].as_i64().or(entry["at"].as_i64()).unwrap_or(started_unix_ms);
        let t_ms = u64::try_from(at - started_unix_ms).unwrap_or(0);
        let name = entry["event"].as_str().unwrap_or_default().to_owned();
        let detail_text = entry["detail"].as_str().map(str::to_owned);
        let delivery = deliveries.iter().find(|d| d["delivery_id"] == entry["delivery_id"]);
        let mut device = None;
        let event = match delivery {
            Some(d) => {
                device = device_of(&d["installation_id"]);
                let provider = provider_name(d["platform"].as_str().unwrap_or_default()).to_owned();
                let push = d["kind"].as_str().unwrap_or_default().to_owned();
                let delivery_id = d["delivery_id"].as_str().unwrap_or_default().to_owned();
                match name.strip_prefix("delivery_") {
                    Some("delivered") => Event::ProviderAccepted { provider, push, delivery_id },
                    Some(outcome) => Event::ProviderRefused {
                        provider,
                        push,
                        delivery_id,
                        outcome: outcome.to_owned(),
                        detail: detail_text,
                    },
                    None => Event::ServerNote { name, detail: detail_text },
                }
            }
            None => match name.as_str() {
                "ringing" => Event::CallStored {
                    devices: detail_text
                        .as_deref()
                        .and_then(|d| d.split(' ').next())
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0),
                },
                "answered" | "missed" | "cancelled" | "declined" => Event::CallEnded {
                    answered_on: device_of(&detail["answered_by"]).map(|(name, _)| name.to_owned()),
                    state: name,
                },
                _ => Event::ServerNote { name, detail: detail_text },
            },
        };
        let mut line = Line::new(t_ms, Source::Server, event).call(Some(call_id.to_owned()));
        if let Some((name, platform)) = device {
            line = line.on(name, platform);
        }
        lines.push(line);
    }
    let settled = detail["state"] != "ringing"
        && deliveries.iter().all(|d| !matches!(d["status"].as_str(), Some("pending" | "sending")));
    (lines, settled)
}

// ---------------------------------------------------------------------------------------------
// Text for people

/// How text lines look: colour or not, and how wide the "who" column is.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// ANSI colour.
    pub color: bool,
    /// Width of the "who" column.
    pub who_width: usize,
}

impl Style {
    fn paint(&self, text: &str, sgr: &str) -> String {
        if self.color {
            format!("\x1b[{sgr}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// `ring push`, `cancel push`, `missed-call notification`.
fn push_name(push: &str) -> String {
    match push {
        "missed" => "missed-call notification".to_owned(),
        other => format!("{other} push"),
    }
}

/// A lease length as people say it: `30 days`, `24 h`, `15 min`.
pub fn span(seconds: i64) -> String {
    match seconds {
        s if s >= 2 * 86_400 => format!("{} days", s / 86_400),
        s if s >= 3_600 => format!("{} h", s / 3_600),
        s => format!("{} min", s / 60),
    }
}

/// `answered_elsewhere` → `answered elsewhere`.
fn words(name: &str) -> String {
    name.replace('_', " ")
}

/// Device names as a list: `A`, `A and B`, `A, B and C`.
fn listing(names: &[&str]) -> String {
    match names {
        [] => "none".to_owned(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// What a timeline line says, for people.
fn describe(line: &Line) -> String {
    let device = line.device.as_deref().unwrap_or("a device");
    match &line.event {
        Event::CallRequested { caller, callee, video, ring_seconds } => format!(
            "POST /v1/calls: {caller} calls {callee}{}, ringing up to {ring_seconds} s",
            if *video { " (video)" } else { "" }
        ),
        Event::CallStored { devices } => format!("stored the call; ringing {devices} devices"),
        Event::CallEnded { state, answered_on } => match (state.as_str(), answered_on) {
            ("answered", Some(on)) => format!("answered on {on}; the other devices are told to stop"),
            ("missed", _) => "nobody answered in time: missed; the devices are told".to_owned(),
            (state, _) => format!("the call ended: {state}"),
        },
        Event::ProviderAccepted { provider, push, .. } => {
            format!("{provider} accepted the {} for {device}", push_name(push))
        }
        Event::ProviderRefused { provider, push, outcome, detail, .. } => format!(
            "{provider} did not take the {} for {device}: {}{}",
            push_name(push),
            words(outcome),
            detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
        ),
        Event::ServerNote { name, detail } => {
            format!("{}{}", words(name), detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())
        }
        Event::Registered { lease_seconds, wire, .. } => format!(
            "registered its push token with the server (lease: {}; {})",
            span(*lease_seconds),
            if *wire == "v2" {
                "pushes encrypted to the device's own key"
            } else {
                "pushes signed, not encrypted"
            }
        ),
        Event::PushReceived { outcome, reason } => format!(
            "push received → {outcome}{}",
            reason.as_deref().map(|r| format!(" ({})", words(r))).unwrap_or_default()
        ),
        Event::CallUiRinging { caller, video } => {
            format!("system call UI rings: {caller}{}", if *video { " (video)" } else { "" })
        }
        Event::CallUiState { state } => format!("system call UI: {state}"),
        Event::CallUiEnded { reason } => format!("system call UI: ended ({})", words(reason)),
        Event::CallUiReport { what } => format!("system call UI: {what}"),
        Event::AppIncomingCall { caller } => format!("app: incoming call from {caller}"),
        Event::AppStoppedRinging { reason } => format!("app: stopped ringing ({})", words(reason)),
        Event::AppMissedCall { notification_id, replaces_earlier } => format!(
            "app shows a local missed-call notification, id {notification_id}{}",
            if *replaces_earlier {
                " — same id as the one shown: it replaces it, one notification"
            } else {
                ""
            }
        ),
        Event::SystemNotification { title, body, notification_id, replaces_earlier } => format!(
            "system shows a notification “{title} — {body}”{}{}",
            notification_id.as_deref().map(|id| format!(", id {id}")).unwrap_or_default(),
            if *replaces_earlier {
                " — same id as the app's local one: it replaces it, one notification"
            } else {
                ""
            }
        ),
        Event::AppError { kind, message } => format!("app: error {kind}: {message}"),
        Event::UserAnswered => "Bob taps Answer; media connects".to_owned(),
        Event::UserHungUp => "Bob hangs up".to_owned(),
        Event::DemoStarted { .. }
        | Event::CallStarted { .. }
        | Event::CallSummary(_)
        | Event::ProvidersSaw { .. }
        | Event::DemoFinished { .. } => String::new(),
    }
}

/// The summary of one call, for people.
fn describe_summary(s: &CallSummary, style: &Style) -> String {
    let mut out = String::new();
    if s.call == 1 {
        out.push_str(&format!("\n{}\n", style.paint("Summary", "1")));
    }
    let rang = if s.rang_on.len() == DEVICES.len() {
        format!("rang on all {} devices", s.rang_on.len())
    } else {
        format!("rang on {}", listing(&s.rang_on.iter().map(String::as_str).collect::<Vec<_>>()))
    };
    let outcome = match &s.answered_on {
        Some(device) => format!("answered on {device}"),
        None => format!("nobody answered within {} s", s.ring_seconds),
    };
    out.push_str(&format!(
        "  Call {}{}: {rang}; {outcome}.\n",
        s.call,
        if s.video { " (video)" } else { " (voice)" }
    ));
    let mut kinds: Vec<(&str, &str)> = Vec::new();
    for x in &s.stopped {
        if !kinds.contains(&(x.how, x.reason.as_str())) {
            kinds.push((x.how, x.reason.as_str()));
        }
    }
    for (how, reason) in kinds {
        let names: Vec<&str> = s
            .stopped
            .iter()
            .filter(|x| (x.how, x.reason.as_str()) == (how, reason))
            .map(|x| x.device.as_str())
            .collect();
        let by = match how {
            "cancel_push" => "by a cancel push",
            _ => "by itself, no push needed (its long-poll to the server, or the ring deadline)",
        };
        out.push_str(&format!("    Stopped ringing ({}) {by}: {}.\n", words(reason), listing(&names)));
    }
    let late: Vec<&str> =
        s.stopped.iter().filter(|x| x.late_cancel_push).map(|x| x.device.as_str()).collect();
    if !late.is_empty() {
        out.push_str(&format!(
            "    A cancel push reached {} after {} had stopped; it changed nothing.\n",
            listing(&late),
            if late.len() == 1 { "it" } else { "they" }
        ));
    }
    let local_only: Vec<&str> = s
        .missed_shown
        .iter()
        .filter(|m| m.system_notification.is_none())
        .map(|m| m.device.as_str())
        .collect();
    if !local_only.is_empty() {
        out.push_str(&format!(
            "    Shown as missed by the app's local notification: {}.\n",
            listing(&local_only)
        ));
    }
    for m in s.missed_shown.iter().filter(|m| m.system_notification.is_some()) {
        let text = match (&m.local_notification, m.notifications_shown) {
            (Some(id), 1) => format!(
                "the app's local notification and the provider's system notification share the id \
                 {id}, so they collapse into {}",
                style.paint("one notification", "32")
            ),
            (Some(_), n) => style.paint(&format!("local and system notifications differ: {n} shown"), "31"),
            (None, _) => "the provider's system notification".to_owned(),
        };
        out.push_str(&format!("    Shown as missed on {}: {text}.\n", m.device));
    }
    out
}

/// One line as text for people (a header or the summary may take several).
pub fn render_text(line: &Line, style: &Style) -> String {
    match &line.event {
        Event::DemoStarted { server, .. } => format!(
            "{}\nAll in this process: callpush-server on {server} (SQLite), emulators of Push Kit, FCM, \
             APNs and WNS,\nand Bob's four devices, each running the real client. Times are since the start.\n\n{}\n",
            style.paint("callpush demo: Alice calls Bob, who is signed in on four devices.", "1"),
            style.paint("Setup: Bob's devices register", "1"),
        ),
        Event::CallStarted { call, caller, callee, video, plan, .. } => format!(
            "\n{}  {}\n{}\n",
            style.paint(
                &format!("Call {call}: {caller} → {callee}, {}", if *video { "video" } else { "voice" }),
                "1"
            ),
            style.paint(&format!("(call id {})", line.call_id.as_deref().unwrap_or("?")), "2"),
            style.paint(&format!("  {plan}"), "2"),
        ),
        Event::CallSummary(summary) => describe_summary(summary, style),
        Event::ProvidersSaw { requests, naming_caller, naming_call } => {
            let what = match (naming_caller, naming_call) {
                (0, 0) => "none names Alice or a call: every push went encrypted to its device's own key".to_owned(),
                _ => format!("{naming_caller} name Alice and {naming_call} a call"),
            };
            format!("  What the providers saw: {requests} push requests to Push Kit, FCM, APNs and WNS; {what}.\n")
        }
        Event::DemoFinished { elapsed_ms, next } => {
            let mut out = format!("\nDone in {:.1} s.\n\nNext, try:\n", *elapsed_ms as f64 / 1000.0);
            for command in next {
                out.push_str(&format!("  {}\n", style.paint(command, "1")));
            }
            out
        }
        _ => {
            let (who, sgr) = match line.source {
                Source::Backend => ("backend", "35"),
                Source::Server => ("server", "36"),
                Source::User => (line.device.as_deref().unwrap_or("Bob"), "33"),
                Source::Device | Source::Demo => (line.device.as_deref().unwrap_or(""), "34"),
            };
            let what = match (line.source, &line.call_id) {
                (Source::Server, Some(call_id)) => format!("[{call_id}] {}", describe(line)),
                _ => describe(line),
            };
            format!(
                "  {}  {}  {what}\n",
                style.paint(&format!("{:>8}", relative_time(line.t_ms)), "2"),
                style.paint(&format!("{who:<width$}", width = style.who_width), sgr),
            )
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Printing as it happens

/// Text or JSON Lines.
#[derive(Debug, Clone, Copy)]
pub enum Format {
    /// For people.
    Text(Style),
    /// One JSON object per line.
    Json,
}

struct Printed {
    sink: Box<dyn Write + Send>,
    lines: Vec<Line>,
    /// The reader went away (`| head`): keep the lines, stop writing.
    closed: bool,
    /// The demo's call ids, to tell which call a missed-call notification is for.
    calls: Vec<String>,
}

/// Where every line goes: printed at once (flushed per line) and kept for waiting and the
/// summary.
pub struct Out {
    started: Instant,
    format: Format,
    printed: Mutex<Printed>,
    changed: Notify,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Out {
    /// Prints to `sink` in `format`; times count from now.
    pub fn new(sink: Box<dyn Write + Send>, format: Format) -> Out {
        Out {
            started: Instant::now(),
            format,
            printed: Mutex::new(Printed { sink, lines: Vec::new(), closed: false, calls: Vec::new() }),
            changed: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Prints `line` and flushes it, so a reader sees it now.
    fn emit(&self, line: Line) {
        let text = match &self.format {
            Format::Json => serde_json::to_string(&line).map(|s| s + "\n").unwrap_or_default(),
            Format::Text(style) => render_text(&line, style),
        };
        let mut printed = lock(&self.printed);
        if !printed.closed {
            let written = printed.sink.write_all(text.as_bytes()).and_then(|()| printed.sink.flush());
            printed.closed = written.is_err();
        }
        printed.lines.push(line);
        drop(printed);
        self.changed.notify_waiters();
    }

    /// Whether the reader went away.
    fn closed(&self) -> bool {
        lock(&self.printed).closed
    }

    fn lines(&self) -> Vec<Line> {
        lock(&self.printed).lines.clone()
    }

    fn add_call(&self, call_id: &str) {
        lock(&self.printed).calls.push(call_id.to_owned());
    }

    /// The call whose missed-call notification has id `id`.
    fn call_of_notification(&self, id: &str) -> Option<String> {
        lock(&self.printed).calls.iter().find(|c| missed_call_message_id(c) == id).cloned()
    }

    /// Waits until `done` holds for the lines so far; `what` names it in the error.
    async fn wait(&self, what: &str, done: impl Fn(&[Line]) -> bool) -> Result<(), DemoError> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let changed = self.changed.notified();
            let (closed, done_now) = {
                let printed = lock(&self.printed);
                (printed.closed, done(&printed.lines))
            };
            if closed {
                return Err(fail("the output was closed"));
            }
            if done_now {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(fail(format!("gave up waiting: {what}")));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The devices

/// What one device reports, in the order it happened there.
struct DeviceLog {
    out: Arc<Out>,
    name: &'static str,
    platform: Platform,
    /// While the client handles a push: what it did meanwhile, printed after the push.
    held: Mutex<Option<Vec<Line>>>,
    /// The ids of the notifications shown on this device.
    notifications: Mutex<Vec<String>>,
}

impl DeviceLog {
    fn line(&self, t_ms: u64, call_id: Option<String>, event: Event) -> Line {
        Line::new(t_ms, Source::Device, event).on(self.name, self.platform).call(call_id)
    }

    /// Prints what the device did now, or holds it until the push that caused it is printed.
    fn report(&self, call_id: Option<String>, event: Event) {
        let line = self.line(self.out.now_ms(), call_id, event);
        let mut held = lock(&self.held);
        match held.as_mut() {
            Some(effects) => effects.push(line),
            None => self.out.emit(line),
        }
    }

    /// Hands a push to the client. The push is stamped before the client sees it and printed
    /// before what the client did about it (the system call UI and the app hear of it while
    /// `handle_push` runs, before its outcome is known).
    fn handle_push(&self, client: &Client, raw: String) {
        let t_ms = self.out.now_ms();
        *lock(&self.held) = Some(Vec::new());
        let decision = client.handle_push(raw);
        let mut held = lock(&self.held);
        let effects = held.take().unwrap_or_default();
        let call = decision.call.as_ref();
        let event = Event::PushReceived {
            outcome: decision.outcome.as_str().to_owned(),
            reason: call.and_then(|c| c.reason).map(|r| r.as_str().to_owned()),
        };
        self.out.emit(self.line(t_ms, call.map(|c| c.call_id.clone()), event));
        for line in effects {
            self.out.emit(line);
        }
    }

    /// Whether a notification with `id` is already shown here; records that it is now.
    fn shown(&self, id: &str) -> bool {
        let mut shown = lock(&self.notifications);
        let replaces = replaces_earlier(&shown, id);
        shown.push(id.to_owned());
        replaces
    }

    /// A notification the provider delivered, shown by the system; the app sees nothing.
    fn notification(&self, title: String, body: String, id: Option<String>) {
        let replaces = id.as_deref().is_some_and(|id| self.shown(id));
        let call_id = id.as_deref().and_then(|id| self.out.call_of_notification(id));
        self.report(
            call_id,
            Event::SystemNotification { title, body, notification_id: id, replaces_earlier: replaces },
        );
    }
}

fn snake(value: impl Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn caller(call: &Call) -> String {
    call.peer_name.clone().unwrap_or_else(|| call.peer_id.clone())
}

/// The platform's call UI, answering as it would and reporting what it was told.
struct Ui(Arc<DeviceLog>);

impl SystemCallUi for Ui {
    fn report_incoming_call(&self, call: Call) -> Result<(), CallUiError> {
        self.0.report(
            Some(call.call_id.clone()),
            Event::CallUiRinging { caller: caller(&call), video: call.video },
        );
        Ok(())
    }
    fn report_and_end_call(&self, call: Option<Call>, reason: IncomingCallError) -> Result<(), CallUiError> {
        let what = format!("CallKit report-and-end ({reason:?})");
        self.0.report(call.map(|c| c.call_id), Event::CallUiReport { what });
        Ok(())
    }
    fn report_incoming_call_error(
        &self,
        _: Option<String>,
        reason: IncomingCallError,
    ) -> Result<(), CallUiError> {
        self.0.report(None, Event::CallUiReport { what: format!("reportIncomingCallError ({reason:?})") });
        Ok(())
    }
    fn report_outgoing_call(&self, call: Call) -> Result<(), CallUiError> {
        self.0.report(
            Some(call.call_id.clone()),
            Event::CallUiReport { what: format!("dialing {}", call.peer_id) },
        );
        Ok(())
    }
    fn report_call_state(&self, call: Call) -> Result<(), CallUiError> {
        let event = match call.end_reason {
            Some(reason) => Event::CallUiEnded { reason: snake(reason) },
            None => Event::CallUiState { state: snake(call.state) },
        };
        self.0.report(Some(call.call_id), event);
        Ok(())
    }
}

/// The app's listener, reporting what the client told it.
struct Listener(Arc<DeviceLog>);

impl CallListener for Listener {
    fn on_event(&self, event: CallEvent) {
        let (call_id, event) = match event {
            CallEvent::Incoming { call } => {
                (Some(call.call_id.clone()), Event::AppIncomingCall { caller: caller(&call) })
            }
            CallEvent::Cancelled { call, reason } => {
                (Some(call.call_id), Event::AppStoppedRinging { reason: reason.as_str().to_owned() })
            }
            CallEvent::Missed { call, app_message_id } => {
                let replaces = self.0.shown(&app_message_id);
                let event =
                    Event::AppMissedCall { notification_id: app_message_id, replaces_earlier: replaces };
                (Some(call.call_id), event)
            }
            CallEvent::RegistrationChanged { registration } => {
                let lease_seconds = registration.expires_at - registration.server_time;
                let wire = if registration.device_key_id.is_some() { "v2" } else { "v1" };
                (
                    None,
                    Event::Registered { installation_id: registration.installation_id, lease_seconds, wire },
                )
            }
            CallEvent::Error { error } => {
                (error.call_id, Event::AppError { kind: format!("{:?}", error.kind), message: error.message })
            }
            CallEvent::RegistrationLapsed { .. } => (
                None,
                Event::AppError {
                    kind: "RegistrationLapsed".into(),
                    message: "the registration lapsed".into(),
                },
            ),
            // The system call UI lines say the same.
            CallEvent::StateChanged { .. } => return,
        };
        self.0.report(call_id, event);
    }
}

/// A device of Bob's: the real client behind a push token, fed by the emulators.
struct Device {
    name: &'static str,
    platform: Platform,
    token: String,
    alert_token: Option<String>,
    client: Arc<Client>,
    feeding: tokio::task::JoinHandle<()>,
}

impl Drop for Device {
    fn drop(&mut self) {
        self.feeding.abort();
    }
}

impl Device {
    fn start(
        n: usize,
        (name, platform): (&'static str, Platform),
        env: &Env,
        emulators: &Emulators,
    ) -> Result<Device, DemoError> {
        let log = Arc::new(DeviceLog {
            out: env.out.clone(),
            name,
            platform,
            held: Mutex::new(None),
            notifications: Mutex::new(Vec::new()),
        });
        let data = env.dir.join(format!("device-{n}"));
        let mut config = ClientConfig::new(&env.base, data.to_string_lossy(), platform);
        config.apns_environment = (platform == Platform::Apns).then_some(ApnsEnvironment::Sandbox);
        let client = Client::new(
            config,
            Arc::new(ReqwestHttpClient::new()),
            Arc::new(StaticToken(env.bob_token.clone())),
            Arc::new(Ui(log.clone())),
            Arc::new(Listener(log.clone())),
        )
        .map_err(fail)?;
        let token = token_for(platform, n as u32);
        // An iPhone holds two tokens: rings come to the VoIP token, the missed-call alert to the
        // regular one.
        let alert_token = (platform == Platform::Apns).then(|| alert_token_for(&token));
        let hub = &emulators.hub;
        let mut pushes = match &alert_token {
            Some(alert) => {
                hub.set_apns_token_kind(&token, ApnsTokenKind::Voip);
                hub.set_apns_token_kind(alert, ApnsTokenKind::Alert);
                hub.subscribe_all(platform, &[&token, alert])
            }
            None => hub.subscribe(platform, &token),
        };
        let feeding_client = client.clone();
        let feeding = tokio::spawn(async move {
            while let Some(push) = pushes.recv().await {
                match push {
                    DevicePush::App { raw } => log.handle_push(&feeding_client, raw),
                    DevicePush::Notification { title, body, id, .. } => log.notification(title, body, id),
                }
            }
        });
        Ok(Device { name, platform, token, alert_token, client, feeding })
    }

    async fn register(&self) -> Result<(), DemoError> {
        let options =
            RegisterPushOptions { apns_alert_token: self.alert_token.clone(), ..Default::default() };
        self.client
            .register_push(self.token.clone(), options)
            .await
            .map(drop)
            .map_err(|e| fail(format!("{} registering: {e}", self.name)))
    }

    /// Bob does something on this device: printed before it takes effect.
    fn user(&self, env: &Env, call_id: &str, event: Event) {
        let line = Line::new(env.out.now_ms(), Source::User, event).on(self.name, self.platform);
        env.out.emit(line.call(Some(call_id.to_owned())));
    }
}

// ---------------------------------------------------------------------------------------------
// The server and the app backend

/// What the demo's parts share.
struct Env {
    out: Arc<Out>,
    started_unix_ms: i64,
    base: String,
    api_key: String,
    http: reqwest::Client,
    dir: std::path::PathBuf,
    bob_token: String,
    directory: Mutex<Directory>,
}

impl Env {
    /// One request of the app backend, with its API key.
    async fn backend(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, DemoError> {
        let mut request =
            self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.api_key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(fail)?;
        let status = response.status();
        let body: Value = response.json().await.map_err(fail)?;
        if !status.is_success() {
            return Err(fail(format!("{path}: {status} {body}")));
        }
        Ok(body)
    }

    /// The app backend places call `number` from Alice to Bob: header, request, and the
    /// server's timeline followed from then on.
    async fn place_call(
        self: &Arc<Self>,
        number: u32,
        video: bool,
        ring_seconds: u32,
        plan: &str,
    ) -> Result<(String, Follower), DemoError> {
        // The app backend picks the id, as it would its own signalling's.
        let call_id = format!("call-{number}");
        self.out.add_call(&call_id);
        let (caller, callee) = ("Alice".to_owned(), "Bob".to_owned());
        let header = Event::CallStarted {
            call: number,
            caller: caller.clone(),
            callee: callee.clone(),
            video,
            ring_seconds,
            plan: plan.to_owned(),
        };
        self.out.emit(Line::new(self.out.now_ms(), Source::Demo, header).call(Some(call_id.clone())));
        let request = Event::CallRequested { caller, callee, video, ring_seconds };
        self.out.emit(Line::new(self.out.now_ms(), Source::Backend, request).call(Some(call_id.clone())));
        let body = json!({
            "call_id": call_id,
            "from": {"id": "alice", "name": "Alice"},
            "to": ["bob"],
            "video": video,
            "ring_seconds": ring_seconds,
        });
        self.backend(reqwest::Method::POST, "/v1/calls", Some(body)).await?;
        Ok((call_id.clone(), Follower::start(self.clone(), call_id)))
    }
}

/// Reads a call's server timeline while it runs and prints each new entry once.
struct Follower {
    call_id: String,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Result<(), DemoError>>,
}

impl Follower {
    fn start(env: Arc<Env>, call_id: String) -> Follower {
        let stop = Arc::new(AtomicBool::new(false));
        let (stopping, id) = (stop.clone(), call_id.clone());
        let task = tokio::spawn(async move {
            let mut printed = HashMap::new();
            loop {
                let detail = env.backend(reqwest::Method::GET, &format!("/v1/calls/{id}"), None).await?;
                let directory = lock(&env.directory).clone();
                let (lines, settled) =
                    server_lines(&detail, &id, &directory, env.started_unix_ms, &mut printed);
                for line in lines {
                    env.out.emit(line);
                }
                if settled && stopping.load(Ordering::SeqCst) {
                    return Ok(());
                }
                tokio::time::sleep(POLL).await;
            }
        });
        Follower { call_id, stop, task }
    }

    /// Waits until the call is settled on the server (every push sent, its outcome printed) and
    /// every accepted push reached its device, so nothing of this call prints after.
    async fn settle(self, out: &Out) -> Result<(), DemoError> {
        self.stop.store(true, Ordering::SeqCst);
        let call_id = self.call_id;
        match tokio::time::timeout(PATIENCE, self.task).await {
            Ok(Ok(result)) => result?,
            Ok(Err(e)) => return Err(fail(e)),
            Err(_) => return Err(fail(format!("{call_id} never settled on the server"))),
        }
        out.wait(&format!("every push of {call_id} reached its device"), |lines| {
            pushes_arrived(lines, &call_id)
        })
        .await
    }
}

/// Whether `device` printed something for `call_id` that `matches`.
fn saw(lines: &[Line], device: &str, call_id: &str, matches: impl Fn(&Event) -> bool) -> bool {
    lines
        .iter()
        .any(|l| l.is_device(device) && l.is_call(call_id) && l.source == Source::Device && matches(&l.event))
}

// ---------------------------------------------------------------------------------------------
// The story

/// Whether `word` is in `text`, as it is or inside any base64url run of it decoded (a readable
/// JWS carries its claims that way).
fn mentions(text: &str, word: &str) -> bool {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    text.contains(word)
        || text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .filter(|run| run.len() >= 8)
            .filter_map(|run| URL_SAFE_NO_PAD.decode(run.trim_end_matches('=')).ok())
            .any(|bytes| String::from_utf8_lossy(&bytes).contains(word))
}

/// What the four providers were sent: every push request their emulators logged, and how many
/// name the caller (Alice's id or name) or one of `calls`, anywhere in path, headers or body,
/// readable or base64url-encoded.
fn providers_saw(emulators: &Emulators, calls: &[&String]) -> Event {
    let requests: Vec<String> =
        [emulators.harmony.faults(), emulators.fcm.faults(), emulators.apns.faults(), emulators.wns.faults()]
            .into_iter()
            .flat_map(|plan| plan.received())
            .map(|r| format!("{} {:?} {}", r.path, r.headers, r.body))
            .collect();
    let naming = |words: &[&str]| requests.iter().filter(|r| words.iter().any(|w| mentions(r, w))).count();
    let calls: Vec<&str> = calls.iter().map(|c| c.as_str()).collect();
    Event::ProvidersSaw {
        requests: requests.len(),
        naming_caller: naming(&["alice", "Alice"]),
        naming_call: naming(&calls),
    }
}

/// Runs the demo, printing to `out` as it goes.
pub async fn run(out: Arc<Out>) -> Result<(), DemoError> {
    let dir = tempfile::tempdir().map_err(fail)?;
    let emulators =
        Emulators::start(TestCredentials::default()).await.map_err(|e| fail(format!("emulators: {e}")))?;
    let (providers, _) = emulators.providers_config(dir.path(), WnsFlow::Entra).map_err(fail)?;
    let secret = random_token();
    let api_key = format!("cpk_{}", random_token());
    let mut config = Config {
        listen: "127.0.0.1:0".parse().map_err(fail)?,
        database_url: format!("sqlite://{}", dir.path().join("callpush.db").display()),
        data_dir: dir.path().to_owned(),
        api_keys: vec![api_key.clone()],
        sender: SenderConfig::Noop,
        providers,
        ..Config::default()
    };
    config.auth.hs256_secret = Some(secret.clone());
    let senders = app::senders_from_config(&config).map_err(fail)?;
    let server = app::start(&config, senders).await.map_err(fail)?;
    let env = Arc::new(Env {
        started_unix_ms: callpush_server::time::now_ms() - i64::try_from(out.now_ms()).unwrap_or(0),
        out: out.clone(),
        base: format!("http://{}", server.addr),
        api_key,
        http: reqwest::Client::new(),
        dir: dir.path().to_owned(),
        bob_token: mint_device_token(&secret, "bob", 3600),
        directory: Mutex::new(Vec::new()),
    });
    let started = Event::DemoStarted {
        server: env.base.clone(),
        devices: DEVICES.iter().map(|(name, _)| (*name).to_owned()).collect(),
    };
    out.emit(Line::new(out.now_ms(), Source::Demo, started));

    // Bob's four devices register through the real client.
    let mut devices = Vec::new();
    for (n, spec) in DEVICES.into_iter().enumerate() {
        let device = Device::start(n, spec, &env, &emulators)?;
        device.register().await?;
        lock(&env.directory).push((device.client.installation_id(), device.name, device.platform));
        devices.push(device);
    }

    // Call 1: rings everywhere, answered on the HarmonyOS phone.
    let plan = "Rings all four devices; Bob answers on his Mate 60, and the others stop ringing.";
    let (call_1, follower) = env.place_call(1, true, 30, plan).await?;
    for device in &devices {
        let what = format!("{} ringing for {call_1}", device.name);
        out.wait(&what, |l| saw(l, device.name, &call_1, |e| matches!(e, Event::CallUiRinging { .. })))
            .await?;
    }
    let answering = &devices[0];
    answering.user(&env, &call_1, Event::UserAnswered);
    answering.client.answer(call_1.clone()).await.map_err(|e| fail(format!("answering: {e}")))?;
    answering.client.media_connected(call_1.clone()).map_err(fail)?;
    for device in &devices[1..] {
        let what = format!("{} stopping ringing after the answer", device.name);
        out.wait(&what, |l| saw(l, device.name, &call_1, |e| matches!(e, Event::CallUiEnded { .. }))).await?;
    }
    answering.user(&env, &call_1, Event::UserHungUp);
    answering.client.hang_up(call_1.clone()).await.map_err(fail)?;
    follower.settle(&out).await?;

    // Call 2: nobody answers.
    let plan = format!(
        "Nobody answers: after {MISSED_RING_SECONDS} s it rings out, and every device shows a missed call."
    );
    let (call_2, follower) = env.place_call(2, false, MISSED_RING_SECONDS, &plan).await?;
    for device in &devices {
        let what = format!("{} showing {call_2} as missed", device.name);
        out.wait(&what, |l| saw(l, device.name, &call_2, |e| matches!(e, Event::AppMissedCall { .. })))
            .await?;
    }
    follower.settle(&out).await?;

    // What it came to, and what to try next.
    let lines = out.lines();
    for call_id in [&call_1, &call_2] {
        if let Some(summary) = summarize(&lines, call_id) {
            let line = Line::new(out.now_ms(), Source::Demo, Event::CallSummary(Box::new(summary)));
            out.emit(line.call(Some(call_id.clone())));
        }
    }
    out.emit(Line::new(out.now_ms(), Source::Demo, providers_saw(&emulators, &[&call_1, &call_2])));
    let next = vec![
        "cargo run --release -p callpush-server -- serve --dev   # the server alone; server/README.md tours its API with curl".to_owned(),
        "cargo run --release -p callpush-dev -- demo --json      # this run as JSON Lines; fields in `demo --help`".to_owned(),
    ];
    out.emit(Line::new(out.now_ms(), Source::Demo, Event::DemoFinished { elapsed_ms: out.now_ms(), next }));
    server.stop().await;
    drop(devices);
    Ok(())
}

/// Runs the demo in a fresh runtime, printing to stdout as it goes: JSON Lines with `json`,
/// text otherwise (coloured on a terminal unless `NO_COLOR` is set).
pub fn main(json: bool) -> Result<(), DemoError> {
    let stdout = std::io::stdout();
    let format = if json {
        Format::Json
    } else {
        let color = use_color(stdout.is_terminal(), std::env::var_os("NO_COLOR").as_deref());
        let who_width = DEVICES.iter().map(|(name, _)| name.chars().count()).max().unwrap_or(0);
        Format::Text(Style { color, who_width })
    };
    let out = Arc::new(Out::new(Box::new(stdout), format));
    let runtime = tokio::runtime::Runtime::new().map_err(fail)?;
    match runtime.block_on(run(out.clone())) {
        // Nobody reads any more (`| head`): stopping early is what was asked.
        Err(_) if out.closed() => Ok(()),
        result => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_is_found_readable_or_base64url_encoded_never_in_a_sealed_push() {
        use callpush_client::wire::{
            encode_push, encode_sealed_push, CallSigner, DeviceSecret, SealRandomness,
        };
        let invite = callpush_client::model::Invite {
            iss: "demo".into(),
            aud: "bob".into(),
            jti: "j".into(),
            iat: 1,
            exp: 31,
            v: 1,
            evt: callpush_client::model::PushEvent::Ring,
            cid: "call-1".into(),
            from: callpush_client::model::Caller { id: "alice".into(), name: Some("Alice".into()) },
            video: false,
            reason: None,
            data: Default::default(),
        };
        let signer = CallSigner::from_seed(&[1; 32]);
        let readable = format!("{:?}", encode_push(Platform::Fcm, &invite, &signer).unwrap());
        assert!(!readable.contains("Alice") && mentions(&readable, "Alice") && mentions(&readable, "call-1"));
        assert!(mentions(r#"{"title":"Missed call from Alice"}"#, "Alice"));
        let device = DeviceSecret::from_bytes([2; 32]);
        let randomness = SealRandomness { ephemeral: [3; 32], iv: [4; 12] };
        let sealed = format!(
            "{:?}",
            encode_sealed_push(Platform::Fcm, &invite, &signer, device.public(), &randomness).unwrap()
        );
        for word in ["alice", "Alice", "call-1"] {
            assert!(!mentions(&sealed, word), "{word}");
        }
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_color(true, None));
        assert!(use_color(true, Some(OsStr::new(""))), "an empty NO_COLOR is not set");
        assert!(!use_color(true, Some(OsStr::new("1"))));
        assert!(!use_color(false, None));
    }

    #[test]
    fn times_read_as_seconds_since_the_start() {
        assert_eq!(relative_time(0), "+0.00 s");
        assert_eq!(relative_time(420), "+0.42 s");
        assert_eq!(relative_time(5_318), "+5.31 s");
        assert_eq!(relative_time(61_005), "+61.00 s");
    }

    fn device_line(t_ms: u64, device: usize, call: &str, event: Event) -> Line {
        let (name, platform) = DEVICES[device];
        Line::new(t_ms, Source::Device, event).on(name, platform).call(Some(call.to_owned()))
    }

    fn started(call: u32) -> Line {
        let event = Event::CallStarted {
            call,
            caller: "Alice".into(),
            callee: "Bob".into(),
            video: false,
            ring_seconds: 5,
            plan: String::new(),
        };
        Line::new(0, Source::Demo, event).call(Some(format!("call-{call}")))
    }

    fn push(outcome: &str, reason: Option<&str>) -> Event {
        Event::PushReceived { outcome: outcome.into(), reason: reason.map(str::to_owned) }
    }

    #[test]
    fn a_summary_tells_a_cancel_push_from_a_client_that_stopped_by_itself() {
        let ring = || Event::CallUiRinging { caller: "Alice".into(), video: false };
        let ended = |r: &str| Event::CallUiEnded { reason: r.into() };
        let lines = vec![
            started(1),
            device_line(1, 0, "call-1", push("ring", None)),
            device_line(2, 0, "call-1", ring()),
            device_line(3, 1, "call-1", push("ring", None)),
            device_line(4, 1, "call-1", ring()),
            device_line(5, 2, "call-1", push("ring", None)),
            device_line(6, 2, "call-1", ring()),
            device_line(7, 0, "call-1", Event::CallUiState { state: "answered".into() }),
            device_line(8, 1, "call-1", push("cancel", Some("answered_elsewhere"))),
            device_line(9, 1, "call-1", ended("answered_elsewhere")),
            device_line(10, 2, "call-1", ended("answered_elsewhere")),
            device_line(11, 0, "call-1", ended("hung_up")),
        ];
        let summary = summarize(&lines, "call-1").unwrap();
        assert_eq!(summary.rang_on.len(), 3);
        assert_eq!(summary.answered_on.as_deref(), Some(DEVICES[0].0));
        assert_eq!(summary.stopped.len(), 2, "{summary:?}");
        assert_eq!(
            (summary.stopped[0].device.as_str(), summary.stopped[0].how),
            (DEVICES[1].0, "cancel_push")
        );
        assert_eq!((summary.stopped[1].device.as_str(), summary.stopped[1].how), (DEVICES[2].0, "no_push"));
        assert!(summary.missed_shown.is_empty());
        assert!(summarize(&lines, "call-9").is_none());
    }

    #[test]
    fn a_local_and_a_system_notification_with_one_id_show_once() {
        let id = missed_call_message_id("call-2");
        let local = |id: &str| Event::AppMissedCall { notification_id: id.into(), replaces_earlier: false };
        let system = |id: &str| Event::SystemNotification {
            title: "Missed call".into(),
            body: "Alice called".into(),
            notification_id: Some(id.into()),
            replaces_earlier: true,
        };
        let lines = vec![
            started(2),
            device_line(1, 0, "call-2", local(&id)),
            device_line(2, 0, "call-2", system(&id)),
            device_line(3, 1, "call-2", local(&id)),
            device_line(4, 2, "call-2", local(&id)),
            device_line(5, 2, "call-2", system("some-other-id")),
        ];
        let shown = summarize(&lines, "call-2").unwrap().missed_shown;
        let count =
            |device: usize| shown.iter().find(|m| m.device == DEVICES[device].0).unwrap().notifications_shown;
        assert_eq!((count(0), count(1), count(2)), (1, 1, 2));
        assert!(replaces_earlier(std::slice::from_ref(&id), &id));
        assert!(!replaces_earlier(&[], &id));
    }

    #[test]
    fn each_server_timeline_entry_prints_once_with_its_call_and_device() {
        let directory: Directory = vec![("inst-1".into(), DEVICES[2].0, Platform::Apns)];
        let delivery = json!({"delivery_id": "d1", "installation_id": "inst-1", "platform": "apns",
                              "kind": "ring", "status": "sending"});
        let mut detail = json!({
            "state": "ringing",
            "deliveries": [delivery],
            "timeline": [{"at": 1_010, "delivery_id": null, "event": "ringing", "detail": "1 devices"}],
        });
        let mut printed = HashMap::new();
        let (lines, settled) = server_lines(&detail, "call-1", &directory, 1_000, &mut printed);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].event, Event::CallStored { devices: 1 });
        assert_eq!((lines[0].t_ms, lines[0].call_id.as_deref()), (10, Some("call-1")));
        assert!(!settled);
        // The delivered push joins the timeline; read again, only it is new.
        detail["deliveries"][0]["status"] = json!("delivered");
        detail["state"] = json!("answered");
        detail["timeline"] = json!([
            {"at": 1_010, "delivery_id": null, "event": "ringing", "detail": "1 devices"},
            {"at": 1_020, "delivery_id": "d1", "event": "delivery_delivered", "detail": null},
        ]);
        for round in 0..2 {
            let (lines, settled) = server_lines(&detail, "call-1", &directory, 1_000, &mut printed);
            assert!(settled);
            if round == 0 {
                assert_eq!(lines.len(), 1);
                assert_eq!(lines[0].device.as_deref(), Some(DEVICES[2].0));
                assert!(
                    matches!(&lines[0].event, Event::ProviderAccepted { provider, .. } if provider == "APNs")
                );
            } else {
                assert!(lines.is_empty(), "printed twice: {lines:?}");
            }
        }
    }

    #[test]
    fn text_has_no_escapes_without_colour() {
        let style = Style { color: false, who_width: 26 };
        let line = device_line(420, 2, "call-1", push("ring", None));
        let text = render_text(&line, &style);
        assert_eq!(text, format!("   +0.42 s  {:<26}  push received → ring\n", DEVICES[2].0));
        let coloured = render_text(&line, &Style { color: true, who_width: 26 });
        assert!(coloured.contains('\x1b'));
    }
}
