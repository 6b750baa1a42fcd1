// Tests of greeting(), built into their own WASI command (build/greeting_test.wasm) that
// `npm test` runs with `tern run`. It imports nothing from the host API, so it runs
// anywhere; a failed case exits with status 1.
import { greeting } from "../assembly/greeting";

let failed = false;

function expect(got: string, want: string): void {
  if (got != want) {
    process.stdout.write("FAIL: got \"" + got + "\", want \"" + want + "\"\n");
    failed = true;
  }
}

expect(greeting("", "http", "", 1), "Hello, world! This is call 1 of {{name}}, by http.");
expect(greeting("  Ada\n", "http", "", 2), "Hello, Ada! This is call 2 of {{name}}, by http.");
expect(greeting("Grace", "mqtt", "{{name}}/in", 3),
       "Hello, Grace! This is call 3 of {{name}}, by mqtt on {{name}}/in.");
expect(greeting("", "cron", "2026-01-01T00:00:00Z", 4),
       "Hello, world! This is call 4 of {{name}}, by cron at 2026-01-01T00:00:00Z.");
expect(greeting("x".repeat(200), "http", "", 5),
       "Hello, " + "x".repeat(64) + "! This is call 5 of {{name}}, by http.");

if (failed) process.exit(1);
process.stdout.write("greeting: all tests passed\n");
