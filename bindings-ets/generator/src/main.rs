//! `callpush-bindgen-ets`: generates callpush's ArkTS API, the typed declaration of its native
//! module and the N-API bridge that calls uniffi's C ABI, from the built cdylib.
//!
//! ```text
//! callpush-bindgen-ets --library target/debug/libcallpush.so --out-dir <dir>
//! ```
//!
//! writes `<dir>/callpush.ets`, `<dir>/index.d.ts` and `<dir>/generated.rs`. See README.md for
//! the conventions of the generated API.

mod bridge;
mod dts;
mod ets;
mod model;

use std::process::Command;

use anyhow::{bail, Context, Result};
use uniffi_bindgen::{BindingGenerator, Component, GenerationSettings};

/// Settings read from `[bindings.ets]` of a crate's `uniffi.toml` (none are required).
#[derive(Debug, Clone, Default)]
struct EtsConfig {
    /// Whether to run rustfmt on the generated bridge (default true).
    rustfmt: bool,
}

/// The ArkTS backend, as a uniffi_bindgen [`BindingGenerator`].
struct EtsBindingGenerator;

impl BindingGenerator for EtsBindingGenerator {
    type Config = EtsConfig;

    fn new_config(&self, root_toml: &toml::Value) -> Result<EtsConfig> {
        let rustfmt = root_toml
            .get("bindings")
            .and_then(|b| b.get("ets"))
            .and_then(|e| e.get("rustfmt"))
            .and_then(toml::Value::as_bool)
            .unwrap_or(true);
        Ok(EtsConfig { rustfmt })
    }

    fn update_component_configs(
        &self,
        _settings: &GenerationSettings,
        _components: &mut Vec<Component<EtsConfig>>,
    ) -> Result<()> {
        Ok(())
    }

    fn write_bindings(
        &self,
        settings: &GenerationSettings,
        components: &[Component<EtsConfig>],
    ) -> Result<()> {
        let component = callpush_bindgen::single(components)?;
        let api = model::Api::new(&component.ci, "ArkTS")?;
        let out = &settings.out_dir;
        std::fs::create_dir_all(out)?;
        std::fs::write(out.join("callpush.ets"), ets::generate(&api)?)?;
        std::fs::write(out.join("index.d.ts"), dts::generate(&api)?)?;
        let rust_path = out.join("generated.rs");
        std::fs::write(&rust_path, bridge::generate(&api)?)?;
        if component.config.rustfmt {
            rustfmt(&rust_path)?;
        }
        Ok(())
    }
}

/// Formats the generated bridge as the workspace's `cargo fmt` would.
fn rustfmt(path: &camino::Utf8Path) -> Result<()> {
    let status = Command::new("rustfmt")
        .args(["--edition", "2021", "--config", "max_width=110,use_small_heuristics=Max"])
        .arg(path)
        .status()
        .context("running rustfmt")?;
    if !status.success() {
        bail!("rustfmt failed on {path}");
    }
    Ok(())
}

fn main() -> Result<()> {
    callpush_bindgen::run("callpush-bindgen-ets", "ArkTS", &EtsBindingGenerator)
}
