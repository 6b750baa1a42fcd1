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
@external("tern", "kv_list")
declare function raw_kv_list(prefix: usize, prefixLen: u32, after: usize, afterLen: u32,
                             buf: usize, cap: u32, result: usize): i32;
@external("tern", "stream_publish")
declare function raw_stream_publish(topic: usize, topicLen: u32, payload: usize,
                                    payloadLen: u32, seqOut: usize): i32;
@external("tern", "invoke")
declare function raw_invoke(name: usize, nameLen: u32, input: usize, inputLen: u32,
                            buf: usize, cap: u32, lenOut: usize): i32;
@external("tern", "last_output")
declare function raw_last_output(buf: usize, cap: u32, lenOut: usize): i32;

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

function decode(bytes: Uint8Array): string {
  return String.UTF8.decodeUnsafe(bytes.dataStart, <usize>bytes.length);
}

// The name of a status ("ok", "not_found", ...), as the host's documentation writes it.
export function statusName(status: i32): string {
  const names = ["ok", "not_found", "denied", "too_large", "buffer_too_small", "unavailable",
                 "depth_exceeded", "timeout", "invalid_argument", "failed", "io",
                 "quota_exceeded", "fault"];
  return status >= 0 && status < names.length ? names[status] : "unknown";
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
    return v == null ? "" : decode(v);
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

// One page of kvList: the status, the keys (as UTF-8 text) and whether more keys match.
export class KvPage {
  constructor(public status: i32, public keys: string[], public more: bool) {}
}

// Keys that start with `prefix` ("" for every key) and sort after `after` ("" from the
// first), in byte order: as many as fit in `cap` bytes of records (at most 1000). When
// `more` is true, call again with `after` set to the last key. Needs the "kv" capability.
export function kvList(prefix: string, after: string = "", cap: u32 = 16384): KvPage {
  const p = utf8(prefix);
  const a = utf8(after);
  const result = new ArrayBuffer(12);
  for (;;) {
    const buf = new Uint8Array(<i32>cap);
    const s = raw_kv_list(ptr(p), <u32>p.byteLength, ptr(a), <u32>a.byteLength,
                          bytesPtr(buf), cap, ptr(result));
    if (s == Status.BUFFER_TOO_SMALL) {
      cap = load<u32>(ptr(result));  // what the first key's record needs
      continue;
    }
    const keys = new Array<string>();
    if (s != Status.OK) return new KvPage(s, keys, false);
    const used = load<u32>(ptr(result));
    const count = load<u32>(ptr(result), 4);
    const more = load<u32>(ptr(result), 8) == 1;
    let pos: u32 = 0;
    for (let i: u32 = 0; i < count && pos + 4 <= used; ++i) {
      const n = load<u32>(bytesPtr(buf) + pos);
      keys.push(String.UTF8.decodeUnsafe(bytesPtr(buf) + pos + 4, <usize>n));
      pos += 4 + n;
    }
    return new KvPage(s, keys, more);
  }
}

// The result of streamPublish: the status and, when it is Status.OK, the update's
// sequence number in its topic.
export class Published {
  constructor(public status: i32, public seq: u64) {}
}

// Appends an update (UTF-8 text: JSON or plain) to the stream topic `topic`; devices
// following the topic receive it. Needs the capability "stream:TOPIC" or "stream:*".
export function streamPublish(topic: string, payload: string): Published {
  const t = utf8(topic);
  const p = utf8(payload);
  const seqOut = new ArrayBuffer(8);
  const s = raw_stream_publish(ptr(t), <u32>t.byteLength, ptr(p), <u32>p.byteLength, ptr(seqOut));
  return new Published(s, s == Status.OK ? load<u64>(ptr(seqOut)) : 0);
}

// The result of invoke: the status and the callee's stdout (also on Status.FAILED: the
// callee exited non-zero, trapped or hit a limit, and lastError() says which).
export class Invoked {
  constructor(public status: i32, public output: Uint8Array) {}
  // The output as UTF-8 text.
  text(): string {
    return decode(this.output);
  }
}

// Runs the function `name` on this node with `input` as its stdin and returns its stdout.
// The callee runs once: an output larger than the first buffer is fetched with
// last_output, not by running it again. Needs "invoke:NAME" or "invoke:*".
export function invokeBytes(name: string, input: Uint8Array): Invoked {
  const n = utf8(name);
  const lenOut = new ArrayBuffer(4);
  let buf = new Uint8Array(4096);
  let s = raw_invoke(ptr(n), <u32>n.byteLength, bytesPtr(input), <u32>input.length,
                     bytesPtr(buf), <u32>buf.length, ptr(lenOut));
  let len = load<u32>(ptr(lenOut));
  if (s == Status.BUFFER_TOO_SMALL || s == Status.FAILED) {
    // The host keeps the output (on failed, the stdout the callee wrote): fetch it without
    // running the callee again.
    buf = new Uint8Array(<i32>len);
    if (raw_last_output(bytesPtr(buf), len, ptr(lenOut)) != Status.OK) store<u32>(ptr(lenOut), 0);
    len = load<u32>(ptr(lenOut));
    if (s == Status.BUFFER_TOO_SMALL) s = Status.OK;
  } else if (s != Status.OK) {
    return new Invoked(s, new Uint8Array(0));
  }
  return new Invoked(s, buf.subarray(0, <i32>min<u32>(len, <u32>buf.length)));
}

// invokeBytes with text input (sent as UTF-8).
export function invoke(name: string, input: string): Invoked {
  return invokeBytes(name, Uint8Array.wrap(utf8(input)));
}
