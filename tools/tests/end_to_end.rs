//! The whole path on all four platforms: `callpush-dev demo` runs server, provider emulators and
//! four simulated devices (the real core client each) through an answered call and a missed one,
//! and tells it as it happens: text for people, JSON Lines for machines.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const MATE: &str = "Bob's Mate 60 (HarmonyOS)";
const PIXEL: &str = "Bob's Pixel (Android)";
const IPHONE: &str = "Bob's iPhone (iOS)";
const PC: &str = "Bob's PC (Windows)";
const DEVICES: [&str; 4] = [MATE, PIXEL, IPHONE, PC];

/// The demo must stay short: its missed call rings 5 s, the rest takes a moment.
const BOUND: Duration = Duration::from_secs(40);

fn demo() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_callpush-dev"));
    command.arg("demo").env_remove("NO_COLOR");
    command
}

fn str_of<'a>(line: &'a Value, field: &str) -> &'a str {
    line[field].as_str().unwrap_or("")
}

/// The lines of `device` about `call`, as the device printed them.
fn device_lines<'a>(lines: &'a [Value], call: &str, device: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| str_of(l, "source") == "device" && str_of(l, "device") == device)
        .filter(|l| str_of(l, "call_id") == call)
        .collect()
}

/// Where the first line with `event` (and, if given, `outcome`) sits among `lines`.
fn position(lines: &[&Value], event: &str, outcome: Option<&str>) -> Option<usize> {
    lines
        .iter()
        .position(|l| str_of(l, "event") == event && outcome.is_none_or(|o| str_of(l, "outcome") == o))
}

#[test]
fn json_lines_tell_each_call_cause_first_and_every_acceptance_once() {
    let started = Instant::now();
    let out = demo().arg("--json").output().unwrap();
    assert!(out.status.success(), "demo failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(started.elapsed() < BOUND, "the demo took {:?}", started.elapsed());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object per line: {e}: {l}")))
        .collect();
    for line in &lines {
        assert!(line["t_ms"].is_u64(), "{line}");
        for field in ["device", "platform", "call_id"] {
            assert!(line[field].is_string() || line[field].is_null(), "{field}: {line}");
        }
        assert!(["demo", "backend", "server", "device", "user"].contains(&str_of(line, "source")), "{line}");
        assert!(!str_of(line, "event").is_empty(), "{line}");
        if str_of(line, "source") == "server" {
            assert!(line["call_id"].is_string(), "every server line names its call: {line}");
        }
    }
    let events: Vec<&str> = lines.iter().map(|l| str_of(l, "event")).collect();
    assert_eq!(events.first(), Some(&"demo_started"));
    assert_eq!(events.last(), Some(&"demo_finished"));
    assert!(lines.last().unwrap()["next"].as_array().is_some_and(|n| !n.is_empty()));

    for call in ["call-1", "call-2"] {
        assert!(
            lines.iter().any(|l| str_of(l, "event") == "call_started" && str_of(l, "call_id") == call),
            "{call} has a header"
        );
        for device in DEVICES {
            let mine = device_lines(&lines, call, device);
            let push = position(&mine, "push_received", Some("ring"));
            let ring = position(&mine, "call_ui_ringing", None);
            assert!(
                matches!((push, ring), (Some(p), Some(r)) if p < r),
                "{device}, {call}: the ring push comes before the call UI rings: {mine:#?}"
            );
            let times: Vec<u64> = mine.iter().map(|l| l["t_ms"].as_u64().unwrap()).collect();
            assert!(times.windows(2).all(|w| w[0] <= w[1]), "{device}, {call}: in the order it happened");
            assert!(mine.iter().all(|l| str_of(l, "platform") == str_of(mine[0], "platform")));
        }
    }
    // The answer on HarmonyOS stops the others the way each platform allows: Android and
    // Windows get a cancel push (racing the client's own long-poll, which may stop the ringing
    // first); iOS learns it by long-poll only, never by a VoIP cancel.
    let call_1 = |device| device_lines(&lines, "call-1", device);
    assert!(position(&call_1(MATE), "call_ui_state", None).is_some(), "answered on the Mate 60");
    let mut stopped_by_push = HashMap::new();
    for device in [PIXEL, PC] {
        let mine = call_1(device);
        let cancel = position(&mine, "push_received", Some("cancel")).expect("a cancel push");
        let ended = position(&mine, "call_ui_ended", None).expect("stopped ringing");
        assert_eq!(str_of(mine[cancel], "reason"), "answered_elsewhere");
        assert_eq!(str_of(mine[ended], "reason"), "answered_elsewhere");
        // Cause first: a push that stopped the ringing comes just before the end.
        assert!(cancel + 1 == ended || cancel > ended, "{device}: {mine:#?}");
        stopped_by_push.insert(device, cancel < ended);
    }
    let iphone = call_1(IPHONE);
    assert!(position(&iphone, "push_received", Some("cancel")).is_none(), "never a VoIP cancel on iOS");
    assert!(iphone
        .iter()
        .any(|l| str_of(l, "event") == "app_stopped_ringing" && str_of(l, "reason") == "answered_elsewhere"));

    // Every provider acceptance once per delivery, and each matches a push its device received.
    let mut accepted: HashMap<(String, String, String), usize> = HashMap::new();
    let mut delivery_ids = Vec::new();
    for l in lines.iter().filter(|l| str_of(l, "event") == "provider_accepted") {
        delivery_ids.push(str_of(l, "delivery_id").to_owned());
        let key =
            (str_of(l, "call_id").to_owned(), str_of(l, "device").to_owned(), str_of(l, "push").to_owned());
        *accepted.entry(key).or_default() += 1;
    }
    let mut unique = delivery_ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), delivery_ids.len(), "a delivery accepted twice: {delivery_ids:?}");
    let mut received: HashMap<(String, String, String), usize> = HashMap::new();
    for l in lines.iter().filter(|l| str_of(l, "source") == "device") {
        let push = match (str_of(l, "event"), str_of(l, "outcome")) {
            ("push_received", outcome @ ("ring" | "cancel")) => outcome,
            ("system_notification", _) => "missed",
            _ => continue,
        };
        let key = (str_of(l, "call_id").to_owned(), str_of(l, "device").to_owned(), push.to_owned());
        *received.entry(key).or_default() += 1;
    }
    assert_eq!(accepted, received, "acceptances on the server, pushes on the devices");
    let count = |call: &str, device: &str, push: &str| {
        accepted.get(&(call.to_owned(), device.to_owned(), push.to_owned())).copied().unwrap_or(0)
    };
    for device in DEVICES {
        assert_eq!(count("call-1", device, "ring"), 1, "{device}");
        assert_eq!(count("call-2", device, "ring"), 1, "{device}");
    }
    assert_eq!(count("call-1", IPHONE, "cancel"), 0);
    assert_eq!(count("call-2", IPHONE, "missed"), 1, "APNs missed-call alert");
    assert_eq!(count("call-2", MATE, "missed"), 1, "Push Kit MISS_CALL notification");

    // The summary: what rang, where it was answered, what stopped and how, what showed missed.
    let summary = |call: &str| {
        lines
            .iter()
            .find(|l| str_of(l, "event") == "call_summary" && str_of(l, "call_id") == call)
            .unwrap_or_else(|| panic!("no summary of {call}"))
    };
    let first = summary("call-1");
    assert_eq!(first["rang_on"].as_array().unwrap().len(), 4, "{first}");
    assert_eq!(first["answered_on"], MATE);
    let how = |s: &Value, device: &str| {
        s["stopped"].as_array().unwrap().iter().find(|x| x["device"] == device).map(|x| x["how"].clone())
    };
    for device in [PIXEL, PC] {
        let expected = if stopped_by_push[device] { "cancel_push" } else { "no_push" };
        assert_eq!(how(first, device).unwrap(), expected, "{device}: {first}");
    }
    assert_eq!(how(first, IPHONE).unwrap(), "no_push");
    assert!(how(first, MATE).is_none(), "answered there, not stopped");
    let second = summary("call-2");
    assert!(second["answered_on"].is_null());
    let shown = second["missed_shown"].as_array().unwrap();
    assert_eq!(shown.len(), 4, "every device shows the missed call: {second}");
    for m in shown {
        assert_eq!(m["notifications_shown"], 1, "one notification each: {m}");
        assert!(m["local_notification"].is_string(), "{m}");
    }

    // Wire v2: every device registered its own key, and the providers read nothing of the calls.
    for l in lines.iter().filter(|l| str_of(l, "event") == "registered") {
        assert_eq!(str_of(l, "wire"), "v2", "{l}");
    }
    let saw = lines.iter().find(|l| str_of(l, "event") == "providers_saw").expect("what the providers saw");
    assert!(saw["requests"].as_u64().unwrap() >= 8, "{saw}");
    assert_eq!((saw["naming_caller"].as_u64(), saw["naming_call"].as_u64()), (Some(0), Some(0)), "{saw}");
    for device in [MATE, IPHONE] {
        let m = shown.iter().find(|m| m["device"] == device).unwrap();
        assert_eq!(m["system_notification"], m["local_notification"], "local and system collapse: {m}");
    }
}

#[test]
fn text_streams_as_it_happens_and_has_no_colour_when_piped() {
    let started = Instant::now();
    let mut child = demo().stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let reader = BufReader::new(child.stdout.take().unwrap());
    let mut text = Vec::new();
    let mut running_at_first_call = None;
    for line in reader.lines() {
        let line = line.unwrap();
        if line.starts_with("Call 1:") && running_at_first_call.is_none() {
            // Printed as it happens: the first call's header comes while the demo still runs.
            running_at_first_call = Some(child.try_wait().unwrap().is_none());
        }
        text.push(line);
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "demo failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(started.elapsed() < BOUND, "the demo took {:?}", started.elapsed());
    assert_eq!(running_at_first_call, Some(true), "the header of call 1 came only at the end: {text:#?}");
    let all = text.join("\n");
    assert!(!all.contains('\x1b'), "no ANSI escapes when stdout is not a terminal: {all}");
    for heading in ["Call 1: Alice → Bob, video", "Call 2: Alice → Bob, voice", "Summary", "Next, try:"] {
        assert!(text.iter().any(|l| l.starts_with(heading)), "{heading}: {all}");
    }
    assert!(all.contains("collapse into one notification"), "{all}");
    let timeline: Vec<&String> = text.iter().filter(|l| l.trim_start().starts_with('+')).collect();
    assert!(timeline.len() > 40, "{all}");
    for line in &timeline {
        let time = line.split_whitespace().next().unwrap();
        assert!(time.starts_with('+') && time.contains('.'), "a relative time: {line}");
        let who_and_what = line.trim_start().split_once(" s  ").unwrap().1.trim_start();
        if who_and_what.starts_with("server ") {
            assert!(who_and_what.contains("[call-1]") || who_and_what.contains("[call-2]"), "{line}");
        }
    }
}

#[test]
fn help_documents_the_json_lines() {
    let out = Command::new(env!("CARGO_BIN_EXE_callpush-dev")).args(["demo", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for field in
        ["JSON Lines", "t_ms", "platform", "call_id", "push_received", "provider_accepted", "call_summary"]
    {
        assert!(help.contains(field), "{field}: {help}");
    }
}
