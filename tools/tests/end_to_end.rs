//! The whole path on all four platforms: `callpush-dev demo` runs server, provider emulators and
//! four simulated devices (the real core client each) through an answered call and a missed one.

use std::process::Command;

use serde_json::Value;

#[test]
fn the_demo_runs_a_call_through_every_platform_and_prints_its_timeline() {
    let out = Command::new(env!("CARGO_BIN_EXE_callpush-dev")).args(["demo", "--json"]).output().unwrap();
    assert!(out.status.success(), "demo failed: {}", String::from_utf8_lossy(&out.stderr));
    let steps: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let said = |who: &str, what: &str| {
        steps.iter().any(|s| {
            s["who"].as_str().is_some_and(|w| w.contains(who))
                && s["what"].as_str().unwrap_or("").contains(what)
        })
    };
    for device in ["Mate 60", "Pixel", "iPhone", "PC"] {
        assert!(said(device, "push received → ring"), "{device} rang: {steps:#?}");
        assert!(said(device, "system call UI: ringing: Alice (video)"), "{device} showed the call");
    }
    // The answer on HarmonyOS stops the others the way each platform allows.
    assert!(said("Mate 60", "system call UI: answered"));
    assert!(said("Pixel", "push received → cancel (answered_elsewhere)"), "FCM gets a cancel push");
    assert!(said("PC", "push received → cancel (answered_elsewhere)"), "WNS gets a cancel push");
    assert!(said("iPhone", "app event: stopped ringing (answered_elsewhere)"), "iOS learns it by long-poll");
    assert!(!said("iPhone", "cancel (answered_elsewhere)"), "never a VoIP cancel on iOS");
    // The unanswered call ends in a missed call everywhere.
    assert!(said("iPhone", "system notification: Missed call"), "APNs missed-call alert");
    assert!(said("Mate 60", "system notification: Missed call"), "Push Kit MISS_CALL notification");
    assert!(said("Pixel", "app event: missed call"));
    assert!(said("PC", "app event: missed call"));
    assert!(said("server", "missed"));
    let times: Vec<u64> = steps.iter().map(|s| s["t_ms"].as_u64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in time order");
}

#[test]
fn the_demo_prints_a_readable_timeline() {
    let out = Command::new(env!("CARGO_BIN_EXE_callpush-dev")).arg("demo").output().unwrap();
    assert!(out.status.success(), "demo failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().count() > 20, "{text}");
    assert!(
        text.lines().all(|l| l.trim_start().chars().next().is_some_and(|c| c.is_ascii_digit())),
        "{text}"
    );
}
