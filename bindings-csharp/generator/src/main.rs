//! `callpush-bindgen-cs`: generates callpush's C# binding, one file that declares the uniffi C
//! ABI for P/Invoke and the .NET API over it, from the built cdylib.
//!
//! ```text
//! callpush-bindgen-cs --library target/debug/libcallpush.so --out-dir <dir>
//! ```
//!
//! writes `<dir>/Callpush.g.cs`. The conventions of the generated API are in the README.

mod cs;
mod names;
mod native;

use anyhow::Result;
use heck::ToUpperCamelCase;
use uniffi_bindgen::{BindingGenerator, Component, GenerationSettings};

/// Settings read from `[bindings.csharp]` of a crate's `uniffi.toml`.
#[derive(Debug, Clone, Default)]
struct CsConfig {
    /// The C# namespace (default: the uniffi namespace in UpperCamelCase).
    namespace: Option<String>,
}

/// What the generated file is named after: its namespace and the native library it loads.
pub struct Target {
    pub namespace: String,
    /// The library name `[DllImport]` uses: `callpush` loads `callpush.dll` on Windows,
    /// `libcallpush.so` on Linux, `libcallpush.dylib` on macOS.
    pub library: String,
}

/// The C# backend, as a uniffi_bindgen [`BindingGenerator`].
struct CsBindingGenerator;

impl BindingGenerator for CsBindingGenerator {
    type Config = CsConfig;

    fn new_config(&self, root_toml: &toml::Value) -> Result<CsConfig> {
        let namespace = root_toml
            .get("bindings")
            .and_then(|b| b.get("csharp"))
            .and_then(|c| c.get("namespace"))
            .and_then(toml::Value::as_str)
            .map(str::to_owned);
        Ok(CsConfig { namespace })
    }

    fn update_component_configs(
        &self,
        _settings: &GenerationSettings,
        _components: &mut Vec<Component<CsConfig>>,
    ) -> Result<()> {
        Ok(())
    }

    fn write_bindings(
        &self,
        settings: &GenerationSettings,
        components: &[Component<CsConfig>],
    ) -> Result<()> {
        let component = callpush_bindgen::single(components)?;
        let ci = &component.ci;
        let api = callpush_bindgen::Api::new(ci, "C#")?;
        let target = Target {
            namespace: component
                .config
                .namespace
                .clone()
                .unwrap_or_else(|| ci.namespace().to_upper_camel_case()),
            library: settings.cdylib.clone().unwrap_or_else(|| ci.namespace().to_owned()),
        };
        std::fs::create_dir_all(&settings.out_dir)?;
        std::fs::write(settings.out_dir.join("Callpush.g.cs"), cs::generate(&api, &target)?)?;
        Ok(())
    }
}

fn main() -> Result<()> {
    callpush_bindgen::run("callpush-bindgen-cs", "C#", &CsBindingGenerator)
}
