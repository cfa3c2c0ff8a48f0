//! The shared vectors: checked in, up to date with the encoder, and passed by the core.

use callpush_client::adapter::{adapter_for, HandleContext};
use callpush_client::model::{Platform, RawPush};
use callpush_client::wire::{DeviceSecret, KeySet};
use callpush_tests::vectors::{self, Vector};

fn checked_in() -> Vec<Vector> {
    vectors::load(&vectors::dir())
}

#[test]
fn checked_in_vectors_match_what_the_generator_makes() {
    let generated = vectors::generate();
    let on_disk: Vec<Vector> =
        checked_in().into_iter().filter(|v| !vectors::made_elsewhere(&v.name)).collect();
    let names = |v: &[Vector]| v.iter().map(|v| v.name.clone()).collect::<std::collections::BTreeSet<_>>();
    assert_eq!(names(&on_disk), names(&generated), "run tests/vectors/generate.sh");
    for vector in &generated {
        let disk = on_disk.iter().find(|v| v.name == vector.name).unwrap();
        assert_eq!(disk, vector, "{} drifted: run tests/vectors/generate.sh", vector.name);
    }
}

#[test]
fn every_platform_has_vectors_made_by_another_jose_implementation() {
    let all = checked_in();
    for platform in Platform::ALL {
        let n = all.iter().filter(|v| v.platform == platform && vectors::made_elsewhere(&v.name)).count();
        assert!(n >= 4, "{platform} has {n} vectors made by npm jose");
    }
}

#[test]
fn every_platform_has_at_least_twelve_vectors() {
    let all = checked_in();
    for platform in Platform::ALL {
        let n = all.iter().filter(|v| v.platform == platform).count();
        assert!(n >= 12, "{platform} has {n} vectors");
    }
}

#[test]
fn the_core_reaches_every_expected_decision() {
    let mut failures = Vec::new();
    let all = checked_in();
    for vector in &all {
        let keys = KeySet::from_json(&vector.keys.to_string()).unwrap();
        // A vector with a device key is decided by an installation switched to wire v2.
        let device_keys: Vec<DeviceSecret> = vector.device_secret().into_iter().collect();
        let ctx = HandleContext {
            keys: &keys,
            now: vector.now,
            audience: None,
            device_keys: &device_keys,
            accepts_v1: device_keys.is_empty(),
        };
        let outcome = adapter_for(vector.platform).handle(&RawPush::from(vector.raw.as_str()), &ctx);
        if let Err(e) = vectors::check(vector, &serde_json::to_value(&outcome).unwrap()) {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} vectors failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}
