//! What callpush's own uniffi backends share. uniffi ships Kotlin and Swift; the ArkTS
//! (`bindings-ets/generator`) and C# (`bindings-csharp/generator`) backends are ours, and both
//! need the same three things from a component interface:
//!
//! - [`Api`]: records, enums, functions, objects and foreign traits, each list sorted by name so
//!   the generated files never depend on the order uniffi iterates in;
//! - [`Conversions`]: which types cross in which direction, so each backend emits only the
//!   converters it uses (lifting reads what Rust sends, lowering writes what Rust receives);
//! - [`run`]: the command line, `--library <cdylib> --out-dir <dir>`, in uniffi's library mode.
//!
//! What differs per language (type names, keywords, comment syntax) stays in each backend.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use camino::Utf8PathBuf;
use uniffi_bindgen::interface::ffi::FfiFunction;
use uniffi_bindgen::interface::{
    AsType, DefaultValue, Enum, Function, Method, Object, ObjectImpl, Record, Type,
};
use uniffi_bindgen::{BindingGenerator, ComponentInterface, EmptyCrateConfigSupplier};

/// A foreign trait: a `with_foreign` trait object or a callback interface.
pub struct Trait<'a> {
    pub name: String,
    pub docstring: Option<String>,
    pub methods: Vec<&'a Method>,
    pub init_fn: FfiFunction,
    /// For a `with_foreign` trait: the object, which Rust may also implement and hand out.
    pub object: Option<&'a Object>,
}

/// The component interface, every list sorted by name.
pub struct Api<'a> {
    pub ci: &'a ComponentInterface,
    pub records: Vec<&'a Record>,
    pub enums: Vec<&'a Enum>,
    pub functions: Vec<&'a Function>,
    /// Objects implemented in Rust only.
    pub objects: Vec<&'a Object>,
    pub traits: Vec<Trait<'a>>,
    /// The FFI functions a binding may call (everything but the RustBuffer helpers).
    pub ffi_functions: Vec<FfiFunction>,
    pub checksums: Vec<(String, u16)>,
}

impl<'a> Api<'a> {
    /// Collects and sorts the interface; fails on what neither backend supports (custom and set
    /// types, an object that is both constructed by the app and returned by Rust). `backend`
    /// names the backend in those errors.
    pub fn new(ci: &'a ComponentInterface, backend: &str) -> Result<Self> {
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
                match unbox(t) {
                    Type::Custom { name, .. } => {
                        bail!("custom type `{name}` is not supported by the {backend} backend")
                    }
                    Type::Set { .. } => bail!("set types are not supported by the {backend} backend"),
                    _ => {}
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

    /// The record named `name`.
    pub fn record(&self, name: &str) -> Option<&&'a Record> {
        self.records.iter().find(|r| r.name() == name)
    }

    /// The enum (or error) named `name`.
    pub fn enumeration(&self, name: &str) -> Option<&&'a Enum> {
        self.enums.iter().find(|e| e.name() == name)
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

/// Whether a trait object type is implemented in the foreign language.
pub fn is_foreign_trait(t: &Type) -> bool {
    matches!(t, Type::CallbackInterface { .. })
        || matches!(t, Type::Object { imp, .. } if *imp != ObjectImpl::Struct)
}

/// Whether `t` is a number (any width, integer or float).
pub fn is_number(t: &Type) -> bool {
    matches!(
        t,
        Type::UInt8
            | Type::Int8
            | Type::UInt16
            | Type::Int16
            | Type::UInt32
            | Type::Int32
            | Type::UInt64
            | Type::Int64
            | Type::Float32
            | Type::Float64
    )
}

/// The default of each parameter (a record field or a function argument, given as its uniffi
/// default and type) that may have one: `literal` renders a uniffi default in the target
/// language, and a default is kept only when every later parameter has one too, since both
/// languages allow defaults only at the end of a parameter list.
pub fn trailing_defaults<'a>(
    params: impl DoubleEndedIterator<Item = (Option<&'a DefaultValue>, Type)>,
    literal: impl Fn(&DefaultValue, &Type) -> Option<String>,
) -> Vec<Option<String>> {
    let mut defaults = Vec::new();
    let mut allowed = true;
    for (default, t) in params.rev() {
        let default = if allowed { default.and_then(|d| literal(d, &t)) } else { None };
        allowed = default.is_some();
        defaults.push(default);
    }
    defaults.reverse();
    defaults
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

/// The directions one type crosses the FFI in.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Directions {
    /// Rust sends it: the binding reads (lifts) it.
    pub lift: bool,
    /// Rust receives it: the binding writes (lowers) it.
    pub lower: bool,
}

/// Every type the interface moves across the FFI, by [`type_id`], with its directions; nested
/// types (fields, variants, elements) included.
pub struct Conversions(BTreeMap<String, (Type, Directions)>);

impl Conversions {
    /// Walks every function, method, constructor and foreign-trait method of `api`.
    pub fn of(api: &Api) -> Self {
        let mut c = Conversions(BTreeMap::new());
        let callables =
            api.functions
                .iter()
                .map(|f| (f.arguments(), f.return_type(), f.throws_type()))
                .chain(api.objects.iter().flat_map(|o| {
                    o.constructors().into_iter().map(|c| (c.arguments(), None, c.throws_type())).chain(
                        o.methods().into_iter().map(|m| (m.arguments(), m.return_type(), m.throws_type())),
                    )
                }))
                .collect::<Vec<_>>();
        for (args, ret, throws) in callables {
            for a in args {
                c.mark(api, &a.as_type(), false);
            }
            for t in ret.into_iter().chain(throws) {
                c.mark(api, t, true);
            }
        }
        for t in &api.traits {
            for m in &t.methods {
                for a in m.arguments() {
                    c.mark(api, &a.as_type(), true);
                }
                for t in m.return_type().into_iter().chain(m.throws_type()) {
                    c.mark(api, t, false);
                }
                // Rust's own implementations (`<Trait>Impl`) are called the other way round.
                if t.object.is_some() {
                    for a in m.arguments() {
                        c.mark(api, &a.as_type(), false);
                    }
                    for t in m.return_type().into_iter().chain(m.throws_type()) {
                        c.mark(api, t, true);
                    }
                }
            }
        }
        c
    }

    /// Every type with its directions, in [`type_id`] order.
    pub fn iter(&self) -> impl Iterator<Item = (&Type, Directions)> {
        self.0.values().map(|(t, d)| (t, *d))
    }

    /// The directions of `t` (none when the interface never moves it).
    pub fn directions(&self, t: &Type) -> Directions {
        self.0.get(&type_id(&unbox(t))).map(|(_, d)| *d).unwrap_or_default()
    }

    fn mark(&mut self, api: &Api, t: &Type, lift: bool) {
        let t = unbox(t);
        let entry = self.0.entry(type_id(&t)).or_insert((t.clone(), Directions::default()));
        let seen = if lift { entry.1.lift } else { entry.1.lower };
        if lift {
            entry.1.lift = true;
        } else {
            entry.1.lower = true;
        }
        if seen {
            return;
        }
        match &t {
            Type::Optional { inner_type } | Type::Sequence { inner_type } => self.mark(api, inner_type, lift),
            Type::Map { key_type, value_type } => {
                self.mark(api, key_type, lift);
                self.mark(api, value_type, lift);
            }
            Type::Record { name, .. } => {
                if let Some(r) = api.record(name) {
                    for f in r.fields() {
                        self.mark(api, &f.as_type(), lift);
                    }
                }
            }
            Type::Enum { name, .. } => {
                if let Some(e) = api.enumeration(name) {
                    let flat_error = api.is_error(name) && e.is_flat();
                    if !flat_error {
                        for v in e.variants() {
                            for f in v.fields() {
                                self.mark(api, &f.as_type(), lift);
                            }
                        }
                    }
                    // A flat error carries its message as a string.
                    if flat_error && lift {
                        self.mark(api, &Type::String, true);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The command line of a backend: `<bin> --library <cdylib> --out-dir <dir>`, generating with
/// `generator` from every component the library holds (callpush's is the one).
pub fn run<G: BindingGenerator>(bin: &str, language: &str, generator: &G) -> Result<()> {
    let usage = format!("usage: {bin} --library <libcallpush.so> --out-dir <dir>");
    let mut library = None;
    let mut out_dir = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--library" => library = args.next().map(Utf8PathBuf::from),
            "--out-dir" => out_dir = args.next().map(Utf8PathBuf::from),
            "-h" | "--help" => {
                println!("{usage}");
                return Ok(());
            }
            other => bail!("unknown argument `{other}`\n{usage}"),
        }
    }
    let library =
        library.with_context(|| format!("--library <path to libcallpush.so> is required\n{usage}"))?;
    let out_dir = out_dir.with_context(|| format!("--out-dir <dir> is required\n{usage}"))?;
    uniffi_bindgen::library_mode::generate_bindings(
        &library,
        None,
        generator,
        &EmptyCrateConfigSupplier,
        None,
        &out_dir,
        true,
    )
    .with_context(|| format!("generating {language} bindings from {library}"))?;
    Ok(())
}

/// The single component a backend generates for (callpush's library holds one).
pub fn single<T>(components: &[T]) -> Result<&T> {
    match components {
        [component] => Ok(component),
        _ => bail!("expected exactly one uniffi component in the library, found {}", components.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_ids_name_nested_types() {
        let s = || Box::new(Type::String);
        assert_eq!(type_id(&Type::Map { key_type: s(), value_type: Box::new(Type::Int64) }), "MapStringI64");
        assert_eq!(
            type_id(&Type::Sequence { inner_type: Box::new(Type::Optional { inner_type: s() }) }),
            "SequenceOptionalString"
        );
        assert_eq!(type_id(&Type::Box { inner_type: s() }), "String");
    }
}
