//! What the three outputs share: the component interface in a stable order, names and the
//! mapping of uniffi types to ArkTS and FFI types.

use anyhow::{bail, Result};
use heck::{ToLowerCamelCase, ToShoutySnakeCase, ToUpperCamelCase};
use uniffi_bindgen::interface::ffi::{FfiFunction, FfiType};
use uniffi_bindgen::interface::{AsType, Enum, Function, Method, Object, ObjectImpl, Record, Type};
use uniffi_bindgen::ComponentInterface;

/// A foreign trait: a `with_foreign` trait object or a callback interface.
pub struct Trait<'a> {
    pub name: String,
    pub docstring: Option<String>,
    pub methods: Vec<&'a Method>,
    pub init_fn: FfiFunction,
    /// For a `with_foreign` trait: the object, which Rust may also implement and hand out.
    pub object: Option<&'a Object>,
}

/// The component interface, every list sorted by name so the output never depends on the
/// order uniffi happens to iterate in.
pub struct Api<'a> {
    pub ci: &'a ComponentInterface,
    pub records: Vec<&'a Record>,
    pub enums: Vec<&'a Enum>,
    pub functions: Vec<&'a Function>,
    /// Objects implemented in Rust only.
    pub objects: Vec<&'a Object>,
    pub traits: Vec<Trait<'a>>,
    /// The FFI functions JS may call (everything but the RustBuffer helpers the bridge owns).
    pub ffi_functions: Vec<FfiFunction>,
    pub checksums: Vec<(String, u16)>,
}

impl<'a> Api<'a> {
    /// Collects and sorts the interface; fails on what this backend does not support.
    pub fn new(ci: &'a ComponentInterface) -> Result<Self> {
        let mut records: Vec<&Record> = ci.record_definitions().iter().collect();
        records.sort_by(|a, b| a.name().cmp(b.name()));
        let mut enums: Vec<&Enum> = ci.enum_definitions().iter().collect();
        enums.sort_by(|a, b| a.name().cmp(b.name()));
        let mut functions: Vec<&Function> = ci.function_definitions().iter().collect();
        functions.sort_by(|a, b| a.name().cmp(b.name()));
        let mut objects: Vec<&Object> = Vec::new();
        let mut traits: Vec<Trait<'a>> = Vec::new();
        for o in ci.object_definitions() {
            if o.has_callback_interface() {
                traits.push(Trait {
                    name: o.name().to_owned(),
                    docstring: o.docstring().map(str::to_owned),
                    methods: o.methods(),
                    init_fn: o.ffi_init_callback().clone(),
                    object: Some(o),
                });
            } else {
                objects.push(o);
            }
        }
        for cb in ci.callback_interface_definitions() {
            traits.push(Trait {
                name: cb.name().to_owned(),
                docstring: cb.docstring().map(str::to_owned),
                methods: cb.methods(),
                init_fn: cb.ffi_init_callback().clone(),
                object: None,
            });
        }
        objects.sort_by(|a, b| a.name().cmp(b.name()));
        traits.sort_by(|a, b| a.name.cmp(&b.name));
        for t in ci.iter_local_types() {
            for t in t.iter_types() {
                let t = unbox(t);
                if let Type::Custom { name, .. } = &t {
                    bail!("custom type `{name}` is not supported by the ArkTS backend");
                }
                if let Type::Set { .. } = &t {
                    bail!("set types are not supported by the ArkTS backend");
                }
            }
        }
        let mut ffi_functions: Vec<FfiFunction> =
            ci.iter_ffi_function_definitions().filter(|f| !f.name().contains("_rustbuffer_")).collect();
        ffi_functions.sort_by(|a, b| a.name().cmp(b.name()));
        let mut checksums: Vec<(String, u16)> = ci.iter_checksums().collect();
        checksums.sort();
        for o in &objects {
            if o.primary_constructor().is_some() && api_returns_object(ci, o.name()) {
                bail!("object `{}` has a primary constructor and is returned by Rust: unsupported", o.name());
            }
        }
        Ok(Api { ci, records, enums, functions, objects, traits, ffi_functions, checksums })
    }

    /// Whether `name` is an error type.
    pub fn is_error(&self, name: &str) -> bool {
        self.ci.is_name_used_as_error(name)
    }

    /// The object (Rust-implemented) named `name`.
    pub fn object(&self, name: &str) -> Option<&&'a Object> {
        self.objects.iter().find(|o| o.name() == name)
    }
}

fn api_returns_object(ci: &ComponentInterface, name: &str) -> bool {
    let returns = |t: Option<&Type>| t.is_some_and(|t| t.iter_types().any(|t| is_object_named(t, name)));
    ci.function_definitions().iter().any(|f| returns(f.return_type()))
        || ci.object_definitions().iter().flat_map(|o| o.methods()).any(|m| returns(m.return_type()))
        || ci.record_definitions().iter().flat_map(|r| r.fields()).any(|f| returns(Some(&f.as_type())))
}

fn is_object_named(t: &Type, name: &str) -> bool {
    matches!(t, Type::Object { name: n, .. } if n == name)
}

/// `Box<T>` is `T` to the bindings.
pub fn unbox(t: &Type) -> Type {
    match t {
        Type::Box { inner_type } => unbox(inner_type),
        other => other.clone(),
    }
}

/// A stable identifier for a type, used to name its converter functions.
pub fn type_id(t: &Type) -> String {
    match t {
        Type::UInt8 => "U8".into(),
        Type::Int8 => "I8".into(),
        Type::UInt16 => "U16".into(),
        Type::Int16 => "I16".into(),
        Type::UInt32 => "U32".into(),
        Type::Int32 => "I32".into(),
        Type::UInt64 => "U64".into(),
        Type::Int64 => "I64".into(),
        Type::Float32 => "F32".into(),
        Type::Float64 => "F64".into(),
        Type::Boolean => "Bool".into(),
        Type::String => "String".into(),
        Type::Bytes => "Bytes".into(),
        Type::Timestamp => "Timestamp".into(),
        Type::Duration => "Duration".into(),
        Type::Object { name, .. }
        | Type::Record { name, .. }
        | Type::Enum { name, .. }
        | Type::CallbackInterface { name, .. }
        | Type::Custom { name, .. } => format!("Type{name}"),
        Type::Box { inner_type } => type_id(inner_type),
        Type::Optional { inner_type } => format!("Optional{}", type_id(inner_type)),
        Type::Sequence { inner_type } => format!("Sequence{}", type_id(inner_type)),
        Type::Set { inner_type } => format!("Set{}", type_id(inner_type)),
        Type::Map { key_type, value_type } => format!("Map{}{}", type_id(key_type), type_id(value_type)),
    }
}

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

/// Whether a trait object type is implemented in the foreign language.
pub fn is_foreign_trait(t: &Type) -> bool {
    matches!(t, Type::CallbackInterface { .. })
        || matches!(t, Type::Object { imp, .. } if *imp != ObjectImpl::Struct)
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
        assert_eq!(type_id(&Type::Map { key_type: s(), value_type: Box::new(Type::Int64) }), "MapStringI64");
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
