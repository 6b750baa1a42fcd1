//! tern guest SDK for Rust: the "tern" host API, version 2.
//!
//! A single source file, used without Cargo:
//!
//! ```ignore
//! #[path = "path/to/sdk/guest/rust/tern.rs"]
//! mod tern;
//! ```
//!
//! and built with `rustc --target wasm32-wasi`. Every call returns `Result<_, tern::Error>`;
//! an `Error` carries the status (see docs/design/host-api.md) and the host's explanation.
//! Calls outside the function's capabilities (granted at deploy with `--allow`) fail with
//! `Status::Denied`.
#![allow(dead_code)]

use std::fmt;

pub const HOST_API_VERSION: u32 = 2;

mod raw {
    #[link(wasm_import_module = "tern")]
    extern "C" {
        pub fn host_api_version() -> u32;
        pub fn last_error(buf: *mut u8, cap: u32) -> u32;
        pub fn log(level: u32, msg: *const u8, len: u32) -> u32;
        pub fn kv_get(key: *const u8, key_len: u32, buf: *mut u8, cap: u32, len_out: *mut u32)
            -> u32;
        pub fn kv_set(key: *const u8, key_len: u32, value: *const u8, value_len: u32) -> u32;
        pub fn kv_delete(key: *const u8, key_len: u32) -> u32;
        pub fn kv_list(prefix: *const u8, prefix_len: u32, after: *const u8, after_len: u32,
                       buf: *mut u8, cap: u32, result: *mut u32) -> u32;
        pub fn publish(topic: *const u8, topic_len: u32, payload: *const u8, payload_len: u32)
            -> u32;
        pub fn stream_publish(topic: *const u8, topic_len: u32, payload: *const u8,
                              payload_len: u32, seq_out: *mut u64) -> u32;
        pub fn invoke(name: *const u8, name_len: u32, input: *const u8, input_len: u32,
                      buf: *mut u8, cap: u32, len_out: *mut u32) -> u32;
        pub fn last_output(buf: *mut u8, cap: u32, len_out: *mut u32) -> u32;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    NotFound,
    Denied,
    TooLarge,
    BufferTooSmall,
    Unavailable,
    DepthExceeded,
    Timeout,
    InvalidArgument,
    Failed,
    Io,
    QuotaExceeded,
    Fault,
    Unknown(u32),
}

impl Status {
    fn from_code(code: u32) -> Status {
        match code {
            1 => Status::NotFound,
            2 => Status::Denied,
            3 => Status::TooLarge,
            4 => Status::BufferTooSmall,
            5 => Status::Unavailable,
            6 => Status::DepthExceeded,
            7 => Status::Timeout,
            8 => Status::InvalidArgument,
            9 => Status::Failed,
            10 => Status::Io,
            11 => Status::QuotaExceeded,
            12 => Status::Fault,
            other => Status::Unknown(other),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Status::NotFound => "not_found",
            Status::Denied => "denied",
            Status::TooLarge => "too_large",
            Status::BufferTooSmall => "buffer_too_small",
            Status::Unavailable => "unavailable",
            Status::DepthExceeded => "depth_exceeded",
            Status::Timeout => "timeout",
            Status::InvalidArgument => "invalid_argument",
            Status::Failed => "failed",
            Status::Io => "io",
            Status::QuotaExceeded => "quota_exceeded",
            Status::Fault => "fault",
            Status::Unknown(_) => "unknown",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Error {
    pub status: Status,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status.name(), self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// The text of the last failed call.
pub fn last_error() -> String {
    let mut buf = vec![0u8; 1024];
    loop {
        let n = unsafe { raw::last_error(buf.as_mut_ptr(), buf.len() as u32) };
        if n == u32::MAX {
            return String::new();
        }
        if (n as usize) <= buf.len() {
            buf.truncate(n as usize);
            return String::from_utf8_lossy(&buf).into_owned();
        }
        buf.resize(n as usize, 0);
    }
}

fn check(code: u32) -> Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(Error { status: Status::from_code(code), message: last_error() })
    }
}

pub fn host_api_version() -> u32 {
    unsafe { raw::host_api_version() }
}

#[derive(Clone, Copy, Debug)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

/// One line in the function's log: "[warn] message". Always allowed.
pub fn log(level: Level, message: &str) -> Result<()> {
    check(unsafe { raw::log(level as u32, message.as_ptr(), message.len() as u32) })
}

/// The value under `key`, or `None` when there is none. Needs the "kv" capability.
pub fn kv_get(key: &[u8]) -> Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        let mut len = 0u32;
        let code = unsafe {
            raw::kv_get(key.as_ptr(), key.len() as u32, buf.as_mut_ptr(), buf.len() as u32,
                        &mut len)
        };
        match code {
            0 => {
                buf.truncate(len as usize);
                return Ok(Some(buf));
            }
            1 => return Ok(None),
            4 => buf.resize(len as usize, 0),
            other => return Err(Error { status: Status::from_code(other), message: last_error() }),
        }
    }
}

pub fn kv_set(key: &[u8], value: &[u8]) -> Result<()> {
    check(unsafe {
        raw::kv_set(key.as_ptr(), key.len() as u32, value.as_ptr(), value.len() as u32)
    })
}

/// Deletes `key`; `Ok(false)` when it did not exist.
pub fn kv_delete(key: &[u8]) -> Result<bool> {
    match unsafe { raw::kv_delete(key.as_ptr(), key.len() as u32) } {
        0 => Ok(true),
        1 => Ok(false),
        other => Err(Error { status: Status::from_code(other), message: last_error() }),
    }
}

/// Every key starting with `prefix`, in byte order (all pages).
pub fn kv_list(prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let after: &[u8] = keys.last().map(|k| k.as_slice()).unwrap_or(&[]);
        let mut result = [0u32; 3];
        let code = unsafe {
            raw::kv_list(prefix.as_ptr(), prefix.len() as u32, after.as_ptr(), after.len() as u32,
                         buf.as_mut_ptr(), buf.len() as u32, result.as_mut_ptr())
        };
        if code == 4 {
            buf.resize(result[0] as usize, 0);
            continue;
        }
        check(code)?;
        let used = result[0] as usize;
        let mut pos = 0usize;
        while pos + 4 <= used {
            let n = u32::from_le_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]) as usize;
            keys.push(buf[pos + 4..pos + 4 + n].to_vec());
            pos += 4 + n;
        }
        if result[2] == 0 {
            return Ok(keys);
        }
    }
}

/// Publishes an MQTT message. Needs a "publish:FILTER" capability covering `topic`.
pub fn publish(topic: &str, payload: &[u8]) -> Result<()> {
    check(unsafe {
        raw::publish(topic.as_ptr(), topic.len() as u32, payload.as_ptr(), payload.len() as u32)
    })
}

/// Appends an update to the stream topic `topic` (1 to 64 of A-Z, a-z, 0-9, '_', '-') and
/// returns its sequence number; devices following the topic receive it. The payload must be
/// UTF-8 (JSON or text). Needs the "stream:TOPIC" (or "stream:*") capability. Host API
/// version 2.
pub fn stream_publish(topic: &str, payload: &[u8]) -> Result<u64> {
    let mut seq = 0u64;
    check(unsafe {
        raw::stream_publish(topic.as_ptr(), topic.len() as u32, payload.as_ptr(),
                            payload.len() as u32, &mut seq)
    })?;
    Ok(seq)
}

/// Runs `function` on this node with `input` as its stdin and returns its stdout. Needs an
/// "invoke:NAME" capability. The callee runs once, whatever the size of its output.
pub fn invoke(function: &str, input: &[u8]) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    let mut len = 0u32;
    let code = unsafe {
        raw::invoke(function.as_ptr(), function.len() as u32, input.as_ptr(), input.len() as u32,
                    buf.as_mut_ptr(), buf.len() as u32, &mut len)
    };
    match code {
        0 => {
            buf.truncate(len as usize);
            Ok(buf)
        }
        4 => {
            buf.resize(len as usize, 0);
            check(unsafe { raw::last_output(buf.as_mut_ptr(), buf.len() as u32, &mut len) })?;
            buf.truncate(len as usize);
            Ok(buf)
        }
        other => Err(Error { status: Status::from_code(other), message: last_error() }),
    }
}

/// The stdout of the last function run by `invoke`, also when it failed.
pub fn last_output() -> Result<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    loop {
        let mut len = 0u32;
        let code = unsafe { raw::last_output(buf.as_mut_ptr(), buf.len() as u32, &mut len) };
        if code == 4 {
            buf.resize(len as usize, 0);
            continue;
        }
        check(code)?;
        buf.truncate(len as usize);
        return Ok(buf);
    }
}
