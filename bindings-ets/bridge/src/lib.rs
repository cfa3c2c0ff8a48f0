//! N-API bridge of callpush: the native module `libcallpush_napi.so` that the generated ArkTS API
//! (`callpush.ets`) imports on HarmonyOS, and that Node.js loads as a `.node` addon in the tests.
//!
//! It is function-based: [`generated`] (written by `callpush-bindgen-ets`) defines one JS function
//! per uniffi C function of `callpush`, plus the vtables of the foreign traits. This file is the
//! plumbing those functions share:
//!
//! - the N-API declarations, resolved at load time from the host (Node.js, or `libace_napi.z.so`
//!   on HarmonyOS, which the build links);
//! - a static `napi_module` registered from an `.init_array` constructor, the registration both
//!   hosts accept;
//! - conversions between JS values and uniffi's FFI values (`RustBuffer` ⇄ `Uint8Array`,
//!   64-bit integers ⇄ `BigInt`);
//! - running JS from Rust threads: directly on the JS thread, through one thread-safe function
//!   from any other thread (blocking the Rust thread for sync trait methods);
//! - Rust future continuations and foreign-future completions.
//!
//! No panic crosses the FFI boundary: entry points catch unwinds and turn failures into JS
//! exceptions or uniffi "unexpected error" statuses.

#![allow(non_camel_case_types)]

use std::collections::HashMap;
use std::ffi::{c_char, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::thread::ThreadId;

// Keeps callpush (and its `#[no_mangle]` uniffi scaffolding) linked into the cdylib.
use callpush as _;

mod generated;

// ---------------------------------------------------------------------------------------------
// N-API declarations (the subset used; see node_api.h / js_native_api.h).

type napi_env = *mut c_void;
type napi_value = *mut c_void;
type napi_ref = *mut c_void;
type napi_callback_info = *mut c_void;
type napi_threadsafe_function = *mut c_void;
type napi_status = i32;
type napi_callback = unsafe extern "C" fn(napi_env, napi_callback_info) -> napi_value;
type napi_finalize = unsafe extern "C" fn(napi_env, *mut c_void, *mut c_void);
type napi_threadsafe_function_call_js = unsafe extern "C" fn(napi_env, napi_value, *mut c_void, *mut c_void);

const NAPI_OK: napi_status = 0;
const NAPI_UINT8_ARRAY: i32 = 1;
const NAPI_TSFN_NONBLOCKING: i32 = 0;

/// `napi_module` as both Node.js and HarmonyOS define it.
#[repr(C)]
struct napi_module {
    nm_version: i32,
    nm_flags: u32,
    nm_filename: *const c_char,
    nm_register_func: unsafe extern "C" fn(napi_env, napi_value) -> napi_value,
    nm_modname: *const c_char,
    nm_priv: *mut c_void,
    reserved: [*mut c_void; 4],
}

// The HarmonyOS NDK ships the symbols in libace_napi.z.so; Node.js exports them itself.
#[cfg_attr(target_env = "ohos", link(name = "ace_napi.z"))]
extern "C" {
    fn napi_module_register(module: *mut napi_module);
    fn napi_create_function(
        env: napi_env,
        name: *const c_char,
        len: usize,
        cb: napi_callback,
        data: *mut c_void,
        result: *mut napi_value,
    ) -> napi_status;
    fn napi_set_named_property(
        env: napi_env,
        obj: napi_value,
        name: *const c_char,
        v: napi_value,
    ) -> napi_status;
    fn napi_get_cb_info(
        env: napi_env,
        info: napi_callback_info,
        argc: *mut usize,
        argv: *mut napi_value,
        this: *mut napi_value,
        data: *mut *mut c_void,
    ) -> napi_status;
    fn napi_get_value_double(env: napi_env, v: napi_value, result: *mut f64) -> napi_status;
    fn napi_get_value_bigint_int64(
        env: napi_env,
        v: napi_value,
        r: *mut i64,
        lossless: *mut bool,
    ) -> napi_status;
    fn napi_get_value_bigint_uint64(
        env: napi_env,
        v: napi_value,
        r: *mut u64,
        lossless: *mut bool,
    ) -> napi_status;
    fn napi_create_int32(env: napi_env, v: i32, result: *mut napi_value) -> napi_status;
    fn napi_create_uint32(env: napi_env, v: u32, result: *mut napi_value) -> napi_status;
    fn napi_create_double(env: napi_env, v: f64, result: *mut napi_value) -> napi_status;
    fn napi_create_bigint_int64(env: napi_env, v: i64, result: *mut napi_value) -> napi_status;
    fn napi_create_bigint_uint64(env: napi_env, v: u64, result: *mut napi_value) -> napi_status;
    fn napi_create_string_utf8(
        env: napi_env,
        s: *const c_char,
        len: usize,
        r: *mut napi_value,
    ) -> napi_status;
    fn napi_get_undefined(env: napi_env, result: *mut napi_value) -> napi_status;
    fn napi_get_global(env: napi_env, result: *mut napi_value) -> napi_status;
    fn napi_create_arraybuffer(
        env: napi_env,
        len: usize,
        data: *mut *mut c_void,
        r: *mut napi_value,
    ) -> napi_status;
    fn napi_create_typedarray(
        env: napi_env,
        kind: i32,
        length: usize,
        arraybuffer: napi_value,
        byte_offset: usize,
        result: *mut napi_value,
    ) -> napi_status;
    fn napi_get_typedarray_info(
        env: napi_env,
        typedarray: napi_value,
        kind: *mut i32,
        length: *mut usize,
        data: *mut *mut c_void,
        arraybuffer: *mut napi_value,
        byte_offset: *mut usize,
    ) -> napi_status;
    fn napi_throw_error(env: napi_env, code: *const c_char, msg: *const c_char) -> napi_status;
    fn napi_is_exception_pending(env: napi_env, result: *mut bool) -> napi_status;
    fn napi_get_and_clear_last_exception(env: napi_env, result: *mut napi_value) -> napi_status;
    fn napi_create_reference(env: napi_env, v: napi_value, count: u32, result: *mut napi_ref) -> napi_status;
    fn napi_delete_reference(env: napi_env, r: napi_ref) -> napi_status;
    fn napi_get_reference_value(env: napi_env, r: napi_ref, result: *mut napi_value) -> napi_status;
    fn napi_call_function(
        env: napi_env,
        recv: napi_value,
        func: napi_value,
        argc: usize,
        argv: *const napi_value,
        result: *mut napi_value,
    ) -> napi_status;
    #[allow(clippy::too_many_arguments)]
    fn napi_create_threadsafe_function(
        env: napi_env,
        func: napi_value,
        async_resource: napi_value,
        async_resource_name: napi_value,
        max_queue_size: usize,
        initial_thread_count: usize,
        thread_finalize_data: *mut c_void,
        thread_finalize_cb: Option<napi_finalize>,
        context: *mut c_void,
        call_js_cb: Option<napi_threadsafe_function_call_js>,
        result: *mut napi_threadsafe_function,
    ) -> napi_status;
    fn napi_call_threadsafe_function(
        tsfn: napi_threadsafe_function,
        data: *mut c_void,
        mode: i32,
    ) -> napi_status;
    fn napi_add_env_cleanup_hook(
        env: napi_env,
        fun: unsafe extern "C" fn(*mut c_void),
        arg: *mut c_void,
    ) -> napi_status;
    fn napi_ref_threadsafe_function(env: napi_env, tsfn: napi_threadsafe_function) -> napi_status;
    fn napi_unref_threadsafe_function(env: napi_env, tsfn: napi_threadsafe_function) -> napi_status;
}

// ---------------------------------------------------------------------------------------------
// uniffi's C ABI types (see uniffi's bindings: RustBuffer, RustCallStatus, foreign futures).

/// A byte buffer owned by Rust (`RustBuffer` of the uniffi ABI).
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct RustBuffer {
    capacity: u64,
    len: u64,
    data: *mut u8,
}

impl RustBuffer {
    const EMPTY: RustBuffer = RustBuffer { capacity: 0, len: 0, data: null_mut() };
}

/// Bytes owned by the caller, lent to Rust for one call (`ForeignBytes`).
#[repr(C)]
pub(crate) struct ForeignBytes {
    len: i32,
    data: *const u8,
}

/// Outcome of a uniffi call: 0 success, 1 error (`error_buf` holds it), 2 unexpected error.
#[repr(C)]
pub(crate) struct RustCallStatus {
    code: i8,
    error_buf: RustBuffer,
}

impl RustCallStatus {
    /// A success status, the state uniffi expects before a call.
    pub(crate) fn new() -> Self {
        RustCallStatus { code: 0, error_buf: RustBuffer::EMPTY }
    }
}

/// `UniffiRustFutureContinuationCallback`.
pub(crate) type ContinuationCallback = unsafe extern "C" fn(u64, i8);

/// `UniffiForeignFutureDroppedCallbackStruct`: how Rust tells us it dropped a foreign future.
#[repr(C)]
pub(crate) struct ForeignFutureDroppedCallbackStruct {
    handle: u64,
    free: unsafe extern "C" fn(u64),
}

/// `UniffiForeignFutureResult<T>` for every return type.
#[repr(C)]
pub(crate) struct ForeignFutureResult<T> {
    return_value: T,
    call_status: RustCallStatus,
}

/// `UniffiForeignFutureResultVoid`.
#[repr(C)]
pub(crate) struct ForeignFutureResultVoid {
    call_status: RustCallStatus,
}

/// The `UniffiForeignFutureComplete*` callback of an async foreign method, by return type.
// The full set of the ABI; the generated code uses those its foreign methods return.
#[allow(dead_code)]
#[derive(Clone, Copy)]
pub(crate) enum Completer {
    U8(unsafe extern "C" fn(u64, ForeignFutureResult<u8>)),
    I8(unsafe extern "C" fn(u64, ForeignFutureResult<i8>)),
    U16(unsafe extern "C" fn(u64, ForeignFutureResult<u16>)),
    I16(unsafe extern "C" fn(u64, ForeignFutureResult<i16>)),
    U32(unsafe extern "C" fn(u64, ForeignFutureResult<u32>)),
    I32(unsafe extern "C" fn(u64, ForeignFutureResult<i32>)),
    U64(unsafe extern "C" fn(u64, ForeignFutureResult<u64>)),
    I64(unsafe extern "C" fn(u64, ForeignFutureResult<i64>)),
    F32(unsafe extern "C" fn(u64, ForeignFutureResult<f32>)),
    F64(unsafe extern "C" fn(u64, ForeignFutureResult<f64>)),
    RustBuffer(unsafe extern "C" fn(u64, ForeignFutureResult<RustBuffer>)),
    Void(unsafe extern "C" fn(u64, ForeignFutureResultVoid)),
}

/// The FFI return type of a foreign (trait) method, to decode what JS returned.
// The full set of the ABI; the generated code uses those its foreign methods return.
#[allow(dead_code)]
#[derive(Clone, Copy)]
pub(crate) enum ReturnKind {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
    RustBuffer,
    Void,
}

// ---------------------------------------------------------------------------------------------
// Module state: the JS thread, its env, the thread-safe function and the registered JS functions.

static JS_THREAD: OnceLock<ThreadId> = OnceLock::new();
static JS_ENV: AtomicPtr<c_void> = AtomicPtr::new(null_mut());
static TSFN: AtomicPtr<c_void> = AtomicPtr::new(null_mut());
/// Held (shared) by every Rust thread while it queues on [`TSFN`], and (exclusive) while the
/// environment's teardown clears it: no thread can be inside `napi_call_threadsafe_function`
/// when the host frees the function, e.g. a long-poll finishing while the process exits.
static TSFN_GATE: RwLock<()> = RwLock::new(());
/// Rust futures being polled: while any is, the thread-safe function keeps the event loop alive.
static PENDING_POLLS: AtomicUsize = AtomicUsize::new(0);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// JS functions registered for the foreign traits' vtables, by slot (see `generated::SLOTS`).
static SLOTS: Mutex<Vec<usize>> = Mutex::new(Vec::new());
/// Continuations of Rust futures being polled: id → JS function reference.
static CONTINUATIONS: Mutex<Option<HashMap<u64, usize>>> = Mutex::new(None);
/// Async foreign calls in flight: id → how to complete them.
static FOREIGN_FUTURES: Mutex<Option<HashMap<u64, (Completer, u64)>>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn on_js_thread() -> bool {
    JS_THREAD.get() == Some(&std::thread::current().id())
}

fn check(status: napi_status, what: &str) -> Result<(), String> {
    if status == NAPI_OK {
        Ok(())
    } else {
        Err(format!("N-API {what} failed with status {status}"))
    }
}

/// Runs a JS entry point: a failure or a panic becomes a JS exception (unless one is pending).
pub(crate) fn guard(env: napi_env, f: impl FnOnce() -> Result<napi_value, String>) -> napi_value {
    let message = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => return v,
        Ok(Err(message)) => message,
        Err(_) => "callpush native bridge: unexpected panic".to_owned(),
    };
    // SAFETY: `env` is the env of the current N-API callback.
    unsafe {
        let mut pending = false;
        napi_is_exception_pending(env, &mut pending);
        if !pending {
            let msg = std::ffi::CString::new(message.replace('\0', " ")).unwrap_or_default();
            napi_throw_error(env, null(), msg.as_ptr());
        }
    }
    null_mut()
}

/// The arguments of a JS call; exactly `expected` of them.
pub(crate) fn args(
    env: napi_env,
    info: napi_callback_info,
    expected: usize,
) -> Result<Vec<napi_value>, String> {
    let mut argc = expected;
    let mut argv = vec![null_mut(); expected];
    // SAFETY: argv has room for `argc` values.
    check(
        unsafe { napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), null_mut(), null_mut()) },
        "napi_get_cb_info",
    )?;
    if argc < expected {
        return Err(format!("expected {expected} arguments, got {argc}"));
    }
    Ok(argv)
}

// ---------------------------------------------------------------------------------------------
// JS → FFI values.

fn int_arg(env: napi_env, v: napi_value, min: f64, max: f64) -> Result<f64, String> {
    let mut d = 0f64;
    // SAFETY: plain N-API value read.
    check(unsafe { napi_get_value_double(env, v, &mut d) }, "napi_get_value_double (expected a number)")?;
    if d.fract() != 0.0 || d < min || d > max {
        return Err(format!("{d} is not an integer in [{min}, {max}]"));
    }
    Ok(d)
}

macro_rules! small_int_arg {
    ($name:ident, $t:ty) => {
        /// A JS number that must be an integer of this type.
        // One per FFI integer type; the generated code uses those the API needs.
        #[allow(dead_code)]
        pub(crate) fn $name(env: napi_env, v: napi_value) -> Result<$t, String> {
            int_arg(env, v, <$t>::MIN as f64, <$t>::MAX as f64).map(|d| d as $t)
        }
    };
}
small_int_arg!(arg_u8, u8);
small_int_arg!(arg_i8, i8);
small_int_arg!(arg_u16, u16);
small_int_arg!(arg_i16, i16);
small_int_arg!(arg_u32, u32);
small_int_arg!(arg_i32, i32);

/// A JS number as f64.
// Used when the API has float arguments.
#[allow(dead_code)]
pub(crate) fn arg_f64(env: napi_env, v: napi_value) -> Result<f64, String> {
    let mut d = 0f64;
    // SAFETY: plain N-API value read.
    check(unsafe { napi_get_value_double(env, v, &mut d) }, "napi_get_value_double (expected a number)")?;
    Ok(d)
}

/// A JS number as f32.
// Used when the API has float arguments.
#[allow(dead_code)]
pub(crate) fn arg_f32(env: napi_env, v: napi_value) -> Result<f32, String> {
    arg_f64(env, v).map(|d| d as f32)
}

/// A JS BigInt that fits an i64.
pub(crate) fn arg_i64(env: napi_env, v: napi_value) -> Result<i64, String> {
    let (mut r, mut lossless) = (0i64, false);
    // SAFETY: plain N-API value read.
    check(unsafe { napi_get_value_bigint_int64(env, v, &mut r, &mut lossless) }, "expected a bigint")?;
    if !lossless {
        return Err("bigint out of the i64 range".into());
    }
    Ok(r)
}

/// A JS BigInt that fits a u64.
pub(crate) fn arg_u64(env: napi_env, v: napi_value) -> Result<u64, String> {
    let (mut r, mut lossless) = (0u64, false);
    // SAFETY: plain N-API value read.
    check(unsafe { napi_get_value_bigint_uint64(env, v, &mut r, &mut lossless) }, "expected a bigint")?;
    if !lossless {
        return Err("bigint out of the u64 range".into());
    }
    Ok(r)
}

/// The bytes of a JS `Uint8Array`, borrowed for the current call.
fn typed_array_bytes<'a>(env: napi_env, v: napi_value) -> Result<&'a [u8], String> {
    let (mut kind, mut len, mut data, mut offset) = (0i32, 0usize, null_mut(), 0usize);
    let mut buffer = null_mut();
    // SAFETY: N-API fills the out-parameters; the data stays valid during the current call.
    check(
        unsafe { napi_get_typedarray_info(env, v, &mut kind, &mut len, &mut data, &mut buffer, &mut offset) },
        "napi_get_typedarray_info (expected a Uint8Array)",
    )?;
    if kind != NAPI_UINT8_ARRAY {
        return Err("expected a Uint8Array".into());
    }
    if len == 0 || data.is_null() {
        return Ok(&[]);
    }
    // SAFETY: N-API guarantees `len` readable bytes at `data` while the array is alive.
    Ok(unsafe { std::slice::from_raw_parts(data as *const u8, len) })
}

/// A new Rust-owned buffer holding `bytes`.
pub(crate) fn rust_buffer_from(bytes: &[u8]) -> Result<RustBuffer, String> {
    let len = i32::try_from(bytes.len()).map_err(|_| "buffer over 2 GiB".to_owned())?;
    let foreign = ForeignBytes { len, data: if bytes.is_empty() { null() } else { bytes.as_ptr() } };
    let mut status = RustCallStatus::new();
    // SAFETY: `foreign` borrows `bytes`, alive for the call.
    let buf = unsafe { generated::rustbuffer_from_bytes(foreign, &mut status) };
    if status.code != 0 {
        free_rust_buffer(status.error_buf);
        return Err("could not allocate a RustBuffer".into());
    }
    Ok(buf)
}

/// A JS `Uint8Array` copied into a new Rust-owned buffer.
pub(crate) fn arg_buffer(env: napi_env, v: napi_value) -> Result<RustBuffer, String> {
    rust_buffer_from(typed_array_bytes(env, v)?)
}

/// Frees a Rust-owned buffer.
pub(crate) fn free_rust_buffer(buf: RustBuffer) {
    if buf.data.is_null() {
        return;
    }
    let mut status = RustCallStatus::new();
    // SAFETY: `buf` came from Rust and is freed once.
    unsafe { generated::rustbuffer_free(buf, &mut status) };
}

/// Copies a Rust-owned buffer out and frees it.
pub(crate) fn take_buffer(buf: RustBuffer) -> Vec<u8> {
    let bytes = if buf.data.is_null() || buf.len == 0 {
        Vec::new()
    } else {
        // SAFETY: a RustBuffer holds `len` initialised bytes at `data`.
        unsafe { std::slice::from_raw_parts(buf.data, buf.len as usize) }.to_vec()
    };
    free_rust_buffer(buf);
    bytes
}

/// A JS function argument, kept alive by a new reference.
fn arg_function_ref(env: napi_env, v: napi_value) -> Result<napi_ref, String> {
    let mut r = null_mut();
    // SAFETY: plain N-API call.
    check(unsafe { napi_create_reference(env, v, 1, &mut r) }, "napi_create_reference")?;
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// FFI → JS values.

/// `undefined`.
pub(crate) fn js_undefined(env: napi_env) -> Result<napi_value, String> {
    let mut v = null_mut();
    // SAFETY: plain N-API call.
    check(unsafe { napi_get_undefined(env, &mut v) }, "napi_get_undefined")?;
    Ok(v)
}

/// A JS number from any integer of up to 32 bits.
pub(crate) fn js_i32(env: napi_env, n: i32) -> Result<napi_value, String> {
    let mut v = null_mut();
    // SAFETY: plain N-API call.
    check(unsafe { napi_create_int32(env, n, &mut v) }, "napi_create_int32")?;
    Ok(v)
}

/// A JS number from a u32.
pub(crate) fn js_u32(env: napi_env, n: u32) -> Result<napi_value, String> {
    let mut v = null_mut();
    // SAFETY: plain N-API call.
    check(unsafe { napi_create_uint32(env, n, &mut v) }, "napi_create_uint32")?;
    Ok(v)
}

/// A JS number from a float.
pub(crate) fn js_f64(env: napi_env, n: f64) -> Result<napi_value, String> {
    let mut v = null_mut();
    // SAFETY: plain N-API call.
    check(unsafe { napi_create_double(env, n, &mut v) }, "napi_create_double")?;
    Ok(v)
}

/// A JS BigInt from an i64.
pub(crate) fn js_i64(env: napi_env, n: i64) -> Result<napi_value, String> {
    let mut v = null_mut();
    // SAFETY: plain N-API call.
    check(unsafe { napi_create_bigint_int64(env, n, &mut v) }, "napi_create_bigint_int64")?;
    Ok(v)
}

/// A JS BigInt from a u64.
pub(crate) fn js_u64(env: napi_env, n: u64) -> Result<napi_value, String> {
    let mut v = null_mut();
    // SAFETY: plain N-API call.
    check(unsafe { napi_create_bigint_uint64(env, n, &mut v) }, "napi_create_bigint_uint64")?;
    Ok(v)
}

/// A new JS `Uint8Array` holding a copy of `bytes`.
pub(crate) fn js_bytes(env: napi_env, bytes: &[u8]) -> Result<napi_value, String> {
    let (mut data, mut buffer, mut array) = (null_mut(), null_mut(), null_mut());
    // SAFETY: N-API allocates `bytes.len()` writable bytes at `data`.
    unsafe {
        check(napi_create_arraybuffer(env, bytes.len(), &mut data, &mut buffer), "napi_create_arraybuffer")?;
        if !bytes.is_empty() {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), data as *mut u8, bytes.len());
        }
        check(
            napi_create_typedarray(env, NAPI_UINT8_ARRAY, bytes.len(), buffer, 0, &mut array),
            "napi_create_typedarray",
        )?;
    }
    Ok(array)
}

/// A JS `Uint8Array` from a Rust-owned buffer, which is freed.
pub(crate) fn js_buffer(env: napi_env, buf: RustBuffer) -> Result<napi_value, String> {
    js_bytes(env, &take_buffer(buf))
}

/// Writes a call's status into the JS `UniffiRustCallStatus` object (`code`, `errorBuf`).
pub(crate) fn set_status(env: napi_env, target: napi_value, status: RustCallStatus) -> Result<(), String> {
    let error = take_buffer(status.error_buf);
    let code = js_i32(env, i32::from(status.code))?;
    // SAFETY: plain N-API calls on live values.
    unsafe {
        check(napi_set_named_property(env, target, c"code".as_ptr(), code), "setting status.code")?;
        if status.code != 0 {
            let buf = js_bytes(env, &error)?;
            check(
                napi_set_named_property(env, target, c"errorBuf".as_ptr(), buf),
                "setting status.errorBuf",
            )?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Calling JS from Rust.

type JsTask = Box<dyn FnOnce(napi_env) + Send>;

/// Runs `task` on the JS thread: now if this is the JS thread, else queued on the thread-safe
/// function. Returns false when JS is gone (the task is dropped, not run).
fn run_on_js_thread(task: JsTask) -> bool {
    if on_js_thread() {
        let env = JS_ENV.load(Ordering::Acquire);
        if env.is_null() {
            return false;
        }
        // A panic must not unwind into the `extern "C"` vtable function that called us.
        return catch_unwind(AssertUnwindSafe(move || task(env))).is_ok();
    }
    post_to_js_thread(task)
}

/// Queues `task` on the thread-safe function, even from the JS thread.
fn post_to_js_thread(task: JsTask) -> bool {
    let _open = TSFN_GATE.read().unwrap_or_else(PoisonError::into_inner);
    let tsfn = TSFN.load(Ordering::Acquire);
    if tsfn.is_null() {
        return false;
    }
    let data = Box::into_raw(Box::new(task));
    // SAFETY: `data` is reclaimed by `call_js` or right here on failure.
    let status = unsafe { napi_call_threadsafe_function(tsfn, data as *mut c_void, NAPI_TSFN_NONBLOCKING) };
    if status != NAPI_OK {
        // SAFETY: not queued, so still ours.
        drop(unsafe { Box::from_raw(data) });
        return false;
    }
    true
}

/// The thread-safe function's callback: runs one queued task on the JS thread.
unsafe extern "C" fn call_js(env: napi_env, _js_cb: napi_value, _context: *mut c_void, data: *mut c_void) {
    // SAFETY: `data` is a `JsTask` boxed by `post_to_js_thread`.
    let task = unsafe { Box::from_raw(data as *mut JsTask) };
    if env.is_null() {
        return; // The environment is shutting down: drop the task (its senders report it).
    }
    let _ = catch_unwind(AssertUnwindSafe(move || task(env)));
}

/// Calls the JS function in `slot` with the arguments `make_args` builds; its return value.
fn call_slot(
    env: napi_env,
    slot: usize,
    make_args: impl FnOnce(napi_env) -> Result<Vec<napi_value>, String>,
) -> Result<napi_value, String> {
    let reference = lock(&SLOTS).get(slot).copied().unwrap_or(0);
    if reference == 0 {
        return Err(format!("no JS function registered for vtable slot {slot}"));
    }
    let args = make_args(env)?;
    let (mut func, mut global, mut result) = (null_mut(), null_mut(), null_mut());
    // SAFETY: plain N-API calls on the JS thread.
    unsafe {
        check(napi_get_reference_value(env, reference as napi_ref, &mut func), "napi_get_reference_value")?;
        check(napi_get_global(env, &mut global), "napi_get_global")?;
        let status = napi_call_function(env, global, func, args.len(), args.as_ptr(), &mut result);
        if status != NAPI_OK {
            let mut exception = null_mut();
            napi_get_and_clear_last_exception(env, &mut exception);
            return Err(format!("the JS callback threw (N-API status {status})"));
        }
    }
    Ok(result)
}

/// Calls a sync foreign method and waits for its result bytes (`[code][payload]`, see the
/// generator's README), blocking this thread if it is not the JS thread.
pub(crate) fn call_js_sync(
    slot: usize,
    make_args: impl FnOnce(napi_env) -> Result<Vec<napi_value>, String> + Send + 'static,
) -> Result<Vec<u8>, String> {
    let (tx, rx) = sync_channel(1);
    let queued = run_on_js_thread(Box::new(move |env| {
        let result =
            call_slot(env, slot, make_args).and_then(|v| typed_array_bytes(env, v).map(<[u8]>::to_vec));
        let _ = tx.send(result);
    }));
    if !queued {
        return Err("the JS runtime is gone".into());
    }
    rx.recv().unwrap_or_else(|_| Err("the JS runtime dropped the call".into()))
}

/// Calls a foreign `clone`: the new handle JS returns.
pub(crate) fn call_js_clone(slot: usize, handle: u64) -> u64 {
    let (tx, rx) = sync_channel(1);
    let queued = run_on_js_thread(Box::new(move |env| {
        let result = call_slot(env, slot, |env| Ok(vec![js_u64(env, handle)?])).and_then(|v| arg_u64(env, v));
        let _ = tx.send(result);
    }));
    // uniffi's clone cannot fail; 0 is never a valid foreign handle and makes later calls fail.
    if !queued {
        return 0;
    }
    rx.recv().ok().and_then(Result::ok).unwrap_or(0)
}

/// Calls a JS function without waiting for it (foreign `free`, async foreign methods).
/// Returns false when JS is gone.
pub(crate) fn call_js_detached(
    slot: usize,
    make_args: impl FnOnce(napi_env) -> Result<Vec<napi_value>, String> + Send + 'static,
) -> bool {
    run_on_js_thread(Box::new(move |env| {
        let _ = call_slot(env, slot, make_args);
    }))
}

fn read_be<const N: usize>(payload: &[u8]) -> Result<[u8; N], String> {
    payload.get(..N).and_then(|b| b.try_into().ok()).ok_or_else(|| "short return value from JS".to_owned())
}

/// Splits JS's result bytes into a status and the return payload.
fn decode_result(result: Result<Vec<u8>, String>) -> (RustCallStatus, Vec<u8>) {
    let unexpected = |message: String| {
        let mut status = RustCallStatus::new();
        status.code = 2;
        status.error_buf = rust_buffer_from(message.as_bytes()).unwrap_or(RustBuffer::EMPTY);
        (status, Vec::new())
    };
    match result {
        Err(message) => unexpected(message),
        Ok(bytes) => match bytes.split_first() {
            Some((0, payload)) => (RustCallStatus::new(), payload.to_vec()),
            Some((&code @ (1 | 2), payload)) => {
                let mut status = RustCallStatus::new();
                status.code = code as i8;
                match rust_buffer_from(payload) {
                    Ok(buf) => status.error_buf = buf,
                    Err(message) => return unexpected(message),
                }
                (status, Vec::new())
            }
            _ => unexpected("malformed result from a JS callback".into()),
        },
    }
}

/// Writes the result of a sync foreign method into uniffi's out-parameters.
///
/// # Safety
/// `out_return` must point to a value of the type `kind` names (unused for `Void`), `status` to a
/// `RustCallStatus`.
pub(crate) unsafe fn write_sync_return(
    result: Result<Vec<u8>, String>,
    kind: ReturnKind,
    out_return: *mut c_void,
    status: *mut RustCallStatus,
) {
    let (mut call_status, payload) = decode_result(result);
    if call_status.code == 0 {
        // SAFETY: per this function's contract.
        if let Err(message) = unsafe { write_value(kind, &payload, out_return) } {
            call_status.code = 2;
            call_status.error_buf = rust_buffer_from(message.as_bytes()).unwrap_or(RustBuffer::EMPTY);
        }
    }
    // SAFETY: per this function's contract.
    unsafe { status.write(call_status) };
}

unsafe fn write_value(kind: ReturnKind, payload: &[u8], out: *mut c_void) -> Result<(), String> {
    // SAFETY (all arms): the caller guarantees `out` points to the type `kind` names.
    unsafe {
        match kind {
            ReturnKind::Void => {}
            ReturnKind::U8 => (out as *mut u8).write(u8::from_be_bytes(read_be(payload)?)),
            ReturnKind::I8 => (out as *mut i8).write(i8::from_be_bytes(read_be(payload)?)),
            ReturnKind::U16 => (out as *mut u16).write(u16::from_be_bytes(read_be(payload)?)),
            ReturnKind::I16 => (out as *mut i16).write(i16::from_be_bytes(read_be(payload)?)),
            ReturnKind::U32 => (out as *mut u32).write(u32::from_be_bytes(read_be(payload)?)),
            ReturnKind::I32 => (out as *mut i32).write(i32::from_be_bytes(read_be(payload)?)),
            ReturnKind::U64 => (out as *mut u64).write(u64::from_be_bytes(read_be(payload)?)),
            ReturnKind::I64 => (out as *mut i64).write(i64::from_be_bytes(read_be(payload)?)),
            ReturnKind::F32 => (out as *mut f32).write(f32::from_be_bytes(read_be(payload)?)),
            ReturnKind::F64 => (out as *mut f64).write(f64::from_be_bytes(read_be(payload)?)),
            ReturnKind::RustBuffer => (out as *mut RustBuffer).write(rust_buffer_from(payload)?),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Foreign futures (async trait methods implemented in JS).

/// Registers an async foreign call and tells Rust how to signal that it dropped it; the id JS
/// completes it with.
///
/// # Safety
/// `dropped` must point to uniffi's out-parameter for the dropped callback.
pub(crate) unsafe fn foreign_future_start(
    completer: Completer,
    callback_data: u64,
    dropped: *mut ForeignFutureDroppedCallbackStruct,
) -> u64 {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    lock(&FOREIGN_FUTURES).get_or_insert_with(HashMap::new).insert(id, (completer, callback_data));
    // SAFETY: per this function's contract.
    unsafe { dropped.write(ForeignFutureDroppedCallbackStruct { handle: id, free: foreign_future_dropped }) };
    id
}

/// Rust dropped the future: forget it, a late completion is ignored.
unsafe extern "C" fn foreign_future_dropped(id: u64) {
    if let Some(map) = lock(&FOREIGN_FUTURES).as_mut() {
        map.remove(&id);
    }
}

/// Completes a foreign future with JS's result bytes (or a failure message).
pub(crate) fn foreign_future_finish(id: u64, result: Result<Vec<u8>, String>) {
    let Some((completer, data)) = lock(&FOREIGN_FUTURES).as_mut().and_then(|m| m.remove(&id)) else {
        return;
    };
    let (mut status, payload) = decode_result(result);
    macro_rules! complete {
        ($f:expr, $decode:expr, $zero:expr) => {{
            let value = if status.code == 0 {
                match $decode {
                    Ok(v) => v,
                    Err(message) => {
                        status.code = 2;
                        status.error_buf = rust_buffer_from(message.as_bytes()).unwrap_or(RustBuffer::EMPTY);
                        $zero
                    }
                }
            } else {
                $zero
            };
            // SAFETY: uniffi's completion callback, called once with its callback data.
            unsafe { $f(data, ForeignFutureResult { return_value: value, call_status: status }) }
        }};
    }
    match completer {
        Completer::U8(f) => complete!(f, read_be(&payload).map(u8::from_be_bytes), 0),
        Completer::I8(f) => complete!(f, read_be(&payload).map(i8::from_be_bytes), 0),
        Completer::U16(f) => complete!(f, read_be(&payload).map(u16::from_be_bytes), 0),
        Completer::I16(f) => complete!(f, read_be(&payload).map(i16::from_be_bytes), 0),
        Completer::U32(f) => complete!(f, read_be(&payload).map(u32::from_be_bytes), 0),
        Completer::I32(f) => complete!(f, read_be(&payload).map(i32::from_be_bytes), 0),
        Completer::U64(f) => complete!(f, read_be(&payload).map(u64::from_be_bytes), 0),
        Completer::I64(f) => complete!(f, read_be(&payload).map(i64::from_be_bytes), 0),
        Completer::F32(f) => complete!(f, read_be(&payload).map(f32::from_be_bytes), 0.0),
        Completer::F64(f) => complete!(f, read_be(&payload).map(f64::from_be_bytes), 0.0),
        Completer::RustBuffer(f) => complete!(f, rust_buffer_from(&payload), RustBuffer::EMPTY),
        // SAFETY: as above.
        Completer::Void(f) => unsafe { f(data, ForeignFutureResultVoid { call_status: status }) },
    }
}

/// JS `uniffi_foreign_future_complete(id: bigint, result: Uint8Array): void`.
unsafe extern "C" fn js_foreign_future_complete(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let a = args(env, info, 2)?;
        let id = arg_u64(env, a[0])?;
        let result = typed_array_bytes(env, a[1])?.to_vec();
        foreign_future_finish(id, Ok(result));
        js_undefined(env)
    })
}

/// Starts an async foreign call in JS; completes the future with an error if JS is gone.
pub(crate) fn call_js_async(
    id: u64,
    slot: usize,
    make_args: impl FnOnce(napi_env) -> Result<Vec<napi_value>, String> + Send + 'static,
) {
    let queued = run_on_js_thread(Box::new(move |env| {
        if let Err(message) = call_slot(env, slot, make_args) {
            foreign_future_finish(id, Err(message));
        }
    }));
    if !queued {
        foreign_future_finish(id, Err("the JS runtime is gone".into()));
    }
}

// ---------------------------------------------------------------------------------------------
// Rust futures.

/// Keeps Node's event loop (or the ArkTS one) alive while a Rust future is being polled.
fn poll_started(env: napi_env) {
    if PENDING_POLLS.fetch_add(1, Ordering::AcqRel) == 0 {
        // SAFETY: called on the JS thread.
        unsafe { napi_ref_threadsafe_function(env, TSFN.load(Ordering::Acquire)) };
    }
}

fn poll_finished(env: napi_env) {
    if PENDING_POLLS.fetch_sub(1, Ordering::AcqRel) == 1 {
        // SAFETY: called on the JS thread.
        unsafe { napi_unref_threadsafe_function(env, TSFN.load(Ordering::Acquire)) };
    }
}

/// Registers the JS continuation of one poll; returns the callback data to hand uniffi.
pub(crate) fn continuation_register(env: napi_env, func: napi_value) -> Result<u64, String> {
    let reference = arg_function_ref(env, func)?;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    lock(&CONTINUATIONS).get_or_insert_with(HashMap::new).insert(id, reference as usize);
    poll_started(env);
    Ok(id)
}

/// uniffi's continuation callback: called on any thread (often tokio's), it always delivers the
/// poll result to JS through the thread-safe function.
pub(crate) unsafe extern "C" fn continuation_callback(id: u64, poll_result: i8) {
    post_to_js_thread(Box::new(move |env| {
        let Some(reference) = lock(&CONTINUATIONS).as_mut().and_then(|m| m.remove(&id)) else {
            return;
        };
        poll_finished(env);
        let reference = reference as napi_ref;
        let (mut func, mut global, mut result) = (null_mut(), null_mut(), null_mut());
        // SAFETY: on the JS thread; the reference is deleted once.
        unsafe {
            if napi_get_reference_value(env, reference, &mut func) == NAPI_OK
                && napi_get_global(env, &mut global) == NAPI_OK
            {
                if let Ok(arg) = js_i32(env, i32::from(poll_result)) {
                    if napi_call_function(env, global, func, 1, &arg, &mut result) != NAPI_OK {
                        let mut exception = null_mut();
                        napi_get_and_clear_last_exception(env, &mut exception);
                    }
                }
            }
            napi_delete_reference(env, reference);
        }
    }));
}

/// Stores the JS functions of a foreign trait's vtable in its slots.
pub(crate) fn register_slots(env: napi_env, first_slot: usize, funcs: &[napi_value]) -> Result<(), String> {
    let mut slots = lock(&SLOTS);
    if slots.len() < generated::SLOT_COUNT {
        slots.resize(generated::SLOT_COUNT, 0);
    }
    for (i, func) in funcs.iter().enumerate() {
        let reference = arg_function_ref(env, *func)?;
        let old = std::mem::replace(&mut slots[first_slot + i], reference as usize);
        if old != 0 {
            // SAFETY: the old reference is ours and dropped once.
            unsafe { napi_delete_reference(env, old as napi_ref) };
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Module registration.

unsafe extern "C" fn init(env: napi_env, exports: napi_value) -> napi_value {
    guard(env, || {
        let _ = JS_THREAD.set(std::thread::current().id());
        JS_ENV.store(env, Ordering::Release);
        if TSFN.load(Ordering::Acquire).is_null() {
            let (mut name, mut func, mut tsfn) = (null_mut(), null_mut(), null_mut());
            // SAFETY: plain N-API calls on the JS thread, at load.
            unsafe {
                check(
                    napi_create_string_utf8(env, c"callpush".as_ptr(), 8, &mut name),
                    "napi_create_string_utf8",
                )?;
                // Tasks run in `call_js`; some hosts still want a function to hold.
                check(
                    napi_create_function(env, c"callpush".as_ptr(), 8, js_noop, null_mut(), &mut func),
                    "napi_create_function",
                )?;
                check(
                    napi_create_threadsafe_function(
                        env,
                        func,
                        null_mut(),
                        name,
                        0,
                        1,
                        null_mut(),
                        Some(tsfn_finalized),
                        null_mut(),
                        Some(call_js),
                        &mut tsfn,
                    ),
                    "napi_create_threadsafe_function",
                )?;
                // Idle, the module must not keep the app (or Node) running.
                check(napi_unref_threadsafe_function(env, tsfn), "napi_unref_threadsafe_function")?;
            }
            TSFN.store(tsfn, Ordering::Release);
            // SAFETY: plain N-API call at load; the hook takes no data.
            check(
                unsafe { napi_add_env_cleanup_hook(env, env_cleanup, null_mut()) },
                "napi_add_env_cleanup_hook",
            )?;
        }
        let functions = generated::FUNCTIONS
            .iter()
            .copied()
            .chain([(c"uniffi_foreign_future_complete", js_foreign_future_complete as napi_callback)]);
        for (name, cb) in functions {
            define(env, exports, name, cb)?;
        }
        Ok(exports)
    })
}

/// The function the thread-safe function holds; never called (tasks run in `call_js`).
unsafe extern "C" fn js_noop(env: napi_env, _info: napi_callback_info) -> napi_value {
    js_undefined(env).unwrap_or(null_mut())
}

/// The thread-safe function is gone (the environment is shutting down): Rust threads calling JS
/// from now on get "the JS runtime is gone" instead of a dangling pointer.
unsafe extern "C" fn tsfn_finalized(_env: napi_env, _data: *mut c_void, _hint: *mut c_void) {
    let _closing = TSFN_GATE.write().unwrap_or_else(PoisonError::into_inner);
    TSFN.store(null_mut(), Ordering::Release);
}

/// The environment is being torn down (app exit, Node exit).
unsafe extern "C" fn env_cleanup(_arg: *mut c_void) {
    // Registered after the thread-safe function was made, so it runs before the host frees it.
    let _closing = TSFN_GATE.write().unwrap_or_else(PoisonError::into_inner);
    TSFN.store(null_mut(), Ordering::Release);
    JS_ENV.store(null_mut(), Ordering::Release);
}

fn define(env: napi_env, exports: napi_value, name: &CStr, cb: napi_callback) -> Result<(), String> {
    let mut func = null_mut();
    let len = name.to_bytes().len();
    // SAFETY: plain N-API calls during module init.
    unsafe {
        check(
            napi_create_function(env, name.as_ptr(), len, cb, null_mut(), &mut func),
            "napi_create_function",
        )?;
        check(napi_set_named_property(env, exports, name.as_ptr(), func), "napi_set_named_property")?;
    }
    Ok(())
}

struct Module(std::cell::UnsafeCell<napi_module>);
// SAFETY: the module record is only handed to the host once, at load.
unsafe impl Sync for Module {}

static MODULE: Module = Module(std::cell::UnsafeCell::new(napi_module {
    nm_version: 1,
    nm_flags: 0,
    nm_filename: c"libcallpush_napi.so".as_ptr(),
    nm_register_func: init,
    // HarmonyOS finds the module of `import ... from 'libcallpush_napi.so'` by this name.
    nm_modname: c"callpush_napi".as_ptr(),
    nm_priv: null_mut(),
    reserved: [null_mut(); 4],
}));

unsafe extern "C" fn register_module() {
    // SAFETY: the host copies what it needs; MODULE lives for the whole process.
    unsafe { napi_module_register(MODULE.0.get()) };
}

/// Registers the module when the library is loaded (`dlopen`), as both hosts expect.
#[used]
#[link_section = ".init_array"]
static REGISTER: unsafe extern "C" fn() = register_module;
