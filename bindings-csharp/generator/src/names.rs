//! C# names and types of uniffi items, and XML doc comments.

use anyhow::{bail, Result};
use heck::{ToLowerCamelCase, ToUpperCamelCase};
use uniffi_bindgen::interface::ffi::FfiType;
use uniffi_bindgen::interface::Type;

/// C# keywords, which a parameter may only use with an `@` prefix.
const KEYWORDS: &[&str] = &[
    "abstract",
    "as",
    "base",
    "bool",
    "break",
    "byte",
    "case",
    "catch",
    "char",
    "checked",
    "class",
    "const",
    "continue",
    "decimal",
    "default",
    "delegate",
    "do",
    "double",
    "else",
    "enum",
    "event",
    "explicit",
    "extern",
    "false",
    "finally",
    "fixed",
    "float",
    "for",
    "foreach",
    "goto",
    "if",
    "implicit",
    "in",
    "int",
    "interface",
    "internal",
    "is",
    "lock",
    "long",
    "namespace",
    "new",
    "null",
    "object",
    "operator",
    "out",
    "override",
    "params",
    "private",
    "protected",
    "public",
    "readonly",
    "ref",
    "return",
    "sbyte",
    "sealed",
    "short",
    "sizeof",
    "stackalloc",
    "static",
    "string",
    "struct",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "uint",
    "ulong",
    "unchecked",
    "unsafe",
    "ushort",
    "using",
    "virtual",
    "void",
    "volatile",
    "while",
];

/// A class, struct, enum, property or method name: UpperCamelCase.
pub fn class_name(name: &str) -> String {
    name.to_upper_camel_case()
}

/// An error type's name: `CallpushError` becomes `CallpushException`, as .NET names exceptions.
pub fn exception_name(name: &str) -> String {
    let n = class_name(name);
    match n.strip_suffix("Error") {
        Some(stem) => format!("{stem}Exception"),
        None => format!("{n}Exception"),
    }
}

/// A foreign trait's interface name: `HttpClient` becomes `IHttpClient`.
pub fn interface_name(name: &str) -> String {
    format!("I{}", class_name(name))
}

/// A parameter name: lowerCamelCase, `@`-prefixed when it is a keyword.
pub fn param_name(name: &str) -> String {
    let n = name.to_lower_camel_case();
    if KEYWORDS.contains(&n.as_str()) {
        format!("@{n}")
    } else {
        n
    }
}

/// A method name; `Async` is appended to asynchronous ones, as .NET does.
pub fn method_name(name: &str, is_async: bool) -> String {
    let n = class_name(name);
    if is_async {
        format!("{n}Async")
    } else {
        n
    }
}

/// Whether the C# type of `t` is a value type (its optional is `T?`).
pub fn is_value_type(t: &Type, is_class_enum: impl Fn(&str) -> bool) -> bool {
    match t {
        Type::Boolean => true,
        t if callpush_bindgen::is_number(t) => true,
        Type::Enum { name, .. } => !is_class_enum(name),
        _ => false,
    }
}

/// The C# type of a uniffi type. `is_class_enum` says which enums are class hierarchies
/// (enums with fields) rather than C# enums; `error` names error types.
pub fn cs_type(
    t: &Type,
    is_class_enum: &impl Fn(&str) -> bool,
    is_error: &impl Fn(&str) -> bool,
) -> Result<String> {
    Ok(match t {
        Type::UInt8 => "byte".into(),
        Type::Int8 => "sbyte".into(),
        Type::UInt16 => "ushort".into(),
        Type::Int16 => "short".into(),
        Type::UInt32 => "uint".into(),
        Type::Int32 => "int".into(),
        Type::UInt64 => "ulong".into(),
        Type::Int64 => "long".into(),
        Type::Float32 => "float".into(),
        Type::Float64 => "double".into(),
        Type::Boolean => "bool".into(),
        Type::String => "string".into(),
        Type::Bytes => "byte[]".into(),
        Type::Enum { name, .. } if is_error(name) => exception_name(name),
        Type::Object { name, .. } | Type::Record { name, .. } | Type::Enum { name, .. } => {
            if callpush_bindgen::is_foreign_trait(t) {
                interface_name(name)
            } else {
                class_name(name)
            }
        }
        Type::CallbackInterface { name, .. } => interface_name(name),
        Type::Box { inner_type } => cs_type(inner_type, is_class_enum, is_error)?,
        Type::Optional { inner_type } => {
            if matches!(**inner_type, Type::Optional { .. }) {
                bail!("an optional of an optional has no C# type");
            }
            let inner = cs_type(inner_type, is_class_enum, is_error)?;
            if is_value_type(inner_type, is_class_enum) {
                format!("{inner}?")
            } else {
                inner
            }
        }
        Type::Sequence { inner_type } => {
            format!("IReadOnlyList<{}>", cs_type(inner_type, is_class_enum, is_error)?)
        }
        Type::Map { key_type, value_type } => format!(
            "IReadOnlyDictionary<{}, {}>",
            cs_type(key_type, is_class_enum, is_error)?,
            cs_type(value_type, is_class_enum, is_error)?
        ),
        other => bail!("{other:?} is not supported by the C# backend"),
    })
}

/// The C# type of an FFI value in P/Invoke declarations and FFI structs. `in_callback` is for
/// the parameters of functions Rust calls: function pointers stay `IntPtr` there, to be turned
/// into delegates only when called.
pub fn ffi_cs_type(t: &FfiType, in_callback: bool) -> Result<String> {
    Ok(match t {
        FfiType::UInt8 => "byte".into(),
        FfiType::Int8 => "sbyte".into(),
        FfiType::UInt16 => "ushort".into(),
        FfiType::Int16 => "short".into(),
        FfiType::UInt32 => "uint".into(),
        FfiType::Int32 => "int".into(),
        FfiType::UInt64 | FfiType::Handle => "ulong".into(),
        FfiType::Int64 => "long".into(),
        FfiType::Float32 => "float".into(),
        FfiType::Float64 => "double".into(),
        FfiType::RustBuffer(_) => "RustBuffer".into(),
        FfiType::ForeignBytes => "ForeignBytes".into(),
        FfiType::RustCallStatus => "UniffiRustCallStatus".into(),
        FfiType::Callback(_) if in_callback => "IntPtr".into(),
        FfiType::Callback(name) => ffi_name(name),
        FfiType::Struct(name) => ffi_name(name),
        FfiType::Reference(_) | FfiType::MutReference(_) | FfiType::VoidPointer => "IntPtr".into(),
    })
}

/// The C# name of an FFI callback or struct type: uniffi's name with the `Uniffi` prefix its C
/// header uses.
pub fn ffi_name(name: &str) -> String {
    format!("Uniffi{name}")
}

/// XML documentation (`/// <summary>`) with `indent`, or nothing.
pub fn xml_doc(doc: Option<&str>, indent: &str) -> String {
    let Some(doc) = doc.map(str::trim).filter(|d| !d.is_empty()) else {
        return String::new();
    };
    let escaped = doc.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let mut out = format!("{indent}/// <summary>\n");
    for line in escaped.lines() {
        if line.trim().is_empty() {
            out.push_str(&format!("{indent}///\n"));
        } else {
            out.push_str(&format!("{indent}/// {}\n", line.trim_end()));
        }
    }
    out.push_str(&format!("{indent}/// </summary>\n"));
    out
}

/// `<exception cref="...">` for a throwing call, or nothing.
pub fn xml_throws(exception: Option<&str>, indent: &str) -> String {
    match exception {
        Some(e) => format!(
            "{indent}/// <exception cref=\"{e}\">When the call fails; see its subclasses.</exception>\n"
        ),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dotnet_conventions() {
        assert_eq!(class_name("timeout_ms"), "TimeoutMs");
        assert_eq!(exception_name("CallpushError"), "CallpushException");
        assert_eq!(exception_name("Refusal"), "RefusalException");
        assert_eq!(interface_name("HttpClient"), "IHttpClient");
        assert_eq!(param_name("event"), "@event");
        assert_eq!(param_name("call_id"), "callId");
        assert_eq!(method_name("register_push", true), "RegisterPushAsync");
        assert_eq!(method_name("tick", false), "Tick");
    }

    #[test]
    fn docs_are_escaped_xml() {
        assert_eq!(xml_doc(None, ""), "");
        assert_eq!(
            xml_doc(Some("A <b> & c.\n\nTwo."), "    "),
            "    /// <summary>\n    /// A &lt;b&gt; &amp; c.\n    ///\n    /// Two.\n    /// </summary>\n"
        );
    }

    #[test]
    fn ffi_types_map_to_blittable_cs() {
        assert_eq!(ffi_cs_type(&FfiType::Handle, false).unwrap(), "ulong");
        assert_eq!(ffi_cs_type(&FfiType::Callback("X".into()), false).unwrap(), "UniffiX");
        assert_eq!(ffi_cs_type(&FfiType::Callback("X".into()), true).unwrap(), "IntPtr");
        assert_eq!(ffi_cs_type(&FfiType::VoidPointer, false).unwrap(), "IntPtr");
    }
}
