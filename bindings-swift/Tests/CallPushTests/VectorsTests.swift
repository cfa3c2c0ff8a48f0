import Foundation
import XCTest

@testable import CallPush

/// Every shared vector in tests/vectors, through the core as Swift apps call it.
final class VectorsTests: XCTestCase {
    /// tests/vectors of this repository (or `CALLPUSH_VECTORS`).
    static let directory: URL = {
        if let dir = ProcessInfo.processInfo.environment["CALLPUSH_VECTORS"] {
            return URL(fileURLWithPath: dir, isDirectory: true)
        }
        return repositoryRoot.appendingPathComponent("tests/vectors", isDirectory: true)
    }()

    /// One vector: a push as the platform hands it over, the keys, the time, the installation's
    /// device key (wire v2 vectors only), and the decision.
    struct Vector {
        let name: String
        let platform: Platform
        let raw: String
        let keysJson: String
        let now: Int64
        let deviceKeyJson: String?
        let expected: [String: Any]
    }

    static func vectors() throws -> [Vector] {
        let files = try FileManager.default
            .contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "json" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        return try files.map { file -> Vector in
            let json = try XCTUnwrap(
                try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any],
                file.lastPathComponent
            )
            let keys = try JSONSerialization.data(withJSONObject: try XCTUnwrap(json["keys"]), options: [.sortedKeys])
            // `device_key`, the private X25519 JWK a wire v2 push is sealed to: absent on v1 vectors.
            let deviceKeyJson: String?
            if let deviceKey = json["device_key"], !(deviceKey is NSNull) {
                let object = try XCTUnwrap(deviceKey as? [String: Any], "\(file.lastPathComponent): device_key")
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                deviceKeyJson = String(decoding: data, as: UTF8.self)
            } else {
                deviceKeyJson = nil
            }
            return Vector(
                name: file.lastPathComponent,
                platform: try platform(try XCTUnwrap(json["platform"] as? String)),
                raw: try XCTUnwrap(json["raw"] as? String),
                keysJson: String(decoding: keys, as: UTF8.self),
                now: try XCTUnwrap((json["now"] as? NSNumber)?.int64Value),
                deviceKeyJson: deviceKeyJson,
                expected: try XCTUnwrap(json["expected"] as? [String: Any])
            )
        }
    }

    func testEveryVectorReachesItsExpectedDecision() throws {
        let vectors = try VectorsTests.vectors()
        XCTAssertGreaterThanOrEqual(vectors.count, 145, "vectors found in \(VectorsTests.directory.path)")
        var failures: [String] = []
        for vector in vectors {
            let decision = try inspectPush(
                platform: vector.platform,
                raw: vector.raw,
                keysJson: vector.keysJson,
                now: vector.now,
                deviceKeyJson: vector.deviceKeyJson
            )
            if let error = decision.error {
                XCTAssertFalse(error.message.isEmpty, "\(vector.name): errors carry a message")
            }
            let actual = try canonical(VectorsTests.json(decision))
            let expected = try canonical(vector.expected)
            if actual != expected {
                failures.append("\(vector.name):\n  expected \(expected)\n  actual   \(actual)")
            }
        }
        XCTAssertTrue(
            failures.isEmpty,
            "\(failures.count) of \(vectors.count) vectors failed:\n" + failures.joined(separator: "\n")
        )
    }

    func testAnUnusableKeySetIsATypedError() {
        XCTAssertThrowsError(try inspectPush(platform: .fcm, raw: "{}", keysJson: "{\"kty\":\"RSA\"}", now: 0)) { error in
            guard let error = error as? CallpushError, case .InvalidKey = error else {
                return XCTFail("got \(error)")
            }
        }
    }

    /// The decision in the shape of the vectors (the `inspect` JSON, errors by kind).
    static func json(_ decision: HandleOutcome) -> [String: Any] {
        var out: [String: Any] = [
            "outcome": name(decision.outcome),
            "report": name(decision.report),
        ]
        if let call = decision.call {
            let callerName: Any = call.callerName ?? NSNull()
            let reason: Any = call.reason.map { name($0) } ?? NSNull()
            let systemCallId: Any = call.systemCallId ?? NSNull()
            let described: [String: Any] = [
                "call_id": call.callId,
                "caller_id": call.callerId,
                "caller_name": callerName,
                "video": call.video,
                "callee": call.callee,
                "issued_at": call.issuedAt,
                "expires_at": call.expiresAt,
                "reason": reason,
                "system_call_id": systemCallId,
                "data": call.data,
            ]
            out["call"] = described
        }
        if let error = decision.error {
            out["error"] = ["kind": name(error.kind)]
        }
        return out
    }

    /// `object` as JSON with sorted keys: equal text for equal JSON.
    private func canonical(_ object: Any) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    static func platform(_ name: String) throws -> Platform {
        switch name {
        case "harmony": return .harmony
        case "fcm": return .fcm
        case "apns": return .apns
        case "wns": return .wns
        default: throw CallpushError.InvalidArgument(message: "unknown platform \(name)")
        }
    }

    static func name(_ outcome: Outcome) -> String {
        switch outcome {
        case .ring: return "ring"
        case .cancel: return "cancel"
        case .stale: return "stale"
        case .ignore: return "ignore"
        case .rejected: return "rejected"
        case .duplicate: return "duplicate"
        case .verify: return "verify"
        }
    }

    static func name(_ report: SystemReport) -> String {
        switch report {
        case .ring: return "ring"
        case .reportAndEnd: return "report_and_end"
        case .reportError: return "report_error"
        case .none: return "none"
        }
    }

    static func name(_ reason: CancelReason) -> String {
        switch reason {
        case .callerCancelled: return "caller_cancelled"
        case .answeredElsewhere: return "answered_elsewhere"
        case .declinedElsewhere: return "declined_elsewhere"
        case .timeout: return "timeout"
        }
    }

    static func name(_ kind: RejectionKind) -> String {
        switch kind {
        case .badSignature: return "bad_signature"
        case .unknownKey: return "unknown_key"
        case .malformed: return "malformed"
        case .unsupportedVersion: return "unsupported_version"
        case .wrongAudience: return "wrong_audience"
        case .undecryptable: return "undecryptable"
        case .downgraded: return "downgraded"
        }
    }
}

/// The root of this repository: bindings-swift/Tests/CallPushTests/ is three levels below it.
let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()
    .deletingLastPathComponent()
    .deletingLastPathComponent()
    .deletingLastPathComponent()
