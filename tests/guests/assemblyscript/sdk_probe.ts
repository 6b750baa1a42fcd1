// Every call of the AssemblyScript SDK (sdk/guest/assemblyscript/tern.ts) against a real
// node: templates_test builds it in a project made by `tern new --lang assemblyscript`,
// in place of assembly/index.ts, and deploys it with kv, stream:probe-updates and
// invoke:*. Each line of its stdout is one result, which the test reads.
import * as tern from "./tern";

function line(text: string): void {
  process.stdout.write(text + "\n");
}

function status(s: i32): string {
  return s == tern.Status.OK ? "ok" : tern.statusName(s) + " (" + tern.lastError() + ")";
}

line("version " + tern.hostApiVersion().toString());

// kv: a value that needs the retry of a larger buffer, then keys listed in pages.
const big = "v".repeat(1000);
line("set " + status(tern.kvSet("big", big)));
line("get " + (tern.kvGet("big").text() == big ? "same" : "different"));
for (let i = 1; i <= 5; ++i) tern.kvSet("k/" + i.toString(), "x");
tern.kvSet("other", "x");
let after = "";
let pages = 0;
let keys = new Array<string>();
for (;;) {
  const page = tern.kvList("k/", after, 16);  // two 7-byte records fit a page
  if (page.status != tern.Status.OK) {
    line("list " + status(page.status));
    break;
  }
  pages += 1;
  for (let i = 0; i < page.keys.length; ++i) keys.push(page.keys[i]);
  if (!page.more) break;
  after = page.keys[page.keys.length - 1];
}
line("keys " + keys.join(",") + " in " + pages.toString() + " pages");
line("delete " + status(tern.kvDelete("k/5")) + ", again " + tern.statusName(tern.kvDelete("k/5")));
line("keys " + tern.kvList("k/").keys.join(","));

// Streams: sequence numbers per topic, and a topic outside the capability.
const first = tern.streamPublish("probe-updates", "{\"n\":1}");
const second = tern.streamPublish("probe-updates", "{\"n\":2}");
line("stream " + status(first.status) + " " + first.seq.toString() + " " + second.seq.toString());
line("stream elsewhere " + tern.statusName(tern.streamPublish("elsewhere", "x").status));

// invoke: an output larger than the first buffer comes whole, from last_output.
const input = "0123456789".repeat(1000);
const echoed = tern.invoke("echo", input);
line("invoke " + status(echoed.status) + " " + echoed.output.length.toString() + " bytes " +
     (echoed.text() == input ? "same" : "different"));
line("invoke small " + tern.invoke("echo", "hi").text());
line("invoke missing " + tern.statusName(tern.invoke("missing", "").status));
