import CryptoKit
import Foundation

/// The CallKit UUID of a call: a name-based UUID (version 5, RFC 4122 §4.3) of its call id.
///
/// The same call id always gives the same UUID, on every device and after a restart, so a call
/// reported twice (a retried push, the push and the app's own socket) is one call to CallKit: the
/// second report is refused as `callUUIDAlreadyExists` instead of ringing again.
public enum CallUUID {
    /// The namespace of callpush call ids: UUID v5 of the URL `https://callpush.dev/calls` in the
    /// RFC 4122 URL namespace, `cca9e5c5-96d5-5f58-adcc-e1bb3b6c1092`.
    public static let namespace = UUID(uuid: (
        0xCC, 0xA9, 0xE5, 0xC5, 0x96, 0xD5, 0x5F, 0x58,
        0xAD, 0xCC, 0xE1, 0xBB, 0x3B, 0x6C, 0x10, 0x92
    ))

    /// The UUID CallKit knows the call `callId` by.
    public static func make(callId: String) -> UUID {
        make(name: callId, namespace: namespace)
    }

    /// A version 5 UUID: SHA-1 of the namespace's 16 bytes followed by the name's UTF-8 bytes,
    /// cut to 16 bytes, with the version and variant bits set.
    public static func make(name: String, namespace: UUID) -> UUID {
        var input = withUnsafeBytes(of: namespace.uuid) { Data($0) }
        input.append(contentsOf: Array(name.utf8))
        var bytes = Array(Insecure.SHA1.hash(data: input).prefix(16))
        bytes[6] = (bytes[6] & 0x0F) | 0x50
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        return UUID(uuid: (
            bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
            bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
        ))
    }
}
