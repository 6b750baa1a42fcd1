// {{name}}: a tern function. It reads its input as its trigger delivers it (the request
// body or the MQTT payload on stdin; TERN_TRIGGER, MQTT_TOPIC and TERN_SCHEDULED_AT in the
// environment), counts its calls in the node's key-value store, logs a line and answers on
// stdout. Top-level code is the WASI command's _start.
import { greeting } from "./greeting";
import * as tern from "./tern";

// Reads stdin up to `cap` bytes; the rest is ignored.
function readInput(cap: i32): string {
  const buf = new ArrayBuffer(cap);
  let len = 0;
  while (len < cap) {
    const n = process.stdin.read(buf, len);
    if (n <= 0) break;
    len += n;
  }
  return String.UTF8.decodeUnsafe(changetype<usize>(buf), <usize>len);
}

function envOr(name: string, fallback: string): string {
  return process.env.has(name) ? process.env.get(name) : fallback;
}

// Adds one to the counter under "calls" and returns its new value, 0 on failure.
function countCall(): i64 {
  const got = tern.kvGet("calls");
  let count: i64 = 0;
  if (got.status == tern.Status.OK) {
    count = I64.parseInt(got.text());
  } else if (got.status != tern.Status.NOT_FOUND) {
    tern.log(tern.Level.ERROR, tern.lastError());
    return 0;
  }
  count += 1;
  if (tern.kvSet("calls", count.toString()) != tern.Status.OK) {
    tern.log(tern.Level.ERROR, tern.lastError());
    return 0;
  }
  return count;
}

const input = readInput(4096);
const trigger = envOr("TERN_TRIGGER", "http");
const origin = envOr("MQTT_TOPIC", envOr("TERN_SCHEDULED_AT", ""));
const count = countCall();
if (count == 0) {
  process.exit(1);
}
const answer = greeting(input, trigger, origin, count);
tern.log(tern.Level.INFO, answer);
if (trigger == "http") process.stdout.write("Content-Type: text/plain\r\n\r\n");
process.stdout.write(answer + "\n");
