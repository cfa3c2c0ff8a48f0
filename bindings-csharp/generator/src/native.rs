//! The uniffi C ABI as C#: the FFI structs, the function-pointer delegates and one P/Invoke
//! declaration per C function, all from the interface's FFI definitions.

use std::fmt::Write;

use anyhow::Result;
use heck::ToUpperCamelCase;
use uniffi_bindgen::interface::ffi::{FfiDefinition, FfiType};
use uniffi_bindgen::ComponentInterface;

use crate::names::{ffi_cs_type, ffi_name};

/// Writes the `UniffiNative` class and the FFI types it uses.
pub fn write(out: &mut String, ci: &ComponentInterface, library: &str) -> Result<()> {
    let mut functions = String::new();
    for definition in ci.ffi_definitions() {
        match definition {
            FfiDefinition::Struct(s) => {
                writeln!(
                    out,
                    "[StructLayout(LayoutKind.Sequential)]\ninternal struct {} {{",
                    ffi_name(s.name())
                )?;
                for field in s.fields() {
                    let t = match field.type_() {
                        // Function pointers in structs are set from delegates kept alive elsewhere.
                        FfiType::Callback(_) => "IntPtr".to_owned(),
                        other => ffi_cs_type(&other, false)?,
                    };
                    writeln!(out, "    public {t} {};", field.name().to_upper_camel_case())?;
                }
                writeln!(out, "}}\n")?;
            }
            FfiDefinition::CallbackFunction(f) => {
                let mut params = Vec::new();
                for (i, a) in f.arguments().iter().enumerate() {
                    params.push(format!("{} a{i}", ffi_cs_type(&a.type_(), true)?));
                }
                if f.has_rust_call_status_arg() {
                    params.push("ref UniffiRustCallStatus uniffiStatus".into());
                }
                let ret = match f.return_type() {
                    Some(t) => ffi_cs_type(t, true)?,
                    None => "void".into(),
                };
                writeln!(
                    out,
                    "[UnmanagedFunctionPointer(CallingConvention.Cdecl)]\ninternal delegate {ret} {}({});\n",
                    ffi_name(f.name()),
                    params.join(", ")
                )?;
            }
            FfiDefinition::Function(f) => {
                let mut params = Vec::new();
                for a in f.arguments() {
                    params.push(format!(
                        "{} {}",
                        ffi_cs_type(&a.type_(), false)?,
                        a.name().to_upper_camel_case()
                    ));
                }
                if f.has_rust_call_status_arg() {
                    params.push("ref UniffiRustCallStatus uniffiStatus".into());
                }
                let ret = match f.return_type() {
                    Some(t) => ffi_cs_type(t, false)?,
                    None => "void".into(),
                };
                writeln!(
                    functions,
                    "    [DllImport(Library, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]\n    internal static extern {ret} {}({});\n",
                    f.name(),
                    params.join(", ")
                )?;
            }
        }
    }
    writeln!(
        out,
        "/// <summary>The C functions of the native library, as uniffi generated them.</summary>\ninternal static class UniffiNative\n{{"
    )?;
    writeln!(
        out,
        "    /// <summary>`{library}.dll` on Windows, `lib{library}.so` on Linux, `lib{library}.dylib` on macOS.</summary>\n    internal const string Library = \"{library}\";\n"
    )?;
    out.push_str(functions.trim_end());
    writeln!(out, "\n}}\n")?;
    Ok(())
}
