// tern guest SDK for AssemblyScript: the "tern" host API, version 2.
//
// One source file: copy it into a project's assembly/ directory and import it
// (`import * as tern from "./tern"`). Build with asc and @assemblyscript/wasi-shim (the
// module is a WASI command). The raw imports follow docs/design/host-api.md exactly; the
// wrappers take strings (encoded as UTF-8) or byte arrays, retry on buffer_too_small, and
// return a Status. After a failure, lastError() returns the host's reason. Calls outside the
// function's capabilities (granted at deploy with --allow) return Status.DENIED.

export const HOST_API_VERSION: i32 = 2;

export namespace Status {
  export const OK: i32 = 0;
  export const NOT_FOUND: i32 = 1;
  export const DENIED: i32 = 2;
  export const TOO_LARGE: i32 = 3;
  export const BUFFER_TOO_SMALL: i32 = 4;
  export const UNAVAILABLE: i32 = 5;
  export const DEPTH_EXCEEDED: i32 = 6;
  export const TIMEOUT: i32 = 7;
  export const INVALID_ARGUMENT: i32 = 8;
  export const FAILED: i32 = 9;
  export const IO: i32 = 10;
  export const QUOTA_EXCEEDED: i32 = 11;
  export const FAULT: i32 = 12;
}

export namespace Level {
  export const DEBUG: i32 = 0;
  export const INFO: i32 = 1;
  export const WARN: i32 = 2;
  export const ERROR: i32 = 3;
}

// ---- Raw imports: pointers are offsets in linear memory, lengths in bytes. ----

@external("tern", "host_api_version")
declare function raw_host_api_version(): i32;
@external("tern", "last_error")
declare function raw_last_error(buf: usize, cap: u32): u32;
@external("tern", "log")
declare function raw_log(level: i32, msg: usize, len: u32): i32;
@external("tern", "kv_get")
declare function raw_kv_get(key: usize, keyLen: u32, buf: usize, cap: u32, lenOut: usize): i32;
@external("tern", "kv_set")
declare function raw_kv_set(key: usize, keyLen: u32, value: usize, valueLen: u32): i32;
@external("tern", "kv_delete")
declare function raw_kv_delete(key: usize, keyLen: u32): i32;
@external("tern", "publish")
declare function raw_publish(topic: usize, topicLen: u32, payload: usize, payloadLen: u32): i32;

// ---- Wrappers ----

function utf8(text: string): ArrayBuffer {
  return String.UTF8.encode(text, false);
}

function ptr(buffer: ArrayBuffer): usize {
  return changetype<usize>(buffer);
}

function bytesPtr(bytes: Uint8Array): usize {
  return bytes.dataStart;
}

// The host API version of the node (2).
export function hostApiVersion(): i32 {
  return raw_host_api_version();
}

// The reason for the last failed call ("" when there was none).
export function lastError(): string {
  let buf = new ArrayBuffer(1024);
  let n = raw_last_error(ptr(buf), <u32>buf.byteLength);
  if (n == 0xffffffff) return "";
  if (n > <u32>buf.byteLength) {
    buf = new ArrayBuffer(<i32>n);
    n = raw_last_error(ptr(buf), <u32>buf.byteLength);
  }
  return String.UTF8.decodeUnsafe(ptr(buf), <usize>min<u32>(n, <u32>buf.byteLength));
}

// One line in the function's log ("[info] message"). Always allowed.
export function log(level: i32, message: string): i32 {
  const msg = utf8(message);
  return raw_log(level, ptr(msg), <u32>msg.byteLength);
}

// The result of kvGet: the status and, when it is Status.OK, the value's bytes.
export class KvValue {
  constructor(public status: i32, public value: Uint8Array | null) {}
  // The value as UTF-8 text ("" when there is none).
  text(): string {
    const v = this.value;
    return v == null ? "" : String.UTF8.decodeUnsafe(v.dataStart, <usize>v.length);
  }
}

// Reads the value under `key`: Status.OK with the value, Status.NOT_FOUND, or a failure.
// Needs the "kv" capability.
export function kvGet(key: string): KvValue {
  const k = utf8(key);
  let cap: u32 = 256;
  const lenOut = new ArrayBuffer(4);
  for (;;) {
    const buf = new Uint8Array(<i32>cap);
    const s = raw_kv_get(ptr(k), <u32>k.byteLength, bytesPtr(buf), cap, ptr(lenOut));
    const n = load<u32>(ptr(lenOut));
    if (s == Status.BUFFER_TOO_SMALL) {
      cap = n;
      continue;
    }
    if (s != Status.OK) return new KvValue(s, null);
    return new KvValue(s, buf.subarray(0, <i32>n));
  }
}

// Stores bytes under `key`, replacing any previous value. Needs the "kv" capability.
export function kvSetBytes(key: string, value: Uint8Array): i32 {
  const k = utf8(key);
  return raw_kv_set(ptr(k), <u32>k.byteLength, bytesPtr(value), <u32>value.length);
}

// Stores text (as UTF-8) under `key`. Needs the "kv" capability.
export function kvSet(key: string, value: string): i32 {
  const k = utf8(key);
  const v = utf8(value);
  return raw_kv_set(ptr(k), <u32>k.byteLength, ptr(v), <u32>v.byteLength);
}

// Deletes `key`: Status.OK, or Status.NOT_FOUND when it had no value. Needs "kv".
export function kvDelete(key: string): i32 {
  const k = utf8(key);
  return raw_kv_delete(ptr(k), <u32>k.byteLength);
}

// Publishes an MQTT message through the node's broker connection. Needs a
// "publish:FILTER" capability whose filter matches the topic.
export function publish(topic: string, payload: string): i32 {
  const t = utf8(topic);
  const p = utf8(payload);
  return raw_publish(ptr(t), <u32>t.byteLength, ptr(p), <u32>p.byteLength);
}
