//! What the three outputs share: names and the mapping of uniffi types to ArkTS and FFI types.
//! The interface itself, in a stable order, comes from `callpush-bindgen`.

use anyhow::{bail, Result};
use heck::{ToLowerCamelCase, ToShoutySnakeCase, ToUpperCamelCase};
use uniffi_bindgen::interface::ffi::FfiType;
use uniffi_bindgen::interface::Type;

pub use callpush_bindgen::{is_foreign_trait, type_id, unbox, Api, Trait};

/// The ArkTS type of a uniffi type.
pub fn ts_type(t: &Type) -> String {
    match t {
        Type::UInt8
        | Type::Int8
        | Type::UInt16
        | Type::Int16
        | Type::UInt32
        | Type::Int32
        | Type::Float32
        | Type::Float64
        | Type::Duration => "number".into(),
        Type::UInt64 | Type::Int64 => "bigint".into(),
        Type::Boolean => "boolean".into(),
        Type::String => "string".into(),
        Type::Bytes => "Uint8Array".into(),
        Type::Timestamp => "Date".into(),
        Type::Object { name, .. }
        | Type::Record { name, .. }
        | Type::Enum { name, .. }
        | Type::CallbackInterface { name, .. }
        | Type::Custom { name, .. } => class_name(name),
        Type::Box { inner_type } => ts_type(inner_type),
        Type::Optional { inner_type } => format!("{} | undefined", ts_type(inner_type)),
        Type::Sequence { inner_type } | Type::Set { inner_type } => match **inner_type {
            Type::Optional { .. } => format!("({})[]", ts_type(inner_type)),
            _ => format!("{}[]", ts_type(inner_type)),
        },
        Type::Map { key_type, value_type } => format!("Map<{}, {}>", ts_type(key_type), ts_type(value_type)),
    }
}

/// The FFI type a value of `t` crosses the C ABI as.
pub fn ffi_type(t: &Type) -> FfiType {
    FfiType::from(t)
}

/// The ArkTS type of an FFI value as the bridge passes it.
pub fn ffi_ts_type(t: &FfiType) -> Result<&'static str> {
    Ok(match t {
        FfiType::UInt8
        | FfiType::Int8
        | FfiType::UInt16
        | FfiType::Int16
        | FfiType::UInt32
        | FfiType::Int32
        | FfiType::Float32
        | FfiType::Float64 => "number",
        FfiType::UInt64 | FfiType::Int64 | FfiType::Handle => "bigint",
        FfiType::RustBuffer(_) => "Uint8Array",
        other => bail!("FFI type {other:?} cannot cross to JS"),
    })
}

/// TypeScript keywords that cannot name a parameter.
const RESERVED: &[&str] = &[
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "import",
    "in",
    "instanceof",
    "new",
    "null",
    "return",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "implements",
    "interface",
    "let",
    "package",
    "private",
    "protected",
    "public",
    "static",
    "yield",
    "await",
    "native",
    "status",
];

/// A parameter or local name: lowerCamelCase, never a keyword.
pub fn var_name(name: &str) -> String {
    let n = name.to_lower_camel_case();
    if RESERVED.contains(&n.as_str()) {
        format!("{n}Value")
    } else {
        n
    }
}

/// A field or method name: lowerCamelCase.
pub fn member_name(name: &str) -> String {
    name.to_lower_camel_case()
}

/// A class, interface or enum name: UpperCamelCase.
pub fn class_name(name: &str) -> String {
    name.to_upper_camel_case()
}

/// An enum member: UPPER_SNAKE_CASE.
pub fn enum_member(name: &str) -> String {
    name.to_shouty_snake_case()
}

/// A JSDoc comment with `indent`, or nothing.
pub fn jsdoc(doc: Option<&str>, indent: &str) -> String {
    let Some(doc) = doc.map(str::trim).filter(|d| !d.is_empty()) else {
        return String::new();
    };
    let mut out = format!("{indent}/**\n");
    for line in doc.replace("*/", "*\\/").lines() {
        if line.trim().is_empty() {
            out.push_str(&format!("{indent} *\n"));
        } else {
            out.push_str(&format!("{indent} * {}\n", line.trim_end()));
        }
    }
    out.push_str(&format!("{indent} */\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_arkts_conventions() {
        assert_eq!(member_name("timeout_ms"), "timeoutMs");
        assert_eq!(member_name("use_"), "use");
        assert_eq!(class_name("CallpushError"), "CallpushError");
        assert_eq!(enum_member("ReportAndEnd"), "REPORT_AND_END");
        assert_eq!(var_name("default"), "defaultValue");
        assert_eq!(var_name("status"), "statusValue");
        assert_eq!(var_name("call_id"), "callId");
    }

    #[test]
    fn types_map_to_arkts() {
        let s = || Box::new(Type::String);
        assert_eq!(ts_type(&Type::UInt64), "bigint");
        assert_eq!(ts_type(&Type::UInt32), "number");
        assert_eq!(ts_type(&Type::Bytes), "Uint8Array");
        assert_eq!(ts_type(&Type::Timestamp), "Date");
        assert_eq!(ts_type(&Type::Duration), "number");
        assert_eq!(ts_type(&Type::Optional { inner_type: s() }), "string | undefined");
        assert_eq!(
            ts_type(&Type::Sequence { inner_type: Box::new(Type::Optional { inner_type: s() }) }),
            "(string | undefined)[]"
        );
        assert_eq!(ts_type(&Type::Map { key_type: s(), value_type: s() }), "Map<string, string>");
    }

    #[test]
    fn jsdoc_escapes_and_indents() {
        assert_eq!(jsdoc(None, ""), "");
        assert_eq!(jsdoc(Some("  "), ""), "");
        assert_eq!(
            jsdoc(Some("One.\n\nTwo */ end"), "  "),
            "  /**\n   * One.\n   *\n   * Two *\\/ end\n   */\n"
        );
    }
}
